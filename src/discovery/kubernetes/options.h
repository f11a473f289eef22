#pragma once
// Options of the `kubernetes` source (see docs/kubernetes.md):
//   kubernetes:
//     service: web                 # required: the Service whose EndpointSlices are watched
//     namespace: shop              # default: the context's namespace (in cluster: the pod's), else
//     "default" port: http                   # a port name of the slices, or a number; default: the
//     only port address: endpoints           # endpoints (pod IPs) | node | cluster_ip |
//     load_balancer kubeconfig: ~/.kube/config   # default: $KUBECONFIG (colon-separated list),
//     ~/.kube/config context: prod                # default: current-context in_cluster: auto #
//     auto | true | false (auto: in cluster when no kubeconfig is
//                                  # given, none is found and KUBERNETES_SERVICE_HOST is set)
//     service_account_dir: /var/run/secrets/kubernetes.io/serviceaccount   # in cluster
//     zone: eu-west-1a             # endpoints of other zones (zone hints not for ours) are backup
//     timeout: 10s                 # list and read requests
//     connect_timeout: 5s
//     watch_timeout: 5m            # timeoutSeconds of a watch (the server then closes it)
//     idle_timeout: 6m             # a watch silent this long is treated as hung and re-listed
//     page_size: 500               # list `limit` (0 = no paging)
//     terminating_drain_timeout: 1h  # serving+terminating: held in DRAIN at most this long
//     retry_interval: 250ms        # first retry after a failure, doubled up to max_retry_interval
//     max_retry_interval: 2s
//     max_response_size: 32MiB

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "core/config_node.h"

namespace ep::discovery::kubernetes {

enum class AddressMode { kEndpoints, kNode, kClusterIp, kLoadBalancer };
const char* to_string(AddressMode mode);

enum class InCluster { kAuto, kYes, kNo };

struct Options {
  std::string service;
  std::string namespace_;  // empty: from the context / in-cluster namespace / "default"
  std::string port_name;   // one of port_name / port_number (or neither: the only port)
  long port_number = 0;
  AddressMode address = AddressMode::kEndpoints;
  std::string kubeconfig;  // empty: $KUBECONFIG, ~/.kube/config
  std::string context;
  InCluster in_cluster = InCluster::kAuto;
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  std::string zone;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds watch_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(6)};
  // How long at most a serving && terminating endpoint is held in DRAIN (past the backend's
  // drain_timeout) while it stays so; its sessions ending removes it sooner.
  std::chrono::milliseconds terminating_drain_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds retry_interval{250};
  std::chrono::milliseconds max_retry_interval{std::chrono::seconds(2)};
  long page_size = 500;
  std::size_t max_response_bytes = 32u << 20;
  std::filesystem::path base_dir;  // resolves a relative kubeconfig path

  std::string port_text() const {
    return port_number > 0 ? std::to_string(port_number) : port_name;
  }
};

// Reads and checks the options; errors (with positions) go to `diag`, nullopt is returned.
std::optional<Options> options_from_node(const ConfigNode& node,
                                         const std::filesystem::path& base_dir, Diagnostics& diag);

// RFC 1123 label (namespace, service names): [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63.
bool is_dns_label(const std::string& s);

}  // namespace ep::discovery::kubernetes
