#pragma once
// The kubernetes source's metrics, declared once (docs/kubernetes.md lists them). Built on
// SourceContext::metrics. Watch-level families are labelled {namespace, resource} (resource:
// endpointslices, services, nodes; Nodes are cluster-scoped: namespace ""); a watch is shared by
// every source of that namespace on one API server and credentials.

#include "core/metrics.h"

namespace ep::discovery::kubernetes {

struct KubernetesStats {
  explicit KubernetesStats(Metrics& registry)
      : lists_total(
            registry, "elasticproxy_kubernetes_lists_total",
            "Complete listings (all pages) of a shared watch (EndpointSlices, Services, Nodes).",
            {"namespace", "resource"}),
        watches_total(registry, "elasticproxy_kubernetes_watches_total",
                      "Watch requests started, by why: listed (after a list) or resumed (after "
                      "the server closed the watch, from the last bookmark / resourceVersion).",
                      {"namespace", "resource", "why"}),
        events_total(registry, "elasticproxy_kubernetes_watch_events_total",
                     "Watch events received, by type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).",
                     {"namespace", "resource", "type"}),
        errors_total(registry, "elasticproxy_kubernetes_errors_total",
                     "Failed API reads by reason (unavailable, unauthorized, forbidden, throttled, "
                     "server, invalid, gone, hung); the last good set was kept (gone: re-listed).",
                     {"namespace", "resource", "reason"}),
        endpoints(registry, "elasticproxy_kubernetes_endpoints",
                  "Endpoints published by a source after mapping (serving, chosen port).",
                  {"backend", "service"}),
        draining(registry, "elasticproxy_kubernetes_draining_endpoints",
                 "Endpoints serving and terminating (held in DRAIN while they stay so).",
                 {"backend", "service"}) {}

  Counter lists_total;
  Counter watches_total;
  Counter events_total;
  Counter errors_total;
  Gauge endpoints;
  Gauge draining;
};

}  // namespace ep::discovery::kubernetes
