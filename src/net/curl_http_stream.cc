#include <curl/curl.h>
#include <fmt/format.h>

#include <atomic>
#include <mutex>

#include "net/http_stream.h"

namespace ep::net {
namespace {

struct StreamState {
  const CurlHttpStream::ChunkHandler* handler = nullptr;
  CURL* easy = nullptr;
  bool stopped_by_handler = false;
  std::chrono::steady_clock::time_point last_data;
};

size_t on_stream_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* s = static_cast<StreamState*>(user);
  const size_t n = size * nmemb;
  s->last_data = std::chrono::steady_clock::now();
  long status = 0;
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  if (!(*s->handler)(status, std::string_view(data, n))) {
    s->stopped_by_handler = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR), expected here
  }
  return n;
}

size_t on_stream_header(char* /*data*/, size_t size, size_t nmemb, void* user) {
  // Headers count as activity for the idle timer (the first body byte may come much later).
  static_cast<StreamState*>(user)->last_data = std::chrono::steady_clock::now();
  return size * nmemb;
}

}  // namespace

struct CurlHttpStream::Impl {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  std::atomic<bool> cancelled{false};
};

CurlHttpStream::CurlHttpStream() : impl_(std::make_unique<Impl>()) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->easy = curl_easy_init();
  impl_->multi = curl_multi_init();
}

CurlHttpStream::~CurlHttpStream() {
  if (impl_->easy != nullptr) curl_easy_cleanup(impl_->easy);
  if (impl_->multi != nullptr) curl_multi_cleanup(impl_->multi);
}

void CurlHttpStream::cancel() {
  impl_->cancelled = true;
  if (impl_->multi != nullptr) curl_multi_wakeup(impl_->multi);
}

Result<long> CurlHttpStream::perform(const HttpRequest& request,
                                     std::chrono::milliseconds idle_timeout,
                                     const ChunkHandler& on_chunk) {
  const std::string what = fmt::format("{} {}", request.method, redact_url(request.url));
  if (impl_->easy == nullptr || impl_->multi == nullptr)
    return Error::internal(what + ": cannot create a curl handle");
  if (impl_->cancelled) return Error::unavailable(what + ": cancelled");
  if (request.url.empty()) return Error::invalid("HTTP stream request without a URL");

  CURL* h = impl_->easy;
  curl_easy_reset(h);
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      curl_slist_free_all(headers);
      return Error::invalid(what + ": header '" + (is_secret_header(name) ? "<secret>" : name) +
                            "' contains a line break or colon");
    }
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  headers = curl_slist_append(headers, "Expect:");

  StreamState state;
  state.handler = &on_chunk;
  state.easy = h;
  state.last_data = std::chrono::steady_clock::now();
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  if (request.direct) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "elasticproxy");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_stream_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &state);
  // A fresh connection per stream: a stream is long-lived and ends abnormally often.
  curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
  if (!request.unix_socket_path.empty())
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket_path.c_str());
  if (!request.tls.ca_file.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, request.tls.ca_file.c_str());
  if (!request.tls.cert_file.empty())
    curl_easy_setopt(h, CURLOPT_SSLCERT, request.tls.cert_file.c_str());
  if (!request.tls.key_file.empty())
    curl_easy_setopt(h, CURLOPT_SSLKEY, request.tls.key_file.c_str());
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, request.tls.verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, request.tls.verify ? 2L : 0L);
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
  }

  CURLM* m = impl_->multi;
  if (curl_multi_add_handle(m, h) != CURLM_OK) {
    curl_slist_free_all(headers);
    return Error::internal(what + ": curl_multi_add_handle failed");
  }
  CURLcode result = CURLE_OK;
  bool done = false, cancelled = false, idle = false;
  while (!done) {
    int running = 0;
    if (curl_multi_perform(m, &running) != CURLM_OK) break;
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
    if (idle_timeout.count() > 0 &&
        std::chrono::steady_clock::now() - state.last_data > idle_timeout) {
      idle = true;
      break;
    }
    curl_multi_poll(m, nullptr, 0, 200, nullptr);
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(m, h);
  curl_slist_free_all(headers);

  if (cancelled) return Error::unavailable(what + ": cancelled");
  if (idle) {
    return Error::unavailable(
        fmt::format("{}: no data for {}ms (stream idle timeout)", what, idle_timeout.count()));
  }
  if (state.stopped_by_handler) return status;
  if (!done) return Error::internal(what + ": curl_multi_perform failed");
  if (result != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(result);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    return Error::unavailable(
        fmt::format("{}: {} (curl error {})", what, detail, static_cast<int>(result)));
  }
  return status;
}

}  // namespace ep::net
