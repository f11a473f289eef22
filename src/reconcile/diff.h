#pragma once
// The pure heart of ElasticProxy: desired servers vs what HAProxy has -> a Plan.
// Deterministic (actions ordered: removals' first steps, then additions, then updates; names
// sorted within each group), no I/O, no clock reads (time comes in as an argument).

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/model.h"
#include "reconcile/plan.h"
#include "reconcile/policy.h"

namespace ep::reconcile {

// When each draining server started draining (server name -> time), kept by the reconciler.
using DrainBook = std::map<std::string, SteadyTime>;

// Why desired servers are in DRAIN, as far as the reconciler remembers; it only chooses the
// reason given when they are set ready (the action is the same). Not remembered (our restart):
// Reason::kFoundDraining.
struct DrainOrigins {
  std::set<std::string> warming;   // held in DRAIN by us until their health check passes
  std::set<std::string> removing;  // drained by us for removal
  // Removal held by a source (an AWS terminate lifecycle hook still pending, a Kubernetes
  // endpoint still serving and terminating): the server is
  // drained and removed once its sessions end, but the backend's drain_timeout does not cut it
  // (nor does drain_timeout 0 remove it at once). The source's own timeout bounds the hold.
  std::set<std::string> held;
  // Managed servers someone else (an operator: `disable server`, `set server ... state maint`)
  // put in maintenance after ElasticProxy had them serving: left in maintenance while they stay
  // desired (no enable, no slot reuse); removed as usual once discovery drops them.
  std::set<std::string> operator_maint;
};

// Is this HAProxy server one ElasticProxy manages in this backend? Dynamic: name starts with the
// prefix. Slots: name is <prefix><digits>.
bool is_managed(const ActualServer& server, const BackendPolicy& policy, BackendMode mode);

// A slot is free when it is in maintenance and not draining.
bool is_free_slot(const ActualServer& server);

// Slot number of "<prefix><digits>" (1, 2, ...), or -1 when `name` is not a slot of `prefix`.
long slot_number(const std::string& name, const std::string& prefix);

struct Features;  // reconcile/applier.h

// Resolves kAuto: slots when the policy declares slots (a server-template in the config);
// otherwise dynamic when HAProxy has dynamic servers (>= 2.6) and the algorithm is not static-rr;
// otherwise slots.
BackendMode resolve_mode(const BackendPolicy& policy, const Features& features,
                         const std::string& algorithm);
BackendMode resolve_mode(const BackendPolicy& policy, int major, int minor,
                         const std::string& algorithm);

Plan diff(const DesiredBackend& desired, const ActualBackend& actual, const BackendPolicy& policy,
          BackendMode mode, const DrainBook& drains, SteadyTime now,
          const DrainOrigins& origins = {});

}  // namespace ep::reconcile
