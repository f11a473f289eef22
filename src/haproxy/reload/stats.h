#pragma once
// The reload part's metrics, declared once (docs/operations.md lists them). deploy() is a free
// function, so the part keeps one instance on Metrics::global(), reached through reload_stats().

#include "core/metrics.h"

namespace ep::haproxy::reload {

struct ReloadStats {
  explicit ReloadStats(Metrics& registry)
      : reloads_total(
            registry, "elasticproxy_reloads_total",
            "HAProxy reloads by result: ok (confirmed), rolled_back (failed, previous config "
            "restored), failed (candidate rejected by haproxy -c or not writable, or rollback "
            "failed).",
            {"result"}),
        reload_duration_seconds(registry, "elasticproxy_reload_duration_seconds",
                                "Time to write, reload and confirm a new HAProxy config.", {},
                                {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
        last_reload_timestamp_seconds(registry, "elasticproxy_last_reload_timestamp_seconds",
                                      "Unix time of the last confirmed HAProxy reload.") {}

  Counter reloads_total;  // {result: ok | rolled_back | failed}
  Histogram reload_duration_seconds;
  Gauge last_reload_timestamp_seconds;
};

// The part's stats on Metrics::global(), declared on the first call (so HELP/TYPE show before the
// first reload). Thread-safe.
const ReloadStats& reload_stats();

}  // namespace ep::haproxy::reload
