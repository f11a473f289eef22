#pragma once
// A small synchronous HTTP/1.1 client interface. Sources talk HTTP through it so that the
// transport (libcurl, see curl_http_client.h) stays at the edge and tests can substitute fakes.
// No third-party types appear here.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ep::net {

// Header list with case-insensitive lookup (HTTP header names are case-insensitive). Keeps the
// order and the spelling the peer used.
class HttpHeaders {
 public:
  void add(std::string name, std::string value);
  // First value of `name` (case-insensitive), if any.
  std::optional<std::string> get(std::string_view name) const;
  std::vector<std::string> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }
  void clear() { entries_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct TlsOptions {
  std::string ca_file;    // PEM bundle used to verify the peer; empty = system store
  std::string cert_file;  // client certificate (PEM), optional
  std::string key_file;   // client key (PEM), optional
  bool verify = true;     // verify the peer certificate and host name
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http://host:port/path?query (https:// for TLS)
  // Sent as given. Values of headers named in is_secret_header() never appear in errors or logs.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // whole request
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  TlsOptions tls;
  // When set, connect to this unix-domain socket instead of the URL's host (the URL's host is
  // still sent in the Host header).
  std::string unix_socket_path;
  // Never through a proxy: http_proxy / HTTPS_PROXY / ALL_PROXY from the environment are ignored.
  bool direct = false;
};

struct HttpResponse {
  long status = 0;
  HttpHeaders headers;
  std::string body;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Performs one request and returns the response, whatever its status code (a 500 is a
  // response, not an error). Errors:
  //  - kUnavailable: cannot connect, timeout, connection reset, TLS failure, cancelled. The
  //    message names the method and the URL (without secrets), never a header value.
  //  - kInvalid: the response body exceeds the client's size cap, or the request is malformed.
  // Implementations are NOT thread-safe: one client per thread (see cancel()).
  virtual Result<HttpResponse> perform(const HttpRequest& request) = 0;

  // Thread-safe. Aborts the request in progress (it fails with kUnavailable "cancelled") and makes
  // every later perform() fail at once. Used to stop a thread blocked in a long poll.
  virtual void cancel() = 0;

  // New TCP/unix connections opened so far (a kept-alive connection that is reused does not
  // count). For tests and metrics.
  virtual std::uint64_t connections_opened() const = 0;
};

// True for header names whose values are credentials (Authorization, X-Consul-Token, Cookie,
// Proxy-Authorization, and any name containing "token" or "secret"), case-insensitive.
bool is_secret_header(std::string_view name);

// The URL with any userinfo and the values of query parameters that look like credentials
// (token, access_token, password, secret...) replaced by "REDACTED". For error messages and logs.
std::string redact_url(std::string_view url);

// Percent-encodes everything except RFC 3986 unreserved characters (for query values and path
// segments).
std::string url_encode(std::string_view text);

}  // namespace ep::net
