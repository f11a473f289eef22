#include "discovery/kubernetes/parse.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "os/json.h"
#include "os/strings.h"

namespace ep::discovery::kubernetes {
namespace {

using json = nlohmann::json;

const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::string> str(const json& obj, const char* key, const std::string& what,
                        bool required = false) {
  const json* v = field(obj, key);
  if (v == nullptr) {
    if (required) return Error::invalid(fmt::format("{}: field '{}' is missing", what, key));
    return std::string{};
  }
  if (!v->is_string())
    return Error::invalid(
        fmt::format("{}: field '{}' is not a string: {}", what, key, os::json_brief(*v)));
  return v->get<std::string>();
}

Result<std::optional<bool>> opt_bool(const json& obj, const char* key, const std::string& what) {
  const json* v = field(obj, key);
  if (v == nullptr) return std::optional<bool>{};
  if (!v->is_boolean())
    return Error::invalid(
        fmt::format("{}: field '{}' is not a boolean: {}", what, key, os::json_brief(*v)));
  return std::optional<bool>(v->get<bool>());
}

// A string field, or "" when missing or of another type (for fields only logged or optional).
std::string lenient(const json& obj, const char* key) {
  const json* v = field(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string{};
}

bool is_ip(const std::string& s, int family) {
  unsigned char buf[16];
  return ::inet_pton(family, s.c_str(), buf) == 1;
}

std::string slice_what(const json& obj) {
  std::string name;
  if (const json* md = field(obj, "metadata"))
    if (const json* n = field(*md, "name"); n && n->is_string()) name = n->get<std::string>();
  return "EndpointSlice '" + os::printable(name, 80) + "'";
}

}  // namespace

Result<Slice> parse_slice(const json& obj) {
  const std::string what = slice_what(obj);
  if (!obj.is_object()) return Error::invalid("EndpointSlice: not an object");
  Slice s;
  const json* md = field(obj, "metadata");
  if (md == nullptr || !md->is_object()) return Error::invalid(what + ": metadata is missing");
  auto name = str(*md, "name", what + " metadata", true);
  if (!name) return name.error();
  s.name = *name;
  auto rv = str(*md, "resourceVersion", what + " metadata");
  if (!rv) return rv.error();
  s.resource_version = *rv;
  if (const json* labels = field(*md, "labels")) {
    auto svc = str(*labels, "kubernetes.io/service-name", what + " metadata.labels");
    if (!svc) return svc.error();
    s.service = *svc;
  }
  auto at = str(obj, "addressType", what, true);
  if (!at) return at.error();
  s.address_type = *at;
  if (const json* eps = field(obj, "endpoints")) {
    if (!eps->is_array()) return Error::invalid(what + ": endpoints is not an array");
    size_t i = 0;
    for (const json& e : *eps) {
      const std::string ew = fmt::format("{} endpoints[{}]", what, i++);
      if (!e.is_object()) return Error::invalid(ew + ": not an object");
      SliceEndpoint se;
      const json* addrs = field(e, "addresses");
      if (addrs == nullptr || !addrs->is_array())
        return Error::invalid(ew + ": addresses is missing or not an array");
      for (const json& a : *addrs) {
        if (!a.is_string()) return Error::invalid(ew + ": an address is not a string");
        se.addresses.push_back(a.get<std::string>());
      }
      if (const json* c = field(e, "conditions")) {
        auto r = opt_bool(*c, "ready", ew + " conditions");
        auto sv = opt_bool(*c, "serving", ew + " conditions");
        auto t = opt_bool(*c, "terminating", ew + " conditions");
        if (!r) return r.error();
        if (!sv) return sv.error();
        if (!t) return t.error();
        se.ready = *r;
        se.serving = *sv;
        se.terminating = *t;
      }
      for (auto [key, out] : {std::pair{"hostname", &se.hostname},
                              std::pair{"nodeName", &se.node_name}, std::pair{"zone", &se.zone}}) {
        auto v = str(e, key, ew);
        if (!v) return v.error();
        *out = *v;
      }
      if (const json* tr = field(e, "targetRef")) {
        auto v = str(*tr, "name", ew + " targetRef");
        if (!v) return v.error();
        se.pod = *v;
      }
      if (const json* h = field(e, "hints")) {
        if (const json* fz = field(*h, "forZones"); fz && fz->is_array()) {
          for (const json& z : *fz) {
            auto v = str(z, "name", ew + " hints.forZones");
            if (!v) return v.error();
            se.hint_zones.push_back(*v);
          }
        }
      }
      s.endpoints.push_back(std::move(se));
    }
  }
  if (const json* ports = field(obj, "ports")) {
    if (!ports->is_array()) return Error::invalid(what + ": ports is not an array");
    for (const json& p : *ports) {
      SlicePort sp;
      auto n = str(p, "name", what + " ports");
      if (!n) return n.error();
      sp.name = *n;
      if (const json* v = field(p, "port")) {
        if (!v->is_number_integer())
          return Error::invalid(what + ": ports[].port is not an integer: " + os::json_brief(*v));
        sp.port = v->get<long>();
      }
      auto pr = str(p, "protocol", what + " ports");
      if (!pr) return pr.error();
      if (!pr->empty()) sp.protocol = *pr;
      s.ports.push_back(std::move(sp));
    }
  }
  return s;
}

std::optional<ApiStatus> parse_status(std::string_view text) {
  auto doc = os::parse_json(text, "Status");
  if (!doc || !doc->is_object() || doc->value("kind", "") != "Status") return std::nullopt;
  ApiStatus st;
  if (const json* c = field(*doc, "code"); c && c->is_number_integer()) st.code = c->get<long>();
  st.reason = lenient(*doc, "reason");
  st.message = lenient(*doc, "message");
  return st;
}

const char* resource_name(Resource r) {
  switch (r) {
    case Resource::kEndpointSlices:
      return "endpointslices";
    case Resource::kServices:
      return "services";
    case Resource::kNodes:
      return "nodes";
  }
  return "?";
}
const char* resource_group(Resource r) {
  return r == Resource::kEndpointSlices ? "discovery.k8s.io" : "";
}
static const char* kind_of(Resource r) {
  switch (r) {
    case Resource::kEndpointSlices:
      return "EndpointSlice";
    case Resource::kServices:
      return "Service";
    case Resource::kNodes:
      return "Node";
  }
  return "?";
}

namespace {

Result<Service> service_from(const json& doc) {
  Service s;
  const std::string what = "Service";
  if (const json* spec = field(doc, "spec")) {
    s.type = lenient(*spec, "type");
    s.cluster_ip = lenient(*spec, "clusterIP");
    if (const json* ips = field(*spec, "clusterIPs"); ips && ips->is_array())
      for (const json& ip : *ips)
        if (ip.is_string()) s.cluster_ips.push_back(ip.get<std::string>());
    if (const json* ports = field(*spec, "ports"); ports && ports->is_array()) {
      for (const json& p : *ports) {
        ServicePort sp;
        sp.name = lenient(p, "name");
        if (const json* v = field(p, "port"); v && v->is_number_integer()) sp.port = v->get<long>();
        if (const json* v = field(p, "nodePort"); v && v->is_number_integer())
          sp.node_port = v->get<long>();
        if (const json* v = field(p, "targetPort"))
          sp.target_port = v->is_string() ? v->get<std::string>() : v->dump();
        s.ports.push_back(std::move(sp));
      }
    }
  }
  if (const json* st = field(doc, "status"))
    if (const json* lb = field(*st, "loadBalancer"))
      if (const json* ing = field(*lb, "ingress"); ing && ing->is_array())
        for (const json& i : *ing) {
          if (auto ip = str(i, "ip", what); ip && !ip->empty()) s.lb_ips.push_back(*ip);
          if (auto h = str(i, "hostname", what); h && !h->empty()) s.lb_hostnames.push_back(*h);
        }
  return s;
}

std::string internal_ip_of(const json& node) {
  const json* st = field(node, "status");
  const json* addrs = st ? field(*st, "addresses") : nullptr;
  if (addrs == nullptr || !addrs->is_array()) return {};
  for (const json& a : *addrs)
    if (lenient(a, "type") == "InternalIP") return lenient(a, "address");
  return {};
}

}  // namespace

Result<Object> parse_object(Resource r, const json& obj) {
  Object o;
  if (r == Resource::kEndpointSlices) {
    auto s = parse_slice(obj);
    if (!s) return s.error();
    o.name = s->name;
    o.key = s->service;
    o.resource_version = s->resource_version;
    o.slice = std::move(*s);
    return o;
  }
  const std::string what = kind_of(r);
  if (!obj.is_object()) return Error::invalid(what + ": not an object");
  const json* md = field(obj, "metadata");
  if (md == nullptr) return Error::invalid(what + ": metadata is missing");
  auto name = str(*md, "name", what + " metadata", true);
  if (!name) return name.error();
  auto rv = str(*md, "resourceVersion", what + " '" + os::printable(*name, 80) + "' metadata");
  if (!rv) return rv.error();
  o.name = o.key = *name;
  o.resource_version = *rv;
  if (r == Resource::kServices) {
    auto svc = service_from(obj);
    if (!svc) return svc.error();
    o.service = std::move(*svc);
  } else {
    o.internal_ip = internal_ip_of(obj);
  }
  return o;
}

Result<ObjectList> parse_list(Resource r, std::string_view text) {
  const std::string list_kind = std::string(kind_of(r)) + "List";
  auto doc = os::parse_json(text, list_kind);
  if (!doc) return doc.error();
  if (!doc->is_object() || doc->value("kind", list_kind) != list_kind)
    return Error::invalid("the reply is not a " + list_kind + " (kind " +
                          os::json_brief(doc->is_object() ? doc->value("kind", json()) : *doc) +
                          ")");
  ObjectList out;
  const json* md = field(*doc, "metadata");
  if (md == nullptr) return Error::invalid(list_kind + ": metadata is missing");
  auto rv = str(*md, "resourceVersion", list_kind + " metadata", true);
  if (!rv) return rv.error();
  out.resource_version = *rv;
  auto cont = str(*md, "continue", list_kind + " metadata");
  if (!cont) return cont.error();
  out.continue_token = *cont;
  const json* items = field(*doc, "items");
  if (items != nullptr) {
    if (!items->is_array()) return Error::invalid(list_kind + ": items is not an array");
    for (const json& item : *items) {
      auto o = parse_object(r, item);
      if (!o) return o.error();
      out.items.push_back(std::move(*o));
    }
  }
  return out;
}

Result<ObjectEvent> parse_event(Resource r, std::string_view line) {
  auto doc = os::parse_json(line, "watch event");
  if (!doc) return doc.error();
  if (!doc->is_object()) return Error::invalid("watch event: not an object");
  auto type = str(*doc, "type", "watch event", true);
  if (!type) return type.error();
  const json* obj = field(*doc, "object");
  if (obj == nullptr || !obj->is_object())
    return Error::invalid("watch event " + *type + ": object is missing");
  ObjectEvent ev;
  if (*type == "ERROR") {
    ev.type = WatchEvent::Type::kError;
    if (const json* c = field(*obj, "code"); c && c->is_number_integer())
      ev.status.code = c->get<long>();
    ev.status.reason = lenient(*obj, "reason");
    ev.status.message = lenient(*obj, "message");
    return ev;
  }
  if (*type == "BOOKMARK") {
    ev.type = WatchEvent::Type::kBookmark;
    const json* md = field(*obj, "metadata");
    if (md == nullptr) return Error::invalid("watch BOOKMARK: metadata is missing");
    auto rv = str(*md, "resourceVersion", "watch BOOKMARK metadata", true);
    if (!rv) return rv.error();
    ev.object.resource_version = *rv;
    ev.object.slice.resource_version = *rv;
    return ev;
  }
  if (*type == "ADDED") {
    ev.type = WatchEvent::Type::kAdded;
  } else if (*type == "MODIFIED") {
    ev.type = WatchEvent::Type::kModified;
  } else if (*type == "DELETED") {
    ev.type = WatchEvent::Type::kDeleted;
  } else {
    return Error::invalid("watch event: unknown type '" + os::printable(*type, 40) + "'");
  }
  auto o = parse_object(r, *obj);
  if (!o) return o.error();
  ev.object = std::move(*o);
  return ev;
}

Result<SliceList> parse_slice_list(std::string_view text) {
  auto l = parse_list(Resource::kEndpointSlices, text);
  if (!l) return l.error();
  SliceList out;
  out.resource_version = l->resource_version;
  out.continue_token = l->continue_token;
  for (Object& o : l->items) out.items.push_back(std::move(o.slice));
  return out;
}

Result<WatchEvent> parse_watch_event(std::string_view line) {
  auto e = parse_event(Resource::kEndpointSlices, line);
  if (!e) return e.error();
  WatchEvent ev;
  ev.type = e->type;
  ev.status = std::move(e->status);
  ev.slice = std::move(e->object.slice);
  return ev;
}

Membership membership(const SliceEndpoint& e) {
  // A missing ready/serving means "unknown: treat as ready"; a missing terminating means false.
  const bool terminating = e.terminating.value_or(false);
  const bool ready = e.ready.value_or(true);
  const bool serving = e.serving.value_or(ready);
  if (ready && !terminating) return Membership::kServe;
  if (serving && terminating) return Membership::kDrain;
  if (ready) return Membership::kServe;  // ready && terminating (publishNotReadyAddresses)
  return Membership::kAbsent;
}

Mapped map_endpoints(const std::vector<const Slice*>& slices, const Options& options) {
  Mapped out;
  std::map<std::pair<std::string, std::uint32_t>, Endpoint> unique, drain;
  for (const Slice* s : slices) {
    int family = 0;
    if (s->address_type == "IPv4") {
      family = AF_INET;
    } else if (s->address_type == "IPv6") {
      family = AF_INET6;
    } else {
      out.problems.push_back(fmt::format(
          "EndpointSlice {}: addressType '{}' is not supported (only IPv4 and IPv6; FQDN "
          "endpoints are not IP addresses HAProxy can be given); slice skipped",
          os::printable(s->name, 80), os::printable(s->address_type, 20)));
      continue;
    }
    std::optional<long> port;
    if (options.port_number > 0) {
      port = options.port_number;
    } else if (!options.port_name.empty()) {
      for (const SlicePort& p : s->ports)
        if (p.name == options.port_name) port = p.port;
    } else if (s->ports.size() == 1) {
      port = s->ports[0].port;
    }
    if (!port) {
      if (!s->endpoints.empty()) {
        std::vector<std::string> names;
        for (const SlicePort& p : s->ports) names.push_back("'" + os::printable(p.name, 63) + "'");
        out.problems.push_back(fmt::format(
            "EndpointSlice {}: {} (ports: {}); slice skipped", os::printable(s->name, 80),
            options.port_name.empty() ? "several ports and no kubernetes.port to choose one"
                                      : "no port named '" + options.port_name + "'",
            names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
      }
      continue;
    }
    if (*port < 1 || *port > 65535) {
      out.problems.push_back(fmt::format("EndpointSlice {}: port {} is out of range; slice skipped",
                                         os::printable(s->name, 80), *port));
      continue;
    }
    for (const SliceEndpoint& e : s->endpoints) {
      if (e.addresses.empty()) continue;
      const std::string& addr = e.addresses.front();
      if (!is_ip(addr, family)) {
        out.problems.push_back(
            fmt::format("EndpointSlice {}: address '{}' is not an {} address; "
                        "endpoint skipped",
                        os::printable(s->name, 80), os::printable(addr, 60), s->address_type));
        continue;
      }
      const Membership m = membership(e);
      if (m == Membership::kAbsent) continue;
      Endpoint ep;
      ep.address = addr;
      ep.port = static_cast<std::uint32_t>(*port);
      ep.id = e.pod.empty() ? addr : e.pod;
      if (m == Membership::kDrain) {
        ++out.draining;
        drain.emplace(std::pair{ep.address, ep.port}, std::move(ep));
        continue;
      }
      if (!options.zone.empty()) {
        const bool hinted =
            std::find(e.hint_zones.begin(), e.hint_zones.end(), options.zone) != e.hint_zones.end();
        ep.backup = e.hint_zones.empty() ? (!e.zone.empty() && e.zone != options.zone) : !hinted;
      }
      ep.labels["k8s_slice"] = s->name;
      if (!e.node_name.empty()) ep.labels["k8s_node"] = e.node_name;
      if (!e.zone.empty()) ep.labels["k8s_zone"] = e.zone;
      unique.emplace(std::pair{ep.address, ep.port}, std::move(ep));
    }
  }
  for (auto& [k, ep] : drain)
    if (!unique.count(k)) out.drain.push_back(std::move(ep));
  for (auto& [k, ep] : unique) out.endpoints.push_back(std::move(ep));
  return out;
}

Result<Service> parse_service(std::string_view text) {
  auto doc = os::parse_json(text, "Service");
  if (!doc) return doc.error();
  if (!doc->is_object() || doc->value("kind", "Service") != "Service")
    return Error::invalid("the reply is not a Service");
  return service_from(*doc);
}

Result<std::map<std::string, std::string>> parse_node_list(std::string_view text) {
  auto doc = os::parse_json(text, "NodeList");
  if (!doc) return doc.error();
  if (!doc->is_object()) return Error::invalid("NodeList: not an object");
  std::map<std::string, std::string> out;
  const json* items = field(*doc, "items");
  if (items == nullptr || !items->is_array()) return Error::invalid("NodeList: items is missing");
  for (const json& n : *items) {
    const json* md = field(n, "metadata");
    if (md == nullptr) continue;
    const std::string ip = internal_ip_of(n);
    if (!ip.empty()) out[lenient(*md, "name")] = ip;
  }
  return out;
}

Result<ServicePort> choose_service_port(const Service& svc, const Options& options) {
  for (const ServicePort& p : svc.ports) {
    if (options.port_number > 0 ? (p.port == options.port_number ||
                                   p.target_port == std::to_string(options.port_number))
                                : (!options.port_name.empty() && p.name == options.port_name))
      return p;
  }
  if (options.port_name.empty() && options.port_number == 0 && svc.ports.size() == 1)
    return svc.ports[0];
  return Error::invalid(fmt::format("Service {}: no port {} (kubernetes.port)", options.service,
                                    options.port_text().empty()
                                        ? std::string("(only one port "
                                                      "may be left unnamed)")
                                        : "'" + options.port_text() + "'"));
}

}  // namespace ep::discovery::kubernetes
