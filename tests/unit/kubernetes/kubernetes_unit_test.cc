// Pure parts of the kubernetes source: EndpointSlice / watch / Status parsing over objects as the
// API server sends them, the conditions → membership mapping, options and kubeconfig loading.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "discovery/kubernetes/kubeconfig.h"
#include "discovery/kubernetes/options.h"
#include "discovery/kubernetes/parse.h"
#include "os/base64.h"

namespace ep::discovery::kubernetes {
namespace {

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/kubernetes/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

Options base_options() {
  Options o;
  o.service = "web";
  o.port_name = "http";
  return o;
}

TEST(KubernetesParse, RealEndpointSliceListWithEveryField) {
  auto list = parse_slice_list(testdata("endpointslice_list.json"));
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->resource_version, "1882614");
  EXPECT_FALSE(list->continue_token.empty());
  ASSERT_EQ(list->items.size(), 1u);
  const Slice& s = list->items[0];
  EXPECT_EQ(s.name, "web-x7k9q");
  EXPECT_EQ(s.service, "web");
  EXPECT_EQ(s.address_type, "IPv4");
  ASSERT_EQ(s.endpoints.size(), 4u);
  EXPECT_EQ(s.endpoints[0].node_name, "worker-1");
  EXPECT_EQ(s.endpoints[0].zone, "eu-west-1a");
  EXPECT_EQ(s.endpoints[0].hint_zones, std::vector<std::string>{"eu-west-1a"});
  EXPECT_EQ(s.endpoints[0].pod, "web-7d9f8c6b5-abcde");
  EXPECT_EQ(s.endpoints[0].hostname, "web-0");
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[1].port, 9090);

  EXPECT_EQ(membership(s.endpoints[0]), Membership::kServe);
  EXPECT_EQ(membership(s.endpoints[1]), Membership::kDrain);
  EXPECT_EQ(membership(s.endpoints[2]), Membership::kAbsent);
  EXPECT_EQ(membership(s.endpoints[3]), Membership::kServe) << "missing conditions = ready";

  Mapped m = map_endpoints({&s}, base_options());
  ASSERT_EQ(m.endpoints.size(), 2u);
  EXPECT_EQ(m.endpoints[0].address, "10.244.1.17");
  EXPECT_EQ(m.endpoints[0].port, 8080u);
  EXPECT_EQ(m.endpoints[0].id, "web-7d9f8c6b5-abcde");
  EXPECT_EQ(m.endpoints[1].address, "10.244.1.18");
  EXPECT_EQ(m.draining, 1);
  // The serving && terminating endpoint: listed for the drain hold, with its address and port.
  ASSERT_EQ(m.drain.size(), 1u);
  EXPECT_EQ(m.drain[0].address, s.endpoints[1].addresses[0]);
  EXPECT_EQ(m.drain[0].port, 8080u);
  // The same address and port serving in another slice is not held.
  Slice twin = s;
  twin.name = "web-twin";
  twin.endpoints = {s.endpoints[1]};
  twin.endpoints[0].ready = true;
  twin.endpoints[0].terminating = false;
  EXPECT_TRUE(map_endpoints({&s, &twin}, base_options()).drain.empty());
  // By port number, and the metrics port by name.
  Options by_number = base_options();
  by_number.port_name.clear();
  by_number.port_number = 9090;
  EXPECT_EQ(map_endpoints({&s}, by_number).endpoints[0].port, 9090u);
  Options missing = base_options();
  missing.port_name = "grpc";
  Mapped none = map_endpoints({&s}, missing);
  EXPECT_TRUE(none.endpoints.empty());
  ASSERT_EQ(none.problems.size(), 1u);
  EXPECT_NE(none.problems[0].find("no port named 'grpc' (ports: 'http', 'metrics')"),
            std::string::npos)
      << none.problems[0];
  // Zones: hints decide when present, else the zone.
  Options zoned = base_options();
  zoned.zone = "eu-west-1b";
  Mapped z = map_endpoints({&s}, zoned);
  EXPECT_TRUE(z.endpoints[0].backup);
  EXPECT_TRUE(z.endpoints[1].backup);
  zoned.zone = "eu-west-1a";
  z = map_endpoints({&s}, zoned);
  EXPECT_FALSE(z.endpoints[0].backup);
  EXPECT_FALSE(z.endpoints[1].backup);
}

