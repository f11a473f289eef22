#include "discovery/kubernetes/options.h"

#include <cctype>
#include <cstdlib>

namespace ep::discovery::kubernetes {

const char* to_string(AddressMode mode) {
  switch (mode) {
    case AddressMode::kEndpoints:
      return "endpoints";
    case AddressMode::kNode:
      return "node";
    case AddressMode::kClusterIp:
      return "cluster_ip";
    case AddressMode::kLoadBalancer:
      return "load_balancer";
  }
  return "?";
}

bool is_dns_label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
      return false;
  }
  return s.front() != '-' && s.back() != '-';
}

std::optional<Options> options_from_node(const ConfigNode& node,
                                         const std::filesystem::path& base_dir, Diagnostics& diag) {
  const size_t errors_before = diag.errors().size();
  MapReader r(node, diag, "kubernetes");
  if (!r.valid()) return std::nullopt;
  Options o;
  o.base_dir = base_dir;
  r.string("service", o.service, true);
  r.string("namespace", o.namespace_);
  std::string port;
  r.string("port", port);
  std::string address = "endpoints";
  r.string("address", address);
  r.string("kubeconfig", o.kubeconfig);
  r.string("context", o.context);
  std::string in_cluster = "auto";
  r.string("in_cluster", in_cluster);
  r.string("service_account_dir", o.service_account_dir);
  r.string("zone", o.zone);
  r.positive_duration("timeout", o.timeout);
  r.positive_duration("connect_timeout", o.connect_timeout);
  r.positive_duration("watch_timeout", o.watch_timeout);
  const bool idle_given = r.has("idle_timeout");
  r.positive_duration("idle_timeout", o.idle_timeout);
  r.positive_duration("terminating_drain_timeout", o.terminating_drain_timeout);
  if (r.has("refresh_interval")) {
    std::chrono::milliseconds unused{};
    r.duration("refresh_interval", unused);
    diag.error(node.find("refresh_interval")->mark,
               "kubernetes.refresh_interval: no longer used (Services and Nodes are watched, "
               "not polled); remove it");
  }
  r.positive_duration("retry_interval", o.retry_interval);
  r.positive_duration("max_retry_interval", o.max_retry_interval);
  r.integer("page_size", o.page_size, 0, 100000);
  r.byte_size("max_response_size", o.max_response_bytes, 4096, std::size_t{1} << 30);
  const bool known = r.finish();

  if (const ConfigNode* n = node.find("service"); n != nullptr && !is_dns_label(o.service))
    diag.error(n->mark, "kubernetes.service: '" + o.service +
                            "' is not a Service name (lower-case letters, digits and '-', "
                            "at most 63)");
  if (const ConfigNode* n = node.find("namespace"); n != nullptr && !is_dns_label(o.namespace_))
    diag.error(n->mark, "kubernetes.namespace: '" + o.namespace_ + "' is not a namespace name");
  if (!port.empty()) {
    const ConfigNode* n = node.find("port");
    bool digits = true;
    for (char c : port) digits &= std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (digits) {
      o.port_number = port.size() > 5 ? 0 : std::stol(port);
      if (o.port_number < 1 || o.port_number > 65535)
        diag.error(n->mark, "kubernetes.port: " + port + " is not a port number (1-65535)");
    } else if (port.size() > 63) {
      diag.error(n->mark, "kubernetes.port: '" + port + "' is too long for a port name");
    } else {
      o.port_name = port;
    }
  }
  if (address == "endpoints" || address == "pod") {
    o.address = AddressMode::kEndpoints;
  } else if (address == "node") {
    o.address = AddressMode::kNode;
  } else if (address == "cluster_ip") {
    o.address = AddressMode::kClusterIp;
  } else if (address == "load_balancer") {
    o.address = AddressMode::kLoadBalancer;
  } else {
    diag.error(node.find("address")->mark,
               "kubernetes.address: '" + address +
                   "' must be endpoints, node, cluster_ip or load_balancer");
  }
  if (in_cluster == "auto") {
    o.in_cluster = InCluster::kAuto;
  } else if (in_cluster == "true" || in_cluster == "yes") {
    o.in_cluster = InCluster::kYes;
  } else if (in_cluster == "false" || in_cluster == "no") {
    o.in_cluster = InCluster::kNo;
  } else {
    diag.error(node.find("in_cluster")->mark,
               "kubernetes.in_cluster: '" + in_cluster + "' must be auto, true or false");
  }
  if (o.in_cluster == InCluster::kYes && (!o.kubeconfig.empty() || !o.context.empty()))
    diag.error(node.mark, "kubernetes: in_cluster: true excludes kubeconfig and context");
  if (!idle_given) o.idle_timeout = o.watch_timeout + std::chrono::minutes(1);
  if (o.idle_timeout <= o.watch_timeout)
    diag.error(node.mark,
               "kubernetes: idle_timeout must be longer than watch_timeout (a watch "
               "is quiet until the server closes it)");
  if (o.watch_timeout < std::chrono::seconds(1))
    diag.error(node.find("watch_timeout")->mark, "kubernetes.watch_timeout: at least 1s");
  if (o.max_retry_interval < o.retry_interval) o.max_retry_interval = o.retry_interval;
  if (!known || diag.errors().size() != errors_before) return std::nullopt;
  if (!o.kubeconfig.empty()) {
    std::filesystem::path p(o.kubeconfig);
    if (o.kubeconfig.rfind("~/", 0) == 0) {
      const char* home = std::getenv("HOME");
      p = std::filesystem::path(home ? home : "/") / o.kubeconfig.substr(2);
    } else if (p.is_relative()) {
      p = base_dir / p;
    }
    o.kubeconfig = p.lexically_normal().string();
  }
  return o;
}

}  // namespace ep::discovery::kubernetes
