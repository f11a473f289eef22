#include "discovery/kubernetes/kubernetes_source.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "core/log.h"
#include "discovery/kubernetes/kubeconfig.h"
#include "discovery/kubernetes/namespace_watch.h"
#include "discovery/kubernetes/parse.h"
#include "discovery/kubernetes/stats.h"
#include "net/async_http_client.h"
#include "net/curl_http_client.h"
#include "os/strings.h"
#include "runtime/backoff.h"

namespace ep::discovery::kubernetes {
namespace {

constexpr const char* kComponent = "source.kubernetes";

std::string resolve_namespace(const Options& o, const ClusterAccess& a) {
  if (!o.namespace_.empty()) return o.namespace_;
  if (!a.namespace_.empty()) return a.namespace_;
  return "default";
}

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// The set for the Service-based modes. `slices` only for node mode.
Result<Mapped> map_service(const Options& o, const Service& svc,
                           const std::map<std::string, std::string>& nodes,
                           const std::vector<const Slice*>& slices) {
  auto port = choose_service_port(svc, o);
  if (!port) return port.error();
  Mapped out;
  std::set<std::pair<std::string, long>> seen;
  auto add = [&](const std::string& ip, long p, const std::string& id) {
    if (!is_ip(ip)) {
      out.problems.push_back(fmt::format("Service {}: '{}' is not an IP address; skipped",
                                         o.service, os::printable(ip, 60)));
      return;
    }
    if (!seen.insert({ip, p}).second) return;
    Endpoint e;
    e.address = ip;
    e.port = static_cast<std::uint32_t>(p);
    e.id = id;
    out.endpoints.push_back(std::move(e));
  };
  switch (o.address) {
    case AddressMode::kClusterIp:
      if (svc.cluster_ip.empty() || svc.cluster_ip == "None")
        return Error::invalid(
            fmt::format("Service {} has no clusterIP (headless?); use address: "
                        "endpoints",
                        o.service));
      for (const std::string& ip :
           svc.cluster_ips.empty() ? std::vector{svc.cluster_ip} : svc.cluster_ips)
        add(ip, port->port, "cluster_ip");
      break;
    case AddressMode::kLoadBalancer:
      if (svc.lb_ips.empty() && !svc.lb_hostnames.empty())
        out.problems.push_back(fmt::format(
            "Service {}: load balancer ingress has host names only ({}); HAProxy servers need "
            "IP addresses",
            o.service, fmt::join(svc.lb_hostnames, ", ")));
      for (const std::string& ip : svc.lb_ips) add(ip, port->port, "load_balancer " + ip);
      break;
    case AddressMode::kNode: {
      if (port->node_port == 0)
        return Error::invalid(fmt::format(
            "Service {} port '{}' has no nodePort (type {}); node mode needs a NodePort or "
            "LoadBalancer Service",
            o.service, port->name, svc.type.empty() ? "ClusterIP" : svc.type));
      for (const Slice* s : slices)
        for (const SliceEndpoint& e : s->endpoints) {
          if (membership(e) != Membership::kServe || e.node_name.empty()) continue;
          auto n = nodes.find(e.node_name);
          if (n == nodes.end() || n->second.empty()) {
            out.problems.push_back(fmt::format("node {} has no InternalIP; its endpoints skipped",
                                               os::printable(e.node_name, 80)));
            continue;
          }
          add(n->second, port->node_port, "node " + e.node_name);
        }
      break;
    }
    case AddressMode::kEndpoints:
      break;
  }
  std::sort(out.endpoints.begin(), out.endpoints.end(),
            [](const Endpoint& a, const Endpoint& b) { return a.address < b.address; });
  return out;
}

std::string service_path(const std::string& ns, const std::string& svc) {
  return "/api/v1/namespaces/" + ns + "/services/" + svc;
}

}  // namespace

// On the watch's loop: a subscriber of the namespace watch (endpoints and node modes) and, for
// the Service-based modes, a reader of the Service (and Nodes).
class KubernetesSource::Machine final : public NamespaceWatch::Subscriber {
 public:
  Machine(KubernetesSource& source, NamespaceWatch& watch, Sink& sink)
      : source_(source),
        o_(source.options_),
        watch_(watch),
        loop_(watch.loop()),
        sink_(sink),
        stats_(source.metrics_ ? *source.metrics_ : Metrics::global()),
        backoff_({.initial = o_.retry_interval,
                  .max = o_.max_retry_interval,
                  .multiplier = 2.0,
                  .jitter = 0.2}) {}

  const std::string& service() const override { return o_.service; }
  bool uses_slices() const {
    return o_.address == AddressMode::kEndpoints || o_.address == AddressMode::kNode;
  }
  bool uses_service() const { return o_.address != AddressMode::kEndpoints; }