TEST(KubernetesParse, WatchStreamEventsBookmarksAndExpiredErrors) {
  auto ls = lines(testdata("watch_stream.jsonl"));
  ASSERT_EQ(ls.size(), 4u);
  auto added = parse_watch_event(ls[0]);
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(added->type, WatchEvent::Type::kAdded);
  EXPECT_EQ(added->slice.address_type, "IPv6");
  Mapped m = map_endpoints({&added->slice}, base_options());
  ASSERT_EQ(m.endpoints.size(), 1u);
  EXPECT_EQ(m.endpoints[0].address, "fd00:10:244::5");
  auto bookmark = parse_watch_event(ls[1]);
  ASSERT_TRUE(bookmark.ok()) << bookmark.error().message;
  EXPECT_EQ(bookmark->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(bookmark->slice.resource_version, "1882750");
  auto deleted = parse_watch_event(ls[2]);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->type, WatchEvent::Type::kDeleted);
  auto error = parse_watch_event(ls[3]);
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->type, WatchEvent::Type::kError);
  EXPECT_EQ(error->status.code, 410);
  EXPECT_EQ(error->status.reason, "Expired");
}

TEST(KubernetesParse, GarbageAndWrongTypesAreErrorsNamingTheField) {
  EXPECT_FALSE(parse_slice_list("<html>").ok());
  EXPECT_FALSE(parse_slice_list(R"({"kind":"Status","code":500})").ok());
  auto bad = parse_slice_list(
      R"({"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"s"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":"yes"}}]}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(
                "EndpointSlice 's' endpoints[0] conditions: field 'ready' is not a boolean"),
            std::string::npos)
      << bad.error().message;
  EXPECT_FALSE(parse_watch_event(R"({"type":"WHAT","object":{}})").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED"})").ok());
  EXPECT_FALSE(parse_watch_event(std::string(100, '[')).ok()) << "nesting is bounded";
  auto st = parse_status(
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"endpointslices.discovery.k8s.io is forbidden","reason":"Forbidden","code":403})");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code, 403);
  EXPECT_FALSE(parse_status("nope").has_value());
}

TEST(KubernetesParse, HostileAddressesAndPortsNeverBecomeEndpoints) {
  Slice s;
  s.name = "evil";
  s.address_type = "IPv4";
  s.ports = {{"http", 8080, "TCP"}};
  for (const char* a : {"10.0.0.1;drain", "10.0.0.1\nshow", "fd00::1", "999.1.1.1", "", "10.0.0.2"})
    s.endpoints.push_back(SliceEndpoint{.addresses = {a}});
  Mapped m = map_endpoints({&s}, base_options());
  ASSERT_EQ(m.endpoints.size(), 1u);
  EXPECT_EQ(m.endpoints[0].address, "10.0.0.2");
  s.ports = {{"http", 0, "TCP"}};
  EXPECT_TRUE(map_endpoints({&s}, base_options()).endpoints.empty());
  s.ports = {{"http", 70000, "TCP"}};
  EXPECT_TRUE(map_endpoints({&s}, base_options()).endpoints.empty());
  s.address_type = "FQDN";
  s.ports = {{"http", 8080, "TCP"}};
  Mapped f = map_endpoints({&s}, base_options());
  EXPECT_TRUE(f.endpoints.empty());
  EXPECT_NE(f.problems[0].find("addressType 'FQDN' is not supported"), std::string::npos);
}

TEST(KubernetesParse, ServiceAndNodesForTheAddressModes) {
  auto svc = parse_service(R"({"kind":"Service","apiVersion":"v1","metadata":{"name":"web"},
    "spec":{"type":"LoadBalancer","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],
    "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":31380}]},
    "status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.7","ipMode":"VIP"},{"hostname":"lb.example"}]}}})");
  ASSERT_TRUE(svc.ok()) << svc.error().message;
  EXPECT_EQ(svc->cluster_ip, "10.96.0.10");
  EXPECT_EQ(svc->lb_ips, std::vector<std::string>{"192.0.2.7"});
  EXPECT_EQ(svc->lb_hostnames, std::vector<std::string>{"lb.example"});
  auto port = choose_service_port(*svc, base_options());
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(port->node_port, 31380);
  EXPECT_EQ(port->target_port, "8080");
  Options o = base_options();
  o.port_name = "grpc";
  EXPECT_FALSE(choose_service_port(*svc, o).ok());
  auto nodes = parse_node_list(R"({"kind":"NodeList","items":[{"metadata":{"name":"w1"},
    "status":{"addresses":[{"type":"Hostname","address":"w1"},{"type":"InternalIP","address":"172.16.0.4"}]}}]})");
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes->at("w1"), "172.16.0.4");
}

