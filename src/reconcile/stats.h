#pragma once
// The reconciler's metrics, declared once (docs/operations.md lists them). Built by the
// Reconciler on the registry in ReconcilerOptions::metrics; call sites use the handles.

#include "core/metrics.h"

namespace ep::reconcile {

struct ReconcileStats {
  explicit ReconcileStats(Metrics& registry)
      : changes_applied_total(registry, "elasticproxy_changes_applied_total",
                              "Runtime changes applied to HAProxy, by backend and kind.",
                              {"backend", "kind"}),
        changes_failed_total(
            registry, "elasticproxy_changes_failed_total",
            "Runtime changes HAProxy rejected or that could not be sent, by backend and kind.",
            {"backend", "kind"}),
        backend_servers_desired(registry, "elasticproxy_backend_servers_desired",
                                "Servers discovery wants in the backend.", {"backend"}),
        backend_servers_actual(
            registry, "elasticproxy_backend_servers_actual",
            "Managed servers HAProxy has in the backend (including draining ones).",
            {"backend", "instance"}),
        drains_in_progress(registry, "elasticproxy_drains_in_progress",
                           "Servers draining before removal.", {"backend", "instance"}),
        drains_timed_out_total(registry, "elasticproxy_drains_timed_out_total",
                               "Drains that reached drain_timeout with sessions left.",
                               {"backend"}),
        convergence_seconds(registry, "elasticproxy_convergence_seconds",
                            "Time from a discovery change being seen to HAProxy confirming it.",
                            {"backend"}),
        haproxy_up(registry, "elasticproxy_haproxy_up",
                   "1 when the HAProxy instance's admin socket answers.", {"instance"}),
        haproxy_restarts_detected_total(
            registry, "elasticproxy_haproxy_restarts_detected_total",
            "HAProxy restarts (new start time or pid) noticed, each followed by a resync.",
            {"instance"}),
        slots_missing(registry, "elasticproxy_slots_missing",
                      "Desired servers that found no free slot (slot mode).",
                      {"backend", "instance"}),
        servers_operator_maint(
            registry, "elasticproxy_servers_operator_maint",
            "Managed servers an operator put in maintenance (left there until enabled again).",
            {"backend", "instance"}),
        reconcile_passes_total(registry, "elasticproxy_reconcile_passes_total",
                               "Reconcile passes run."),
        bulk_reloads_total(registry, "elasticproxy_bulk_reloads_total",
                           "Large dynamic additions applied by one reload instead of add server "
                           "(result ok, or fallback: runtime commands after a refused or rolled "
                           "back reload).",
                           {"backend", "result"}) {}

  Counter changes_applied_total;            // {backend, kind}
  Counter changes_failed_total;             // {backend, kind}
  Gauge backend_servers_desired;            // {backend}
  Gauge backend_servers_actual;             // {backend, instance}
  Gauge drains_in_progress;                 // {backend, instance}
  Counter drains_timed_out_total;           // {backend}
  Histogram convergence_seconds;            // {backend}
  Gauge haproxy_up;                         // {instance}
  Counter haproxy_restarts_detected_total;  // {instance}
  Gauge slots_missing;                      // {backend, instance}
  Gauge servers_operator_maint;             // {backend, instance}
  Counter reconcile_passes_total;
  Counter bulk_reloads_total;  // {backend, result}
};

}  // namespace ep::reconcile
