#include "discovery/consul/consul_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <utility>

#include "core/log.h"
#include "core/metrics.h"
#include "discovery/consul/parse.h"
#include "net/async_http_client.h"
#include "net/curl_http_client.h"

namespace ep::discovery::consul {
namespace {

// One AsyncHttpClient per loop (and reply size limit) for every `watch: service` source on it. A
// curl multi costs about 60 KiB (socket hash, connection cache and its closure handle, a wake-up
// socketpair): one per source was ~60 MiB of RSS and 2,000 fds at 1,000 services. Called on
// `loop`'s thread; the client is destroyed with its last source, on that thread (stop() drops it
// in run_sync).
std::shared_ptr<net::AsyncHttpClient> shared_client(runtime::Loop& loop,
                                                    const net::AsyncHttpClient::Options& options) {
  static std::mutex mu;
  static std::map<std::pair<runtime::Loop*, std::size_t>, std::weak_ptr<net::AsyncHttpClient>>
      clients;
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = clients.begin(); it != clients.end();) {
    it = it->second.expired() ? clients.erase(it) : std::next(it);
  }
  std::weak_ptr<net::AsyncHttpClient>& slot = clients[{&loop, options.max_body_bytes}];
  if (auto client = slot.lock()) return client;
  auto client = std::make_shared<net::AsyncHttpClient>(loop, options);
  slot = client;
  return client;
}

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kComponent = "consul";

std::string snippet(std::string_view body) {
  std::string s(body.substr(0, 200));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::optional<std::uint64_t> parse_index(const std::optional<std::string>& v) {
  if (!v || v->empty() || v->size() > 20) return std::nullopt;
  std::uint64_t out = 0;
  for (char c : *v) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t next = out * 10 + static_cast<std::uint64_t>(c - '0');
    if (next / 10 != out) return std::nullopt;  // overflow
    out = next;
  }
  return out;
}

std::mt19937_64& rng() {
  static thread_local std::mt19937_64 r{std::random_device{}()};
  return r;
}

milliseconds random_upto(milliseconds max) {
  if (max.count() <= 0) return milliseconds(0);
  return milliseconds(std::uniform_int_distribution<long long>(0, max.count())(rng()));
}

}  // namespace

HttpClientFactory curl_client_factory(std::size_t max_body_bytes) {
  return [max_body_bytes] {
    net::CurlHttpClient::Options o;
    o.max_body_bytes = max_body_bytes;
    return std::make_unique<net::CurlHttpClient>(o);
  };
}

std::string health_url(const Options& o, std::uint64_t index) {
  return health_url(o, index, o.wait);
}

std::string health_url(const Options& o, std::uint64_t index, milliseconds wait) {
  std::string url = o.base_url + "/v1/health/service/" + net::url_encode(o.service);
  std::vector<std::string> q;
  if (o.parse.health == HealthPolicy::kPassing) q.push_back("passing=1");
  for (const auto& t : o.parse.tags) q.push_back("tag=" + net::url_encode(t));
  if (!o.datacenter.empty()) q.push_back("dc=" + net::url_encode(o.datacenter));
  if (!o.ns.empty()) q.push_back("ns=" + net::url_encode(o.ns));
  if (!o.partition.empty()) q.push_back("partition=" + net::url_encode(o.partition));
  for (const auto& [k, v] : o.node_meta) q.push_back("node-meta=" + net::url_encode(k + ":" + v));
  if (!o.filter.empty()) q.push_back("filter=" + net::url_encode(o.filter));
  if (o.cached) q.push_back("cached");
  if (o.stale) q.push_back("stale");
  if (index > 0) {
    q.push_back("index=" + std::to_string(index));
    q.push_back("wait=" + std::to_string(wait.count()) + "ms");
  }
  for (size_t i = 0; i < q.size(); ++i) url += (i == 0 ? "?" : "&") + q[i];
  return url;
}

// The outcome of one request, before the loop decides what to publish.
struct ConsulSource::Fetch {
  Result<ParseResult> result = Error::internal("not fetched");
  std::optional<std::uint64_t> index;  // X-Consul-Index
  std::string reason;                  // metric label on error
  bool acl_refused = false;
  std::optional<double> age;
};

