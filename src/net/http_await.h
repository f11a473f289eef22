#pragma once
// co_await on an AsyncHttpClient request (runtime/co.h):
//
//   Result<HttpResponse> r = co_await net::http_request(client, request);
//
// Resumes on the client's loop when the request finishes. Destroyed while pending (its chain
// destroyed, on the loop thread): the request is cancelled and nothing resumes. The client must
// outlive the awaiting chain.

#include <coroutine>
#include <optional>

#include "net/async_http_client.h"

namespace ep::net {

class HttpAwait {
 public:
  HttpAwait(AsyncHttpClient& client, HttpRequest request)
      : client_(client), request_(std::move(request)) {}
  HttpAwait(const HttpAwait&) = delete;
  HttpAwait& operator=(const HttpAwait&) = delete;
  ~HttpAwait() {
    if (id_ != 0) client_.cancel(id_);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    id_ = client_.start(request_, [this, h](Result<HttpResponse> r) {
      id_ = 0;
      result_.emplace(std::move(r));
      h.resume();
    });
  }
  Result<HttpResponse> await_resume() { return std::move(*result_); }

 private:
  AsyncHttpClient& client_;
  HttpRequest request_;
  AsyncHttpClient::RequestId id_ = 0;
  std::optional<Result<HttpResponse>> result_;
};

inline HttpAwait http_request(AsyncHttpClient& client, HttpRequest request) {
  return HttpAwait(client, std::move(request));
}

}  // namespace ep::net
