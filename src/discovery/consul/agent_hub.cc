#include "discovery/consul/agent_hub.h"

#include <fmt/format.h>

#include <algorithm>
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

std::shared_ptr<AgentHub> AgentHub::acquire(const Options& options, ClientFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mu());
  auto& slot = registry()[options.agent_key()];
  if (auto hub = slot.lock()) return hub;
  auto hub = std::make_shared<AgentHub>(options, std::move(factory));
  slot = hub;
  return hub;
}

AgentHub::AgentHub(const Options& options, ClientFactory factory)
    : options_(options),
      factory_(std::move(factory)),
      token_(options.token, options.token_file, "consul agent hub"),
      describe_(fmt::format("consul agent hub at {}", options.unix_socket.empty()
                                                          ? options.base_url
                                                          : "unix://" + options.unix_socket)) {
  Metrics::global().describe("elasticproxy_consul_hub_errors_total", Metrics::Type::kCounter,
                             "Failed change-detection queries of a shared Consul agent hub.");
  Metrics::global().describe("elasticproxy_consul_hub_wakeups_total", Metrics::Type::kCounter,
                             "Change-detection returns of a shared hub that refreshed services.");
  catalog_client_ = factory_();
  checks_client_ = factory_();
  worker_client_ = factory_();
  catalog_thread_ = std::thread([this] { detect_loop(Detector::kCatalog); });
  checks_thread_ = std::thread([this] { detect_loop(Detector::kChecks); });
  worker_thread_ = std::thread([this] { worker_loop(); });
}

AgentHub::~AgentHub() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto* c : {catalog_client_.get(), checks_client_.get(), worker_client_.get()}) {
      if (c != nullptr) c->cancel();
    }
  }
  cv_.notify_all();
  for (auto* t : {&catalog_thread_, &checks_thread_, &worker_thread_}) {
    if (t->joinable()) t->join();
  }
}

void AgentHub::subscribe(Subscriber* subscriber) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Sub s;
    s.subscriber = subscriber;
    s.dirty = true;
    s.due = SteadyClock::now();
    subs_.push_back(s);
    ++subs_version_;
    // The checks query in flight filters on the old name set: restart it with the new one.
    if (checks_client_) checks_client_->cancel();
    checks_restart_ = true;
  }
  cv_.notify_all();
}

void AgentHub::unsubscribe(Subscriber* subscriber) {
  std::unique_lock<std::mutex> lock(mu_);
  // Removed first, so the worker cannot pick it again while we wait for a refresh in progress.
  subs_.erase(std::remove_if(subs_.begin(), subs_.end(),
                             [&](const Sub& s) { return s.subscriber == subscriber; }),
              subs_.end());
  ++subs_version_;
  if (busy_ == subscriber && worker_client_) {
    // Do not wait for a slow read of a source that is going away: abort it; the worker replaces
    // its (sticky-cancelled) client afterwards.
    worker_client_->cancel();
    worker_restart_ = true;
  }
  cv_.wait(lock, [&] { return busy_ != subscriber; });
}

size_t AgentHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subs_.size();
}

std::uint64_t AgentHub::connections_opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t n = retired_connections_;
  for (auto* c : {catalog_client_.get(), checks_client_.get(), worker_client_.get()}) {
    if (c != nullptr) n += c->connections_opened();
  }
  return n;
}

bool AgentHub::sleep_for(milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

void AgentHub::mark_dirty_locked(Sub& sub) {
  sub.dirty = true;
  // Rate limit per service even when changes keep coming (a flapping check).
  sub.due =
      std::max(sub.due, sub.last_refresh + options_.min_interval + jitter_upto(options_.jitter));
}

void AgentHub::mark_all_dirty() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : subs_) mark_dirty_locked(s);
  }
  cv_.notify_all();
}

void AgentHub::mark_services_dirty(const std::vector<std::string>& names) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : subs_) {
      if (std::find(names.begin(), names.end(), s.subscriber->service_name()) != names.end()) {
        mark_dirty_locked(s);
      }
    }
  }
  cv_.notify_all();
}

std::string AgentHub::detector_url(Detector which, std::uint64_t index,
                                   std::set<std::string>* covered) const {
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
      if (covered != nullptr) *covered = names;
    }
  }
  if (index > 0) {
    q.push_back("index=" + std::to_string(index));
    q.push_back("wait=" + std::to_string(options_.wait.count()) + "ms");
  }
  for (size_t i = 0; i < q.size(); ++i) url += (i == 0 ? "?" : "&") + q[i];
  return url;
}

