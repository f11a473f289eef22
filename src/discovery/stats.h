#pragma once
// The guard's metrics, declared once (docs/operations.md lists them). Each BackendGuard builds
// them on the registry it is handed; call sites use the handles.

#include "core/metrics.h"

namespace ep::discovery {

struct GuardStats {
  explicit GuardStats(Metrics& registry)
      : endpoints_rejected_total(
            registry, "elasticproxy_endpoints_rejected_total",
            "Endpoints rejected by the guard (not an IP literal, bad port or weight, ...)",
            {"backend", "source"}),
        snapshots_held_total(
            registry, "elasticproxy_snapshots_held_total",
            "Snapshots held back because they were empty or removed too many servers",
            {"backend", "reason"}),
        snapshots_resolved_total(
            registry, "elasticproxy_snapshots_resolved_total",
            "Held snapshots confirmed or rejected by an operator (dashboard action)",
            {"backend", "decision"}),
        backend_held(registry, "elasticproxy_backend_held",
                     "1 while a backend's new server set is held back by the safety policy",
                     {"backend"}),
        source_snapshots_total(registry, "elasticproxy_source_snapshots_total",
                               "Snapshots a source published, good or failed (the dashboard's "
                               "events per minute is their rate over the last minute)",
                               {"backend", "source"}),
        source_errors_total(registry, "elasticproxy_source_errors_total",
                            "Failed snapshots per source (the last good set is kept)",
                            {"backend", "source", "reason"}),
        source_from_state(registry, "elasticproxy_source_from_state",
                          "1 while the source's last good set is the one restored from the "
                          "state file (the source has not answered since the start)",
                          {"backend", "source"}),
        state_file_errors_total(registry, "elasticproxy_state_file_errors_total",
                                "State file problems: unreadable or malformed (ignored), stale "
                                "entries (ignored), failed writes",
                                {"reason"}) {}

  Counter endpoints_rejected_total;  // {backend, source}
  Counter snapshots_held_total;      // {backend, reason: empty | shrink}
  Counter snapshots_resolved_total;  // {backend, decision: confirm | reject}
  Gauge backend_held;                // {backend}
  Counter source_snapshots_total;    // {backend, source}
  Counter source_errors_total;       // {backend, source, reason: the error kind}
  Gauge source_from_state;           // {backend, source}
  Counter state_file_errors_total;   // {reason: unreadable | stale | write} (the pipeline's)
};

}  // namespace ep::discovery
