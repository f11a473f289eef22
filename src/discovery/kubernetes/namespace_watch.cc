#include "discovery/kubernetes/namespace_watch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "core/log.h"
#include "os/strings.h"

namespace ep::discovery::kubernetes {
namespace {

constexpr const char* kComponent = "source.kubernetes";
constexpr std::size_t kMaxLine = 64u << 20;

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::weak_ptr<NamespaceWatch>>& registry() {
  static std::map<std::string, std::weak_ptr<NamespaceWatch>> watches;
  return watches;
}
std::map<std::string, std::weak_ptr<ClusterAuth>>& auth_registry() {
  static std::map<std::string, std::weak_ptr<ClusterAuth>> auths;
  return auths;
}

}  // namespace

runtime::Loop& NamespaceWatch::loop_for(const ClusterAccess& access, runtime::Runtime& runtime) {
  return runtime.loop(std::hash<std::string>{}(access.key()) % runtime.loop_count());
}

std::shared_ptr<NamespaceWatch> NamespaceWatch::acquire(const ClusterAccess& access,
                                                        const std::string& ns,
                                                        const Options& options,
                                                        runtime::Runtime& runtime, Metrics& metrics,
                                                        Resource resource) {
  const std::string key = fmt::format("{}|{}|{}|{}", access.key(), resource_name(resource), ns,
                                      static_cast<const void*>(&runtime));
  std::lock_guard lock(registry_mutex());
  for (auto it = registry().begin(); it != registry().end();)
    it = it->second.expired() ? registry().erase(it) : std::next(it);
  auto& slot = registry()[key];
  if (auto existing = slot.lock()) return existing;
  for (auto it = auth_registry().begin(); it != auth_registry().end();)
    it = it->second.expired() ? auth_registry().erase(it) : std::next(it);
  auto& auth_slot =
      auth_registry()[fmt::format("{}|{}", access.key(), static_cast<const void*>(&runtime))];
  auto auth = auth_slot.lock();
  if (!auth) {
    auth = std::make_shared<ClusterAuth>(access);
    auth_slot = auth;
  }
  auto created = std::make_shared<NamespaceWatch>(std::move(auth), ns, options,
                                                  loop_for(access, runtime), metrics, resource);
  slot = created;
  return created;
}

NamespaceWatch::NamespaceWatch(std::shared_ptr<ClusterAuth> auth, std::string ns,
                               const Options& options, runtime::Loop& loop, Metrics& metrics,
                               Resource resource)
    : auth_(std::move(auth)),
      credentials_(auth_->credentials),
      ns_(std::move(ns)),
      resource_(resource),
      options_(options),
      loop_(loop),
      stats_(metrics),
      backoff_({.initial = options.retry_interval,
                .max = options.max_retry_interval,
                .multiplier = 2.0,
                .jitter = 0.2}) {
  loop_.run_sync([this] {
    http_ = std::make_unique<net::AsyncHttpClient>(
        loop_, net::AsyncHttpClient::Options{.max_body_bytes = options_.max_response_bytes});
  });
}

NamespaceWatch::~NamespaceWatch() {
  loop_.run_sync([this] {
    if (timer_ != 0) loop_.cancel(timer_);
    timer_ = 0;
    if (restart_timer_ != 0) loop_.cancel(restart_timer_);
    restart_timer_ = 0;
    auth_->waiting.erase(this);
    auth_.reset();  // the last watch of the cluster: kills and reaps an exec plugin still running
    http_.reset();  // aborts the list or watch in flight without callbacks
  });
}

std::uint64_t NamespaceWatch::connections_opened() const {
  std::uint64_t n = 0;
  const_cast<runtime::Loop&>(loop_).run_sync([&] { n = http_ ? http_->connections_opened() : 0; });
  return n;
}

void NamespaceWatch::subscribe(Subscriber* s) {
  loop_.run_sync([this, s] {
    subs_.push_back(s);
    // Already selected (Services, Nodes: every object is; once the first subscriber started the
    // list): delivered now, or by the listing in progress when it completes.
    if (selected_.count(s->key()) > 0 ||
        (!selective() && (have_listing_ || request_ != 0 || timer_ != 0 || restart_timer_ != 0))) {
      if (have_listing_) deliver({s->key()});
      return;
    }
    // A new service: the selector changes. One re-list for a burst of subscriptions: it waits
    // until subscriptions settle for 50 ms (at most 1 s after the first).
    const auto now = std::chrono::steady_clock::now();
    if (!restart_since_) restart_since_ = now;
    if (restart_timer_ != 0) loop_.cancel(restart_timer_);
    const auto delay = std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), std::max<std::chrono::steady_clock::duration>(
                                           std::chrono::steady_clock::duration::zero(),
                                           *restart_since_ + std::chrono::seconds(1) - now));
    restart_timer_ =
        loop_.after(std::chrono::duration_cast<std::chrono::milliseconds>(delay), [this] {
          restart_timer_ = 0;
          restart_since_.reset();
          restart();
        });
  });
}