void AgentHub::detect_loop(Detector which) {
  const char* endpoint = which == Detector::kCatalog ? "catalog_services" : "health_state";
  log::FailureReporter reporter("consul", describe_ + " (" + endpoint + ")");
  std::uint64_t index = 0;
  std::uint64_t last_seen = 0;
  bool have_seen = false;
  std::optional<std::map<std::string, std::string>> last_states;
  runtime::Backoff backoff({.initial = options_.backoff_min,
                            .max = options_.backoff_max,
                            .multiplier = 2.0,
                            .jitter = 0.5});
  std::optional<SteadyClock::time_point> last_request;
  while (true) {
    std::string url;
    net::HttpClient* client = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (last_request) {
        cv_.wait_until(lock, *last_request + options_.min_interval + jitter_upto(options_.jitter),
                       [this] { return stopping_; });
      }
      // Nothing to watch yet: wait for a subscriber.
      cv_.wait(lock, [this] { return stopping_ || !subs_.empty(); });
      if (stopping_) return;
      if (which == Detector::kChecks && checks_restart_) {
        // Let a burst of subscriptions (start-up) settle, so it costs one restart, not one each.
        for (int i = 0; i < 20 && !stopping_; ++i) {
          const std::uint64_t version = subs_version_;
          if (!cv_.wait_for(lock, milliseconds(50),
                            [&] { return stopping_ || subs_version_ != version; })) {
            break;
          }
        }
        if (stopping_) return;
        // cancel() is sticky: a fresh client (and connection) for the new filter.
        retired_connections_ += checks_client_->connections_opened();
        checks_client_ = factory_();
        checks_restart_ = false;
        // A non-blocking baseline with the new filter: services it newly covers differ from
        // last_states and are refreshed now, not at the next unrelated check change.
        index = 0;
      }
      url = detector_url(which, index, nullptr);
      client = which == Detector::kCatalog ? catalog_client_.get() : checks_client_.get();
    }
    last_request = SteadyClock::now();
    net::HttpRequest req;
    req.url = url;
    req.timeout = index > 0 ? options_.blocking_timeout() : options_.timeout;
    req.connect_timeout = options_.connect_timeout;
    req.unix_socket_path = options_.unix_socket;
    req.tls = {options_.ca_file, options_.cert_file, options_.key_file, options_.tls_verify};
    req.headers.emplace_back("Accept", "application/json");
    auto token = token_.get(false);
    if (token && !token->empty()) req.headers.emplace_back("X-Consul-Token", *token);
    Result<net::HttpResponse> resp =
        token ? client->perform(req) : Result<net::HttpResponse>(token.error());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      // Cancelled by subscribe() to change the filter: not an error; the loop starts over with
      // a fresh client.
      if (which == Detector::kChecks && checks_restart_ && !resp.ok()) continue;
    }
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
      if (which == Detector::kChecks) {
        auto parsed = parse_check_states(resp->body);
        if (!parsed) {
          problem = parsed.error().message;
        } else {
          states = std::move(*parsed);
        }
      }
    }
    if (!problem.empty()) {
      reporter.failure(problem);
      Metrics::global().inc("elasticproxy_consul_hub_errors_total", {{"endpoint", endpoint}});
      // Every subscriber reads for itself: each reports its own failure (fail static per source)
      // or success.
      mark_all_dirty();
      index = 0;
      have_seen = false;
      last_states.reset();
      if (!sleep_for(std::chrono::duration_cast<milliseconds>(backoff.next()))) return;
      continue;
    }
    reporter.success();
    backoff.reset();
    bool reset = index > 0 && got < index;
    if (reset) {
      log::info("consul", "{}: X-Consul-Index of {} went backwards ({} -> {}); re-reading",
                describe_, endpoint, index, got);
    }
    if (which == Detector::kCatalog) {
      // The first answer (at start or after an error) is a baseline taken after the subscribers'
      // own first reads: refresh them all once so nothing that changed in between is missed.
      if (reset || !have_seen || got != last_seen) {
        Metrics::global().inc("elasticproxy_consul_hub_wakeups_total", {{"endpoint", endpoint}});
        mark_all_dirty();
      }
    } else if (states) {
      if (!last_states) {
        mark_all_dirty();  // baseline: see the catalog case
      } else {
        std::vector<std::string> changed;
        bool node_level = false;
        std::set<std::string> keys;
        for (const auto& [k, v] : *states) keys.insert(k);
        for (const auto& [k, v] : *last_states) keys.insert(k);
        for (const auto& k : keys) {
          auto a = states->find(k);
          auto b = last_states->find(k);
          const bool same = a != states->end() && b != last_states->end() && a->second == b->second;
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
          Metrics::global().inc("elasticproxy_consul_hub_wakeups_total", {{"endpoint", endpoint}});
        }
      }
      last_states = std::move(states);
    }
    last_seen = got;
    have_seen = true;
    index = reset ? 0 : std::max<std::uint64_t>(got, 1);
  }
}

void AgentHub::worker_loop() {
  while (true) {
    Subscriber* sub = nullptr;
    net::HttpClient* client = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        if (stopping_) return;
        auto now = SteadyClock::now();
        Sub* next = nullptr;
        for (auto& s : subs_) {
          if (s.dirty && (next == nullptr || s.due < next->due)) next = &s;
        }
        if (next != nullptr && next->due <= now) {
          next->dirty = false;
          next->last_refresh = now;
          sub = next->subscriber;
          break;
        }
        if (next != nullptr) {
          cv_.wait_until(lock, next->due);
        } else {
          cv_.wait(lock);
        }
      }
      busy_ = sub;
      client = worker_client_.get();
    }
    std::optional<milliseconds> again = sub->refresh(*client);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = nullptr;
      if (worker_restart_) {
        retired_connections_ += worker_client_->connections_opened();
        worker_client_ = factory_();
        worker_restart_ = false;
      }
      if (again) {
        for (auto& s : subs_) {
          if (s.subscriber == sub) {
            s.dirty = true;
            s.due = SteadyClock::now() + *again;
          }
        }
      }
    }
    cv_.notify_all();
  }
}

}  // namespace ep::discovery::consul