// The Services and Nodes watches: list pages and watch events as the API server sends them.
TEST(KubernetesParse, ServiceAndNodeListsAndWatchEvents) {
  auto services = parse_list(Resource::kServices, R"({"kind":"ServiceList","apiVersion":"v1",
    "metadata":{"resourceVersion":"900","continue":"c1","remainingItemCount":3},
    "items":[{"metadata":{"name":"web","namespace":"shop","resourceVersion":"880"},
      "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","ports":[{"name":"http","port":80}]}}]})");
  ASSERT_TRUE(services.ok()) << services.error().message;
  EXPECT_EQ(services->resource_version, "900");
  EXPECT_EQ(services->continue_token, "c1");
  ASSERT_EQ(services->items.size(), 1u);
  EXPECT_EQ(services->items[0].key, "web");
  EXPECT_EQ(services->items[0].resource_version, "880");
  EXPECT_EQ(services->items[0].service.cluster_ip, "10.96.0.10");

  auto ev = parse_event(Resource::kNodes, R"({"type":"MODIFIED","object":{"kind":"Node",
    "apiVersion":"v1","metadata":{"name":"w1","resourceVersion":"901","labels":
    {"topology.kubernetes.io/zone":"a"}},"spec":{"podCIDR":"10.244.1.0/24"},"status":{
    "addresses":[{"type":"InternalIP","address":"172.16.0.9"},{"type":"Hostname","address":"w1"}],
    "conditions":[{"type":"Ready","status":"True"}]}}})");
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->type, WatchEvent::Type::kModified);
  EXPECT_EQ(ev->object.name, "w1");
  EXPECT_EQ(ev->object.internal_ip, "172.16.0.9");
  EXPECT_EQ(ev->object.resource_version, "901");
  auto bookmark = parse_event(Resource::kServices,
                              R"({"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1",
    "metadata":{"resourceVersion":"950","annotations":{"k8s.io/initial-events-end":"true"}}}})");
  ASSERT_TRUE(bookmark.ok()) << bookmark.error().message;
  EXPECT_EQ(bookmark->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(bookmark->object.resource_version, "950");

  // Errors name the object and the field.
  auto no_name = parse_event(Resource::kServices,
                             R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1"}}})");
  ASSERT_FALSE(no_name.ok());
  EXPECT_NE(no_name.error().message.find("Service metadata: field 'name' is missing"),
            std::string::npos)
      << no_name.error().message;
  auto wrong_list = parse_list(Resource::kNodes, R"({"kind":"ServiceList","metadata":{}})");
  ASSERT_FALSE(wrong_list.ok());
  EXPECT_NE(wrong_list.error().message.find("not a NodeList"), std::string::npos);
  auto bad_rv = parse_list(Resource::kNodes,
                           R"({"kind":"NodeList","metadata":{"resourceVersion":"1"},
    "items":[{"metadata":{"name":"w2","resourceVersion":7}}]})");
  ASSERT_FALSE(bad_rv.ok());
  EXPECT_NE(bad_rv.error().message.find("Node 'w2' metadata: field 'resourceVersion'"),
            std::string::npos)
      << bad_rv.error().message;
}

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ep-kubeconfig-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    ::unsetenv("KUBECONFIG");
    ::unsetenv("KUBERNETES_SERVICE_HOST");
  }
  void TearDown() override {
    ::unsetenv("KUBECONFIG");
    std::filesystem::remove_all(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

TEST_F(KubeconfigTest, MergesKubeconfigListFirstWinsAndResolvesRelativePaths) {
  const std::string a = write("a.yaml", R"(apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: prod
  context: {cluster: prod, user: admin, namespace: shop}
users:
- name: admin
  user:
    tokenFile: token.txt
)");
  const std::string b = write("b.yaml", R"(apiVersion: v1
current-context: other
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority: certs/ca.crt
users:
- name: admin
  user: {token: ignored-because-a-defines-admin}
)");
  ::setenv("KUBECONFIG", (a + ":" + dir_.string() + "/missing.yaml:" + b).c_str(), 1);
  auto access = load_access(base_options());
  ASSERT_TRUE(access.ok()) << access.error().message;
  EXPECT_EQ(access->server, "https://10.0.0.1:6443");
  EXPECT_EQ(access->namespace_, "shop");
  EXPECT_EQ(access->ca_file, (dir_ / "certs/ca.crt").string());
  EXPECT_EQ(access->token_file, (dir_ / "token.txt").string());
  EXPECT_TRUE(access->token.empty());
}

TEST_F(KubeconfigTest, InlineDataIsWrittenToPrivateFilesAndContextsAreChosen) {
  const std::string kc = write("kc.yaml", R"(apiVersion: v1
current-context: one
clusters:
- name: c
  cluster:
    server: https://k8s.example:443
    certificate-authority-data: )" + os::base64_encode("-----BEGIN CERTIFICATE-----\nCA\n") +
                                              R"(
contexts:
- name: one
  context: {cluster: c, user: u1}
- name: two
  context: {cluster: c, user: u2}
users:
- name: u1
  user: {token: abc}
- name: u2
  user:
    client-certificate-data: )" + os::base64_encode("CERT") +
                                              R"(
    client-key-data: )" + os::base64_encode("KEY") +
                                              R"(
)");
  Options o = base_options();
  o.kubeconfig = kc;
  o.context = "two";
  auto access = load_access(o);
  ASSERT_TRUE(access.ok()) << access.error().message;
  std::ifstream ca(access->ca_file), cert(access->cert_file);
  std::string ca_text((std::istreambuf_iterator<char>(ca)), {}),
      cert_text((std::istreambuf_iterator<char>(cert)), {});
  EXPECT_EQ(ca_text, "-----BEGIN CERTIFICATE-----\nCA\n");
  EXPECT_EQ(cert_text, "CERT");
  EXPECT_EQ(
      std::filesystem::status(access->key_file).permissions() & std::filesystem::perms::group_read,
      std::filesystem::perms::none);
  o.context = "three";
  auto missing = load_access(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no context 'three'"), std::string::npos);
}

