#include "discovery/consul/parse.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "discovery/consul/agent_hub.h"

namespace ep::discovery::consul {
namespace {

std::string load(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/consul/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ids(const std::vector<Endpoint>& eps) {
  std::vector<std::string> out;
  for (const auto& e : eps) out.push_back(e.id);
  return out;
}

TEST(ConsulParse, PassingPolicyKeepsOnlyPassingTypicalServicesSorted) {
  auto r = parse_health_reply(load("health_full.json"), ParseOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->entries, 6u);
  EXPECT_EQ(ids(r->endpoints), (std::vector<std::string>{"web-1.node-a", "web-4.node-b"}));
  EXPECT_EQ(r->dropped_health, 3u);  // warning, critical, maintenance
  EXPECT_EQ(r->dropped_kind, 1u);    // the sidecar proxy
  const Endpoint& web1 = r->endpoints[0];
  EXPECT_EQ(web1.address, "10.0.0.5");  // Service.Address wins over Node.Address
  EXPECT_EQ(web1.port, 8080u);
  EXPECT_EQ(web1.weight, 10);  // Weights.Passing, 256/256 scale
  EXPECT_FALSE(web1.backup);
  EXPECT_EQ(web1.labels.at("consul.node"), "node-a");
  EXPECT_EQ(web1.labels.at("consul.service_id"), "web-1");
  EXPECT_EQ(web1.labels.at("consul.status"), "passing");
  EXPECT_EQ(web1.labels.at("consul.datacenter"), "dc1");
  EXPECT_EQ(web1.labels.at("consul.namespace"), "default");
  // What the operator registered, for the dashboard: service name, tags, meta.
  EXPECT_EQ(web1.labels.at("consul.service"), "web");
  EXPECT_EQ(web1.labels.at("consul.tags"), "blue,v1");
  EXPECT_EQ(web1.labels.at("consul.meta.version"), "1.0");
  const Endpoint& web4 = r->endpoints[1];
  EXPECT_EQ(web4.address, "2001:db8::7");
  EXPECT_EQ(web4.port, 8082u);
  EXPECT_EQ(web4.weight, 256);  // 300 clamped to HAProxy's maximum
}

TEST(ConsulParse, WarningPolicyKeepsWarningWithWarningWeightAndNodeAddress) {
  ParseOptions o;
  o.health = HealthPolicy::kWarning;
  auto r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(ids(*r), (std::vector<std::string>{"web-1.node-a", "web-2.node-a", "web-4.node-b"}));
  const Endpoint& web2 = (*r)[1];
  EXPECT_EQ(web2.address, "10.0.1.10");  // empty Service.Address → Node.Address
  EXPECT_EQ(web2.port, 8081u);
  EXPECT_EQ(web2.weight, 1);  // Weights.Warning
  EXPECT_EQ(web2.labels.at("consul.status"), "warning");
}

TEST(ConsulParse, AnyPolicyKeepsCriticalButNeverMaintenance) {
  ParseOptions o;
  o.health = HealthPolicy::kAny;
  auto r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ids(*r), (std::vector<std::string>{"web-1.node-a", "web-2.node-a", "web-3.node-b",
                                               "web-4.node-b"}));
}

TEST(ConsulParse, TagsAreAllRequiredAndCaseInsensitive) {
  ParseOptions o;
  o.tags = {"BLUE", "v1"};
  auto r = parse_health_reply(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ids(r->endpoints), (std::vector<std::string>{"web-1.node-a"}));
  o.tags = {"blue"};
  EXPECT_EQ(ids(*parse_health(load("health_full.json"), o)),
            (std::vector<std::string>{"web-1.node-a", "web-4.node-b"}));
}

TEST(ConsulParse, ConnectProxiesOnlyWhenAskedFor) {
  ParseOptions o;
  o.kinds = {"connect-proxy"};
  auto r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ids(*r),
            (std::vector<std::string>{"web-1.node-a", "web-sidecar-proxy.node-a", "web-4.node-b"}));
}

TEST(ConsulParse, TaggedAddressSelection) {
  ParseOptions o;
  o.address_from = "wan";  // not on the service → Node.TaggedAddresses.wan
  auto r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].address, "198.51.100.10");
  o.address_from = "wan_ipv6";  // on web-4's service, with its own port
  r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[1].address, "2001:db8:ffff::7");
  EXPECT_EQ((*r)[1].port, 9082u);
  o.address_from = "node";
  r = parse_health(load("health_full.json"), o);
  EXPECT_EQ((*r)[0].address, "10.0.1.10");
  EXPECT_EQ((*r)[0].port, 8080u);
}

