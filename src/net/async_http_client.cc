#include "net/async_http_client.h"

#include <fmt/format.h>
#include <sys/epoll.h>

#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "net/curl_easy_setup.h"

namespace ep::net {
namespace {

struct Request {
  AsyncHttpClient::RequestId id = 0;
  curl::Easy easy;
  curl::Slist headers;
  HttpRequest request;  // kept: curl points into its body
  curl::Transfer transfer;
  std::string what;
  AsyncHttpClient::DoneCallback on_done;
  std::chrono::milliseconds idle{0};
  runtime::TimerId idle_timer = 0;
  SteadyTime last_activity{};
};

}  // namespace

struct AsyncHttpClient::Impl {
  Impl(runtime::Loop& l, Options o) : loop(l), options(std::move(o)) {}

  runtime::Loop& loop;
  Options options;
  curl::Multi multi;
  std::map<RequestId, std::unique_ptr<Request>> requests;
  std::unordered_map<curl_socket_t, runtime::WatchId> sockets;
  runtime::TimerId timer = 0;
  RequestId next_id = 1;
  std::uint64_t connections = 0;

  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    static_cast<Impl*>(userp)->socket_changed(s, what);
    return 0;
  }
  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    static_cast<Impl*>(userp)->timer_changed(timeout_ms);
    return 0;
  }

  void socket_changed(curl_socket_t s, int what) {
    auto it = sockets.find(s);
    if (what == CURL_POLL_REMOVE) {
      if (it != sockets.end()) {
        loop.unwatch_fd(it->second);
        sockets.erase(it);
      }
      return;
    }
    const std::uint32_t events =
        ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (it != sockets.end()) {
      (void)loop.modify_fd(it->second, events);
      return;
    }
    auto id = loop.watch_fd(s, events, [this, s](std::uint32_t ev) {
      const int flags = ((ev & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((ev & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((ev & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
      action(s, flags);
    });
    if (id) sockets.emplace(s, *id);
  }

  void timer_changed(long timeout_ms) {
    if (timer != 0) loop.cancel(timer);
    timer = 0;
    if (timeout_ms < 0) return;
    timer = loop.after(std::chrono::milliseconds(timeout_ms), [this] {
      timer = 0;
      action(CURL_SOCKET_TIMEOUT, 0);
    });
  }

  // Never called from inside libcurl: finished requests are reported from here.
  void action(curl_socket_t s, int flags) {
    int running = 0;
    curl_multi_socket_action(multi.get(), s, flags, &running);
    std::vector<std::pair<std::unique_ptr<Request>, CURLcode>> done;
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      char* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      const auto id = static_cast<RequestId>(reinterpret_cast<std::uintptr_t>(priv));
      auto it = requests.find(id);
      if (it == requests.end()) continue;
      done.emplace_back(std::move(it->second), msg->data.result);
      requests.erase(it);
    }
    for (auto& [req, code] : done) {
      Result<HttpResponse> result = curl::finish(req->what, code, req->transfer);
      release(*req);
      req->on_done(std::move(result));
    }
  }

  // Takes the request off the multi handle (its connection stays cached for reuse when it
  // finished cleanly) and cancels its idle timer.
  void release(Request& req) {
    long opened = 0;
    curl_easy_getinfo(req.easy.get(), CURLINFO_NUM_CONNECTS, &opened);
    connections += static_cast<std::uint64_t>(opened > 0 ? opened : 0);
    curl_multi_remove_handle(multi.get(), req.easy.get());
    if (req.idle_timer != 0) loop.cancel(req.idle_timer);
    req.idle_timer = 0;
  }

  void arm_idle(Request& req, std::chrono::milliseconds in) {
    const RequestId id = req.id;
    req.idle_timer = loop.after(in, [this, id] { on_idle(id); });
  }

  void on_idle(RequestId id) {
    auto it = requests.find(id);
    if (it == requests.end()) return;
    Request& req = *it->second;
    req.idle_timer = 0;
    const auto silent = loop.clock().now() - req.last_activity;
    if (silent < req.idle) {
      arm_idle(req, std::chrono::duration_cast<std::chrono::milliseconds>(req.idle - silent));
      return;
    }
    std::unique_ptr<Request> owned = std::move(it->second);
    requests.erase(it);
    release(*owned);
    owned->on_done(Error::unavailable(fmt::format("{}: no data for {}ms (stream idle timeout)",
                                                  owned->what, owned->idle.count())));
  }
};

AsyncHttpClient::AsyncHttpClient(runtime::Loop& loop) : AsyncHttpClient(loop, Options{}) {}

AsyncHttpClient::AsyncHttpClient(runtime::Loop& loop, Options options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {
  curl::global_init();
  impl_->multi.reset(curl_multi_init());
  CURLM* m = impl_->multi.get();
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, impl_.get());
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, impl_.get());
}

AsyncHttpClient::~AsyncHttpClient() {
  for (auto& [id, req] : impl_->requests)
    curl_multi_remove_handle(impl_->multi.get(), req->easy.get());
  for (auto& [id, req] : impl_->requests) {
    if (req->idle_timer != 0) impl_->loop.cancel(req->idle_timer);
  }
  impl_->requests.clear();
  impl_->multi.reset();  // closes cached connections (their sockets are reported removed)
  for (const auto& [s, id] : impl_->sockets) impl_->loop.unwatch_fd(id);
  impl_->sockets.clear();
  if (impl_->timer != 0) impl_->loop.cancel(impl_->timer);
}

AsyncHttpClient::RequestId AsyncHttpClient::start(const HttpRequest& request,
                                                  DoneCallback on_done) {
  return start_stream(request, std::chrono::milliseconds(0), nullptr, std::move(on_done));
}

AsyncHttpClient::RequestId AsyncHttpClient::start_stream(const HttpRequest& request,
                                                         std::chrono::milliseconds idle_timeout,
                                                         ChunkHandler on_chunk,
                                                         DoneCallback on_done) {
  Impl& im = *impl_;
  auto req = std::make_unique<Request>();
  req->id = im.next_id++;
  req->request = request;
  req->what = curl::describe(request);
  req->on_done = std::move(on_done);
  req->easy.reset(curl_easy_init());
  const RequestId id = req->id;
  // Failures before the transfer starts are still reported later, from the loop.
  auto fail_later = [&](Error e) {
    auto cb = std::move(req->on_done);
    im.loop.post([cb = std::move(cb), e = std::move(e)]() mutable { cb(std::move(e)); });
    return id;
  };
  if (!req->easy) return fail_later(Error::internal(req->what + ": cannot create a curl handle"));
  if (request.url.empty()) return fail_later(Error::invalid("HTTP request without a URL"));
  req->transfer.easy = req->easy.get();
  req->transfer.max_body = im.options.max_body_bytes;
  req->transfer.on_chunk = std::move(on_chunk);
  if (Status st = curl::configure(req->request, im.options.user_agent, req->transfer, req->headers);
      !st) {
    return fail_later(st.error());
  }
  curl_easy_setopt(req->easy.get(), CURLOPT_PRIVATE,
                   reinterpret_cast<char*>(static_cast<std::uintptr_t>(id)));
  req->idle = idle_timeout;
  req->last_activity = im.loop.clock().now();
  if (idle_timeout.count() > 0) {
    Request* raw = req.get();
    req->transfer.on_activity = [&im, raw] { raw->last_activity = im.loop.clock().now(); };
    im.arm_idle(*req, idle_timeout);
  }
  if (curl_multi_add_handle(im.multi.get(), req->easy.get()) != CURLM_OK) {
    if (req->idle_timer != 0) im.loop.cancel(req->idle_timer);
    return fail_later(Error::internal(req->what + ": curl_multi_add_handle failed"));
  }
  im.requests.emplace(id, std::move(req));
  return id;
}

bool AsyncHttpClient::cancel(RequestId id) {
  auto it = impl_->requests.find(id);
  if (it == impl_->requests.end()) return false;
  std::unique_ptr<Request> owned = std::move(it->second);
  impl_->requests.erase(it);
  impl_->release(*owned);
  return true;
}

size_t AsyncHttpClient::in_flight() const { return impl_->requests.size(); }

std::uint64_t AsyncHttpClient::connections_opened() const { return impl_->connections; }

}  // namespace ep::net
