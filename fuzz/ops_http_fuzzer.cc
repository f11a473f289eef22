// The ops HTTP server's own request checks (the HTTP parsing itself is libmicrohttpd's): the
// admission gate's head check, the per-request check on the first header lines taken as a
// request, the listen-address parser, and the `elasticproxy status` table renderer (JSON from
// /status). Invariants: a refused head or request carries a 4xx/5xx status; a head is never
// complete beyond max_head_bytes.
#include "fuzz/fuzz_support.h"
#include "ops/endpoints.h"
#include "ops/http_server.h"
#include "ops/status_client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  ep::ops::HttpLimits limits;
  auto head = ep::ops::check_request_head(text, limits);
  using State = ep::ops::HeadCheck::State;
  if (head.state == State::kBad) {
    EP_FUZZ_CHECK(head.status >= 400 && head.status <= 599);
  } else if (head.state == State::kComplete) {
    EP_FUZZ_CHECK(text.size() > 0);
    // Build a request the way the server sees one: request line words, then "name: value".
    ep::ops::HttpRequest req;
    std::string_view rest = text;
    auto next_line = [&rest] {
      const size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return line;
    };
    std::string_view line = next_line();
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.rfind(' ');
    req.method = std::string(line.substr(0, sp1));
    if (sp1 != std::string_view::npos && sp2 > sp1) {
      req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
      req.version = std::string(line.substr(sp2 + 1));
    }
    req.path = req.target.substr(0, req.target.find('?'));
    while (!rest.empty()) {
      line = next_line();
      if (line.empty()) break;
      const size_t colon = line.find(':');
      req.headers.emplace_back(
          std::string(line.substr(0, colon)),
          colon == std::string_view::npos ? std::string() : std::string(line.substr(colon + 1)));
    }
    if (auto refused = ep::ops::check_request(req, limits)) {
      EP_FUZZ_CHECK(refused->status >= 400 && refused->status <= 599);
    }
    if (auto host = req.header("host")) (void)ep::ops::host_allowed(*host, {});
  }
  if (size < 128) {
    if (auto listen = ep::ops::parse_listen_address(text)) {
      EP_FUZZ_CHECK(listen->port >= 0 && listen->port <= 65535);
    }
    (void)ep::ops::host_allowed(text, {"ops.example"});
  }
  (void)ep::ops::render_status_table(text);
  return 0;
}
