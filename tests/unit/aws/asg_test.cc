// aws_asg: options parsing and the pure step from DescribeAutoScalingGroups/DescribeInstances
// replies to endpoints.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "discovery/aws/asg_options.h"
#include "discovery/aws/asg_source.h"
#include "unit/aws/testdata.h"

namespace ep::aws {
namespace {

using ::testing::HasSubstr;

ConfigNode map_of(std::vector<std::pair<std::string, ConfigNode>> entries) {
  ConfigNode m = ConfigNode::make_map(Mark{"aws.yaml", 3, 5});
  int line = 4;
  for (auto& [k, v] : entries) m.add(k, std::move(v), Mark{"aws.yaml", line++, 7});
  return m;
}
ConfigNode scalar(std::string s) { return ConfigNode::make_scalar(std::move(s)); }

TEST(AsgOptions, Ep2CommaListAndSpellingsMapToTheSameOptions) {
  Diagnostics diag;
  auto o = parse_asg_options(map_of({{"asg_name", scalar("web-a, web-b,,web-a")},
                                     {"region_name", scalar("eu-west-1")},
                                     {"aws_access_key_id", scalar("AKIDEXAMPLE")},
                                     {"aws_secret_access_key", scalar("secret")},
                                     {"ip_type", scalar("public")}}),
                             diag);
  ASSERT_TRUE(o.has_value()) << (diag.errors().empty() ? "" : diag.errors()[0]);
  EXPECT_EQ(o->groups, (std::vector<std::string>{"web-a", "web-b"}));
  EXPECT_EQ(o->region, "eu-west-1");
  EXPECT_EQ(o->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(o->address, AddressType::kPublic);
  EXPECT_EQ(o->interval, std::chrono::seconds(30));
}

TEST(AsgOptions, ErrorsNameTheKeyAndPosition) {
  Diagnostics diag;
  auto o = parse_asg_options(map_of({{"groups", scalar("web")},
                                     {"address", scalar("elastic")},
                                     {"port", scalar("70000")},
                                     {"colour", scalar("blue")}}),
                             diag);
  EXPECT_FALSE(o.has_value());
  std::string all;
  for (const auto& e : diag.errors()) all += e + "\n";
  EXPECT_THAT(all, HasSubstr("address"));
  EXPECT_THAT(all, HasSubstr("port"));
  EXPECT_THAT(all, HasSubstr("colour"));
  EXPECT_THAT(all, HasSubstr("aws.yaml:"));
}

TEST(AsgOptions, MissingGroupsAndHalfKeysAreErrors) {
  Diagnostics diag;
  EXPECT_FALSE(parse_asg_options(map_of({{"access_key_id", scalar("AKID")}}), diag).has_value());
  std::string all;
  for (const auto& e : diag.errors()) all += e + "\n";
  EXPECT_THAT(all, HasSubstr("'groups' (or EP2's 'asg_name') is required"));
  EXPECT_THAT(all, HasSubstr("must be given together"));
}

TEST(AsgOptions, BackupOtherZonesNeedsLocalZone) {
  Diagnostics diag;
  EXPECT_FALSE(parse_asg_options(
                   map_of({{"groups", scalar("web")}, {"backup_other_zones", scalar("true")}}),
                   diag)
                   .has_value());
  ASSERT_FALSE(diag.errors().empty());
  EXPECT_THAT(diag.errors()[0], HasSubstr("local_zone"));
}

AutoScalingGroup group(std::vector<AsgInstance> members) {
  AutoScalingGroup g;
  g.name = "web-asg";
  g.instances = std::move(members);
  return g;
}
AsgInstance member(std::string id, std::string zone = "eu-west-1a",
                   std::string state = "InService", std::string health = "Healthy",
                   std::string capacity = "") {
  AsgInstance m;
  m.instance_id = std::move(id);
  m.availability_zone = std::move(zone);
  m.lifecycle_state = std::move(state);
  m.health_status = std::move(health);
  m.weighted_capacity = std::move(capacity);
  return m;
}
Ec2Instance ec2(std::string id, std::string priv, std::string pub = "",
                std::vector<std::string> v6 = {}, std::vector<Tag> tags = {}) {
  Ec2Instance i;
  i.instance_id = std::move(id);
  i.state_code = 16;
  i.state_name = "running";
  i.private_ip = std::move(priv);
  i.public_ip = std::move(pub);
  i.ipv6_addresses = std::move(v6);
  i.tags = std::move(tags);
  return i;
}

TEST(BuildEndpoints, OnlyInServiceHealthyRunningInstancesWithAnAddressAreServers) {
  AsgOptions o;
  o.port = 8080;
  auto r = build_endpoints(
      {group({member("i-b", "eu-west-1b", "InService", "Healthy", "4"), member("i-a"),
              member("i-pending", "eu-west-1a", "Pending:Wait"),
              member("i-sick", "eu-west-1a", "InService", "Unhealthy"),
              member("i-term", "eu-west-1a", "Terminating:Wait"), member("i-noip"),
              member("i-stopping")})},
      {ec2("i-a", "10.0.0.1"), ec2("i-b", "10.0.0.2"), ec2("i-pending", "10.0.0.3"),
       ec2("i-sick", "10.0.0.4"), ec2("i-term", "10.0.0.5"), ec2("i-noip", ""),
       [] {
         auto i = ec2("i-stopping", "10.0.0.7");
         i.state_code = 64;
         i.state_name = "stopping";
         return i;
       }()},
      o);
  ASSERT_EQ(r.endpoints.size(), 2u);
  EXPECT_EQ(r.endpoints[0].id, "i-a");
  EXPECT_EQ(r.endpoints[0].address, "10.0.0.1");
  EXPECT_EQ(r.endpoints[0].port, 8080u);
  EXPECT_FALSE(r.endpoints[0].weight.has_value());
  EXPECT_EQ(r.endpoints[1].id, "i-b");
  EXPECT_EQ(r.endpoints[1].weight, 4);
  EXPECT_EQ(r.endpoints[1].labels.at("availability_zone"), "eu-west-1b");
  EXPECT_EQ(r.endpoints[1].labels.at("asg"), "web-asg");
  EXPECT_EQ(r.skipped.size(), 2u);  // no address, not running
}

TEST(BuildEndpoints, StatesAndHealthAreConfigurable) {
  AsgOptions o;
  o.lifecycle_states = {"InService", "Pending:Wait"};
  o.require_healthy = false;
  auto r = build_endpoints({group({member("i-p", "z", "Pending:Wait"),
                                   member("i-u", "z", "InService", "Unhealthy")})},
                           {ec2("i-p", "10.0.0.1"), ec2("i-u", "10.0.0.2")}, o);
  EXPECT_EQ(r.endpoints.size(), 2u);
}

TEST(BuildEndpoints, AddressTypePortTagWeightTagAndBackupZones) {
  AsgOptions o;
  o.address = AddressType::kIpv6;
  o.port = 80;
  o.port_tag = "ep:port";
  o.weight_tag = "ep:weight";
  o.local_zone = "eu-west-1a";
  o.backup_other_zones = true;
  auto r = build_endpoints(
      {group({member("i-a", "eu-west-1a", "InService", "Healthy", "2"),
              member("i-b", "eu-west-1b", "InService", "Healthy", "2"), member("i-c"),
              member("i-d")})},
      {ec2("i-a", "10.0.0.1", "", {"2001:db8::1", "2001:db8::2"},
           {{"ep:port", "9000"}, {"ep:weight", "50"}}),
       ec2("i-b", "10.0.0.2", "", {"2001:db8::3"}), ec2("i-c", "10.0.0.3"),
       ec2("i-d", "10.0.0.4", "", {"2001:db8::4"}, {{"ep:port", "http"}})},
      o);
  ASSERT_EQ(r.endpoints.size(), 2u);
  EXPECT_EQ(r.endpoints[0].address, "2001:db8::1");
  EXPECT_EQ(r.endpoints[0].port, 9000u);
  EXPECT_EQ(r.endpoints[0].weight, 50);
  EXPECT_FALSE(r.endpoints[0].backup);
  EXPECT_EQ(r.endpoints[1].port, 80u);
  EXPECT_EQ(r.endpoints[1].weight, 2);
  EXPECT_TRUE(r.endpoints[1].backup);
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_THAT(r.skipped[0] + r.skipped[1], HasSubstr("no ipv6 address"));
  EXPECT_THAT(r.skipped[0] + r.skipped[1], HasSubstr("is not a port"));
}

TEST(BuildEndpoints, SavedRepliesGiveTheServingMembers) {
  auto asg = parse_describe_auto_scaling_groups(testing::testdata("describe_asg_page1.xml"));
  auto ins = parse_describe_instances(testing::testdata("describe_instances_page1.xml"));
  ASSERT_TRUE(asg.ok());
  ASSERT_TRUE(ins.ok());
  AsgOptions o;
  auto r = build_endpoints(asg->groups, ins->instances, o);
  ASSERT_FALSE(r.endpoints.empty());
  EXPECT_EQ(r.endpoints[0].id, "i-0123456789abcdef0");
  EXPECT_EQ(r.endpoints[0].address, "10.0.1.15");
  EXPECT_EQ(r.endpoints[0].weight, 2);
  for (const auto& e : r.endpoints) EXPECT_NE(e.id, "i-0123456789abcdef1") << "Terminating:Wait";
}

}  // namespace
}  // namespace ep::aws
