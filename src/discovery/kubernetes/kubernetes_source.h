#pragma once
// The `kubernetes` source: the endpoints of a Service, from its discovery.k8s.io/v1
// EndpointSlices (list then watch, shared per namespace: namespace_watch.h), mapped to servers:
//   address: endpoints      pod IPs and the slice port chosen by name/number (default);
//   address: node           each serving endpoint's node InternalIP + the Service's nodePort
//                           (deduplicated);
//   address: cluster_ip     the Service's clusterIP + its port;
//   address: load_balancer  the Service's status.loadBalancer.ingress IPs + its port.
// Conditions: ready → in rotation; serving && terminating → left out, so the reconciler drains
// it (no new sessions, existing ones finish) before removing it; neither → left out too.
// The Service (and, in node mode, the Nodes) are read at start, whenever the slices change (node
// mode) and every refresh_interval.
// Failures are published as errors (the guard keeps the last good set); the first good answer
// after them publishes the whole set again. fetch_once() lists once on a private runtime.

#include <atomic>
#include <memory>

#include "discovery/kubernetes/options.h"
#include "discovery/source.h"
#include "runtime/runtime.h"

namespace ep::discovery::kubernetes {

class NamespaceWatch;

class KubernetesSource final : public Source {
 public:
  KubernetesSource(Options options, std::string backend, Metrics* metrics);
  ~KubernetesSource() override;

  std::string describe() const override;  // "kubernetes shop/web port http (endpoints)"
  Status start_on(runtime::Runtime& runtime, Sink& sink) override;
  Status start(Sink& sink) override;
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }
  // The shared namespace watch while started (tests: lists, watches, connections).
  std::shared_ptr<NamespaceWatch> watch() const { return watch_; }

 private:
  class Machine;

  Options options_;
  std::string backend_;
  Metrics* metrics_;
  std::unique_ptr<runtime::Runtime> own_runtime_;
  std::shared_ptr<NamespaceWatch> watch_;
  std::unique_ptr<Machine> machine_;
};

SourceKind source_kind();

}  // namespace ep::discovery::kubernetes