TEST_F(KubeconfigTest, ClearErrorsForBrokenKubeconfigs) {
  Options o = base_options();
  o.kubeconfig = write("bad.yaml", "clusters: [\n");
  auto r = load_access(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bad.yaml"), std::string::npos);
  o.kubeconfig = write("noctx.yaml", "apiVersion: v1\nclusters: []\n");
  r = load_access(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no current-context"), std::string::npos);
  o.kubeconfig = write("exec.yaml", R"(current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: aws}}}]
)");
  r = load_access(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exec.apiVersion"), std::string::npos);
  o.kubeconfig = (dir_ / "absent.yaml").string();
  r = load_access(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos);
}

TEST(KubernetesExecCredential, ParsesTokenCertificateAndExpiry) {
  auto c = parse_exec_credential(R"({"apiVersion":"client.authentication.k8s.io/v1beta1",
    "kind":"ExecCredential","status":{"token":"k8s-aws-v1.abc","expirationTimestamp":"2026-12-05T01:15:00Z"}})");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->token, "k8s-aws-v1.abc");
  ASSERT_TRUE(c->expiry.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*c->expiry), 1796433300);
  EXPECT_FALSE(parse_exec_credential(R"({"kind":"ExecCredential","status":{}})").ok());
  EXPECT_FALSE(parse_exec_credential("token").ok());
  EXPECT_FALSE(
      parse_exec_credential(
          R"({"kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"soon"}})")
          .ok());
}

TEST(KubernetesOptions, ParsesAndRejectsWithPositions) {
  auto map_of = [](std::initializer_list<std::pair<std::string, std::string>> kv) {
    ConfigNode n = ConfigNode::make_map(Mark{"ep.yaml", 1, 1});
    int line = 2;
    for (const auto& [k, v] : kv) {
      n.add(k, ConfigNode::make_scalar(v, Mark{"ep.yaml", line, 5}), Mark{"ep.yaml", line, 3});
      ++line;
    }
    return n;
  };
  Diagnostics d;
  auto o = options_from_node(map_of({{"service", "web"},
                                     {"namespace", "shop"},
                                     {"port", "8080"},
                                     {"address", "node"},
                                     {"kubeconfig", "kc.yaml"},
                                     {"terminating_drain_timeout", "15m"}}),
                             "/etc/ep", d);
  ASSERT_TRUE(o.has_value()) << d.joined();
  EXPECT_EQ(o->port_number, 8080);
  EXPECT_EQ(o->address, AddressMode::kNode);
  EXPECT_EQ(o->kubeconfig, "/etc/ep/kc.yaml");
  EXPECT_GT(o->idle_timeout, o->watch_timeout);
  EXPECT_EQ(o->terminating_drain_timeout, std::chrono::minutes(15));
  {
    Diagnostics rd;
    EXPECT_FALSE(
        options_from_node(map_of({{"service", "web"}, {"refresh_interval", "30s"}}), "/", rd));
    EXPECT_NE(rd.joined().find("ep.yaml:3:5: kubernetes.refresh_interval: no longer used"),
              std::string::npos)
        << rd.joined();
  }
  for (auto bad :
       {map_of({{"service", "Web_1"}}), map_of({{"service", "web"}, {"address", "pods"}}),
        map_of({{"service", "web"}, {"port", "0"}}),
        map_of({{"service", "web"}, {"in_cluster", "true"}, {"kubeconfig", "x"}}),
        map_of({{"namespace", "shop"}}),
        map_of({{"service", "web"}, {"watch_timeout", "5m"}, {"idle_timeout", "1m"}}),
        map_of({{"service", "web"}, {"terminating_drain_timeout", "0s"}}),
        map_of({{"service", "web"}, {"colour", "blue"}})}) {
    Diagnostics bd;
    EXPECT_FALSE(options_from_node(bad, "/", bd).has_value());
    EXPECT_FALSE(bd.ok());
    EXPECT_NE(bd.joined().find("ep.yaml:"), std::string::npos) << bd.joined();
  }
}

}  // namespace
}  // namespace ep::discovery::kubernetes
