#include "discovery/consul/agent_hub.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/log.h"
#include "core/metrics.h"
#include "os/json.h"
#include "runtime/backoff.h"

namespace ep::discovery::consul {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxFilterNames = 300;  // beyond this the checks query is unfiltered

milliseconds jitter_upto(milliseconds max) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  if (max.count() <= 0) return milliseconds(0);
  return milliseconds(std::uniform_int_distribution<long long>(0, max.count())(rng));
}

std::optional<std::uint64_t> parse_index(const std::optional<std::string>& v) {
  if (!v || v->empty() || v->size() > 20) return std::nullopt;
  std::uint64_t out = 0;
  for (char c : *v) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t next = out * 10 + static_cast<std::uint64_t>(c - '0');
    if (next / 10 != out) return std::nullopt;
    out = next;
  }
  return out;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::weak_ptr<AgentHub>>& registry() {
  static std::map<std::string, std::weak_ptr<AgentHub>> hubs;
  return hubs;
}

}  // namespace

Result<std::map<std::string, std::string>> parse_check_states(std::string_view text) {
  auto parsed = os::parse_json(text, "Consul check-state reply");
  if (!parsed) return parsed.error();
  nlohmann::json doc = std::move(*parsed);
  if (!doc.is_array()) return Error::invalid("Consul check-state reply must be a JSON array");
  std::map<std::string, std::vector<std::string>> parts;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& c = doc[i];
    if (!c.is_object())
      return Error::invalid(fmt::format("check-state entry {} is not an object", i));
    auto str = [&](const char* key) -> std::string {
      auto it = c.find(key);
      return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto status = c.find("Status");
    if (status == c.end() || !status->is_string()) {
      return Error::invalid(
          fmt::format("check-state entry {}: Status is missing or not a string", i));
    }
    parts[str("ServiceName")].push_back(str("Node") + "/" + str("ServiceID") + "/" +
                                        str("CheckID") + ":" + status->get<std::string>());
  }
  std::map<std::string, std::string> out;
  for (auto& [name, list] : parts) {
    std::sort(list.begin(), list.end());
    std::string joined;
    for (const auto& l : list) joined += l + "\n";
    out[name] = std::move(joined);
  }
  return out;
}

std::shared_ptr<AgentHub> AgentHub::acquire(const Options& options, runtime::Runtime* runtime) {
  std::lock_guard<std::mutex> lock(registry_mu());
  const std::string key =
      options.agent_key() + "\n" + std::to_string(reinterpret_cast<std::uintptr_t>(runtime));
  auto& slot = registry()[key];
  if (auto hub = slot.lock()) return hub;
  std::shared_ptr<runtime::Runtime> own;
  if (runtime == nullptr) {
    // One runtime shared by every hub started without one (tools, tests), alive while a hub is.
    static std::weak_ptr<runtime::Runtime> shared;
    own = shared.lock();
    if (!own) {
      own = std::make_shared<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
      shared = own;
    }
    runtime = own.get();
  }
  auto hub = std::make_shared<AgentHub>(options, runtime->loop(), std::move(own));
  slot = hub;
  return hub;
}

AgentHub::AgentHub(const Options& options, runtime::Loop& loop,
                   std::shared_ptr<runtime::Runtime> own_runtime)
    : options_(options),
      own_runtime_(std::move(own_runtime)),
      loop_(loop),
      token_(options.token, options.token_file, "consul agent hub"),
      describe_(fmt::format("consul agent hub at {}", options.unix_socket.empty()
                                                          ? options.base_url
                                                          : "unix://" + options.unix_socket)) {
  loop_.run_sync([this] {
    for (Detector which : {Detector::kCatalog, Detector::kChecks}) {
      DetectorState& d = detector(which);
      d.which = which;
      d.client = std::make_unique<net::AsyncHttpClient>(loop_);
      d.reporter = std::make_unique<log::FailureReporter>(
          "consul", describe_ + " (" +
                        (which == Detector::kCatalog ? "catalog_services" : "health_state") + ")");
      d.backoff = runtime::Backoff({.initial = options_.backoff_min,
                                    .max = options_.backoff_max,
                                    .multiplier = 2.0,
                                    .jitter = 0.5});
    }
    worker_client_ = std::make_unique<net::AsyncHttpClient>(loop_);
    if (options_.blocking && options_.liveness_interval.count() > 0) {
      liveness_client_ = std::make_shared<net::AsyncHttpClient>(loop_);
      liveness_ = AgentLiveness::acquire(loop_, options_, liveness_client_);
      liveness_->watch(this);
    }
  });
}

