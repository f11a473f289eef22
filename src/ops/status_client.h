#pragma once
// The client side of the status endpoint, for `elasticproxy status`: a bounded HTTP GET to the
// daemon's ops address and a readable table rendered from the /status JSON.

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::ops {

struct HttpGetReply {
  int status = 0;
  std::string body;
};

// GET http://<address><path> (address as in metrics.listen: "127.0.0.1:9108", "[::1]:9108";
// an empty or 0.0.0.0/:: host means loopback). Bounded by `timeout` overall and by a 16 MiB
// reply cap. Errors name the address.
Result<HttpGetReply> http_get(std::string_view address, std::string_view path,
                              std::chrono::milliseconds timeout);

// The /status JSON as a table for a terminal. Error if the text is not a /status document.
Result<std::string> render_status_table(std::string_view status_json);

}  // namespace ep::ops