TEST(ConsulParse, WeightScalingMetaWeightAndBackup) {
  ParseOptions o;
  o.weight_max = 10;  // Consul weight 10 → HAProxy 256
  auto r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].weight, 256);
  o = ParseOptions{};
  o.weight_meta_key = "haproxy_weight";
  o.backup_meta_key = "haproxy_backup";
  r = parse_health(load("health_full.json"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].weight, 50);  // Meta overrides Weights
  EXPECT_FALSE((*r)[0].backup);
  EXPECT_TRUE((*r)[1].backup);
  o = ParseOptions{};
  o.use_weights = false;
  r = parse_health(load("health_full.json"), o);
  EXPECT_FALSE((*r)[0].weight.has_value());
}

TEST(ConsulParse, UnusableMetaWeightIsAWarningNotAFailure) {
  const std::string json = R"([{"Node":{"Node":"n1","Address":"10.0.0.1"},
    "Service":{"ID":"a","Service":"web","Port":80,"Meta":{"w":"heavy"}},"Checks":[]}])";
  ParseOptions o;
  o.weight_meta_key = "w";
  auto r = parse_health_reply(json, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->endpoints.size(), 1u);
  EXPECT_FALSE(r->endpoints[0].weight.has_value());  // no Weights in the entry either
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("Meta.w"), std::string::npos);
}

TEST(ConsulParse, NoChecksAggregatesToPassingAndNullFieldsAreAccepted) {
  const std::string json = R"([{"Node":{"Node":"n1","Address":"10.0.0.1","TaggedAddresses":null,
    "Meta":null},"Service":{"ID":"a","Service":"web","Port":80,"Tags":null,"Meta":null,
    "Address":"","Weights":null},"Checks":null}])";
  auto r = parse_health(json, ParseOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].address, "10.0.0.1");
}

TEST(ConsulParse, AggregatedStatusFollowsApiHealthGo) {
  EXPECT_EQ(aggregated_status({}), "passing");
  EXPECT_EQ(aggregated_status({{"a", "passing"}, {"b", "warning"}}), "warning");
  EXPECT_EQ(aggregated_status({{"a", "warning"}, {"b", "critical"}}), "critical");
  EXPECT_EQ(aggregated_status({{"a", "critical"}, {"_node_maintenance", "critical"}}),
            "maintenance");
  EXPECT_EQ(aggregated_status({{"_service_maintenance:web-1", "critical"}}), "maintenance");
  EXPECT_EQ(aggregated_status({{"a", "passing"}, {"b", "bogus"}}), "");
}

TEST(ConsulParse, NodeMaintenanceDropsEveryServiceOfTheNode) {
  const std::string json = R"([{"Node":{"Node":"n1","Address":"10.0.0.1"},
    "Service":{"ID":"a","Service":"web","Port":80},
    "Checks":[{"CheckID":"_node_maintenance","Status":"critical","ServiceID":""},
              {"CheckID":"service:a","Status":"passing","ServiceID":"a"}]}])";
  ParseOptions o;
  o.health = HealthPolicy::kAny;
  auto r = parse_health(json, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(ConsulParse, EmptyListIsAnEmptyResult) {
  auto r = parse_health_reply(load("health_empty.json"), ParseOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->entries, 0u);
  EXPECT_TRUE(r->endpoints.empty());
}

struct BadCase {
  const char* file;
  const char* expect1;
  const char* expect2;
};

class ConsulParseBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConsulParseBad, IsAClearInvalidError) {
  auto r = parse_health(load(GetParam().file), ParseOptions{});
  ASSERT_FALSE(r.ok()) << GetParam().file;
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find(GetParam().expect1), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(GetParam().expect2), std::string::npos) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Payloads, ConsulParseBad,
    ::testing::Values(
        BadCase{"health_object.json", "must be a JSON array", "got an object"},
        BadCase{"health_null.json", "must be a JSON array", "got null"},
        BadCase{"garbage.html", "not valid JSON", "<html>"},
        BadCase{"health_truncated.json", "not valid JSON", "["},
        BadCase{"health_missing_port.json", "entry 0 (Service.ID 'web-1' on node 'node-a')",
                "Service.Port is missing"},
        BadCase{"health_port_string.json", "Service.Port", "must be an integer, got a string"},
        BadCase{"health_port_negative.json", "Service.Port", "out of range"},
        BadCase{"health_tags_string.json", "Service.Tags", "must be a list of strings"},
        BadCase{"health_missing_node_address.json", "entry 0", "Node.Address is missing"},
        BadCase{"health_checks_object.json", "Checks", "must be a list, got an object"}));

