#pragma once
// HttpClient over libcurl. libcurl stays inside curl_http_client.cc (no curl types here).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "net/http_client.h"

namespace ep::net {

class CurlHttpClient final : public HttpClient {
 public:
  struct Options {
    // Responses with a larger body fail with kInvalid (a hostile or broken peer cannot make us
    // buffer without bound).
    // Small by default: a 60 MiB reply took 1.7 GB to parse. Sources make it configurable.
    std::size_t max_body_bytes = 8u << 20;
    std::string user_agent = "elasticproxy";
  };

  CurlHttpClient();
  explicit CurlHttpClient(Options options);
  ~CurlHttpClient() override;
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  // Not thread-safe: one instance per thread. The connection to a peer is kept alive and reused
  // by the next request to the same host/port (or unix socket), so a thread doing a long-poll
  // loop holds exactly one connection. Redirects are not followed.
  Result<HttpResponse> perform(const HttpRequest& request) override;
  void cancel() override;  // thread-safe
  std::uint64_t connections_opened() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::net