void NamespaceWatch::unsubscribe(Subscriber* s) {
  loop_.run_sync([this, s] {
    subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
    if (subs_.empty()) {
      if (request_ != 0) http_->cancel(request_);
      request_ = 0;
      if (timer_ != 0) loop_.cancel(timer_);
      timer_ = 0;
      auth_->waiting.erase(this);
      selected_.clear();
      have_listing_ = false;
    }
  });
}

std::string NamespaceWatch::where() const {
  if (resource_ == Resource::kEndpointSlices)
    return fmt::format("kubernetes {} namespace {}", server(), ns_);
  if (resource_ == Resource::kNodes) return fmt::format("kubernetes {} nodes", server());
  return fmt::format("kubernetes {} namespace {} {}", server(), ns_, resource_name(resource_));
}

std::string NamespaceWatch::selector() const {
  if (selected_.size() == 1) return "kubernetes.io/service-name=" + *selected_.begin();
  return fmt::format("kubernetes.io/service-name in ({})", fmt::join(selected_, ","));
}

std::string NamespaceWatch::base_path() const {
  switch (resource_) {
    case Resource::kEndpointSlices:
      return "/apis/discovery.k8s.io/v1/namespaces/" + ns_ +
             "/endpointslices?labelSelector=" + net::url_encode(selector());
    case Resource::kServices:
      return "/api/v1/namespaces/" + ns_ + "/services?";
    case Resource::kNodes:
      break;
  }
  return "/api/v1/nodes?";
}

Result<net::HttpRequest> NamespaceWatch::request(const std::string& path,
                                                 std::chrono::milliseconds timeout) {
  net::HttpRequest req;
  req.url = server() + path;
  req.timeout = timeout;
  req.connect_timeout = std::min(options_.connect_timeout, timeout);
  req.headers.emplace_back("Accept", "application/json");
  Status s = credentials_.apply(req, options_.timeout, /*run_exec=*/false);
  if (!s) return s.error();
  return req;
}

bool NamespaceWatch::authenticate(std::function<void()> retry) {
  if (exec_fresh_ || !credentials_.exec_needed()) {
    exec_fresh_ = false;
    return true;
  }
  ClusterAuth& auth = *auth_;
  auth.waiting[this] = std::move(retry);
  if (auth.exec) return false;  // one run in flight for the cluster: it calls us back
  os::ProcessOptions po;
  po.timeout = options_.timeout;
  po.merge_stderr = false;
  po.max_output = 1u << 20;
  // Every watch of the cluster is on this loop: the callback calls each waiting one.
  auto finished = [&auth](const Status& s) {
    auto waiting = std::move(auth.waiting);
    auth.waiting.clear();
    for (auto& [who, then] : waiting) {
      auto* w = static_cast<NamespaceWatch*>(const_cast<void*>(who));
      if (!s) {
        w->fail(s.error(), "credentials");
      } else {
        w->exec_fresh_ = true;
        then();
      }
    }
  };
  auto p = runtime::AsyncProcess::start(loop_, credentials_.exec_argv(), po,
                                        [&auth, finished](Result<os::ProcessResult> run) {
                                          Status s = auth.credentials.exec_finished(run);
                                          auth.exec.reset();  // safe: AsyncProcess calls this last
                                          finished(s);
                                        });
  if (!p) {
    Status s = credentials_.exec_finished(p.error());
    finished(s.ok() ? Status(p.error()) : s);
    return false;
  }
  auth.exec = std::move(*p);
  return false;
}

