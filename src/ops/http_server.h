#pragma once
// The HTTP server for the operations endpoints (/metrics, /healthz, /readyz, /status, and later
// the dashboard). HTTP itself (request parsing, responses, HEAD, per-connection memory, write
// timeouts) is libmicrohttpd's, run on one epoll thread of its own; nothing of it leaks out of
// http_server.cc.
//
// In front of it sits a small admission gate (one more thread) that owns the listening socket,
// because a local process must not be able to starve the health probes (issue #14, point 2):
//  - a new connection is held by the gate until its whole request head has arrived (peeked, not
//    read); only then is it handed to libmicrohttpd. Idle and slow connections therefore never
//    occupy the HTTP engine;
//  - a connection that sends nothing within `first_byte_timeout`, or no complete head within
//    `read_timeout` of being accepted, gets 408 and is closed (dribbling bytes does not extend
//    the deadline);
//  - a head larger than `max_head_bytes` gets 431 (414 while still on the request line), a first
//    token that is not a method, a control character or obsolete line folding gets 400;
//  - at most `max_connections` connections are open, and at most `max_connections_per_peer` from
//    one peer address. A connection past either limit is held for `overflow_grace`: if its
//    request head arrives in that time it displaces the oldest connection that still has not
//    sent a complete head (that one gets 503), so a probe is answered even while the listener is
//    full of idle connections; if nothing arrives, or nothing can be displaced, it gets 503.
// One request per connection (`Connection: close`). Every response carries
// `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`, except libmicrohttpd's own
// bodiless-content error replies to requests the gate could not judge (see docs/operations.md).

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ep::ops {

struct HttpRequest {
  std::string method;   // "GET", ...
  std::string target;   // "/metrics?x=1" as sent
  std::string path;     // "/metrics" (target without the query, not percent-decoded)
  std::string query;    // "x=1" (after the '?', raw; empty when none)
  std::string version;  // "HTTP/1.1"
  std::string peer;     // the client's IP address ("127.0.0.1", "::1"); empty in unit tests
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order

  // The first value of the header `lower_name` (lower-case), if present.
  std::optional<std::string> header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (e.g. Allow)
};

struct HttpLimits {
  size_t max_head_bytes = 8192;  // request line + headers
  size_t max_headers = 64;
  size_t max_connections = 64;                         // open at once (gate + HTTP engine)
  size_t max_connections_per_peer = 32;                // open at once from one IP address
  std::chrono::milliseconds first_byte_timeout{2000};  // the first byte must arrive by then
  std::chrono::milliseconds read_timeout{5000};        // the whole request head must arrive by then
  std::chrono::milliseconds write_timeout{10000};  // the response must be taken (rounded up to s)
  std::chrono::milliseconds overflow_grace{250};   // how long a connection past a limit may wait
  size_t max_overflow = 16;  // connections past a limit held at once; more get 503 at once
};

// The gate's judgement of the bytes received so far on a connection (pure; exposed for tests and
// the fuzzer). kComplete means "a head ends here and is worth handing to the HTTP engine", not
// that the request is valid: the engine and the request checks below judge the rest.
struct HeadCheck {
  enum class State { kIncomplete, kComplete, kBad };
  State state = State::kIncomplete;
  int status = 0;      // for kBad: 400, 414 or 431
  std::string reason;  // for kBad: short text
};
HeadCheck check_request_head(std::string_view bytes, const HttpLimits& limits);

// Checks a request the HTTP engine parsed, before any handler sees it. Returns the error response
// (400 malformed target/header, 413 a body, 431 too many headers, 501 chunked, 505 version), or
// nullopt when the request is fine. Pure.
std::optional<HttpResponse> check_request(const HttpRequest& request, const HttpLimits& limits);

// "host:port", "[v6]:port", ":port" (all interfaces, v4). Port 0 = pick a free one.
struct ListenAddress {
  std::string host;
  int port = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view text);

class HttpServer {
 public:
  // Called on the HTTP engine's thread, one request at a time; must not block for long (every
  // other request waits). An exception becomes a 500.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  explicit HttpServer(Handler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on `address` ("127.0.0.1:9108", "[::1]:0") and starts the threads. Errors
  // (bad address, port in use, ...) name the address.
  Status start(std::string_view address);
  // Stops the threads and closes every connection. Idempotent.
  void stop();

  int port() const;             // the bound port (after start)
  std::string address() const;  // "127.0.0.1:9108" (after start)

  // Counters for tests and diagnostics.
  size_t open_connections() const;       // held by the gate (within limits) + in the engine
  size_t requests_served() const;        // requests that reached the handler
  size_t connections_refused() const;    // 503: past a limit and not admitted
  size_t connections_timed_out() const;  // 408
  size_t connections_evicted() const;    // idle connections displaced by a waiting request
  size_t connections_waiting() const;    // past a limit, held for overflow_grace right now

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::ops