void AgentHub::agent_frozen(const std::string& why) {
  if (frozen_) return;
  frozen_ = true;
  for (auto& d : detectors_) {
    if (d.timer != 0) loop_.cancel(d.timer);
    d.timer = 0;
    if (d.request != 0) d.client->cancel(d.request);
    d.request = 0;
    d.index = 0;  // a fresh baseline once it answers
  }
  log::warn("consul", "{}: {}", describe_, why);
}

void AgentHub::agent_alive() {
  if (!frozen_) return;
  frozen_ = false;
  if (busy_ != nullptr) {
    // A read sent while the agent was frozen may never be answered: abort it; it is redone below.
    if (busy_request_ != 0 && worker_client_) worker_client_->cancel(busy_request_);
    busy_ = nullptr;
    busy_request_ = 0;
    ++refresh_seq_;
  }
  mark_all_dirty();  // every service re-read at once (changes made while frozen)
  for (auto& d : detectors_) {
    d.last_request.reset();
    schedule(d);
  }
}

AgentHub::~AgentHub() {
  // On the loop: cancelled timers never run, destroyed clients abort their requests silently.
  loop_.run_sync([this] {
    stopping_ = true;
    if (liveness_) liveness_->unwatch(this);
    liveness_.reset();
    liveness_client_.reset();
    for (auto& d : detectors_) {
      if (d.timer != 0) loop_.cancel(d.timer);
      d.timer = 0;
      d.request = 0;
      d.client.reset();
    }
    if (worker_timer_ != 0) loop_.cancel(worker_timer_);
    worker_timer_ = 0;
    busy_ = nullptr;
    worker_client_.reset();
  });
}

void AgentHub::subscribe(Subscriber* subscriber) {
  loop_.run_sync([this, subscriber] {
    if (stopping_) return;
    Sub s;
    s.subscriber = subscriber;
    s.dirty = true;
    s.due = SteadyClock::now();
    subs_.push_back(s);
    subscriber_count_ = subs_.size();
    // The checks query filters on the old name set: restart it with the new one once the
    // subscriptions settle (a start-up burst costs one restart, not one each).
    DetectorState& checks = detector(Detector::kChecks);
    if (checks.request != 0) checks.client->cancel(checks.request);
    checks.request = 0;
    const auto now = SteadyClock::now();
    if (!restart_since_) restart_since_ = now;
    const auto settle =
        std::min(now + milliseconds(50), *restart_since_ + milliseconds(1000)) - now;
    arm(checks, std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(settle)));
    schedule(detector(Detector::kCatalog));
    kick_worker();
  });
}

void AgentHub::unsubscribe(Subscriber* subscriber) {
  loop_.run_sync([this, subscriber] {
    subs_.erase(std::remove_if(subs_.begin(), subs_.end(),
                               [&](const Sub& s) { return s.subscriber == subscriber; }),
                subs_.end());
    subscriber_count_ = subs_.size();
    if (busy_ == subscriber) {
      // Do not wait for a slow read of a source that is going away: abort it (on the loop its
      // callback can no longer run).
      if (busy_request_ != 0 && worker_client_) worker_client_->cancel(busy_request_);
      busy_ = nullptr;
      busy_request_ = 0;
      ++refresh_seq_;
      kick_worker();
    }
  });
}

std::uint64_t AgentHub::connections_opened() const {
  std::uint64_t n = 0;
  loop_.run_sync([this, &n] {
    for (const auto& d : detectors_) {
      if (d.client) n += d.client->connections_opened();
    }
    if (worker_client_) n += worker_client_->connections_opened();
  });
  return n;
}

void AgentHub::mark_dirty(Sub& sub) {
  sub.dirty = true;
  // Rate limit per service even when changes keep coming (a flapping check).
  sub.due =
      std::max(sub.due, sub.last_refresh + options_.min_interval + jitter_upto(options_.jitter));
}

void AgentHub::mark_all_dirty() {
  for (auto& s : subs_) mark_dirty(s);
  kick_worker();
}

