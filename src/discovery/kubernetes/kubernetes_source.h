#pragma once
// The `kubernetes` source: the endpoints of a Service, from its discovery.k8s.io/v1
// EndpointSlices (list then watch, shared per namespace: namespace_watch.h), mapped to servers:
//   address: endpoints      pod IPs and the slice port chosen by name/number (default);
//   address: node           each serving endpoint's node InternalIP + the Service's nodePort
//                           (deduplicated);
//   address: cluster_ip     the Service's clusterIP + its port;
//   address: load_balancer  the Service's status.loadBalancer.ingress IPs + its port.
// Conditions: ready → in rotation; serving && terminating → left out and its drain held in the
// reconciler (ServerStateView::hold_drain: no new sessions, existing ones finish, not cut by the
// backend's drain_timeout) while it stays so, at most terminating_drain_timeout; neither → left
// out, released: the usual drain/remove path.
// The Service (and, in node mode, the Nodes) are watched too (shared list+watch per namespace /
// cluster, like the EndpointSlices), never polled.
// Failures are published as errors (the guard keeps the last good set); the first good answer
// after them publishes the whole set again. fetch_once() lists once on a private runtime.

#include <atomic>
#include <memory>

#include "core/clock.h"
#include "core/server_state_view.h"
#include "discovery/kubernetes/namespace_watch.h"
#include "discovery/kubernetes/options.h"
#include "discovery/source.h"
#include "runtime/runtime.h"

namespace ep::discovery::kubernetes {

class KubernetesSource final : public Source {
 public:
  // `server_states` (may be null: no drain holds) and `clock` (null: the system clock) as in
  // SourceContext.
  KubernetesSource(Options options, std::string backend, Metrics* metrics,
                   const ServerStateView* server_states = nullptr, const Clock* clock = nullptr);
  ~KubernetesSource() override;

  std::string describe() const override;  // "kubernetes shop/web port http (endpoints)"
  Status start_on(runtime::Runtime& runtime, Sink& sink) override;
  Status start(Sink& sink) override;
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }
  // The shared watches while started (tests: lists, watches, connections): watch() is the first
  // (EndpointSlices, or Services for cluster_ip / load_balancer).
  std::shared_ptr<NamespaceWatch> watch() const;
  const std::vector<std::shared_ptr<NamespaceWatch>>& watches() const { return watches_; }

 private:
  class Machine;

  Options options_;
  std::string backend_;
  Metrics* metrics_;
  const ServerStateView* server_states_;
  const Clock* clock_;
  std::unique_ptr<runtime::Runtime> own_runtime_;
  std::vector<std::shared_ptr<NamespaceWatch>> watches_;
  std::vector<std::unique_ptr<NamespaceWatch::Subscriber>> subs_;
  std::unique_ptr<Machine> machine_;
};

SourceKind source_kind();

}  // namespace ep::discovery::kubernetes
