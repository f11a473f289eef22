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

std::string service_path(const std::string& ns, const std::string& svc) {  // fetch_once
  return "/api/v1/namespaces/" + ns + "/services/" + svc;
}

}  // namespace

// On the cluster's loop (NamespaceWatch::loop_for): a subscriber of the shared watches it needs
// (EndpointSlices for endpoints and node modes; the namespace's Services for the Service-based
// modes; the Nodes for node mode), mapping what they deliver to the backend's set.
class KubernetesSource::Machine {
 public:
  struct Sub final : NamespaceWatch::Subscriber {
    Sub(Machine& m, Resource r, std::string k) : machine(m), resource(r), k(std::move(k)) {}
    const std::string& key() const override { return k; }
    void on_objects(const std::vector<const Object*>& objects) override {
      machine.on_objects(resource, objects);
    }
    void on_error(const Error& e) override { machine.publish(e); }
    Machine& machine;
    Resource resource;
    std::string k;
  };

  Machine(KubernetesSource& source, runtime::Loop& loop, Sink& sink)
      : source_(source),
        o_(source.options_),
        loop_(loop),
        sink_(sink),
        stats_(source.metrics_ ? *source.metrics_ : Metrics::global()) {}

  bool uses_slices() const {
    return o_.address == AddressMode::kEndpoints || o_.address == AddressMode::kNode;
  }
  bool uses_service() const { return o_.address != AddressMode::kEndpoints; }
  bool uses_nodes() const { return o_.address == AddressMode::kNode; }

  // On the loop: ends the drain holds (the source stops: the reconciler's own drain_timeout
  // applies again).
  void end() { hold({}); }

  void on_objects(Resource r, const std::vector<const Object*>& objects) {
    switch (r) {
      case Resource::kEndpointSlices: {
        if (o_.address == AddressMode::kEndpoints) {
          std::vector<const Slice*> slices;
          for (const Object* o : objects) slices.push_back(&o->slice);
          Mapped m = map_endpoints(slices, o_);
          stats_.draining.set({source_.backend_, o_.service}, m.draining);
          hold(m.drain);  // before the set without them reaches the reconciler
          report(m);
          return;
        }
        slices_.clear();
        for (const Object* o : objects) slices_.push_back(o->slice);
        have_slices_ = true;
        break;
      }
      case Resource::kServices:
        svc_.reset();
        for (const Object* o : objects)
          if (o->name == o_.service) svc_ = o->service;
        have_service_ = true;
        break;
      case Resource::kNodes:
        nodes_.emplace();
        for (const Object* o : objects)
          if (!o->internal_ip.empty()) (*nodes_)[o->name] = o->internal_ip;
        break;
    }
    recompute();
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

 private:
  void report(Mapped& m) {
    for (const std::string& p : m.problems)
      if (logged_.insert(p).second) log::warn(kComponent, "{}: {}", source_.describe(), p);
    stats_.endpoints.set({source_.backend_, o_.service}, static_cast<double>(m.endpoints.size()));
    publish(std::move(m.endpoints));
  }

  // Serving && terminating endpoints stay in DRAIN (no new sessions; existing ones finish) for as
  // long as they stay so, past the backend's drain_timeout, bounded by terminating_drain_timeout
  // from when we first saw them terminating; released when they leave (gone, ready again, or
  // neither ready nor serving: the usual drain/remove path then applies).
  void hold(const std::vector<Endpoint>& drain) {
    const ServerStateView* view = source_.server_states_;
    if (view == nullptr) return;
    const SteadyTime now = source_.clock_->now();
    std::map<std::pair<std::string, std::uint16_t>, SteadyTime> next;
    for (const Endpoint& e : drain) {
      const std::pair<std::string, std::uint16_t> key{e.address,
                                                      static_cast<std::uint16_t>(e.port)};
      auto it = held_.find(key);
      if (it != held_.end()) {
        next.insert(*it);
        continue;
      }
      view->hold_drain(source_.backend_, e.address, key.second, now + o_.terminating_drain_timeout);
      log::info(kComponent, "{}: {}:{} is terminating; held in drain while it serves",
                source_.describe(), e.address, e.port);
      next.emplace(key, now);
    }
    for (const auto& [key, since] : held_)
      if (!next.count(key)) view->release_drain(source_.backend_, key.first, key.second);
    held_ = std::move(next);
  }

  void recompute() {
    if (!have_service_ || (uses_nodes() && (!have_slices_ || !nodes_))) return;
    if (!svc_)
      return publish(Error::invalid(fmt::format("{}: Service {} not found in namespace {}",
                                                source_.describe(), o_.service, o_.namespace_)));
    std::vector<const Slice*> ptrs;
    for (const Slice& s : slices_) ptrs.push_back(&s);
    static const std::map<std::string, std::string> kNone;
    auto m = map_service(o_, *svc_, nodes_ ? *nodes_ : kNone, ptrs);
    if (!m) return publish(Error{m.error().kind, source_.describe() + ": " + m.error().message});
    report(*m);
  }

  KubernetesSource& source_;
  const Options& o_;
  runtime::Loop& loop_;
  Sink& sink_;
  KubernetesStats stats_;
  std::optional<Service> svc_;
  bool have_service_ = false;
  std::optional<std::map<std::string, std::string>> nodes_;
  std::vector<Slice> slices_;
  bool have_slices_ = false;
  std::set<std::string> logged_;
  std::optional<Snapshot> last_;
  std::map<std::pair<std::string, std::uint16_t>, SteadyTime> held_;  // → first seen terminating
};

KubernetesSource::KubernetesSource(Options options, std::string backend, Metrics* metrics,
                                   const ServerStateView* server_states, const Clock* clock)
    : options_(std::move(options)),
      backend_(std::move(backend)),
      metrics_(metrics),
      server_states_(server_states),
      clock_(clock ? clock : &SystemClock::instance()) {}

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
  Metrics& metrics = metrics_ ? *metrics_ : Metrics::global();
  runtime::Loop& loop = NamespaceWatch::loop_for(*access, runtime);
  machine_ = std::make_unique<Machine>(*this, loop, sink);
  auto add = [&](Resource r, const std::string& ns, const std::string& key) {
    watches_.push_back(NamespaceWatch::acquire(*access, ns, options_, runtime, metrics, r));
    subs_.push_back(std::make_unique<Machine::Sub>(*machine_, r, key));
  };
  if (machine_->uses_slices())
    add(Resource::kEndpointSlices, options_.namespace_, options_.service);
  if (machine_->uses_service()) add(Resource::kServices, options_.namespace_, options_.service);
  if (machine_->uses_nodes()) add(Resource::kNodes, "", "");
  for (size_t i = 0; i < watches_.size(); ++i) watches_[i]->subscribe(subs_[i].get());
  return {};
}

std::shared_ptr<NamespaceWatch> KubernetesSource::watch() const {
  return watches_.empty() ? nullptr : watches_.front();
}

void KubernetesSource::stop() {
  if (!machine_) return;
  for (size_t i = 0; i < watches_.size(); ++i) watches_[i]->unsubscribe(subs_[i].get());
  watches_.front()->loop().run_sync([this] { machine_->end(); });
  subs_.clear();
  machine_.reset();
  watches_.clear();
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
                      return std::make_unique<KubernetesSource>(
                          std::move(*options), context.backend, context.metrics,
                          context.server_states, context.clock);
                    }};
}

}  // namespace ep::discovery::kubernetes