  // On the loop.
  void begin() {
    http_ = std::make_unique<net::AsyncHttpClient>(
        loop_, net::AsyncHttpClient::Options{.max_body_bytes = o_.max_response_bytes});
    if (uses_service()) read_service();
  }
  void end() {
    if (timer_ != 0) loop_.cancel(timer_);
    timer_ = 0;
    http_.reset();
  }

  void on_slices(const std::vector<const Slice*>& slices) override {
    if (o_.address == AddressMode::kEndpoints) {
      Mapped m = map_endpoints(slices, o_);
      stats_.draining.set({source_.backend_, o_.service}, m.draining);
      report(m);
      return;
    }
    slices_.clear();
    for (const Slice* s : slices) slices_.push_back(*s);
    have_slices_ = true;
    recompute();
  }
  void on_error(const Error& e) override { publish(e); }

 private:
  void report(Mapped& m) {
    for (const std::string& p : m.problems)
      if (logged_.insert(p).second) log::warn(kComponent, "{}: {}", source_.describe(), p);
    stats_.endpoints.set({source_.backend_, o_.service}, static_cast<double>(m.endpoints.size()));
    publish(std::move(m.endpoints));
  }

  void recompute() {
    if (!svc_ || (o_.address == AddressMode::kNode && (!have_slices_ || !nodes_))) return;
    std::vector<const Slice*> ptrs;
    for (const Slice& s : slices_) ptrs.push_back(&s);
    static const std::map<std::string, std::string> kNone;
    auto m = map_service(o_, *svc_, nodes_ ? *nodes_ : kNone, ptrs);
    if (!m) return publish(Error{m.error().kind, source_.describe() + ": " + m.error().message});
    report(*m);
  }

  void read_service() {
    auto req = watch_.request(service_path(watch_.ns(), o_.service), o_.timeout);
    if (!req) return aux_failed(req.error());
    http_->start(*req, [this](Result<net::HttpResponse> resp) {
      if (!resp) return aux_failed(resp.error());
      if (resp->status != 200) {
        if (resp->status == 404)
          return aux_failed(Error::invalid(
              fmt::format("Service {} not found in namespace {}", o_.service, watch_.ns())));
        return aux_failed(watch_.http_error(*resp, "get", "services", "", true));
      }
      auto svc = parse_service(resp->body);
      if (!svc) return aux_failed(svc.error());
      svc_ = std::move(*svc);
      if (o_.address == AddressMode::kNode) return read_nodes();
      aux_done();
    });
  }
  void read_nodes() {
    auto req = watch_.request("/api/v1/nodes", o_.timeout);
    if (!req) return aux_failed(req.error());
    http_->start(*req, [this](Result<net::HttpResponse> resp) {
      if (!resp) return aux_failed(resp.error());
      if (resp->status != 200)
        return aux_failed(watch_.http_error(*resp, "list", "nodes", "", false));
      auto nodes = parse_node_list(resp->body);
      if (!nodes) return aux_failed(nodes.error());
      nodes_ = std::move(*nodes);
      aux_done();
    });
  }
  void aux_done() {
    backoff_.reset();
    recompute();
    timer_ = loop_.after(o_.refresh_interval, [this] {
      timer_ = 0;
      read_service();
    });
  }
  void aux_failed(const Error& e) {
    publish(Error{e.kind, source_.describe() + ": " + e.message});
    timer_ = loop_.after(backoff_.next(), [this] {
      timer_ = 0;
      read_service();
    });
  }

  void publish(Snapshot snap) {
    if (last_ && last_->ok() && snap.ok() && **last_ == *snap) return;
    if (last_ && !last_->ok() && !snap.ok() && last_->error().message == snap.error().message) {
      sink_.publish(snap);  // still failing: counted, not re-logged
      return;
    }
    if (snap.ok()) {
      log::debug(kComponent, "{}: {} endpoints", source_.describe(), snap->size());
    } else {
      log::warn(kComponent, "{}", snap.error().message);
    }
    sink_.publish(snap);
    last_ = std::move(snap);
  }