TEST(ConsulParse, EmptyBodyAndScalarBodyAreErrors) {
  EXPECT_FALSE(parse_health("", ParseOptions{}).ok());
  auto r = parse_health("42", ParseOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("got an integer"), std::string::npos);
  r = parse_health("[42]", ParseOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("entry 0"), std::string::npos);
}

TEST(ConsulParse, HostileValuesArePassedThroughUnchangedForTheGuard) {
  // The parser does not judge addresses/ports (the guard does); it must neither crash nor
  // "repair" them into something that looks valid.
  auto r = parse_health(load("health_hostile.json"), ParseOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 6u);
  std::map<std::string, std::pair<std::string, std::uint32_t>> by_id;
  for (const auto& e : *r) by_id[e.labels.at("consul.service_id")] = {e.address, e.port};
  EXPECT_EQ(by_id["bad-0"].first, "10.0.0.1;shutdown sessions");
  EXPECT_EQ(by_id["bad-1"].first, "10.0.0.2\nset server");
  EXPECT_EQ(by_id["bad-2"].second, 0u);
  EXPECT_EQ(by_id["bad-3"].second, 70000u);
  EXPECT_EQ(by_id["bad-4"].first, "web.example.com");
  EXPECT_EQ(by_id["bad-5"].first, "::1");
}

TEST(ConsulParse, TenThousandInstances) {
  std::string json = "[";
  for (int i = 0; i < 10000; ++i) {
    if (i) json += ",";
    json += R"({"Node":{"Node":"node-)" + std::to_string(i % 100) +
            R"(","Address":"10.1.0.1"},"Service":{"ID":"web-)" + std::to_string(i) +
            R"(","Service":"web","Address":"10.2.)" + std::to_string(i / 250) + "." +
            std::to_string(i % 250) + R"(","Port":8080,"Weights":{"Passing":1,"Warning":1}},
            "Checks":[{"CheckID":"serfHealth","Status":"passing"}]})";
  }
  json += "]";
  auto r = parse_health(json, ParseOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 10000u);
  EXPECT_TRUE(std::is_sorted(r->begin(), r->end(), [](const Endpoint& a, const Endpoint& b) {
    return std::tie(a.labels.at("consul.node"), a.labels.at("consul.service_id")) <
           std::tie(b.labels.at("consul.node"), b.labels.at("consul.service_id"));
  }));
}

// Issue #14 point 1: a hostile reply nested 80,000 deep (e.g. in a Meta value) is refused with
// its depth before the JSON library builds it; nothing downstream recurses over it.
TEST(ConsulParse, DeeplyNestedReplyIsAnErrorNotACrash) {
  const std::string deep = std::string(80'000, '[') + std::string(80'000, ']');
  auto r = parse_health(R"([{"Service":{"ID":"a","Port":80,"Meta":{"weight":)" + deep + "}}}]",
                        ParseOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Consul health reply: JSON nested deeper than 64 levels"),
            std::string::npos)
      << r.error().message.substr(0, 200);
  EXPECT_LT(r.error().message.size(), 300u);
  EXPECT_FALSE(parse_check_states("[" + deep + "]").ok());
}

}  // namespace
}  // namespace ep::discovery::consul
