#include "support/kubernetes/k8s_double.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "net/curl_http_client.h"
#include "os/process.h"
#include "support/eventually.h"

namespace ep::test {

std::string k8s_double_script() { return EP_K8S_DOUBLE_SCRIPT; }

K8sApiDouble::K8sApiDouble() : K8sApiDouble(Options{}) {}
K8sApiDouble::K8sApiDouble(Options options)
    : options_(std::move(options)), dir_(std::make_unique<TempDir>("k8s-double")) {
  if (options_.tls) {
    const std::string d = dir();
    const std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key",
         "-out", d + "/ca.crt", "-days", "2", "-subj", "/CN=k8s-double-ca"},
        {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/srv.key", "-out",
         d + "/srv.csr", "-subj", "/CN=127.0.0.1"},
        {"openssl", "x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.crt", "-CAkey",
         d + "/ca.key", "-CAcreateserial", "-out", d + "/srv.crt", "-days", "2", "-extfile",
         d + "/ext"},
        {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/client.key", "-out",
         d + "/client.csr", "-subj", "/CN=elasticproxy/O=system:authenticated"},
        {"openssl", "x509", "-req", "-in", d + "/client.csr", "-CA", d + "/ca.crt", "-CAkey",
         d + "/ca.key", "-CAcreateserial", "-out", d + "/client.crt", "-days", "2"},
    };
    std::ofstream(d + "/ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    for (const auto& argv : steps) {
      auto r = os::run_process(argv, {.timeout = std::chrono::seconds(60)});
      if (!r || !r->succeeded())
        throw std::runtime_error("k8s double: openssl failed: " +
                                 (r ? r->output : r.error().message));
    }
  }
}

K8sApiDouble::~K8sApiDouble() { process_.stop(std::chrono::seconds(2)); }