void AgentHub::mark_services_dirty(const std::vector<std::string>& names) {
  for (auto& s : subs_) {
    if (std::find(names.begin(), names.end(), s.subscriber->service_name()) != names.end()) {
      mark_dirty(s);
    }
  }
  kick_worker();
}

std::string AgentHub::detector_url(Detector which, std::uint64_t index) const {
  std::string url = options_.base_url +
                    (which == Detector::kCatalog ? "/v1/catalog/services" : "/v1/health/state/any");
  std::vector<std::string> q;
  if (!options_.datacenter.empty()) q.push_back("dc=" + net::url_encode(options_.datacenter));
  if (!options_.ns.empty()) q.push_back("ns=" + net::url_encode(options_.ns));
  if (!options_.partition.empty()) q.push_back("partition=" + net::url_encode(options_.partition));
  if (options_.stale) q.push_back("stale");
  if (which == Detector::kChecks) {
    std::set<std::string> names;
    for (const auto& s : subs_) names.insert(s.subscriber->service_name());
    if (!names.empty() && names.size() <= kMaxFilterNames) {
      std::string filter;
      for (const auto& n : names) filter += "ServiceName == " + quote(n) + " or ";
      filter += "ServiceName == \"\"";  // node-level checks (serfHealth, node maintenance)
      q.push_back("filter=" + net::url_encode(filter));
    }
  }
  if (index > 0) {
    q.push_back("index=" + std::to_string(index));
    q.push_back("wait=" + std::to_string(options_.wait.count()) + "ms");
  }
  for (size_t i = 0; i < q.size(); ++i) url += (i == 0 ? "?" : "&") + q[i];
  return url;
}

void AgentHub::arm(DetectorState& d, milliseconds delay) {
  if (d.timer != 0) loop_.cancel(d.timer);
  d.timer = loop_.after(delay, [this, &d] {
    d.timer = 0;
    send(d);
  });
}

void AgentHub::schedule(DetectorState& d) {
  if (stopping_ || frozen_ || d.request != 0 || d.timer != 0 || subs_.empty()) return;
  milliseconds delay(0);
  if (d.last_request) {
    const auto at = *d.last_request + options_.min_interval + jitter_upto(options_.jitter);
    delay = std::max(milliseconds(0),
                     std::chrono::duration_cast<milliseconds>(at - SteadyClock::now()));
  }
  arm(d, delay);
}

void AgentHub::send(DetectorState& d) {
  if (stopping_ || frozen_) return;
  if (subs_.empty()) return;  // nothing to watch: subscribe() starts it again
  if (d.which == Detector::kChecks && restart_since_) {
    // A non-blocking baseline with the new filter: services it newly covers differ from
    // last_states and are refreshed now, not at the next unrelated check change.
    restart_since_.reset();
    d.index = 0;
  }
  const std::string url = detector_url(d.which, d.index);
  d.last_request = SteadyClock::now();
  auto token = token_.get(false);
  if (!token) {
    on_answer(d, url, token.error());
    return;
  }
  net::HttpRequest req;
  req.url = url;
  req.timeout = d.index > 0 ? options_.blocking_timeout() : options_.timeout;
  req.connect_timeout = options_.connect_timeout;
  req.unix_socket_path = options_.unix_socket;
  req.tls = {options_.ca_file, options_.cert_file, options_.key_file, options_.tls_verify};
  req.headers.emplace_back("Accept", "application/json");
  if (!token->empty()) req.headers.emplace_back("X-Consul-Token", *token);
  d.request = d.client->start(req, [this, &d, url](Result<net::HttpResponse> resp) {
    d.request = 0;
    on_answer(d, url, std::move(resp));
  });
}