  KubernetesSource& source_;
  const Options& o_;
  NamespaceWatch& watch_;
  runtime::Loop& loop_;
  Sink& sink_;
  KubernetesStats stats_;
  runtime::Backoff backoff_;
  std::unique_ptr<net::AsyncHttpClient> http_;
  runtime::TimerId timer_ = 0;
  std::optional<Service> svc_;
  std::optional<std::map<std::string, std::string>> nodes_;
  std::vector<Slice> slices_;
  bool have_slices_ = false;
  std::set<std::string> logged_;
  std::optional<Snapshot> last_;
};

KubernetesSource::KubernetesSource(Options options, std::string backend, Metrics* metrics)
    : options_(std::move(options)), backend_(std::move(backend)), metrics_(metrics) {}

KubernetesSource::~KubernetesSource() { stop(); }

std::string KubernetesSource::describe() const {
  return fmt::format("kubernetes {}/{} port {} ({})",
                     options_.namespace_.empty() ? "<default>" : options_.namespace_,
                     options_.service, options_.port_text().empty() ? "*" : options_.port_text(),
                     to_string(options_.address));
}

Status KubernetesSource::start(Sink& sink) {
  if (machine_) return Error::internal(describe() + ": already started");
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status KubernetesSource::start_on(runtime::Runtime& runtime, Sink& sink) {
  if (machine_) return Error::internal(describe() + ": already started");
  auto access = load_access(options_);
  if (!access) return Error{access.error().kind, describe() + ": " + access.error().message};
  if (options_.namespace_.empty()) options_.namespace_ = resolve_namespace(options_, *access);
  log::info(kComponent, "{}: API server {} ({})", describe(), access->server, access->origin);
  watch_ = NamespaceWatch::acquire(*access, options_.namespace_, options_, runtime,
                                   metrics_ ? *metrics_ : Metrics::global());
  machine_ = std::make_unique<Machine>(*this, *watch_, sink);
  watch_->loop().run_sync([this] { machine_->begin(); });
  if (machine_->uses_slices()) watch_->subscribe(machine_.get());
  return {};
}

void KubernetesSource::stop() {
  if (!machine_) return;
  if (machine_->uses_slices()) watch_->unsubscribe(machine_.get());
  watch_->loop().run_sync([this] { machine_->end(); });
  machine_.reset();
  watch_.reset();
  if (own_runtime_) {
    own_runtime_->stop();
    own_runtime_.reset();
  }
}

Snapshot KubernetesSource::fetch_once(std::chrono::milliseconds timeout) {
  auto access = load_access(options_);
  if (!access) return Error{access.error().kind, describe() + ": " + access.error().message};
  const std::string ns = resolve_namespace(options_, *access);
  Credentials creds(*access);
  net::CurlHttpClient::Options co;
  co.max_body_bytes = options_.max_response_bytes;
  net::CurlHttpClient client(co);
  auto get = [&](const std::string& path) -> Result<net::HttpResponse> {
    net::HttpRequest req;
    req.url = access->server + path;
    req.timeout = std::min(timeout, options_.timeout);
    req.connect_timeout = std::min(req.timeout, options_.connect_timeout);
    Status s = creds.apply(req, req.timeout);
    if (!s) return s.error();
    auto resp = client.perform(req);
    if (!resp) return resp.error();
    if (resp->status != 200) {
      auto st = parse_status(resp->body);
      return Error::unavailable(fmt::format("HTTP {} for {}: {}", resp->status, path,
                                            st ? st->message : os::printable(resp->body, 200)));
    }
    return resp;
  };
  auto fail = [&](const Error& e) { return Error{e.kind, describe() + ": " + e.message}; };
  std::vector<Slice> slices;
  if (options_.address == AddressMode::kEndpoints || options_.address == AddressMode::kNode) {
    std::string cont;
    do {
      std::string path = "/apis/discovery.k8s.io/v1/namespaces/" + ns +
                         "/endpointslices?labelSelector=" +
                         net::url_encode("kubernetes.io/service-name=" + options_.service);
      if (options_.page_size > 0) path += "&limit=" + std::to_string(options_.page_size);
      if (!cont.empty()) path += "&continue=" + net::url_encode(cont);
      auto resp = get(path);
      if (!resp) return fail(resp.error());
      auto page = parse_slice_list(resp->body);
      if (!page) return fail(page.error());
      for (Slice& s : page->items) slices.push_back(std::move(s));
      cont = page->continue_token;
    } while (!cont.empty());
  }
  std::vector<const Slice*> ptrs;
  for (const Slice& s : slices) ptrs.push_back(&s);
  if (options_.address == AddressMode::kEndpoints) return map_endpoints(ptrs, options_).endpoints;
  auto svc_resp = get(service_path(ns, options_.service));
  if (!svc_resp) return fail(svc_resp.error());
  auto svc = parse_service(svc_resp->body);
  if (!svc) return fail(svc.error());
  std::map<std::string, std::string> nodes;
  if (options_.address == AddressMode::kNode) {
    auto n = get("/api/v1/nodes");
    if (!n) return fail(n.error());
    auto parsed = parse_node_list(n->body);
    if (!parsed) return fail(parsed.error());
    nodes = std::move(*parsed);
  }
  auto m = map_service(options_, *svc, nodes, ptrs);
  if (!m) return fail(m.error());
  return std::move(m->endpoints);
}

SourceKind source_kind() {
  return SourceKind{"kubernetes",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = options_from_node(node, context.base_dir, diag);
                      if (!options) return nullptr;
                      return std::make_unique<KubernetesSource>(std::move(*options),
                                                                context.backend, context.metrics);
                    }};
}

}  // namespace ep::discovery::kubernetes