std::string K8sApiDouble::url() const {
  return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::string K8sApiDouble::ca_pem() const {
  std::ifstream in(ca_file());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void K8sApiDouble::start() {
  const std::string port_file = dir() + "/port";
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {"python3", k8s_double_script(),  "--port-file", port_file,
                                   "--port",  std::to_string(port_)};
  if (options_.tls) {
    for (const char* a : {"--tls-cert", "srv.crt", "--tls-key", "srv.key", "--client-ca", "ca.crt"})
      argv.push_back(a[0] == '-' ? a : dir() + "/" + a);
  }
  for (const auto& t : options_.tokens) {
    argv.push_back("--token");
    argv.push_back(t);
  }
  Status s = process_.start(argv, dir() + "/double.log");
  if (!s) throw std::runtime_error("k8s double: " + s.error().message);
  if (!eventually([&] { return std::filesystem::exists(port_file); }, std::chrono::seconds(30)))
    throw std::runtime_error("k8s double did not start; log: " + read_text(dir() + "/double.log"));
  port_ = static_cast<std::uint16_t>(std::stoi(read_text(port_file)));
}

void K8sApiDouble::stop() { process_.stop(std::chrono::seconds(2)); }
void K8sApiDouble::kill() { process_.kill(); }

nlohmann::json K8sApiDouble::control(const std::string& method, const std::string& path,
                                     const nlohmann::json& body) {
  net::CurlHttpClient client;
  net::HttpRequest req;
  req.method = method;
  req.url = url() + path;
  req.body = body.is_null() ? "" : body.dump();
  req.tls.ca_file = options_.tls ? ca_file() : "";
  req.timeout = std::chrono::seconds(30);
  auto resp = client.perform(req);
  if (!resp) throw std::runtime_error("k8s double control " + path + ": " + resp.error().message);
  if (resp->status != 200 && resp->status != 404)
    throw std::runtime_error("k8s double control " + path + ": HTTP " +
                             std::to_string(resp->status));
  return nlohmann::json::parse(resp->body);
}

nlohmann::json K8sApiDouble::apply(const nlohmann::json& o) {
  return control("POST", "/_test/apply", o);
}
void K8sApiDouble::remove(const std::string& kind, const std::string& ns, const std::string& name) {
  control("POST", "/_test/delete", {{"kind", kind}, {"namespace", ns}, {"name", name}});
}
void K8sApiDouble::compact() { control("POST", "/_test/compact", nlohmann::json::object()); }
void K8sApiDouble::configure(const nlohmann::json& c) { control("POST", "/_test/config", c); }
void K8sApiDouble::close_watches() {
  control("POST", "/_test/close_watches", nlohmann::json::object());
}
nlohmann::json K8sApiDouble::stats() { return control("GET", "/_test/stats", nullptr); }

std::string K8sApiDouble::write_kubeconfig(const std::string& name, const std::string& token,
                                           const nlohmann::json& user_extra,
                                           const std::string& ns) const {
  nlohmann::json user = nlohmann::json::object();
  if (!token.empty()) user["token"] = token;
  for (auto& [k, v] : user_extra.items()) user[k] = v;
  nlohmann::json cluster = {{"server", url()}};
  if (options_.tls) cluster["certificate-authority"] = ca_file();
  nlohmann::json context = {{"cluster", "double"}, {"user", "ep"}};
  if (!ns.empty()) context["namespace"] = ns;
  // JSON is YAML: kubeconfigs may be written either way.
  nlohmann::json kc = {{"apiVersion", "v1"},
                       {"kind", "Config"},
                       {"clusters", {{{"name", "double"}, {"cluster", cluster}}}},
                       {"users", {{{"name", "ep"}, {"user", user}}}},
                       {"contexts", {{{"name", "test"}, {"context", context}}}},
                       {"current-context", "test"}};
  const std::string path = dir() + "/" + name;
  std::ofstream(path) << kc.dump(2);
  return path;
}

nlohmann::json K8sApiDouble::slice(const std::string& ns, const std::string& name,
                                   const std::string& service, const std::vector<Ep>& endpoints,
                                   int port, const std::string& port_name,
                                   const std::string& address_type) {
  nlohmann::json eps = nlohmann::json::array();
  for (const Ep& e : endpoints) {
    const std::string pod = e.pod.empty() ? service + "-" + e.address : e.pod;
    eps.push_back({{"addresses", {e.address}},
                   {"conditions",
                    {{"ready", e.ready}, {"serving", e.serving}, {"terminating", e.terminating}}},
                   {"nodeName", e.node},
                   {"zone", e.zone},
                   {"hints", {{"forZones", {{{"name", e.zone}}}}}},
                   {"targetRef",
                    {{"kind", "Pod"}, {"namespace", ns}, {"name", pod}, {"uid", "uid-" + pod}}}});
  }
  return {{"kind", "EndpointSlice"},
          {"apiVersion", "discovery.k8s.io/v1"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"generateName", service + "-"},
            {"labels",
             {{"kubernetes.io/service-name", service},
              {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}},
            {"ownerReferences",
             {{{"apiVersion", "v1"},
               {"kind", "Service"},
               {"name", service},
               {"uid", "svc-uid"},
               {"controller", true},
               {"blockOwnerDeletion", true}}}}}},
          {"addressType", address_type},
          {"endpoints", eps},
          {"ports", {{{"name", port_name}, {"port", port}, {"protocol", "TCP"}}}}};
}

nlohmann::json K8sApiDouble::service(const std::string& ns, const std::string& name,
                                     const std::string& cluster_ip, int port, int node_port,
                                     const std::vector<std::string>& lb_ips) {
  nlohmann::json ingress = nlohmann::json::array();
  for (const auto& ip : lb_ips) ingress.push_back({{"ip", ip}, {"ipMode", "VIP"}});
  nlohmann::json p = {
      {"name", "http"}, {"port", port}, {"targetPort", "http"}, {"protocol", "TCP"}};
  if (node_port > 0) p["nodePort"] = node_port;
  return {{"kind", "Service"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"type", lb_ips.empty() ? (node_port > 0 ? "NodePort" : "ClusterIP") : "LoadBalancer"},
            {"clusterIP", cluster_ip},
            {"clusterIPs", {cluster_ip}},
            {"ipFamilies", {"IPv4"}},
            {"ports", {p}},
            {"selector", {{"app", name}}}}},
          {"status", {{"loadBalancer", {{"ingress", ingress}}}}}};
}

nlohmann::json K8sApiDouble::node(const std::string& name, const std::string& internal_ip) {
  return {{"kind", "Node"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"status",
           {{"addresses",
             {{{"type", "InternalIP"}, {"address", internal_ip}},
              {{"type", "Hostname"}, {"address", name}}}}}}};
}

}  // namespace ep::test