Error NamespaceWatch::http_error(const net::HttpResponse& resp, const std::string& verb,
                                 const std::string& resource, const std::string& group,
                                 bool namespaced) {
  auto status = parse_status(resp.body);
  const std::string said = status && !status->message.empty()
                               ? os::printable(status->message, 300)
                               : os::printable(std::string(os::trim(resp.body)), 200);
  if (resp.status == 401) {
    credentials_.rejected();
    return Error::refused(fmt::format(
        "HTTP 401 Unauthorized from {}: the credentials of {} were refused (expired or revoked "
        "token, wrong client certificate?): {}",
        server(), credentials_.access().origin, said));
  }
  if (resp.status == 403) {
    return Error::refused(fmt::format(
        "HTTP 403 Forbidden from {}: {}; the identity needs \"{}\" on \"{}\" (API group \"{}\"){} "
        "— see the RBAC section of docs/kubernetes.md",
        server(), said, verb, resource, group.empty() ? "core" : group,
        namespaced ? " in namespace \"" + ns_ + "\"" : " (cluster-scoped: a ClusterRole)"));
  }
  return Error::unavailable(
      fmt::format("HTTP {} from {} ({} {}): {}", resp.status, server(), verb, resource, said));
}

void NamespaceWatch::restart() {
  if (request_ != 0) http_->cancel(request_);
  request_ = 0;
  if (timer_ != 0) loop_.cancel(timer_);
  timer_ = 0;
  selected_.clear();
  for (Subscriber* s : subs_) selected_.insert(s->key());
  have_listing_ = false;
  if (selected_.empty()) return;
  listing_.clear();
  list_page("");
}

void NamespaceWatch::list_page(const std::string& cont) {
  if (!authenticate([this, cont] { list_page(cont); })) return;
  std::string path = base_path();
  auto add = [&](const std::string& param) {
    if (path.back() != '?') path += '&';
    path += param;
  };
  if (options_.page_size > 0) add("limit=" + std::to_string(options_.page_size));
  if (!cont.empty()) add("continue=" + net::url_encode(cont));
  auto req = request(path, options_.timeout);
  if (!req) return fail(req.error(), "credentials");
  request_ = http_->start(*req, [this, cont](Result<net::HttpResponse> resp) {
    request_ = 0;
    if (!resp) return fail(resp.error(), "unavailable");
    if (resp->status == 410 && !cont.empty()) {
      // The continue token expired (the listing took longer than the server keeps it).
      log::info(kComponent, "{}: list continue token expired; listing again from the start",
                where());
      stats_.errors_total.inc({ns_, resource_name(resource_), "gone"});
      listing_.clear();
      return list_page("");
    }
    if (resp->status != 200) {
      Error e = http_error(*resp, "list", resource_name(resource_), resource_group(resource_),
                           resource_ != Resource::kNodes);
      if (resp->status == 429) {
        // Throttled (API priority and fairness): wait at least what Retry-After asks.
        long seconds = 1;
        if (auto ra = resp->headers.get("Retry-After")) {
          char* end = nullptr;
          const long v = std::strtol(ra->c_str(), &end, 10);
          if (end != ra->c_str() && v > 0) seconds = std::min(v, 600L);
        }
        retry_after_ = std::chrono::seconds(seconds);
      }
      return fail(e, resp->status == 401   ? "unauthorized"
                     : resp->status == 403 ? "forbidden"
                     : resp->status == 429 ? "throttled"
                                           : "server");
    }
    auto page = parse_list(resource_, resp->body);
    if (!page) return fail(page.error(), "invalid");
    if (cont.empty()) list_rv_ = page->resource_version;
    for (Object& o : page->items) {
      std::string name = o.name;
      listing_[name] = std::move(o);
    }
    if (!page->continue_token.empty()) return list_page(page->continue_token);
    listed();
  });
}

