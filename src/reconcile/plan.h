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

// Why an action is planned. Counters and decisions use this, never the text; the text is
// rendered in one place (reason_text).
enum class Reason {
  kNewInDiscovery,     // add / assign a free slot
  kSlotInMaintenance,  // desired address still held by a free slot: re-enabled in place
  kInMaintenance,      // desired, found in maintenance: enable
  kHealthCheckPassed,  // a new server we held in DRAIN behind its health gate passed its check
  kBackInDiscovery,    // we were draining it for removal and discovery wants it again
  kFoundDraining,      // desired, found in DRAIN for a reason we do not remember (our restart)
  kWeightChanged,      // detail: "<have> -> <want>"
  kAddressChanged,     // detail: the old "address:port"
  kGoneFromDiscovery,  // drain
  kGoneInMaintenance,  // remove at once: already in maintenance
  kGoneDrainDisabled,  // remove at once: drain_timeout 0
  kDrained,            // remove: no sessions left
  kDrainTimeout,       // remove: drain_timeout reached; detail: sessions left
  kStaleSlotAddress,   // free slot still pointing at an old server: reset
  kDuplicateSlot,      // a second slot for a desired address; detail: the address
};
const char* to_string(Reason reason);  // stable identifier ("drain_timeout"), for labels

struct Action {
  ActionKind kind;
  std::string server;  // HAProxy server name (slot name in slot mode)
  ServerSpec spec;     // the desired server (add/assign/enable/weight/address); name = identity
  Reason reason = Reason::kNewInDiscovery;
  std::string detail;  // values the reason's text names (see Reason); may be empty
  // kAssignSlot only: the slot already has the desired weight, so the assignment sends no
  // `set server … weight` (one command fewer per server in a bulk assignment).
  bool slot_weight_ok = false;

  bool operator==(const Action&) const = default;
};

// The log text of an action's reason ("drain timeout reached with 2 session(s) left").
std::string reason_text(const Action& action);

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
