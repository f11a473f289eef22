#pragma once
// The lifecycle-hook worker's metrics, declared once (docs/operations.md lists them). Every
// family is labelled {backend}; completions also by transition and result.

#include "core/metrics.h"

namespace ep::aws {

struct LifecycleMetrics {
  explicit LifecycleMetrics(Metrics& registry)
      : completed_total(registry, "elasticproxy_aws_lifecycle_completed_total",
                        "Lifecycle actions completed, by transition (launching/terminating) and "
                        "result (CONTINUE/ABANDON).",
                        {"backend", "transition", "result"}),
        heartbeats_total(registry, "elasticproxy_aws_lifecycle_heartbeats_total",
                         "RecordLifecycleActionHeartbeat calls that succeeded.", {"backend"}),
        errors_total(registry, "elasticproxy_aws_lifecycle_errors_total",
                     "Failed lifecycle-hook calls (AutoScaling or SQS), retried at the next check.",
                     {"backend"}),
        pending(registry, "elasticproxy_aws_lifecycle_pending",
                "Lifecycle actions waiting for a drain or a health check.", {"backend"}) {}

  Counter completed_total;  // {backend, transition, result}
  Counter heartbeats_total;
  Counter errors_total;
  Gauge pending;
};

}  // namespace ep::aws
