#pragma once
// Pure parsers for the Kubernetes API objects the source reads (discovery.k8s.io/v1
// EndpointSlice and its list / watch events, core/v1 Status, Service, Node) and the mapping of
// slices to endpoints. No I/O. Every error names the object and the field.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "discovery/kubernetes/options.h"

namespace ep::discovery::kubernetes {

struct SlicePort {
  std::string name;
  std::optional<long> port;  // the endpoints' (target) port
  std::string protocol = "TCP";
};

struct SliceEndpoint {
  std::vector<std::string> addresses;
  std::optional<bool> ready, serving, terminating;
  std::string hostname, node_name, zone, pod;
  std::vector<std::string> hint_zones;
};

struct Slice {
  std::string name;
  std::string service;  // label kubernetes.io/service-name
  std::string address_type;
  std::string resource_version;
  std::vector<SliceEndpoint> endpoints;
  std::vector<SlicePort> ports;
};

struct SliceList {
  std::string resource_version;
  std::string continue_token;
  std::vector<Slice> items;
};

// A Status object (error replies, watch ERROR events).
struct ApiStatus {
  long code = 0;
  std::string reason, message;
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError } type = Type::kAdded;
  Slice slice;       // kAdded/kModified/kDeleted (kBookmark: only resource_version)
  ApiStatus status;  // kError
};

Result<Slice> parse_slice(const nlohmann::json& obj);  // defined in parse.cc

Result<SliceList> parse_slice_list(std::string_view json);
Result<WatchEvent> parse_watch_event(std::string_view line);
// nullopt when the body is not a Status object.
std::optional<ApiStatus> parse_status(std::string_view json);

// Service fields for the node / cluster_ip / load_balancer modes.
struct ServicePort {
  std::string name;
  long port = 0, node_port = 0;
  std::string target_port;  // number or name, as text
};
struct Service {
  std::string type, cluster_ip;
  std::vector<std::string> cluster_ips, lb_ips, lb_hostnames;
  std::vector<ServicePort> ports;
};

// The collections the source lists and watches (namespace_watch.h), and one object of them as
// kept by a watch: `key` is what a subscriber selects (EndpointSlice: its service label;
// Service, Node: its name).
enum class Resource { kEndpointSlices, kServices, kNodes };
const char* resource_name(Resource r);   // "endpointslices", "services", "nodes"
const char* resource_group(Resource r);  // "discovery.k8s.io" or "" (core)
struct Object {
  std::string name, key, resource_version;
  Slice slice;              // kEndpointSlices
  Service service;          // kServices
  std::string internal_ip;  // kNodes: status.addresses InternalIP ("" when none)
};
struct ObjectList {
  std::string resource_version, continue_token;
  std::vector<Object> items;
};
struct ObjectEvent {
  WatchEvent::Type type = WatchEvent::Type::kAdded;
  Object object;     // kAdded/kModified/kDeleted (kBookmark: only resource_version)
  ApiStatus status;  // kError
};
Result<Object> parse_object(Resource r, const nlohmann::json& obj);
Result<ObjectList> parse_list(Resource r, std::string_view json);
Result<ObjectEvent> parse_event(Resource r, std::string_view line);

// What an endpoint of a slice is for the balancer.
enum class Membership { kServe, kDrain, kAbsent };
Membership membership(const SliceEndpoint& e);

// The whole set for a service from its slices (address: endpoints): IPv4/IPv6 slices only
// (an FQDN slice is skipped and reported in `problems`), the port by name/number, serving
// endpoints only (serving && terminating ones are left out of `endpoints` and listed in `drain`:
// the source holds them in DRAIN while they stay so), addresses checked as IP literals,
// duplicates (same address and port in two slices) merged, sorted by address. `problems`
// collects one line per skipped slice/endpoint.
struct Mapped {
  std::vector<Endpoint> endpoints;
  int draining = 0;             // serving && terminating endpoints left out
  std::vector<Endpoint> drain;  // … their addresses and ports (none also in `endpoints`)
  std::vector<std::string> problems;
};
Mapped map_endpoints(const std::vector<const Slice*>& slices, const Options& options);

Result<Service> parse_service(std::string_view json);
// node name -> InternalIP
Result<std::map<std::string, std::string>> parse_node_list(std::string_view json);

// The Service port the options choose (by name or number; the only one when unset).
Result<ServicePort> choose_service_port(const Service& svc, const Options& options);

}  // namespace ep::discovery::kubernetes
