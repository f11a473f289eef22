#pragma once
// An in-memory HAProxy backend model implementing reconcile::Instance, with the same rules the
// real runtime applier relies on (servers added in maintenance, del only in maint without
// sessions, slots re-addressed). Tests drive it and inspect its state.

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "reconcile/applier.h"

namespace ep::testing {

class FakeInstance : public reconcile::Instance {
 public:
  explicit FakeInstance(std::string name = "fake") : name_(std::move(name)) {}

  std::string name() const override { return name_; }

  Result<reconcile::InstanceInfo> info() override {
    std::lock_guard lock(mu_);
    threads.insert(std::this_thread::get_id());
    if (down) return Error::unavailable("connect: connection refused");
    reconcile::InstanceInfo i;
    i.version = "2.6.12";
    i.major = 2;
    i.minor = 6;
    i.pid = pid;
    i.start_time_sec = start_time;
    return i;
  }

  Result<std::vector<ActualBackend>> observe(const std::vector<std::string>& names) override {
    std::lock_guard lock(mu_);
    threads.insert(std::this_thread::get_id());
    if (down) return Error::unavailable("connect: connection refused");
    ++observes;
    observed.push_back(names);
    std::vector<ActualBackend> out;
    for (const auto& n : names) {
      ActualBackend b;
      b.backend = n;
      auto it = backends.find(n);
      if (it != backends.end()) {
        b.exists = true;
        b.algorithm = algorithm;
        b.servers = it->second;
      }
      out.push_back(std::move(b));
    }
    return out;
  }

  Result<std::vector<ActualBackend>> observe_all(const std::vector<std::string>& names) override {
    {
      std::lock_guard lock(mu_);
      ++observe_alls;
    }
    return observe(names);
  }
  // Like RuntimeInstance when `states_without_stats`: server statistics (sessions, backup) only
  // for backends with a draining server; otherwise observe_all().
  Result<std::vector<ActualBackend>> observe_states(
      const std::vector<std::string>& names, const std::vector<std::size_t>& held) override {
    {
      std::lock_guard lock(mu_);
      if (!states_without_stats) {
        ++observe_alls;
      } else {
        ++observe_states_calls;
      }
    }
    auto out = observe(names);
    if (!out || !states_without_stats) return out;
    for (auto& b : *out) {
      if (!b.exists || std::any_of(b.servers.begin(), b.servers.end(),
                                   [](const ActualServer& s) { return s.draining(); })) {
        continue;
      }
      b.server_stats = false;
      for (auto& s : b.servers) {
        s.sessions = 0;
        s.backup = false;
      }
    }
    if (!digests) return out;
    // Like RuntimeInstance: a digest of the rows the diff reads; a held one is not "parsed".
    for (std::size_t i = 0; i < out->size(); ++i) {
      ActualBackend& b = (*out)[i];
      if (!b.exists || b.servers.empty()) continue;
      std::size_t h = 0x9e3779b97f4a7c15ULL;
      for (const auto& s : b.servers) {
        for (std::size_t v : {std::hash<std::string>{}(s.name), std::hash<std::string>{}(s.address),
                              std::size_t{s.port}, std::size_t(s.op_state),
                              std::size_t(s.admin_state), std::size_t(s.weight),
                              std::size_t(s.check_state), std::size_t(s.check_result)}) {
          h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        }
      }
      b.rows_digest = h;
      if (i < held.size() && held[i] == h) {
        b.unchanged = true;
        b.servers.clear();
        std::lock_guard lock(mu_);
        ++skipped_backends;
      }
    }
    return out;
  }

  // Like RuntimeInstance when `change_without_stats`: server statistics only for backends with a
  // draining server; otherwise observe().
  Result<std::vector<ActualBackend>> observe_for_change(
      const std::vector<std::string>& names) override {
    if (!change_without_stats) return observe(names);
    {
      std::lock_guard lock(mu_);
      ++observe_for_change_calls;
    }
    auto out = observe(names);
    if (!out) return out;
    for (auto& b : *out) {
      if (!b.exists || std::any_of(b.servers.begin(), b.servers.end(),
                                   [](const ActualServer& s) { return s.draining(); })) {
        continue;
      }
      b.server_stats = false;
      for (auto& s : b.servers) {
        s.sessions = 0;
        s.backup = false;
      }
    }
    return out;
  }

