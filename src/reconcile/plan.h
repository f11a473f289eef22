#pragma once
// What the reconciler wants done to one HAProxy backend. Built by diff(); executed by an Applier.

#include <string>
#include <vector>

#include "core/model.h"
#include "reconcile/policy.h"

namespace ep::reconcile {

enum class ActionKind {
  kAdd,         // dynamic: add server (in maint) + enable health + health-gated ready
  kAssignSlot,  // slots: set addr/port/weight on a free slot + health-gated ready
  kEnable,      // a desired server in maintenance: health-gated ready
  kUndrain,     // a desired server that is draining: state ready
  kSetWeight,   // weight differs
  kSetAddress,  // same identity, new address/port (id-named servers)
  kDrain,       // no longer desired: state drain (no new traffic)
  kRemove,      // drained (or timed out / drain disabled): maint, then del server or free slot
};
const char* to_string(ActionKind kind);

struct Action {
  ActionKind kind;
  std::string server;  // HAProxy server name (slot name in slot mode)
  ServerSpec spec;     // the desired server (add/assign/enable/weight/address); name = identity
  std::string reason;  // why, for the log line ("new in source", "gone from source", ...)

  bool operator==(const Action&) const = default;
};

struct Plan {
  std::string backend;
  BackendMode mode = BackendMode::kDynamic;  // resolved mode (never kAuto)
  bool checks = false;                       // health-gated enable
  bool agent = false;
  std::vector<Action> actions;
  // Servers that are draining and must wait (sessions remain, timeout not reached).
  std::vector<std::string> waiting;
  // Desired servers held in DRAIN until their health check passes (they left maintenance that
  // way: see haproxy/runtime warm_line); they are set ready once ActualServer::health_passed().
  std::vector<std::string> warming;
  // Desired servers that could not be placed (slot mode with too few free slots).
  int missing_slots = 0;

  bool empty() const { return actions.empty(); }
};

}  // namespace ep::reconcile