ConsulSource::ConsulSource(Options options, SourceContext context, HttpClientFactory client_factory)
    : options_(std::move(options)),
      context_(std::move(context)),
      client_factory_(client_factory ? std::move(client_factory)
                                     : curl_client_factory(options_.max_response_bytes)),
      describe_(fmt::format(
          "consul {} at {}", options_.service,
          options_.unix_socket.empty() ? options_.base_url : "unix://" + options_.unix_socket)),
      labels_{context_.backend, options_.service},
      stats_((context_.metrics ? *context_.metrics : Metrics::global()).shared<ConsulStats>()),
      token_(options_.token, options_.token_file, describe_) {
  state_.backoff = runtime::Backoff({.initial = options_.backoff_min,
                                     .max = options_.backoff_max,
                                     .multiplier = 2.0,
                                     .jitter = 0.5});
}

ConsulSource::~ConsulSource() { stop(); }

std::string ConsulSource::describe() const { return describe_; }

Status ConsulSource::start(Sink& sink) {
  if (options_.watch == Options::WatchMode::kShared) return start_on_hub(nullptr, sink);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Error::internal(describe_ + ": already started");
  }
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status ConsulSource::start_on(runtime::Runtime& runtime, Sink& sink) {
  if (options_.watch == Options::WatchMode::kShared) return start_on_hub(&runtime, sink);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Error::internal(describe_ + ": already started");
    if (stopping_) return Error::internal(describe_ + ": stopped sources cannot restart");
    started_ = true;
    sink_ = &sink;
  }
  loop_ = &runtime.loop();
  loop_->run_sync([this] {
    async_ = shared_client(
        *loop_, net::AsyncHttpClient::Options{.max_body_bytes = options_.max_response_bytes});
    tokens_ = static_cast<double>(options_.burst);
    last_refill_ = SteadyClock::now();
    last_request_.reset();
    if (options_.blocking && options_.liveness_interval.count() > 0) {
      liveness_ = AgentLiveness::acquire(*loop_, options_, async_);
      liveness_->watch(this);
    }
    schedule_next();
  });
  return {};
}

Status ConsulSource::start_on_hub(runtime::Runtime* runtime, Sink& sink) {
  std::unique_lock<std::mutex> lock(mu_);
  if (started_) return Error::internal(describe_ + ": already started");
  if (stopping_) return Error::internal(describe_ + ": stopped sources cannot restart");
  started_ = true;
  sink_ = &sink;
  lock.unlock();
  auto hub = AgentHub::acquire(options_, runtime);
  hub->subscribe(this);
  lock.lock();
  hub_ = std::move(hub);
  return {};
}

void ConsulSource::stop() {
  std::shared_ptr<AgentHub> hub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    hub = std::move(hub_);
  }
  if (loop_ != nullptr) {
    // On the loop thread: the request in flight is aborted without calling back and the timer
    // cancelled, so nothing of this source runs afterwards.
    loop_->run_sync([this] {
      if (timer_ != 0) loop_->cancel(timer_);
      timer_ = 0;
      if (request_ != 0 && async_) async_->cancel(request_);
      request_ = 0;
      if (liveness_) liveness_->unwatch(this);
      liveness_.reset();
      async_.reset();
    });
    loop_ = nullptr;
    if (own_runtime_) {
      own_runtime_->stop();
      own_runtime_.reset();
    }
  }
  // After unsubscribe() returns the hub never calls refresh() (and so the sink) again.
  if (hub) hub->unsubscribe(this);
}

ConsulSource::Fetch ConsulSource::fetch(net::HttpClient& client, std::uint64_t index,
                                        milliseconds timeout, milliseconds wait) {
  auto req = build_request(index, timeout, wait);
  if (!req) {
    Fetch f;
    f.result = req.error();
    f.reason = "token_file";
    return f;
  }
  return interpret(client.perform(*req));
}

