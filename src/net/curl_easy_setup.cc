#include "net/curl_easy_setup.h"
#include "os/strings.h"

#include <fmt/format.h>

#include <mutex>

namespace ep::net::curl {
namespace {

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (t->on_activity) t->on_activity();
  if (t->on_chunk) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!t->on_chunk(status, std::string_view(data, n))) {
      t->stopped = true;
      return 0;  // ends the transfer (CURLE_WRITE_ERROR, reported as the status)
    }
    return n;
  }
  if (t->response.body.size() + n > t->max_body) {
    t->too_large = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

using os::trim;

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (t->on_activity) t->on_activity();
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

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string describe(const HttpRequest& request) {
  return fmt::format("{} {}", request.method, redact_url(request.url));
}

Status configure(const HttpRequest& request, const std::string& user_agent, Transfer& t,
                 Slist& headers) {
  CURL* h = t.easy;
  const std::string what = describe(request);
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
  if (request.direct) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t.errbuf);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  if (!t.on_chunk) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t.max_body));
  }
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  // curl's smallest receive buffer (1 KiB) instead of its 16 KiB: a request in flight holds one,
  // and a daemon watching 1,000 Consul services keeps 500 blocking queries open (7.5 MiB saved;
  // 4 KiB saved 6). Replies are read in more, smaller chunks: a 1 MB list is ~1,000 reads of a
  // socket that already holds the data, well under a millisecond.
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1024L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  if (!request.unix_socket_path.empty()) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket_path.c_str());
  }
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
  return {};
}

Result<HttpResponse> finish(const std::string& what, CURLcode result, Transfer& t) {
  long status = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  if (t.too_large || result == CURLE_FILESIZE_EXCEEDED) {
    return Error::invalid(fmt::format("{}: response body exceeds {} bytes", what, t.max_body));
  }
  if (result != CURLE_OK && !t.stopped) {
    std::string detail = t.errbuf[0] != '\0' ? std::string(t.errbuf) : curl_easy_strerror(result);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    if (result == CURLE_URL_MALFORMAT || result == CURLE_UNSUPPORTED_PROTOCOL) {
      return Error::invalid(
          fmt::format("{}: {} (curl error {})", what, detail, static_cast<int>(result)));
    }
    return Error::unavailable(
        fmt::format("{}: {} (curl error {})", what, detail, static_cast<int>(result)));
  }
  t.response.status = status;
  return std::move(t.response);
}

}  // namespace ep::net::curl