  std::vector<reconcile::ActionResult> apply(const reconcile::Plan& plan,
                                             const reconcile::BackendPolicy& policy) override {
    std::lock_guard lock(mu_);
    threads.insert(std::this_thread::get_id());
    using reconcile::ActionKind;
    using Outcome = reconcile::ActionResult::Outcome;
    std::vector<reconcile::ActionResult> results;
    auto& servers = backends[plan.backend];
    for (const auto& a : plan.actions) {
      log.push_back(std::string(reconcile::to_string(a.kind)) + " " + a.server);
      if (fail_kind && *fail_kind == a.kind) {
        results.push_back({Outcome::kFailed, "No such server."});
        continue;
      }
      auto it = std::find_if(servers.begin(), servers.end(),
                             [&](const ActualServer& s) { return s.name == a.server; });
      switch (a.kind) {
        case ActionKind::kAdd: {
          if (it != servers.end()) {
            results.push_back(
                {Outcome::kFailed, "Already exists a server with the same name in backend."});
            continue;
          }
          ActualServer s;
          s.name = a.server;
          s.address = a.spec.address;
          s.port = a.spec.port;
          s.weight = a.spec.weight;
          s.op_state = 2;
          if (plan.checks) {  // like warm_line: DRAIN + health down until a check passes
            s.admin_state = admin::kForcedDrain;
            s.check_state = 0x02 | 0x04;
            s.op_state = 0;
          }
          servers.push_back(s);
          break;
        }
        case ActionKind::kAssignSlot:
          if (it == servers.end()) {
            results.push_back({Outcome::kFailed, "No such server."});
            continue;
          }
          it->address = a.spec.address;
          it->port = a.spec.port;
          it->weight = a.spec.weight;
          it->admin_state = 0;
          break;
        case ActionKind::kEnable:
        case ActionKind::kUndrain:
          if (it == servers.end()) {
            results.push_back({Outcome::kFailed, "No such server."});
            continue;
          }
          it->admin_state = 0;
          if (a.kind == ActionKind::kEnable && plan.checks) {
            // Like warm_line (and `enable health` in dynamic mode): DRAIN + health down.
            it->admin_state = admin::kForcedDrain;
            it->check_state = 0x02 | 0x04;
            it->op_state = 0;
            it->check_result = 0;
          }
          break;
        case ActionKind::kSetWeight:
          if (it == servers.end()) {
            results.push_back({Outcome::kFailed, "No such server."});
            continue;
          }
          it->weight = a.spec.weight;
          break;
        case ActionKind::kSetAddress:
          if (it == servers.end()) {
            results.push_back({Outcome::kFailed, "No such server."});
            continue;
          }
          it->address = a.spec.address;
          it->port = a.spec.port;
          break;
        case ActionKind::kDrain:
          if (it == servers.end()) {
            results.push_back({Outcome::kFailed, "No such server."});
            continue;
          }
          it->admin_state |= admin::kForcedDrain;
          break;
        case ActionKind::kRemove:
          if (it == servers.end()) {
            results.push_back({Outcome::kFailed, "No such server."});
            continue;
          }
          if (plan.mode == reconcile::BackendMode::kSlots) {
            it->admin_state = admin::kForcedMaint;
            it->address = "127.0.0.1";
            it->port = 1;
            it->sessions = 0;
          } else {
            it->admin_state = admin::kForcedMaint;
            if (it->sessions > 0 && !kill_sessions) {
              results.push_back({Outcome::kNotYet,
                                 "Server still has connections attached to it, cannot remove it."});
              continue;
            }
            servers.erase(it);
          }
          break;
      }
      results.push_back({Outcome::kDone, ""});
    }
    return results;
  }

  // Test helpers (lock-free callers must not race the reconciler thread: use with_lock).
  template <typename F>
  auto with_lock(F f) {
    std::lock_guard lock(mu_);
    return f();
  }
  std::vector<std::string> names(const std::string& backend) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& s : backends[backend]) out.push_back(s.name);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::mutex mu_;
  std::string name_;
  bool down = false;
  bool kill_sessions = true;  // shutdown sessions before del (like the runtime applier)
  long pid = 100;
  long start_time = 1000;
  std::string algorithm = "roundrobin";
  std::optional<reconcile::ActionKind> fail_kind;
  int observes = 0;
  int observe_alls = 0;               // of which whole reads
  bool states_without_stats = false;  // observe_states() skips stats (like RuntimeInstance)
  int observe_states_calls = 0;       // whole reads without stats (when states_without_stats)
  bool digests = false;               // observe_states() digests rows and skips held ones
  int skipped_backends = 0;           // backends returned unchanged (held digest)
  bool change_without_stats = false;  // observe_for_change() skips stats (like RuntimeInstance)
  int observe_for_change_calls = 0;   // light targeted reads (when change_without_stats)
  std::vector<std::vector<std::string>> observed;  // backends asked, per observe()
  std::set<std::thread::id> threads;               // every thread that called info/observe/apply
  std::map<std::string, std::vector<ActualServer>> backends;
  std::vector<std::string> log;
};

}  // namespace ep::testing
