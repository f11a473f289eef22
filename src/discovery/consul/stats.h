#pragma once
// The consul source's metrics (`watch: service`), declared once (docs/operations.md and
// docs/consul.md list them). Built by each ConsulSource on SourceContext::metrics; every family
// is labelled {backend, service}, some with one more label.

#include "core/metrics.h"

namespace ep::discovery::consul {

struct ConsulStats {
  explicit ConsulStats(Metrics& registry)
      : requests_total(registry, "elasticproxy_consul_requests_total",
                       "Requests to Consul's health endpoint by outcome (ok, error).",
                       {"backend", "service", "outcome"}),
        errors_total(registry, "elasticproxy_consul_errors_total",
                     "Failed Consul reads by reason; the last good set was kept.",
                     {"backend", "service", "reason"}),
        index(registry, "elasticproxy_consul_index", "The X-Consul-Index the watch blocks on.",
              {"backend", "service"}),
        index_resets_total(registry, "elasticproxy_consul_index_resets_total",
                           "Times the X-Consul-Index went backwards and the watch re-read in full.",
                           {"backend", "service"}),
        instances(registry, "elasticproxy_consul_instances",
                  "Instances in the last good answer after filtering.", {"backend", "service"}),
        up(registry, "elasticproxy_consul_up",
           "1 when the last Consul read succeeded, 0 while failing.", {"backend", "service"}),
        snapshots_published_total(registry, "elasticproxy_consul_snapshots_published_total",
                                  "Changed instance sets handed to the guard.",
                                  {"backend", "service"}),
        empty_confirmations_total(
            registry, "elasticproxy_consul_empty_confirmations_total",
            "Empty answers after a non-empty set that were re-read before publishing.",
            {"backend", "service"}),
        agent_frozen_total(
            registry, "elasticproxy_consul_agent_frozen_total",
            "Watches aborted because the agent stopped answering its liveness probe.",
            {"backend", "service"}),
        cache_age_seconds(registry, "elasticproxy_consul_cache_age_seconds",
                          "Age header of the last ?cached answer (agent cache staleness).",
                          {"backend", "service"}) {}

  Counter requests_total;  // {backend, service, outcome: ok | error}
  Counter errors_total;    // {backend, service, reason}
  Gauge index;
  Counter index_resets_total;
  Gauge instances;
  Gauge up;
  Counter snapshots_published_total;
  Counter empty_confirmations_total;
  Counter agent_frozen_total;
  Gauge cache_age_seconds;
};

// A shared agent hub's metrics (`watch: shared`), labelled {endpoint}: the agent's address.
struct HubStats {
  explicit HubStats(Metrics& registry)
      : errors_total(registry, "elasticproxy_consul_hub_errors_total",
                     "Failed change-detection queries of a shared Consul agent hub.",
                     {"endpoint"}),
        wakeups_total(registry, "elasticproxy_consul_hub_wakeups_total",
                      "Change-detection returns of a shared hub that refreshed services.",
                      {"endpoint"}) {}

  Counter errors_total;
  Counter wakeups_total;
};

}  // namespace ep::discovery::consul
