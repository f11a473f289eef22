// The ops HTTP server's request-head parser (/metrics, /healthz, /status on a listening socket),
// the listen-address parser, and the `elasticproxy status` table renderer (JSON from /status).
// Invariants: a complete request has a method, a path that starts the target, and at most
// max_headers headers; a bad one carries a 4xx/5xx status.
#include "fuzz/fuzz_support.h"
#include "ops/http_server.h"
#include "ops/status_client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  ep::ops::HttpLimits limits;
  auto parsed = ep::ops::parse_http_request(text, limits);
  using State = ep::ops::ParseResult::State;
  if (parsed.state == State::kComplete) {
    EP_FUZZ_CHECK(!parsed.request.method.empty());
    EP_FUZZ_CHECK(parsed.request.target.compare(0, parsed.request.path.size(),
                                                parsed.request.path) == 0);
    EP_FUZZ_CHECK(parsed.request.headers.size() <= limits.max_headers);
  } else if (parsed.state == State::kBad) {
    EP_FUZZ_CHECK(parsed.status >= 400 && parsed.status <= 599);
  }
  if (size < 128) {
    if (auto listen = ep::ops::parse_listen_address(text)) {
      EP_FUZZ_CHECK(listen->port >= 0 && listen->port <= 65535);
    }
  }
  (void)ep::ops::render_status_table(text);
  return 0;
}
