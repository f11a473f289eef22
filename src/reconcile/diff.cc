#include "reconcile/diff.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "reconcile/applier.h"

namespace ep::reconcile {

const char* to_string(ActionKind kind) {
  switch (kind) {
    case ActionKind::kAdd:
      return "add";
    case ActionKind::kAssignSlot:
      return "assign-slot";
    case ActionKind::kEnable:
      return "enable";
    case ActionKind::kUndrain:
      return "undrain";
    case ActionKind::kSetWeight:
      return "set-weight";
    case ActionKind::kSetAddress:
      return "set-address";
    case ActionKind::kDrain:
      return "drain";
    case ActionKind::kRemove:
      return "remove";
  }
  return "?";
}

const char* to_string(Reason reason) {
  switch (reason) {
    case Reason::kNewInDiscovery:
      return "new_in_discovery";
    case Reason::kSlotInMaintenance:
      return "slot_in_maintenance";
    case Reason::kInMaintenance:
      return "in_maintenance";
    case Reason::kHealthCheckPassed:
      return "health_check_passed";
    case Reason::kBackInDiscovery:
      return "back_in_discovery";
    case Reason::kFoundDraining:
      return "found_draining";
    case Reason::kWeightChanged:
      return "weight_changed";
    case Reason::kAddressChanged:
      return "address_changed";
    case Reason::kGoneFromDiscovery:
      return "gone_from_discovery";
    case Reason::kGoneInMaintenance:
      return "gone_in_maintenance";
    case Reason::kGoneDrainDisabled:
      return "gone_drain_disabled";
    case Reason::kDrained:
      return "drained";
    case Reason::kDrainTimeout:
      return "drain_timeout";
    case Reason::kStaleSlotAddress:
      return "stale_slot_address";
    case Reason::kDuplicateSlot:
      return "duplicate_slot";
  }
  return "?";
}

std::string reason_text(const Action& a) {
  switch (a.reason) {
    case Reason::kNewInDiscovery:
      return "new in discovery";
    case Reason::kSlotInMaintenance:
      return "in discovery, slot in maintenance";
    case Reason::kInMaintenance:
      return "in discovery but in maintenance";
    case Reason::kHealthCheckPassed:
      return "new server passed its health check";
    case Reason::kBackInDiscovery:
      return "back in discovery while draining";
    case Reason::kFoundDraining:
      return "in discovery, found draining";
    case Reason::kWeightChanged:
      return "weight " + a.detail;
    case Reason::kAddressChanged:
      return "address changed from " + a.detail;
    case Reason::kGoneFromDiscovery:
      return "gone from discovery";
    case Reason::kGoneInMaintenance:
      return "gone from discovery (already in maintenance)";
    case Reason::kGoneDrainDisabled:
      return "gone from discovery (drain disabled)";
    case Reason::kDrained:
      return "drained (no sessions left)";
    case Reason::kDrainTimeout:
      return "drain timeout reached with " + a.detail + " session(s) left";
    case Reason::kStaleSlotAddress:
      return "free slot with a stale address";
    case Reason::kDuplicateSlot:
      return "duplicate slot for " + a.detail;
  }
  return "?";
}

namespace {

// Why a desired server found in DRAIN with its health check passed is set ready.
Reason undrain_reason(const std::string& name, const DrainOrigins& origins) {
  if (origins.warming.count(name)) return Reason::kHealthCheckPassed;
  if (origins.removing.count(name)) return Reason::kBackInDiscovery;
  return Reason::kFoundDraining;
}

std::string weight_change(int have, int want) {
  return std::to_string(have) + " -> " + std::to_string(want);
}

// static-rr cannot change weights at runtime except to 0% or 100% (the applier falls back to
// that): there only "zero or not" can differ, else the same set-weight would be re-sent forever.
bool weight_differs(const ActualBackend& actual, int have, int want) {
  if (actual.algorithm == "static-rr") return (have == 0) != (want == 0);
  return have != want;
}

std::string address_port(const std::string& address, int port) {
  return address + "|" + std::to_string(port);
}

bool is_placeholder(const ActualServer& s) {
  return s.address == kSlotPlaceholderAddr && s.port == kSlotPlaceholderPort;
}

// The removal step for a managed server that is no longer desired.
void plan_removal(const ActualServer& s, const BackendPolicy& policy, const DrainBook& drains,
                  SteadyTime now, const DrainOrigins& origins, Plan& plan,
                  std::vector<Action>& removals) {
  const bool held = origins.held.count(s.name) != 0;
  Action a{ActionKind::kRemove, s.name, {}, Reason::kGoneInMaintenance, {}};
  if (s.in_maint()) {
    removals.push_back(std::move(a));
    return;
  }
  if (policy.drain_timeout.count() == 0 && !held) {
    a.reason = Reason::kGoneDrainDisabled;
    removals.push_back(std::move(a));
    return;
  }
  if (!s.draining()) {
    removals.push_back({ActionKind::kDrain, s.name, {}, Reason::kGoneFromDiscovery, {}});
    return;
  }
  if (s.sessions == 0) {
    a.reason = Reason::kDrained;
    removals.push_back(std::move(a));
    return;
  }
  auto it = drains.find(s.name);
  if (!held && it != drains.end() && now - it->second >= policy.drain_timeout) {
    a.reason = Reason::kDrainTimeout;
    a.detail = std::to_string(s.sessions);
    removals.push_back(std::move(a));
    return;
  }
  plan.waiting.push_back(s.name);
}

void plan_dynamic(const DesiredBackend& desired, const ActualBackend& actual,
                  const BackendPolicy& policy, const DrainBook& drains, SteadyTime now,
                  const DrainOrigins& origins, Plan& plan) {
  std::map<std::string, const ActualServer*> managed;
  for (const auto& s : actual.servers) {
    if (is_managed(s, policy, BackendMode::kDynamic)) managed.emplace(s.name, &s);
  }
  std::map<std::string, const ServerSpec*> wanted;
  for (const auto& spec : desired.servers) wanted.emplace(spec.name, &spec);

  std::vector<Action> removals, additions, updates;
  for (const auto& [name, s] : managed) {
    if (!wanted.count(name)) plan_removal(*s, policy, drains, now, origins, plan, removals);
  }
  for (const auto& [name, spec] : wanted) {
    auto it = managed.find(name);
    if (it == managed.end()) {
      additions.push_back({ActionKind::kAdd, name, *spec, Reason::kNewInDiscovery, {}});
      continue;
    }
    const ActualServer& s = *it->second;
    if (s.address != spec->address || s.port != spec->port) {
      updates.push_back({ActionKind::kSetAddress, name, *spec, Reason::kAddressChanged,
                         s.address + ":" + std::to_string(s.port)});
    }
    if (s.in_maint()) {
      if (!origins.operator_maint.count(name)) {
        updates.push_back({ActionKind::kEnable, name, *spec, Reason::kInMaintenance, {}});
      }
    } else if (s.draining() && !s.health_passed()) {
      plan.warming.push_back(name);  // DRAIN until its health check passes
    } else if (s.draining()) {
      updates.push_back({ActionKind::kUndrain, name, *spec, undrain_reason(name, origins), {}});
    }
    if (weight_differs(actual, s.weight, spec->weight)) {
      updates.push_back({ActionKind::kSetWeight, name, *spec, Reason::kWeightChanged,
                         weight_change(s.weight, spec->weight)});
    }
  }
  for (auto* group : {&removals, &additions, &updates}) {
    for (auto& a : *group) plan.actions.push_back(std::move(a));
  }
}

void plan_slots(const DesiredBackend& desired, const ActualBackend& actual,
                const BackendPolicy& policy, const DrainBook& drains, SteadyTime now,
                const DrainOrigins& origins, Plan& plan) {
  // Managed slots ordered by slot number.
  std::vector<std::pair<long, const ActualServer*>> slots;
  for (const auto& s : actual.servers) {
    long n = slot_number(s.name, policy.name_prefix);
    if (n > 0) slots.emplace_back(n, &s);
  }
  std::sort(slots.begin(), slots.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  std::unordered_map<std::string, const ServerSpec*> wanted;  // address|port -> spec
  wanted.reserve(desired.servers.size());
  for (const auto& spec : desired.servers) {
    wanted.emplace(address_port(spec.address, spec.port), &spec);
  }

  std::vector<Action> removals, additions, updates;
  std::unordered_set<std::string> placed;  // address|port already held by a slot
  placed.reserve(desired.servers.size() + slots.size());
  std::vector<const ActualServer*> free_slots;
  for (const auto& [n, s] : slots) {
    const std::string key = address_port(s->address, s->port);
    const bool free = is_free_slot(*s);
    auto w = wanted.find(key);
    if (free && w != wanted.end() && !placed.count(key) && origins.operator_maint.count(s->name)) {
      placed.insert(key);  // the operator's maintenance: the slot keeps its address, stays off
      continue;
    }
    if (free) {
      // A slot in maintenance still holding a desired address (e.g. left there by a crash) is
      // re-enabled in place so the server keeps its name.
      if (w != wanted.end() && !placed.count(key) && !is_placeholder(*s)) {
        placed.insert(key);
        additions.push_back({ActionKind::kAssignSlot,
                             s->name,
                             *w->second,
                             Reason::kSlotInMaintenance,
                             {},
                             !weight_differs(actual, s->weight, w->second->weight)});
        continue;
      }
      if (!is_placeholder(*s)) {
        // Stale address in a free slot: reset it so it never points at an old server.
        removals.push_back({ActionKind::kRemove, s->name, {}, Reason::kStaleSlotAddress, {}});
      } else {
        free_slots.push_back(s);
      }
      continue;
    }
    if (w == wanted.end() || placed.count(key)) {
      const size_t before = removals.size();
      plan_removal(*s, policy, drains, now, origins, plan, removals);
      if (w != wanted.end() && removals.size() > before) {
        removals.back().reason = Reason::kDuplicateSlot;
        removals.back().detail = s->address;
      }
      continue;
    }
    placed.insert(key);
    if (s->draining() && !s->health_passed()) {
      plan.warming.push_back(s->name);  // DRAIN until its health check passes
    } else if (s->draining()) {
      updates.push_back(
          {ActionKind::kUndrain, s->name, *w->second, undrain_reason(s->name, origins), {}});
    }
    if (weight_differs(actual, s->weight, w->second->weight)) {
      updates.push_back({ActionKind::kSetWeight, s->name, *w->second, Reason::kWeightChanged,
                         weight_change(s->weight, w->second->weight)});
    }
  }
  size_t next_free = 0;
  for (const auto& spec : desired.servers) {
    const std::string key = address_port(spec.address, spec.port);
    if (placed.count(key)) continue;
    placed.insert(key);
    if (next_free >= free_slots.size()) {
      ++plan.missing_slots;
      continue;
    }
    const ActualServer* slot = free_slots[next_free++];
    additions.push_back({ActionKind::kAssignSlot,
                         slot->name,
                         spec,
                         Reason::kNewInDiscovery,
                         {},
                         !weight_differs(actual, slot->weight, spec.weight)});
  }
  for (auto* group : {&removals, &additions, &updates}) {
    for (auto& a : *group) plan.actions.push_back(std::move(a));
  }
}

}  // namespace

bool is_managed(const ActualServer& server, const BackendPolicy& policy, BackendMode mode) {
  if (mode == BackendMode::kSlots) return slot_number(server.name, policy.name_prefix) > 0;
  return !policy.name_prefix.empty() &&
         server.name.compare(0, policy.name_prefix.size(), policy.name_prefix) == 0;
}

// Make before break: a plan must not take the last serving servers out of rotation while none of
// the servers that stay (the desired ones still warming up, or hand-written ones) serve yet. A
// rolling replacement (old set out, new set in, in one change) would otherwise answer 503 until
// the new servers pass their first health check. Those drains wait (re-checked every drain poll)
// until something else serves; servers that are not serving (DOWN, in maintenance) are never
// held. An intended empty set (allow_empty) is not held either.
static void hold_last_serving(const DesiredBackend& desired, const ActualBackend& actual,
                              Plan& plan) {
  if (desired.servers.empty()) return;
  auto serving = [](const ActualServer& s) {
    return s.op_state == 2 && !s.in_maint() && !s.draining();
  };
  std::set<std::string> leaving;
  for (const auto& a : plan.actions) {
    if (a.kind == ActionKind::kDrain || a.kind == ActionKind::kRemove) leaving.insert(a.server);
  }
  bool any_left = false;
  for (const auto& s : actual.servers) {
    if (serving(s) && !leaving.count(s.name)) any_left = true;
  }
  if (any_left) return;
  std::set<std::string> hold;
  for (const auto& s : actual.servers) {
    if (serving(s) && leaving.count(s.name)) hold.insert(s.name);
  }
  if (hold.empty()) return;
  std::vector<Action> kept;
  for (auto& a : plan.actions) {
    if ((a.kind == ActionKind::kDrain || a.kind == ActionKind::kRemove) && hold.count(a.server)) {
      plan.waiting.push_back(a.server);  // still serving: taken out once a desired one serves
      continue;
    }
    kept.push_back(std::move(a));
  }
  plan.actions = std::move(kept);
}

long slot_number(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  long n = 0;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(first, last, n);
  if (ec != std::errc() || ptr != last || n <= 0) return -1;
  return n;
}

bool is_free_slot(const ActualServer& server) { return server.in_maint() && !server.draining(); }

BackendMode resolve_mode(const BackendPolicy& policy, const Features& features,
                         const std::string& algorithm) {
  if (policy.mode != BackendMode::kAuto) return policy.mode;
  if (policy.slots > 0) return BackendMode::kSlots;
  if (features.dynamic_servers && algorithm != "static-rr") return BackendMode::kDynamic;
  return BackendMode::kSlots;
}

BackendMode resolve_mode(const BackendPolicy& policy, int major, int minor,
                         const std::string& algorithm) {
  return resolve_mode(policy, features_of(major, minor), algorithm);
}

Plan diff(const DesiredBackend& desired, const ActualBackend& actual, const BackendPolicy& policy,
          BackendMode mode, const DrainBook& drains, SteadyTime now, const DrainOrigins& origins) {
  Plan plan;
  plan.backend = desired.backend;
  plan.mode = mode == BackendMode::kAuto ? BackendMode::kDynamic : mode;
  plan.checks = policy.checks();
  plan.agent = policy.agent_checks();
  if (plan.mode == BackendMode::kSlots) {
    plan_slots(desired, actual, policy, drains, now, origins, plan);
  } else {
    plan_dynamic(desired, actual, policy, drains, now, origins, plan);
  }
  hold_last_serving(desired, actual, plan);
  return plan;
}

}  // namespace ep::reconcile