Result<net::HttpRequest> ConsulSource::build_request(std::uint64_t index, milliseconds timeout,
                                                     milliseconds wait) {
  auto token = token_.get(false);
  if (!token) return token.error();
  net::HttpRequest req;
  req.url = health_url(options_, index, wait.count() > 0 ? wait : options_.wait);
  req.timeout = timeout;
  req.connect_timeout = std::min(options_.connect_timeout, timeout);
  req.unix_socket_path = options_.unix_socket;
  req.tls = {options_.ca_file, options_.cert_file, options_.key_file, options_.tls_verify};
  req.headers.emplace_back("Accept", "application/json");
  if (!token->empty()) req.headers.emplace_back("X-Consul-Token", *token);
  return req;
}

ConsulSource::Fetch ConsulSource::interpret(Result<net::HttpResponse> resp) {
  Fetch f;
  if (!resp) {
    f.result = resp.error();
    f.reason = resp.error().kind == ErrorKind::kInvalid ? "too_large" : "unavailable";
    return f;
  }
  const std::string where = fmt::format(
      "Consul {} (service '{}')",
      options_.unix_socket.empty() ? options_.base_url : "unix://" + options_.unix_socket,
      options_.service);
  if (resp->status == 403) {
    f.acl_refused = true;
    f.reason = "acl";
    f.result = Error::refused(fmt::format(
        "{} refused the request (403 {}); check the ACL token (needs service:read and node:read)",
        where, snippet(resp->body)));
    return f;
  }
  if (resp->status != 200) {
    f.reason = resp->status >= 500 ? "http_5xx" : resp->status == 429 ? "http_429" : "http_4xx";
    std::string msg = fmt::format("{} answered {}: {}", where, resp->status, snippet(resp->body));
    f.result = resp->status >= 400 && resp->status < 500 && resp->status != 429
                   ? Error::invalid(std::move(msg))
                   : Error::unavailable(std::move(msg));
    return f;
  }
  f.index = parse_index(resp->headers.get("X-Consul-Index"));
  if (auto age = resp->headers.get("Age")) {
    char* end = nullptr;
    double a = std::strtod(age->c_str(), &end);
    if (end != age->c_str()) f.age = a;
  }
  auto parsed = parse_health_reply(resp->body, options_.parse);
  if (!parsed) {
    f.reason = "parse";
    f.result = Error::invalid(where + ": " + parsed.error().message);
    return f;
  }
  if (parsed->entries == 0) {
    if (resp->headers.get("X-Consul-KnownLeader") == std::optional<std::string>("false")) {
      f.reason = "no_leader";
      f.result = Error::unavailable(where +
                                    " answered an empty list without a known leader "
                                    "(election in progress?); keeping the last set");
      return f;
    }
    if (resp->headers.get("X-Consul-Results-Filtered-By-ACLs") ==
        std::optional<std::string>("true")) {
      f.reason = "acl_filtered";
      f.result = Error::refused(where +
                                " answered an empty list filtered by ACLs; the token lacks "
                                "service:read/node:read; keeping the last set");
      return f;
    }
  }
  f.result = std::move(parsed);
  return f;
}