void AgentHub::on_answer(DetectorState& d, const std::string& url, Result<net::HttpResponse> resp) {
  const char* endpoint = d.which == Detector::kCatalog ? "catalog_services" : "health_state";
  std::string problem;
  std::uint64_t got = 0;
  std::optional<std::map<std::string, std::string>> states;
  if (!resp.ok()) {
    problem = resp.error().message;
  } else if (resp->status != 200) {
    problem = fmt::format("{} answered {}: {}", net::redact_url(url), resp->status,
                          resp->body.substr(0, 200));
    if (resp->status == 403) (void)token_.get(true);
  } else {
    got = parse_index(resp->headers.get("X-Consul-Index")).value_or(0);
    if (d.which == Detector::kChecks) {
      auto parsed = parse_check_states(resp->body);
      if (!parsed) {
        problem = parsed.error().message;
      } else {
        states = std::move(*parsed);
      }
    }
  }
  if (!problem.empty()) {
    d.reporter->failure(problem);
    stats_.errors_total.inc({endpoint});
    // Every subscriber reads for itself: each reports its own failure (fail static per source)
    // or success.
    mark_all_dirty();
    d.index = 0;
    d.have_seen = false;
    d.last_states.reset();
    arm(d, std::chrono::duration_cast<milliseconds>(d.backoff.next()));
    return;
  }
  d.reporter->success();
  d.backoff.reset();
  bool reset = d.index > 0 && got < d.index;
  if (reset) {
    log::info("consul", "{}: X-Consul-Index of {} went backwards ({} -> {}); re-reading", describe_,
              endpoint, d.index, got);
  }
  if (d.which == Detector::kCatalog) {
    // The first answer (at start or after an error) is a baseline taken after the subscribers'
    // own first reads: refresh them all once so nothing that changed in between is missed.
    if (reset || !d.have_seen || got != d.last_seen) {
      stats_.wakeups_total.inc({endpoint});
      mark_all_dirty();
    }
  } else if (states) {
    if (!d.last_states) {
      mark_all_dirty();  // baseline: see the catalog case
    } else {
      std::vector<std::string> changed;
      bool node_level = false;
      std::set<std::string> keys;
      for (const auto& [k, v] : *states) keys.insert(k);
      for (const auto& [k, v] : *d.last_states) keys.insert(k);
      for (const auto& k : keys) {
        auto a = states->find(k);
        auto b = d.last_states->find(k);
        const bool same = a != states->end() && b != d.last_states->end() && a->second == b->second;
        if (same) continue;
        if (k.empty()) {
          node_level = true;
        } else {
          changed.push_back(k);
        }
      }
      if (node_level || reset) {
        mark_all_dirty();
      } else if (!changed.empty()) {
        mark_services_dirty(changed);
      }
      if (node_level || reset || !changed.empty()) {
        stats_.wakeups_total.inc({endpoint});
      }
    }
    d.last_states = std::move(states);
  }
  d.last_seen = got;
  d.have_seen = true;
  d.index = reset ? 0 : std::max<std::uint64_t>(got, 1);
  schedule(d);
}

void AgentHub::kick_worker() {
  if (stopping_ || busy_ != nullptr) return;
  const auto now = SteadyClock::now();
  Sub* next = nullptr;
  for (auto& s : subs_) {
    if (s.dirty && (next == nullptr || s.due < next->due)) next = &s;
  }
  if (worker_timer_ != 0) loop_.cancel(worker_timer_);
  worker_timer_ = 0;
  if (next == nullptr) return;
  if (next->due > now) {
    auto delay = std::chrono::ceil<milliseconds>(next->due - now);
    worker_timer_ = loop_.after(delay, [this] {
      worker_timer_ = 0;
      kick_worker();
    });
    return;
  }
  next->dirty = false;
  next->last_refresh = now;
  Subscriber* sub = next->subscriber;
  busy_ = sub;
  busy_request_ = 0;
  const std::uint64_t seq = ++refresh_seq_;
  auto id = sub->refresh(*worker_client_, [this, sub, seq](std::optional<milliseconds> again) {
    refresh_done(sub, seq, again);
  });
  // `done` may have run inside refresh(): then busy_ moved on.
  if (busy_ == sub && refresh_seq_ == seq) busy_request_ = id;
}

void AgentHub::refresh_done(Subscriber* sub, std::uint64_t seq, std::optional<milliseconds> again) {
  if (refresh_seq_ != seq || busy_ != sub) return;  // aborted by unsubscribe()
  busy_ = nullptr;
  busy_request_ = 0;
  if (again) {
    for (auto& s : subs_) {
      if (s.subscriber == sub) {
        s.dirty = true;
        s.due = SteadyClock::now() + *again;
      }
    }
  }
  kick_worker();
}

}  // namespace ep::discovery::consul
