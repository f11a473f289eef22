#pragma once
// The Kubernetes API double (k8s_api_double.py, see its docstring) as a child process, over TLS
// with a test CA made by openssl at start, and helpers to drive it (objects, faults) and to
// write kubeconfigs pointing at it.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/etcd/process.h"

namespace ep::test {

class K8sApiDouble {
 public:
  struct Options {
    bool tls = true;
    std::vector<std::string> tokens = {"test-token"};  // empty: anonymous allowed
  };
  K8sApiDouble();
  explicit K8sApiDouble(Options options);
  ~K8sApiDouble();

  void start();  // throws std::runtime_error on failure; the same port again after stop()
  void stop();   // SIGTERM (the API server is down)
  void kill();
  std::uint16_t port() const { return port_; }
  std::string url() const;
  const std::string& dir() const { return dir_->path(); }
  std::string ca_file() const { return dir() + "/ca.crt"; }
  std::string ca_pem() const;
  // Client certificate signed by the test CA (the double accepts it instead of a token).
  std::string client_cert_file() const { return dir() + "/client.crt"; }
  std::string client_key_file() const { return dir() + "/client.key"; }

  // Control (throw on failure).
  nlohmann::json apply(const nlohmann::json& object_or_list);
  void remove(const std::string& kind, const std::string& ns, const std::string& name);
  void compact();
  void configure(const nlohmann::json& config);
  void close_watches();
  nlohmann::json stats();

  // A kubeconfig file at `path` for this double: user with `token` (empty: none), extra user
  // fields merged in (e.g. {"exec": {...}}), namespace `ns`.
  std::string write_kubeconfig(const std::string& name, const std::string& token,
                               const nlohmann::json& user_extra = nlohmann::json::object(),
                               const std::string& ns = "") const;

  struct Ep {
    std::string address;
    bool ready = true;
    bool serving = true;
    bool terminating = false;
    std::string node = "node-1";
    std::string zone = "zone-a";
    std::string pod;
  };
  // An EndpointSlice object as the EndpointSlice controller writes it.
  static nlohmann::json slice(const std::string& ns, const std::string& name,
                              const std::string& service, const std::vector<Ep>& endpoints,
                              int port = 8080, const std::string& port_name = "http",
                              const std::string& address_type = "IPv4");
  static nlohmann::json service(const std::string& ns, const std::string& name,
                                const std::string& cluster_ip, int port, int node_port,
                                const std::vector<std::string>& lb_ips = {});
  static nlohmann::json node(const std::string& name, const std::string& internal_ip);

 private:
  nlohmann::json control(const std::string& method, const std::string& path,
                         const nlohmann::json& body);

  Options options_;
  std::unique_ptr<TempDir> dir_;
  ChildProcess process_;
  std::uint16_t port_ = 0;
};

// Where k8s_api_double.py is (the source tree).
std::string k8s_double_script();

}  // namespace ep::test
