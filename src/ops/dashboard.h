#pragma once
// The dashboard's static files (src/ops/dashboard/), built into the binary at build time. They
// hold no data: the page reads /status and renders it (every discovered string as text).

#include <optional>
#include <string_view>

namespace ep::ops {

struct DashboardFile {
  std::string_view body;
  std::string_view content_type;
};

// The file served at `path` ("/" is index.html; "/dashboard.js", "/dashboard.css", "/login.js";
// "/login.html" for the token form), or nullopt.
std::optional<DashboardFile> dashboard_file(std::string_view path);

// Total bytes of every embedded file (the page weight budget is checked by a test).
size_t dashboard_bytes();

}  // namespace ep::ops
