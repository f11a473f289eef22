#pragma once
// A small HTTP/1.1 server for the operations endpoints (/metrics, /healthz, /readyz, /status):
// plain sockets and poll(), one thread, every connection bounded. It is built to face a hostile
// local client without harm: the request head is limited in bytes and header count, every
// connection has a deadline for the whole request (slow senders are cut off, "slowloris"), the
// number of open connections is capped (extra ones get 503 and are closed), and any malformed
// request gets a 4xx and a close. One request per connection (`Connection: close`): scrapers and
// probes open a connection per request anyway.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ep::ops {

struct HttpRequest {
  std::string method;   // "GET", ...
  std::string target;   // "/metrics?x=1" as sent
  std::string path;     // "/metrics" (target without the query)
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
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
  size_t max_connections = 64;                     // open at once; more get 503
  std::chrono::milliseconds read_timeout{5000};    // whole request head must arrive by then
  std::chrono::milliseconds write_timeout{10000};  // whole response must be taken by then
};

// Outcome of parsing the bytes received so far.
struct ParseResult {
  enum class State { kIncomplete, kComplete, kBad };
  State state = State::kIncomplete;
  int status = 0;       // for kBad: 400, 413, 414, 431, 501, 505
  std::string reason;   // for kBad: short text
  HttpRequest request;  // for kComplete
};

// Pure: parses a request head (request line + headers up to the blank line). Requests with a
// body (Content-Length > 0 or Transfer-Encoding) are refused with 413/501: no endpoint takes one.
ParseResult parse_http_request(std::string_view bytes, const HttpLimits& limits);

// "host:port", "[v6]:port", ":port" (all interfaces, v4). Port 0 = pick a free one.
struct ListenAddress {
  std::string host;
  int port = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view text);

// The serialized response: status line, Content-Type, Content-Length, Connection: close, extra
// headers, body. HEAD requests get the head only.
std::string serialize_response(const HttpResponse& response, bool head_only);
const char* status_text(int status);

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(Handler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on `address` ("127.0.0.1:9108", "[::1]:0") and starts the thread. Errors
  // (bad address, port in use, ...) name the address.
  Status start(std::string_view address);
  // Stops the thread and closes every connection. Idempotent.
  void stop();

  int port() const { return port_; }  // the bound port (after start)
  std::string address() const { return address_; }

  // Counters for tests and diagnostics.
  size_t open_connections() const { return open_.load(); }
  size_t requests_served() const { return served_.load(); }
  size_t connections_refused() const { return refused_.load(); }
  size_t connections_timed_out() const { return timed_out_.load(); }

 private:
  void loop();

  Handler handler_;
  HttpLimits limits_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> open_{0}, served_{0}, refused_{0}, timed_out_{0};
  std::thread thread_;
};

}  // namespace ep::ops
