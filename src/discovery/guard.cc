#include "discovery/guard.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "core/log.h"
#include "core/metrics.h"
#include "os/strings.h"

namespace ep::discovery {
namespace {

constexpr size_t kMaxNameLength = 100;
constexpr size_t kMaxShownText = 120;
constexpr const char* kComponent = "guard";
// Untrusted text shown in a log line: escaped so that it cannot forge lines or hide characters.
std::string shown(std::string_view s) {
  std::string out;
  size_t n = 0;
  for (unsigned char c : s) {
    if (++n > kMaxShownText) {
      out += "...";
      break;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string describe_endpoint(const Endpoint& e) {
  std::string s = "endpoint \"" + shown(e.address) + "\"";
  if (e.port != 0) s += fmt::format(" port {}", e.port);
  if (!e.id.empty()) s += " id \"" + shown(e.id) + "\"";
  return s;
}

bool safe_name_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The name becomes part of runtime commands and config lines, so only a safe charset survives.
// When anything had to change (or be cut), a hash of the original keeps distinct ids distinct and
// the same id always maps to the same name.
std::string make_name(const std::string& prefix, const std::string& body, bool force_hash = false) {
  std::string original = prefix + body;
  std::string name;
  bool altered = false;
  for (unsigned char c : original) {
    if (safe_name_char(c)) {
      name += static_cast<char>(c);
    } else {
      name += '_';
      altered = true;
    }
  }
  if (!altered && !force_hash && name.size() <= kMaxNameLength) return name;
  const std::string suffix = fmt::format("-{:016x}", fnv1a64(original));
  if (name.size() + suffix.size() > kMaxNameLength) name.resize(kMaxNameLength - suffix.size());
  return name + suffix;
}

bool has_forbidden_char(std::string_view s, std::string& why) {
  for (unsigned char c : s) {
    if (c == ' ' || c == '\t') {
      why = "address contains whitespace";
      return true;
    }
    if (c < 0x20 || c == 0x7f) {
      why = "address contains a control character";
      return true;
    }
    if (c == ';') {
      why = "address contains ';'";
      return true;
    }
  }
  return false;
}

// Per (backend, source) memory for "say it once" logging. It lives outside BackendGuard because
// the shared header has no room for it; keyed by names, so it survives guard re-creation on
// config reload (which is what we want: the same bad endpoint is not logged again). An entry
// exists only while it has something to remember (rejects logged, failures counted): at 2,000
// sources that all answer, the map is empty.
struct SourceLogState {
  std::set<std::string> rejected_seen;  // messages logged for the current rejects
  std::unique_ptr<log::FailureReporter> failures;
};

std::mutex g_log_mu;
std::map<std::pair<std::string, std::string>, SourceLogState>& log_states() {
  static std::map<std::pair<std::string, std::string>, SourceLogState> states;
  return states;
}

log::FailureReporter& failure_reporter(const std::string& backend, const std::string& source) {
  auto& st = log_states()[{backend, source}];
  if (!st.failures) {
    st.failures = std::make_unique<log::FailureReporter>(
        kComponent, "backend " + backend + " source " + source);
  }
  return *st.failures;
}

}  // namespace

const char* to_string(Hold hold) {
  switch (hold) {
    case Hold::kNone:
      return "none";
    case Hold::kEmpty:
      return "empty";
    case Hold::kShrink:
      return "shrink";
    case Hold::kGrowth:
      return "growth";
  }
  return "?";
}

Endpoint endpoint_from_text(std::string_view target) {
  Endpoint e;
  auto whole = [&] {
    e.address = std::string(target);
    e.port = 0;
    return e;
  };
  auto parse_port = [&](std::string_view p) -> bool {
    // At most 5 digits: 65536..99999 still reach the guard, which names the bad port.
    if (p.empty() || p.size() > 5) return false;
    std::uint32_t v = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<std::uint32_t>(c - '0');
    }
    e.port = v;
    return true;
  };
  if (!target.empty() && target.front() == '[') {
    const auto close = target.find(']');
    if (close == std::string_view::npos) return whole();
    e.address = std::string(target.substr(1, close - 1));
    std::string_view rest = target.substr(close + 1);
    if (rest.empty()) return e;
    if (rest.front() != ':' || !parse_port(rest.substr(1))) return whole();
    return e;
  }
  const auto first = target.find(':');
  if (first == std::string_view::npos) {
    e.address = std::string(target);
    return e;
  }
  if (target.find(':', first + 1) != std::string_view::npos) {
    return whole();  // unbracketed IPv6: no port can be given this way
  }
  e.address = std::string(target.substr(0, first));
  if (!parse_port(target.substr(first + 1))) return whole();
  return e;
}

Result<ServerSpec> validate_endpoint(const Endpoint& endpoint,
                                     const reconcile::BackendPolicy& policy) {
  const std::string who = describe_endpoint(endpoint);
  std::string why;
  if (endpoint.address.empty()) return Error::invalid(who + ": address is empty");
  if (has_forbidden_char(endpoint.address, why)) return Error::invalid(who + ": " + why);

  std::string addr = endpoint.address;
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') {
    addr = addr.substr(1, addr.size() - 2);
  }
  if (addr.find('%') != std::string::npos) {
    return Error::invalid(who + ": IPv6 zone ids are not supported");
  }
  std::string canonical;
  char text[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    if (::inet_ntop(AF_INET, &v4, text, sizeof text) == nullptr) {
      return Error::invalid(who + ": cannot format the address");
    }
    canonical = text;
  } else if (::inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    if (::inet_ntop(AF_INET6, &v6, text, sizeof text) == nullptr) {
      return Error::invalid(who + ": cannot format the address");
    }
    canonical = text;
  } else {
    return Error::invalid(who +
                          ": address is not an IPv4 or IPv6 literal (hostnames are not resolved)");
  }

  long port = policy.port ? static_cast<long>(*policy.port) : static_cast<long>(endpoint.port);
  if (port == 0) {
    return Error::invalid(who + ": no port (give one in the target or set the backend's port)");
  }
  if (port < 1 || port > 65535) {
    return Error::invalid(who + fmt::format(": port {} is out of range 1..65535", port));
  }

  long weight = endpoint.weight ? *endpoint.weight : (policy.weight ? *policy.weight : 1);
  if (weight < 0 || weight > 256) {
    return Error::invalid(who + fmt::format(": weight {} is out of range 0..256", weight));
  }

  ServerSpec spec;
  spec.address = canonical;
  spec.port = static_cast<std::uint16_t>(port);
  spec.weight = static_cast<int>(weight);
  spec.backup = endpoint.backup;
  spec.name = make_name(policy.name_prefix,
                        endpoint.id.empty() ? canonical + ":" + std::to_string(port) : endpoint.id);
  return spec;
}

Validated validate_all(const std::vector<Endpoint>& endpoints,
                       const reconcile::BackendPolicy& policy) {
  Validated out;
  std::map<std::string, ServerSpec> by_name;
  for (const auto& e : endpoints) {
    auto spec = validate_endpoint(e, policy);
    if (!spec) {
      out.rejected.push_back(spec.error().message);
      continue;
    }
    auto [it, inserted] = by_name.emplace(spec->name, *spec);
    if (!inserted && (it->second.address != spec->address || it->second.port != spec->port)) {
      // A different server under the same name (ids that differ only in characters the
      // sanitiser replaced, or a hostile id that spells another's name): keep both.
      const std::string body = (e.id.empty() ? std::string() : e.id) + "@" + spec->address + ":" +
                               std::to_string(spec->port);
      std::string other = make_name(policy.name_prefix, body, /*force_hash=*/true);
      out.renamed.push_back(fmt::format(
          "{}:{} (id '{}') has the server name '{}' of {}:{} after sanitising; named '{}'",
          spec->address, spec->port, os::printable(e.id, 80), spec->name, it->second.address,
          it->second.port, other));
      spec->name = std::move(other);
      by_name.emplace(spec->name, std::move(*spec));
    }
  }
  out.servers.reserve(by_name.size());
  for (auto& [name, spec] : by_name) out.servers.push_back(std::move(spec));
  return out;
}

BackendGuard::BackendGuard(reconcile::BackendPolicy policy, std::vector<std::string> source_names,
                           const Clock& clock, Metrics* metrics)
    : policy_(std::move(policy)), clock_(clock), stats_(metrics ? *metrics : Metrics::global()) {
  for (auto& n : source_names) {
    SourceState st;
    st.name = std::move(n);
    sources_.push_back(std::move(st));
  }
  last_good_.resize(sources_.size());
  stats_.backend_held.set({policy_.name}, 0);
}

void BackendGuard::set_from_state(size_t source_index, bool from_state) {
  if (source_index >= sources_.size()) return;
  sources_[source_index].from_state = from_state;
  if (from_state) {
    // Serving a saved set is not the source being healthy: it has not answered yet.
    sources_[source_index].failing = true;
    if (sources_[source_index].last_error.empty()) {
      sources_[source_index].last_error = "no answer yet";
    }
  }
  stats_.source_from_state.set({policy_.name, sources_[source_index].name}, from_state ? 1 : 0);
}

bool BackendGuard::on_snapshot(size_t source_index, const Result<std::vector<Endpoint>>& snapshot) {
  return accept(source_index, snapshot, false);
}

bool BackendGuard::restore(size_t source_index, const std::vector<Endpoint>& endpoints) {
  if (source_index >= sources_.size()) return false;
  const bool changed = accept(source_index, endpoints, true);
  set_from_state(source_index, true);
  return changed;
}

bool BackendGuard::accept(size_t source_index, const Result<std::vector<Endpoint>>& snapshot,
                          bool restored) {
  if (source_index >= sources_.size()) {
    log::error(kComponent, "backend {}: snapshot for unknown source #{}", policy_.name,
               source_index);
    return false;
  }
  SourceState& st = sources_[source_index];

  if (!snapshot.ok()) {
    st.failing = true;
    st.last_error = snapshot.error().message;
    // reason = the error kind: unavailable (down, timeout), invalid (garbage, bad file), refused…
    stats_.source_errors_total.inc({policy_.name, st.name, to_string(snapshot.error().kind)});
    std::lock_guard lock(g_log_mu);
    failure_reporter(policy_.name, st.name)
        .failure(snapshot.error().message + " (keeping the last good set)");
    return false;
  }

  Validated v = validate_all(*snapshot, policy_);
  {
    std::lock_guard lock(g_log_mu);
    auto& states = log_states();
    const auto key = std::make_pair(policy_.name, st.name);
    auto found = states.find(key);
    // A set from the state file is not the source answering: its failures stay counted, and
    // "recovered after N failure(s)" is said when it really answers (#16, B).
    if (found != states.end() && found->second.failures && !restored) {
      found->second.failures->success();
    }
    static const SourceLogState kNothingSeen;
    const SourceLogState& ls = found != states.end() ? found->second : kNothingSeen;
    std::set<std::string> now(v.rejected.begin(), v.rejected.end());
    for (const auto& msg : now) {
      if (!ls.rejected_seen.count(msg)) {
        log::warn(kComponent, "backend {} source {}: rejected {}", policy_.name, st.name, msg);
      }
    }
    for (const auto& msg : v.renamed) {
      if (now.insert("renamed: " + msg).second && !ls.rejected_seen.count("renamed: " + msg)) {
        log::warn(kComponent, "backend {} source {}: {}", policy_.name, st.name, msg);
      }
    }
    // Forget messages that are no longer current, so a reject that comes back is said again.
    const bool counting = found != states.end() && found->second.failures &&
                          found->second.failures->failing();
    if (!now.empty()) {
      states[key].rejected_seen = std::move(now);
    } else if (found != states.end() && !counting) {
      states.erase(found);
    } else if (found != states.end()) {
      found->second.rejected_seen.clear();
    }
  }
  if (!v.rejected.empty()) {
    stats_.endpoints_rejected_total.inc({policy_.name, st.name},
                                        static_cast<double>(v.rejected.size()));
  }
  st.delivered = true;
  if (!restored) {  // a restored set keeps the source's failure and its last real success
    if (st.from_state) set_from_state(source_index, false);
    st.failing = false;
    st.last_error.clear();
    st.last_success = clock_.now();
  }
  st.endpoints = v.servers.size();
  st.rejected = v.rejected.size();
  st.rejected_messages.assign(
      v.rejected.begin(), v.rejected.begin() + static_cast<std::ptrdiff_t>(
                                                   std::min(v.rejected.size(), kMaxRejectedShown)));
  last_good_[source_index] = std::move(v.servers);

  if (!all_delivered()) return false;
  return consider(candidate());
}

bool BackendGuard::evaluate() {
  if (hold_ == Hold::kNone || !all_delivered()) return false;
  const auto deadline = next_deadline();
  if (!deadline || clock_.now() < *deadline) return false;
  log::warn(kComponent,
            "backend {}: applying the held {} snapshot ({} servers) after it stayed unchanged "
            "for {} ms",
            policy_.name, to_string(hold_), held_.size(), policy_.safety.confirm_after.count());
  const bool changed = desired_ != held_ || !applied_once_;
  desired_ = SharedList<ServerSpec>(std::move(held_));
  held_.clear();
  hold_ = Hold::kNone;
  applied_once_ = true;
  stats_.backend_held.set({policy_.name}, 0);
  return changed;
}

Result<bool> BackendGuard::confirm_held() {
  if (hold_ == Hold::kNone) return Error::not_yet("backend " + policy_.name + ": nothing is held");
  if (hold_ == Hold::kGrowth) {
    return Error::refused("backend " + policy_.name + ": a snapshot above safety.max_servers (" +
                          std::to_string(policy_.safety.max_servers) +
                          ") cannot be confirmed; raise max_servers instead");
  }
  log::warn(kComponent, "backend {}: held {} snapshot ({} servers) confirmed by an operator",
            policy_.name, to_string(hold_), held_.size());
  stats_.snapshots_resolved_total.inc({policy_.name, "confirm"});
  const bool changed = desired_ != held_ || !applied_once_;
  desired_ = SharedList<ServerSpec>(std::move(held_));
  held_.clear();
  hold_ = Hold::kNone;
  rejected_.reset();
  applied_once_ = true;
  stats_.backend_held.set({policy_.name}, 0);
  return changed;
}

Result<bool> BackendGuard::reject_held() {
  if (hold_ == Hold::kNone) return Error::not_yet("backend " + policy_.name + ": nothing is held");
  log::warn(kComponent,
            "backend {}: held {} snapshot ({} servers) rejected by an operator; keeping {} "
            "servers until discovery changes",
            policy_.name, to_string(hold_), held_.size(), desired_.size());
  stats_.snapshots_resolved_total.inc({policy_.name, "reject"});
  rejected_ = std::move(held_);
  held_.clear();
  hold_ = Hold::kNone;
  stats_.backend_held.set({policy_.name}, 0);
  return false;
}

bool BackendGuard::all_delivered() const {
  return std::all_of(sources_.begin(), sources_.end(),
                     [](const SourceState& s) { return s.delivered; });
}

bool BackendGuard::ready() const {
  // A held first set leaves the backend untouched (not emptied, not filled): before, a daemon
  // restarted while discovery answered empty removed every managed server.
  // Nor does a rejected first set.
  if (!applied_once_ && (hold_ != Hold::kNone || rejected_)) return false;
  return all_delivered();
}

std::optional<SteadyTime> BackendGuard::next_deadline() const {
  // An empty set is never confirmed by waiting (only allow_empty lets it through), nor one above
  // max_servers.
  if (hold_ == Hold::kNone || hold_ == Hold::kEmpty || hold_ == Hold::kGrowth) return std::nullopt;
  if (policy_.safety.confirm_after.count() <= 0) return std::nullopt;
  return held_since_ + policy_.safety.confirm_after;
}

std::vector<ServerSpec> BackendGuard::candidate() const {
  std::map<std::string, const ServerSpec*> by_name;
  for (const auto& set : last_good_) {
    for (const auto& s : set) by_name.emplace(s.name, &s);  // first source wins
  }
  std::vector<ServerSpec> out;
  out.reserve(by_name.size());
  for (const auto& [name, s] : by_name) out.push_back(*s);
  return out;
}

bool BackendGuard::consider(std::vector<ServerSpec> cand) {
  if (rejected_) {
    if (*rejected_ == cand) return false;  // the operator said no to exactly this set
    rejected_.reset();
  }
  Hold reason = Hold::kNone;
  size_t removed = 0;
  if (policy_.safety.max_servers > 0 && cand.size() > policy_.safety.max_servers) {
    reason = Hold::kGrowth;
  } else if (cand.empty()) {
    // Empty first set, or emptying a non-empty backend: only with allow_empty.
    if (!policy_.safety.allow_empty && (!applied_once_ || !desired_.empty())) reason = Hold::kEmpty;
  } else if (applied_once_ && !desired_.empty()) {
    // Size-based: a bad minute in discovery loses servers; a rolling replacement (same count,
    // new members) is not suspicious and must not wait for confirm_after.
    removed = cand.size() < desired_.size() ? desired_.size() - cand.size() : 0;
    const double fraction = static_cast<double>(removed) / static_cast<double>(desired_.size());
    if (fraction > policy_.safety.max_remove_fraction) reason = Hold::kShrink;
  }

  if (reason == Hold::kNone) {
    if (hold_ != Hold::kNone) {
      log::info(kComponent, "backend {}: held {} snapshot replaced by an acceptable one",
                policy_.name, to_string(hold_));
      stats_.backend_held.set({policy_.name}, 0);
    }
    hold_ = Hold::kNone;
    held_.clear();
    const bool changed = !applied_once_ || cand != desired_;
    desired_ = SharedList<ServerSpec>(std::move(cand));
    applied_once_ = true;
    return changed;
  }

  if (hold_ == reason && held_ == cand) return false;  // same suspicious set: keep waiting
  hold_ = reason;
  held_ = std::move(cand);
  held_since_ = clock_.now();
  stats_.snapshots_held_total.inc({policy_.name, to_string(reason)});
  stats_.backend_held.set({policy_.name}, 1);
  if (reason == Hold::kGrowth) {
    log::warn(kComponent,
              "backend {}: holding back a snapshot of {} servers, more than safety.max_servers "
              "{} (keeping {} servers); raise max_servers if the backend really is that large",
              policy_.name, held_.size(), policy_.safety.max_servers, desired_.size());
  } else if (reason == Hold::kEmpty) {
    log::warn(kComponent,
              "backend {}: holding back an empty server set (keeping {} servers); set "
              "safety.allow_empty to accept empty sets",
              policy_.name, desired_.size());
  } else {
    log::warn(
        kComponent,
        "backend {}: holding back a snapshot that shrinks it from {} to {} servers (more than "
        "max_remove_fraction {} at once){}",
        policy_.name, desired_.size(), desired_.size() - removed,
        policy_.safety.max_remove_fraction,
        policy_.safety.confirm_after.count() > 0
            ? fmt::format("; applied if unchanged for {}s",
                          std::chrono::duration<double>(policy_.safety.confirm_after).count())
            : std::string());
  }
  return false;
}

}  // namespace ep::discovery
