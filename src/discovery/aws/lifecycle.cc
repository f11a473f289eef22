#include "discovery/aws/lifecycle.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"
#include "core/metrics.h"
#include "discovery/aws/requests.h"

namespace ep::aws {

namespace {

constexpr std::string_view kLog = "aws_lifecycle";
constexpr size_t kDoneMemory = 1000;

bool terminating(const AsgMessage& m) {
  return m.lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING";
}

}  // namespace

ServerState summarize(const ServerStateView& view, std::string_view backend,
                      std::string_view address, std::uint16_t port) {
  const std::vector<InstanceServers> answer = view.servers_at(backend, address, port);
  std::vector<HaproxyView> instances;
  instances.reserve(answer.size());
  for (const auto& inst : answer) {
    instances.push_back({inst.reachable, &inst.servers, inst.unsettled == 0});
  }
  return summarize(instances, address, port);
}

ServerState summarize(const std::vector<HaproxyView>& instances, std::string_view address,
                      std::uint16_t port) {
  ServerState s;
  for (const auto& inst : instances) {
    if (!inst.reachable) {
      ++s.unreachable;
      continue;
    }
    ++s.haproxy_instances;
    if (!inst.settled) ++s.unsettled;
    if (inst.servers == nullptr) continue;
    for (const auto& srv : *inst.servers) {
      if (srv.address != address || (port != 0 && srv.port != port)) continue;
      ++s.instances_present;
      s.sessions += srv.sessions;
      if (!srv.in_maint() && !srv.draining()) {
        ++s.instances_active;
        if (srv.op_state == 2) ++s.instances_up;
      }
      break;  // one server per address:port in a managed backend
    }
  }
  return s;
}

LifecycleWorker::LifecycleWorker(AsgOptions options, Deps deps)
    : options_(std::move(options)), deps_(std::move(deps)), hooks_(options_.hooks()) {
}

void LifecycleWorker::note_error() {
  {
    std::lock_guard lock(mu_);
    ++stats_.errors;
  }
  metrics_.errors_total.inc({deps_.backend});
}

int LifecycleWorker::visibility_seconds(const Tracked& t) const {
  // Long enough to survive one missed heartbeat (a slow or retried call), at least 5 s. Short
  // enough that after a restart the message (and with it the pending action) comes back soon. A
  // redelivery while we still work on it is harmless: it joins the tracked action by token.
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(t.hook.heartbeat_interval * 2);
  return static_cast<int>(std::clamp<long>(s.count(), 5, 43200));
}

bool LifecycleWorker::add(const AsgMessage& action, const SqsMessage& message) {
  const bool is_term = action.lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING";
  const bool is_launch = action.lifecycle_transition == "autoscaling:EC2_INSTANCE_LAUNCHING";
  if (!is_term && !is_launch) return false;
  std::optional<LifecycleHookOptions> hook;
  for (const auto& h : hooks_) {
    if (h.name == action.lifecycle_hook_name && (is_term ? h.terminating() : h.launching())) {
      hook = h;
    }
  }
  if (!hook) {
    for (const auto& h : hooks_) {
      if (h.name == action.lifecycle_hook_name) {
        log::warn(kLog,
                  "{}: hook '{}' is configured as {} but AWS sent {} for {}; not ours to "
                  "complete",
                  deps_.backend, h.name, to_string(h.transition), action.lifecycle_transition,
                  action.instance_id);
      }
    }
    return false;
  }
  std::lock_guard lock(mu_);
  const std::string& token = action.lifecycle_action_token;
  if (done_.count(token) != 0) {
    // Completed already: this is a duplicate delivery; let the caller delete it.
    ++stats_.duplicates;
    log::info(kLog, "{} {} (message {}): already completed; deleting the duplicate",
              action.lifecycle_transition, action.instance_id, message.message_id);
    return false;
  }
  auto it = tracked_.find(token);
  if (it != tracked_.end()) {
    ++stats_.duplicates;
    it->second.receipts[message.message_id] = message.receipt_handle;
    it->second.visibility_set = false;  // the new receipt needs its visibility extended too
    return true;
  }
  Tracked t;
  t.action = action;
  t.hook = *hook;
  t.receipts[message.message_id] = message.receipt_handle;
  t.started = deps_.now();
  t.next_heartbeat = t.started + t.hook.heartbeat_interval;
  tracked_.emplace(token, std::move(t));
  ++stats_.tracked;
  {
    const Tracked& added = tracked_.at(token);
    discovery::HookInFlight h;
    h.instance = added.action.instance_id;
    h.hook = added.action.lifecycle_hook_name;
    h.transition = added.action.lifecycle_transition;
    h.started = added.started;
    h.deadline = added.started + (terminating(added.action) ? added.hook.drain_timeout
                                                            : added.hook.launch_timeout);
    h.next_heartbeat = added.next_heartbeat;
    h.progress = "waiting for the first check";
    in_flight_.push_back(std::move(h));  // mu_ is held
  }
  log::info(kLog, "{}: {} {} group {} hook {}: waiting until {} on every HAProxy", deps_.backend,
            action.lifecycle_transition, action.instance_id, action.auto_scaling_group_name,
            action.lifecycle_hook_name, terminating(action) ? "drained" : "healthy");
  return true;
}

std::vector<discovery::HookInFlight> LifecycleWorker::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

void LifecycleWorker::publish_in_flight() {
  std::vector<discovery::HookInFlight> out;
  for (const auto& [token, t] : tracked_) {
    discovery::HookInFlight h;
    h.instance = t.action.instance_id;
    h.hook = t.action.lifecycle_hook_name;
    h.transition = t.action.lifecycle_transition;
    h.started = t.started;
    h.deadline =
        t.started + (terminating(t.action) ? t.hook.drain_timeout : t.hook.launch_timeout);
    h.next_heartbeat = t.next_heartbeat;
    h.progress = t.progress.empty() ? "waiting for the first check" : t.progress;
    out.push_back(std::move(h));
  }
  std::lock_guard lock(mu_);
  in_flight_ = std::move(out);
}

LifecycleWorker::~LifecycleWorker() {
  for (auto& [token, t] : tracked_) release_drain(t);
}

void LifecycleWorker::hold_drain(Tracked& t, SteadyTime now) {
  auto where = deps_.address_of(t.action.instance_id);
  if (!where) return;
  // Until the hook's drain_timeout (plus a check interval, so that our own completion comes
  // first); a hold we fail to release (crash) ends by itself then.
  const SteadyTime until = t.started + t.hook.drain_timeout + options_.hook_check_interval;
  if (until <= now) return;
  deps_.server_states->hold_drain(deps_.backend, where->address,
                                  static_cast<std::uint16_t>(where->port), until);
  t.held = *where;
  log::debug(kLog, "{}: holding the drain of {} ({}) until its hook's drain_timeout", deps_.backend,
             t.action.instance_id, where->address);
}

void LifecycleWorker::release_drain(Tracked& t) {
  if (!t.held || deps_.server_states == nullptr) return;
  deps_.server_states->release_drain(deps_.backend, t.held->address,
                                     static_cast<std::uint16_t>(t.held->port));
  t.held.reset();
}

size_t LifecycleWorker::pending() const {
  std::lock_guard lock(mu_);
  return tracked_.size();
}

LifecycleStats LifecycleWorker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

runtime::Co<bool> LifecycleWorker::complete(Tracked& t, LifecycleActionResult result,
                                            std::string why) {
  LifecycleActionRef ref{t.action.lifecycle_hook_name, t.action.auto_scaling_group_name,
                         t.action.lifecycle_action_token, t.action.instance_id};
  auto params = complete_lifecycle_action_params(ref, result);
  if (!params) {
    log::warn(kLog, "{}: {}", deps_.backend, params.error().message);
    co_return true;  // can never be sent; drop it rather than loop forever
  }
  const char* what = result == LifecycleActionResult::kContinue ? "CONTINUE" : "ABANDON";
  auto r = co_await deps_.client->call_query(AwsService::kAutoScaling, deps_.autoscaling,
                                             "CompleteLifecycleAction", *params);
  if (!r) {
    // AWS answers ValidationError when the action is no longer pending (completed by someone
    // else, timed out, instance gone): nothing left to do.
    if (r.error().message.find("ValidationError") != std::string::npos) {
      log::warn(kLog, "{}: CompleteLifecycleAction {} for {}: {}; treating the action as over",
                deps_.backend, what, t.action.instance_id, r.error().message);
      co_return true;
    }
    note_error();
    log::warn(kLog, "{}: CompleteLifecycleAction {} for {} failed (retrying): {}", deps_.backend,
              what, t.action.instance_id, r.error().message);
    co_return false;
  }
  {
    std::lock_guard lock(mu_);
    if (result == LifecycleActionResult::kContinue) {
      ++stats_.completed_continue;
    } else {
      ++stats_.completed_abandon;
    }
  }
  metrics_.completed_total.inc(
      {deps_.backend, terminating(t.action) ? "terminating" : "launching", what});
  log::info(kLog, "{}: {} {}: CompleteLifecycleAction {} ({})", deps_.backend,
            t.action.lifecycle_transition, t.action.instance_id, what, why);
  co_return true;
}

runtime::Co<void> LifecycleWorker::delete_messages(Tracked& t) {
  for (const auto& [id, receipt] : t.receipts) {
    auto del = co_await deps_.client->call_sqs(deps_.sqs, "DeleteMessage",
                                               sqs_delete_message_body(deps_.queue_url, receipt));
    if (!del) {
      note_error();
      log::warn(kLog, "message {}: {}", id, del.error().message);
    }
  }
}

runtime::Co<void> LifecycleWorker::heartbeat(Tracked& t, SteadyTime now) {
  if (now >= t.next_heartbeat) {
    LifecycleActionRef ref{t.action.lifecycle_hook_name, t.action.auto_scaling_group_name,
                           t.action.lifecycle_action_token, t.action.instance_id};
    if (auto params = record_lifecycle_action_heartbeat_params(ref)) {
      auto r = co_await deps_.client->call_query(AwsService::kAutoScaling, deps_.autoscaling,
                                                 "RecordLifecycleActionHeartbeat", *params);
      if (r) {
        {
          std::lock_guard lock(mu_);
          ++stats_.heartbeats;
        }
        metrics_.heartbeats_total.inc({deps_.backend});
        log::debug(kLog, "{}: heartbeat for {}", deps_.backend, t.action.instance_id);
      } else {
        note_error();
        log::warn(kLog, "{}: RecordLifecycleActionHeartbeat for {}: {}", deps_.backend,
                  t.action.instance_id, r.error().message);
      }
    }
    t.next_heartbeat = now + t.hook.heartbeat_interval;
    t.visibility_set = false;  // renew together with the heartbeat
  }
  if (!t.visibility_set) {
    bool all = true;
    for (const auto& [id, receipt] : t.receipts) {
      auto body =
          sqs_change_message_visibility_body(deps_.queue_url, receipt, visibility_seconds(t));
      if (!body) continue;
      auto r = co_await deps_.client->call_sqs(deps_.sqs, "ChangeMessageVisibility", *body);
      if (r) {
        std::lock_guard lock(mu_);
        ++stats_.visibility_changes;
      } else {
        all = false;
        note_error();
        log::warn(kLog, "message {}: ChangeMessageVisibility: {}", id, r.error().message);
      }
    }
    t.visibility_set = all;
  }
}

runtime::Co<void> LifecycleWorker::step() {
  // Runs on the loop; add() runs there too, between this coroutine's awaits (a std::map insert
  // keeps `it` valid). mu_ guards only what other threads read: stats_ and tracked_'s size.
  const ServerStateView* view = deps_.server_states;
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    Tracked& t = it->second;
    const SteadyTime now = deps_.now();
    const auto elapsed = now - t.started;
    const bool term = terminating(t.action);
    std::optional<LifecycleActionResult> result;
    std::string why;

    std::optional<ServerState> state;
    std::optional<ep::Endpoint> where =
        deps_.address_of ? deps_.address_of(t.action.instance_id) : std::nullopt;
    if (view != nullptr && where) {
      state =
          summarize(*view, deps_.backend, where->address, static_cast<std::uint16_t>(where->port));
    } else if (view == nullptr && !t.warned_no_view) {
      t.warned_no_view = true;
      log::warn(kLog, "{}: no HAProxy state available for {} (not running as a daemon?)",
                deps_.backend, t.action.instance_id);
    } else if (view != nullptr && !where && !t.warned_no_address) {
      t.warned_no_address = true;
      log::info(kLog, "{}: address of {} not known from the polls", deps_.backend,
                t.action.instance_id);
    }

    if (term && where && view != nullptr && !t.held) hold_drain(t, now);
    if (term) {
      if (view == nullptr) {
        result = LifecycleActionResult::kContinue;
        why = "no HAProxy state to wait for";
      } else if (!where) {
        // Never served by this source (no address known): nothing to drain.
        result = LifecycleActionResult::kContinue;
        why = "instance was not a server";
      } else if (state->drained()) {
        result = LifecycleActionResult::kContinue;
        why = fmt::format("drained on {} HAProxy instance(s)", state->haproxy_instances);
      } else if (elapsed >= t.hook.drain_timeout) {
        result = t.hook.on_drain_timeout == HookResult::kAbandon ? LifecycleActionResult::kAbandon
                                                                 : LifecycleActionResult::kContinue;
        why = fmt::format("drain_timeout with {} session(s) left", state->sessions);
      }
    } else {
      if (state && state->healthy()) {
        result = LifecycleActionResult::kContinue;
        why = fmt::format("UP on {} HAProxy instance(s)", state->haproxy_instances);
      } else if (elapsed >= t.hook.launch_timeout) {
        result = LifecycleActionResult::kAbandon;
        why = "launch_timeout: not UP on every HAProxy";
      }
    }

    if (state) {
      t.progress = term ? fmt::format("{} session(s), active on {} of {} HAProxy", state->sessions,
                                      state->instances_active, state->haproxy_instances)
                        : fmt::format("UP on {} of {} HAProxy", state->instances_up,
                                      state->haproxy_instances);
    } else {
      t.progress = view == nullptr ? "no HAProxy state" : "address not known from the polls";
    }
    if (result && co_await complete(t, *result, why)) {
      // Over: forget it before the deletes (which await), so that a duplicate received meanwhile
      // counts as completed and pending() no longer counts it, as while a step held the lock.
      release_drain(t);
      Tracked over = std::move(t);
      if (done_.insert(it->first).second) done_order_.push_back(it->first);
      while (done_order_.size() > kDoneMemory) {
        done_.erase(done_order_.front());
        done_order_.pop_front();
      }
      {
        std::lock_guard lock(mu_);
        it = tracked_.erase(it);
      }
      co_await delete_messages(over);
      continue;
    }
    if (term && state && state->instances_active > 0 && now >= t.next_heartbeat && deps_.repoll) {
      deps_.repoll();
    }
    co_await heartbeat(t, now);
    ++it;
  }
  publish_in_flight();
  std::lock_guard lock(mu_);
  metrics_.pending.set({deps_.backend}, static_cast<double>(tracked_.size()));
}

}  // namespace ep::aws