void NamespaceWatch::listed() {
  ++lists_;
  stats_.lists_total.inc({ns_, resource_name(resource_)});
  objects_ = std::move(listing_);
  listing_.clear();
  rv_ = list_rv_;
  have_listing_ = true;
  log::debug(kComponent, "{}: listed {} {} at resourceVersion {}", where(), objects_.size(),
             resource_name(resource_), rv_);
  std::set<std::string> keys = selected_;
  for (Subscriber* s : subs_) keys.insert(s->key());  // Services: those who came meanwhile
  deliver(keys);
  watch("listed");
}

void NamespaceWatch::watch(const char* why) {
  if (!authenticate([this, why] { watch(why); })) return;
  const long timeout_s = std::max<long>(
      1, std::chrono::duration_cast<std::chrono::seconds>(options_.watch_timeout).count());
  std::string path = base_path();
  if (path.back() != '?') path += '&';
  path += "watch=true&allowWatchBookmarks=true&resourceVersion=" + net::url_encode(rv_) +
          "&timeoutSeconds=" + std::to_string(timeout_s);
  auto req = request(path, options_.watch_timeout + options_.idle_timeout);
  if (!req) return fail(req.error(), "credentials");
  line_.clear();
  error_body_.clear();
  stream_error_.reset();
  gone_ = false;
  got_data_ = false;
  watch_started_ = std::chrono::steady_clock::now();
  ++watches_;
  stats_.watches_total.inc({ns_, resource_name(resource_), why});
  request_ = http_->start_stream(
      *req, options_.idle_timeout,
      [this](long status, std::string_view chunk) { return on_chunk(status, chunk); },
      [this](Result<net::HttpResponse> end) {
        request_ = 0;
        watch_ended(std::move(end));
      });
}

