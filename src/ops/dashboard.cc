#include "ops/dashboard.h"

#include <cstddef>
#include <string>

namespace ep::ops {
namespace {
#include "dashboard_files.inc"

std::string_view type_of(std::string_view name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}
}  // namespace

std::optional<DashboardFile> dashboard_file(std::string_view path) {
  if (path == "/") path = "/index.html";
  if (path.empty() || path.front() != '/') return std::nullopt;
  path.remove_prefix(1);
  for (const auto& f : kEmbeddedFiles) {
    if (path == f.name) {
      return DashboardFile{
          std::string_view(reinterpret_cast<const char*>(f.data), static_cast<size_t>(f.size)),
          type_of(f.name)};
    }
  }
  return std::nullopt;
}

size_t dashboard_bytes() {
  size_t n = 0;
  for (const auto& f : kEmbeddedFiles) n += static_cast<size_t>(f.size);
  return n;
}

}  // namespace ep::ops
