#include "net/curl_http_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <atomic>
#include <mutex>

namespace ep::net {
namespace {

struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse response;
  std::size_t max_body = 0;
  bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (t->response.body.size() + n > t->max_body) {
    t->too_large = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    // A new response starts (e.g. after "100 Continue"): only the last one's headers count.
    t->response.headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  t->response.headers.add(std::string(trim(line.substr(0, colon))),
                          std::string(trim(line.substr(colon + 1))));
  return n;
}

}  // namespace

struct CurlHttpClient::Impl {
  Options options;
  CurlEasy easy;
  CurlMulti multi;
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
  const std::string what = fmt::format("{} {}", request.method, redact_url(request.url));
  if (!impl_->easy || !impl_->multi) return Error::internal(what + ": cannot create a curl handle");
  if (impl_->cancelled) return Error::unavailable(what + ": cancelled");
  if (request.url.empty()) return Error::invalid("HTTP request without a URL");

  CURL* h = impl_->easy.get();
  // Reset options from the previous request; live connections survive curl_easy_reset.
  curl_easy_reset(h);
  Transfer transfer;
  transfer.max_body = impl_->options.max_body_bytes;
  char errbuf[CURL_ERROR_SIZE] = {0};

  CurlSlist headers;
  bool has_expect = false;
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      // Never echo the value: it may be a credential.
      return Error::invalid(what + ": header '" + (is_secret_header(name) ? "<secret>" : name) +
                            "' contains a line break or colon");
    }
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    if (name == "Expect") has_expect = true;
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr) return Error::internal(what + ": out of memory");
    headers.release();
    headers.reset(next);
  }
  if (!has_expect) {
    // No "Expect: 100-continue" round trip for request bodies.
    curl_slist* next = curl_slist_append(headers.get(), "Expect:");
    if (next != nullptr) {
      headers.release();
      headers.reset(next);
    }
  }

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, impl_->options.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(impl_->options.max_body_bytes));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  if (!request.unix_socket_path.empty()) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket_path.c_str());
  }
  if (request.direct) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  if (!request.tls.ca_file.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, request.tls.ca_file.c_str());
  if (!request.tls.cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, request.tls.cert_file.c_str());
  }
  if (!request.tls.key_file.empty())
    curl_easy_setopt(h, CURLOPT_SSLKEY, request.tls.key_file.c_str());
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, request.tls.verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, request.tls.verify ? 2L : 0L);

  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
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
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  // Leaving the multi handle puts a finished connection into its cache for reuse (an aborted one
  // is closed).
  curl_multi_remove_handle(m, h);

  if (cancelled) return Error::unavailable(what + ": cancelled");
  if (transfer.too_large || result == CURLE_FILESIZE_EXCEEDED) {
    return Error::invalid(
        fmt::format("{}: response body exceeds {} bytes", what, impl_->options.max_body_bytes));
  }
  if (result != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(result);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    if (result == CURLE_URL_MALFORMAT || result == CURLE_UNSUPPORTED_PROTOCOL) {
      return Error::invalid(
          fmt::format("{}: {} (curl error {})", what, detail, static_cast<int>(result)));
    }
    return Error::unavailable(
        fmt::format("{}: {} (curl error {})", what, detail, static_cast<int>(result)));
  }
  transfer.response.status = status;
  return std::move(transfer.response);
}

}  // namespace ep::net