bool NamespaceWatch::on_chunk(long status, std::string_view chunk) {
  if (status != 200) {
    if (error_body_.size() < 65536) error_body_.append(chunk.substr(0, 65536));
    return true;
  }
  if (!got_data_) backoff_.reset();
  got_data_ = true;
  line_.append(chunk);
  std::set<std::string> changed;
  size_t start = 0;
  for (size_t nl; (nl = line_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view text(line_.data() + start, nl - start);
    if (os::trim(text).empty()) continue;
    auto ev = parse_event(resource_, text);
    if (!ev) {
      stream_error_ = ev.error();
      break;
    }
    const char* rn = resource_name(resource_);
    switch (ev->type) {
      case WatchEvent::Type::kError:
        stats_.events_total.inc({ns_, rn, "ERROR"});
        if (ev->status.code == 410 || ev->status.reason == "Expired" ||
            ev->status.reason == "Gone") {
          gone_ = true;
        } else {
          stream_error_ = Error::unavailable(fmt::format("watch ERROR event: {} {}: {}",
                                                         ev->status.code, ev->status.reason,
                                                         os::printable(ev->status.message, 300)));
        }
        break;
      case WatchEvent::Type::kBookmark:
        stats_.events_total.inc({ns_, rn, "BOOKMARK"});
        rv_ = ev->object.resource_version;
        break;
      case WatchEvent::Type::kDeleted: {
        stats_.events_total.inc({ns_, rn, "DELETED"});
        auto it = objects_.find(ev->object.name);
        if (it != objects_.end()) {
          changed.insert(it->second.key);
          objects_.erase(it);
        }
        changed.insert(ev->object.key);
        rv_ = ev->object.resource_version;
        break;
      }
      case WatchEvent::Type::kAdded:
      case WatchEvent::Type::kModified: {
        stats_.events_total.inc(
            {ns_, rn, ev->type == WatchEvent::Type::kAdded ? "ADDED" : "MODIFIED"});
        auto it = objects_.find(ev->object.name);
        if (it != objects_.end()) changed.insert(it->second.key);  // a relabelled slice
        changed.insert(ev->object.key);
        rv_ = ev->object.resource_version;
        std::string name = ev->object.name;
        objects_[name] = std::move(ev->object);
        break;
      }
    }
    if (gone_ || stream_error_) break;
  }
  if (gone_ || stream_error_) {
    line_.clear();
  } else {
    line_.erase(0, start);
    if (line_.size() > kMaxLine || line_.size() > options_.max_response_bytes) {
      stream_error_ = Error::invalid(fmt::format(
          "a watch event larger than max_response_size ({} bytes)", options_.max_response_bytes));
    }
  }
  if (!changed.empty()) deliver(changed);
  return !(gone_ || stream_error_);
}

void NamespaceWatch::watch_ended(Result<net::HttpResponse> end) {
  const std::string where = this->where();
  if (gone_ || (end && end->status == 410)) {
    // Too old a resourceVersion (compaction): list again; only the complete listing is delivered.
    log::info(kComponent, "{}: resourceVersion {} is too old (410 Gone); re-listing", where, rv_);
    stats_.errors_total.inc({ns_, resource_name(resource_), "gone"});
    listing_.clear();
    return list_page("");
  }
  if (stream_error_) return fail(*stream_error_, "invalid");
  if (!end) {
    const bool hung = end.error().message.find("no data for") != std::string::npos;
    if (hung) {
      log::warn(kComponent, "{}: the watch was silent for {} ms (hung?); re-listing", where,
                options_.idle_timeout.count());
      stats_.errors_total.inc({ns_, resource_name(resource_), "hung"});
      listing_.clear();
      return list_page("");
    }
    if (got_data_) {
      log::info(kComponent, "{}: watch interrupted ({}); re-listing", where, end.error().message);
      listing_.clear();
      return list_page("");
    }
    return fail(end.error(), "unavailable");
  }
  if (end->status != 200) {
    net::HttpResponse r = *end;
    r.body = error_body_;
    Error e = http_error(r, "watch", resource_name(resource_), resource_group(resource_),
                         resource_ != Resource::kNodes);
    return fail(e, end->status == 401   ? "unauthorized"
                   : end->status == 403 ? "forbidden"
                                        : "server");
  }
  // The server closed the watch (timeoutSeconds): resume from the last resourceVersion. A watch
  // closed at once without a byte (a proxy in the way?) is resumed after a backoff delay, not in
  // a tight loop.
  log::debug(kComponent, "{}: watch closed by the server; resuming at resourceVersion {}", where,
             rv_);
  if (!got_data_ && std::chrono::steady_clock::now() - watch_started_ < std::chrono::seconds(1)) {
    if (timer_ != 0) loop_.cancel(timer_);
    timer_ = loop_.after(backoff_.next(), [this] {
      timer_ = 0;
      watch("resumed");
    });
    return;
  }
  watch("resumed");
}

void NamespaceWatch::fail(const Error& e, const char* reason) {
  stats_.errors_total.inc({ns_, resource_name(resource_), reason});
  Error out{e.kind, fmt::format("{}: {}", where(), e.message)};
  log::debug(kComponent, "{}", out.message);
  for (Subscriber* s : std::vector<Subscriber*>(subs_)) s->on_error(out);
  retry_later();
}

void NamespaceWatch::retry_later() {
  if (timer_ != 0) loop_.cancel(timer_);
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(backoff_.next());
  if (retry_after_) delay = std::max(delay, *retry_after_);
  retry_after_.reset();
  timer_ = loop_.after(delay, [this] {
    timer_ = 0;
    restart();
  });
}

void NamespaceWatch::deliver(const std::set<std::string>& keys) {
  for (Subscriber* sub : std::vector<Subscriber*>(subs_)) {
    if (!sub->key().empty() && keys.count(sub->key()) == 0) continue;
    std::vector<const Object*> mine;
    for (const auto& [name, object] : objects_)
      if (sub->key().empty() || object.key == sub->key()) mine.push_back(&object);
    sub->on_objects(mine);
  }
}

}  // namespace ep::discovery::kubernetes
