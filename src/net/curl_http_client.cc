#include "net/curl_http_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <atomic>
#include <mutex>

#include "net/curl_easy_setup.h"

namespace ep::net {

using curl::global_init;

struct CurlHttpClient::Impl {
  Options options;
  curl::Easy easy;
  curl::Multi multi;
  std::atomic<bool> cancelled{false};
  std::atomic<std::uint64_t> connections{0};
};

CurlHttpClient::CurlHttpClient() : CurlHttpClient(Options{}) {}

CurlHttpClient::CurlHttpClient(Options options) : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->options = std::move(options);
  impl_->easy.reset(curl_easy_init());
  impl_->multi.reset(curl_multi_init());
}

CurlHttpClient::~CurlHttpClient() {
  // The easy handle must leave the multi handle before either is destroyed; perform() always
  // removes it, so only the destruction order matters here: easy first, then multi.
  impl_->easy.reset();
  impl_->multi.reset();
}

void CurlHttpClient::cancel() {
  impl_->cancelled = true;
  // curl_multi_wakeup is documented thread-safe: it interrupts curl_multi_poll at once, so a
  // long poll stops without waiting for its timeout.
  if (impl_->multi) curl_multi_wakeup(impl_->multi.get());
}

std::uint64_t CurlHttpClient::connections_opened() const { return impl_->connections.load(); }

Result<HttpResponse> CurlHttpClient::perform(const HttpRequest& request) {
  const std::string what = curl::describe(request);
  if (!impl_->easy || !impl_->multi) return Error::internal(what + ": cannot create a curl handle");
  if (impl_->cancelled) return Error::unavailable(what + ": cancelled");
  if (request.url.empty()) return Error::invalid("HTTP request without a URL");

  CURL* h = impl_->easy.get();
  // Reset options from the previous request; live connections survive curl_easy_reset.
  curl_easy_reset(h);
  curl::Transfer transfer;
  transfer.easy = h;
  transfer.max_body = impl_->options.max_body_bytes;
  curl::Slist headers;
  if (Status st = curl::configure(request, impl_->options.user_agent, transfer, headers); !st) {
    return st.error();
  }

  CURLM* m = impl_->multi.get();
  if (curl_multi_add_handle(m, h) != CURLM_OK)
    return Error::internal(what + ": curl_multi_add_handle failed");
  CURLcode result = CURLE_OK;
  bool done = false;
  bool cancelled = false;
  while (!done) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(m, &running);
    if (mc != CURLM_OK) {
      curl_multi_remove_handle(m, h);
      return Error::internal(what + ": " + curl_multi_strerror(mc));
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done) break;
    if (impl_->cancelled) {
      cancelled = true;
      break;
    }
    curl_multi_poll(m, nullptr, 0, 1000, nullptr);
  }
  long new_connections = 0;
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &new_connections);
  impl_->connections += static_cast<std::uint64_t>(new_connections > 0 ? new_connections : 0);
  if (cancelled) {
    curl_multi_remove_handle(m, h);
    return Error::unavailable(what + ": cancelled");
  }
  Result<HttpResponse> out = curl::finish(what, result, transfer);
  // Leaving the multi handle puts a finished connection into its cache for reuse (an aborted one
  // is closed).
  curl_multi_remove_handle(m, h);
  return out;
}

}  // namespace ep::net