std::optional<milliseconds> ConsulSource::process(Fetch f) {
  WatchState& st = state_;
  if (!f.result) {
    const Error& e = f.result.error();
    stats_.requests_total.inc({labels_[0], labels_[1], "error"});
    stats_.errors_total.inc({labels_[0], labels_[1], f.reason});
    stats_.up.set(labels_, 0);
    // Made at the first failure: 1,000 sources that answer need no reporter each.
    if (!reporter_) {
      reporter_ = std::make_unique<log::FailureReporter>(std::string(kComponent), describe_);
    }
    reporter_->failure(e.message);
    if (f.acl_refused) (void)token_.get(true);  // token rotation: re-read after a 403
    sink_->publish(e);
    // After an error the next read is non-blocking, so recovery converges at once; and the guard
    // marks the source failing until a good snapshot arrives, so the first success after an
    // error is published even when the set did not change.
    st.index = 0;
    index_ = 0;
    st.empty_pending = false;
    st.republish = true;
    return std::chrono::duration_cast<milliseconds>(st.backoff.next());
  }

  ParseResult& parsed = *f.result;
  stats_.requests_total.inc({labels_[0], labels_[1], "ok"});
  stats_.up.set(labels_, 1);
  if (f.age) stats_.cache_age_seconds.set(labels_, *f.age);
  if (reporter_) reporter_->success();  // "recovered after N failures" when there were some
  st.backoff.reset();
  for (const auto& w : parsed.warnings) {
    if (st.warned.size() < 1000 && st.warned.insert(w).second) {
      log::warn(kComponent, "{}: {}", describe_, w);
    }
  }

  // Index rules (consul.md §3): backwards → full non-blocking re-read; 0/missing → 1.
  const std::uint64_t got = f.index.value_or(0);
  if (f.index && st.index > 0 && got < st.index) {
    log::info(kComponent, "{}: X-Consul-Index went backwards ({} -> {}); re-reading in full",
              describe_, st.index, got);
    stats_.index_resets_total.inc(labels_);
    st.index = 0;
  } else {
    st.index = std::max<std::uint64_t>(got, 1);
  }
  index_ = st.index;
  stats_.index.set(labels_, static_cast<double>(st.index));
  stats_.instances.set(labels_, static_cast<double>(parsed.endpoints.size()));

  // A sudden empty answer is confirmed by a fresh read before it is believed.
  if (parsed.endpoints.empty() && st.published && !st.last.empty() &&
      options_.empty_confirm.count() > 0 && st.empty_pending &&
      std::chrono::steady_clock::now() - st.empty_since < options_.empty_confirm &&
      options_.blocking && options_.watch == Options::WatchMode::kService && st.index > 0) {
    return std::nullopt;  // still empty, but not for empty_confirm yet: keep watching
  }
  if (parsed.endpoints.empty() && st.published && !st.last.empty() &&
      options_.empty_confirm.count() > 0 && !st.empty_pending) {
    st.empty_pending = true;
    st.empty_since = std::chrono::steady_clock::now();
    stats_.empty_confirmations_total.inc(labels_);
    if (options_.blocking && options_.watch == Options::WatchMode::kService && st.index > 0) {
      // Confirm with a blocking query on this answer's index and wait = empty_confirm: any
      // change (the agent re-synced, the instances are back) ends it at once; only an answer that
      // stays empty that long is believed.
      log::warn(kComponent,
                "{}: Consul answered no instances after {}; watching it for up to {} ms before "
                "believing it",
                describe_, st.last.size(), options_.empty_confirm.count());
      return std::nullopt;
    }
    log::warn(kComponent,
              "{}: Consul answered no instances after {}; re-reading in {} ms before believing it",
              describe_, st.last.size(), options_.empty_confirm.count());
    st.index = 0;
    index_ = 0;
    return options_.empty_confirm;
  }
  st.empty_pending = false;

  if (!st.published || st.republish || parsed.endpoints != st.last) {
    st.last = parsed.endpoints;
    st.published = true;
    st.republish = false;
    stats_.snapshots_published_total.inc(labels_);
    log::debug(kComponent, "{}: {} instances (index {})", describe_, st.last.size(), st.index);
    sink_->publish(st.last);
  }
  return std::nullopt;
}

net::AsyncHttpClient::RequestId ConsulSource::refresh(net::AsyncHttpClient& client,
                                                      AgentHub::Subscriber::Done done) {
  // `done` is never called under mu_: it goes back into the hub, which may at once refresh the
  // next subscriber, this one included (a self-deadlock on mu_ when stop() races a refresh).
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
  }
  if (stopping) {
    done(std::nullopt);
    return 0;
  }
  auto req = build_request(0, options_.timeout, milliseconds(0));
  if (!req) {
    Fetch f;
    f.result = req.error();
    f.reason = "token_file";
    done(process(std::move(f)));
    return 0;
  }
  return client.start(*req, [this, done = std::move(done)](Result<net::HttpResponse> resp) {
    bool stopping = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stopping_;
    }
    if (stopping) {
      done(std::nullopt);  // aborted by stop(): not a Consul failure (called outside mu_)
      return;
    }
    done(process(interpret(std::move(resp))));
  });
}

