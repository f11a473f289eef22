#pragma once
// Internal to ep_http (includes curl): how one request is put on a curl easy handle and how its
// outcome becomes a Result, shared by the blocking client and the loop-driven AsyncHttpClient.

#include <curl/curl.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "net/http_client.h"

namespace ep::net::curl {

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct MultiDeleter {
  void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Multi = std::unique_ptr<CURLM, MultiDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

void global_init();

// What curl writes into while a transfer runs. With `on_chunk` set the body is streamed to it
// (status, piece) instead of buffered; returning false ends the transfer (`stopped`).
struct Transfer {
  CURL* easy = nullptr;
  HttpResponse response;
  std::size_t max_body = 0;  // buffered bodies only
  bool too_large = false;
  bool stopped = false;
  std::function<bool(long, std::string_view)> on_chunk;
  std::function<void()> on_activity;  // any header or body byte arrived
  char errbuf[CURL_ERROR_SIZE] = {0};
};

// "GET http://host/path" with secrets redacted: for errors.
std::string describe(const HttpRequest& request);

// Sets every option of `request` on t.easy (after curl_easy_reset); `headers` keeps the header
// list alive for the transfer. Errors: kInvalid for a header with a line break.
Status configure(const HttpRequest& request, const std::string& user_agent, Transfer& t,
                 Slist& headers);

// The outcome of a finished transfer (curl's result code) as the HttpClient contract says.
Result<HttpResponse> finish(const std::string& what, CURLcode result, Transfer& t);

}  // namespace ep::net::curl
