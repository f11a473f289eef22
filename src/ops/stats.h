#pragma once
// The ops part's metrics: gauges computed at scrape time from the daemon's state (so never
// stale), declared once (docs/operations.md lists them). Built by make_ops_handler() on
// EndpointOptions::metrics.

#include "core/metrics.h"

namespace ep::ops {

struct OpsStats {
  explicit OpsStats(Metrics& registry)
      : source_up(registry, "elasticproxy_source_up",
                  "1 when the source's last fetch succeeded, 0 while it fails (its last good set "
                  "is kept).",
                  {"backend", "source"}),
        source_last_success_timestamp_seconds(
            registry, "elasticproxy_source_last_success_timestamp_seconds",
            "Unix time of the source's last good snapshot (absent before the first one).",
            {"backend", "source"}),
        source_endpoints(registry, "elasticproxy_source_endpoints",
                         "Endpoints in the source's last good snapshot.", {"backend", "source"}),
        source_events_per_minute(registry, "elasticproxy_source_events_per_minute",
                                 "Snapshots the source published in the last 60 s, good or "
                                 "failed (the dashboard's events per minute).",
                                 {"backend", "source"}),
        haproxy_instances(registry, "elasticproxy_haproxy_instances",
                          "HAProxy instances configured."),
        haproxy_instances_reachable(
            registry, "elasticproxy_haproxy_instances_reachable",
            "HAProxy instances whose admin socket answered on the last pass."),
        ready(registry, "elasticproxy_ready",
              "1 when every source delivered and every HAProxy instance converged (/readyz)."),
        reconciler_last_loop_age_seconds(
            registry, "elasticproxy_reconciler_last_loop_age_seconds",
            "Seconds since the reconciler loop last completed an iteration."),
        build_info(registry, "elasticproxy_build_info", "Always 1; the version is in the label.",
                   {"version"}) {}

  Gauge source_up;                              // {backend, source}
  Gauge source_last_success_timestamp_seconds;  // {backend, source}
  Gauge source_endpoints;                       // {backend, source}
  Gauge source_events_per_minute;               // {backend, source}
  Gauge haproxy_instances;
  Gauge haproxy_instances_reachable;
  Gauge ready;
  Gauge reconciler_last_loop_age_seconds;
  Gauge build_info;  // {version}
};

}  // namespace ep::ops