double ConsulSource::refill() {
  const auto now = SteadyClock::now();
  const double refill_s = std::max(1e-3, std::chrono::duration<double>(options_.refill).count());
  tokens_ = std::min<double>(
      options_.burst,
      tokens_ + std::chrono::duration<double>(now - last_refill_).count() / refill_s);
  last_refill_ = now;
  return refill_s;
}

void ConsulSource::schedule_next() {
  // Rate limit: min_interval (+ jitter) between requests and a token bucket.
  const double refill_s = refill();
  const auto now = last_refill_;
  SteadyClock::time_point not_before = now;
  if (last_request_) {
    not_before =
        std::max(not_before, *last_request_ + options_.min_interval + random_upto(options_.jitter));
  }
  if (tokens_ < 1.0) {
    not_before =
        std::max(not_before, now + std::chrono::duration_cast<SteadyClock::duration>(
                                       std::chrono::duration<double>((1.0 - tokens_) * refill_s)));
  }
  if (not_before > now) {
    timer_ = loop_->after(
        std::chrono::duration_cast<milliseconds>(not_before - now) + milliseconds(1), [this] {
          timer_ = 0;
          refill();
          send();
        });
    return;
  }
  send();
}

void ConsulSource::agent_frozen(const std::string& why) {
  if (frozen_) return;
  frozen_ = true;
  if (timer_ != 0) loop_->cancel(timer_);
  timer_ = 0;
  if (request_ != 0) async_->cancel(request_);
  request_ = 0;
  stats_.agent_frozen_total.inc(labels_);
  Fetch f;
  f.result = Error::unavailable(why);
  f.reason = "agent_frozen";
  (void)process(std::move(f));  // error published (last good set kept); next read non-blocking
}

void ConsulSource::agent_alive() {
  if (!frozen_) return;
  frozen_ = false;
  state_.backoff.reset();
  if (timer_ == 0 && request_ == 0) schedule_next();
}

void ConsulSource::send() {
  if (frozen_) return;  // agent_alive() re-arms
  tokens_ = std::max(0.0, tokens_ - 1.0);
  last_request_ = SteadyClock::now();
  const bool blocking = options_.blocking && state_.index > 0;
  // While an empty answer awaits confirmation, block only for what is left of empty_confirm.
  milliseconds wait = options_.wait;
  if (state_.empty_pending) {
    const auto left = options_.empty_confirm - std::chrono::duration_cast<milliseconds>(
                                                   SteadyClock::now() - state_.empty_since);
    wait = std::max(left, milliseconds(1));
  }
  auto req = build_request(blocking ? state_.index : 0,
                           blocking ? wait + wait / 16 + options_.timeout : options_.timeout, wait);
  if (!req) {
    Fetch f;
    f.result = req.error();
    f.reason = "token_file";
    on_fetch(std::move(f));
    return;
  }
  request_ = async_->start(*req, [this](Result<net::HttpResponse> resp) {
    request_ = 0;
    on_fetch(interpret(std::move(resp)));
  });
}

void ConsulSource::on_fetch(Fetch f) {
  if (frozen_) return;  // agent_alive() re-arms
  if (auto delay = process(std::move(f))) {
    timer_ = loop_->after(*delay, [this] {
      timer_ = 0;
      schedule_next();
    });
    return;
  }
  schedule_next();
}

Snapshot ConsulSource::fetch_once(milliseconds timeout) {
  auto client = client_factory_();
  if (!client) return Error::internal(describe_ + ": no HTTP client");
  Fetch f = fetch(*client, 0, timeout);
  if (!f.result) return f.result.error();
  return std::move(f.result->endpoints);
}

SourceKind source_kind() {
  return SourceKind{"consul",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = parse_options(node, diag, context);
                      if (!options) return nullptr;
                      return std::make_unique<ConsulSource>(std::move(*options), context);
                    }};
}

}  // namespace ep::discovery::consul
