#include "discovery/static/static_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/settings.h"
#include "discovery/guard.h"

namespace ep::discovery::static_source {
namespace {

using ::testing::ElementsAre;

class Collect : public Sink {
 public:
  void publish(Snapshot s) override { got.push_back(std::move(s)); }
  std::vector<Snapshot> got;
};

ConfigNode yaml(const std::string& text) {
  auto n = config::parse_yaml(text, "ep.yaml");
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
  return n.ok() ? *n : ConfigNode{};
}

TEST(StaticSource, StringsAndMaps) {
  Diagnostics diag;
  auto o =
      options_from_node(yaml("servers:\n"
                             "  - 10.0.0.5:8080\n"
                             "  - \"[2001:db8::7]:8080\"\n"
                             "  - 10.0.0.9\n"
                             "  - {address: 10.0.0.6, port: 8081, weight: 10, backup: true}\n"),
                        diag);
  ASSERT_TRUE(o.has_value()) << diag.joined();
  ASSERT_EQ(o->servers.size(), 4u);
  EXPECT_EQ(o->servers[0].address, "10.0.0.5");
  EXPECT_EQ(o->servers[0].port, 8080u);
  EXPECT_EQ(o->servers[1].address, "2001:db8::7");
  EXPECT_EQ(o->servers[2].address, "10.0.0.9");
  EXPECT_EQ(o->servers[2].port, 0u);
  EXPECT_EQ(o->servers[3].address, "10.0.0.6");
  EXPECT_EQ(o->servers[3].port, 8081u);
  EXPECT_EQ(o->servers[3].weight, 10);
  EXPECT_TRUE(o->servers[3].backup);
}

TEST(StaticSource, PublishesOnceAtStart) {
  Diagnostics diag;
  auto o = options_from_node(yaml("servers: [10.0.0.5:8080, 10.0.0.6:8080]\n"), diag);
  ASSERT_TRUE(o.has_value());
  StaticSource s(*o);
  Collect sink;
  ASSERT_TRUE(s.start(sink).ok());
  s.stop();
  s.stop();
  ASSERT_EQ(sink.got.size(), 1u);
  ASSERT_TRUE(sink.got[0].ok());
  EXPECT_EQ(sink.got[0]->size(), 2u);
  auto again = s.fetch_once(std::chrono::seconds(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *sink.got[0]);
  EXPECT_EQ(s.describe(), "static (2 servers)");
}

TEST(StaticSource, Errors) {
  Diagnostics diag;
  EXPECT_FALSE(options_from_node(yaml("servers:\n  - [1]\n  - {address: 10.0.0.1, port: 0, "
                                      "weight: 300, color: red}\n  - {port: 80}\n"
                                      "sever: 1\n"),
                                 diag)
                   .has_value());
  EXPECT_THAT(diag.errors(),
              ElementsAre("ep.yaml:2:5: static.servers[0] must be \"ip:port\" or a map {address, "
                          "port, weight, backup}, got a list",
                          "ep.yaml:3:31: static.servers[1].port must be between 1 and 65535, got 0",
                          "ep.yaml:3:42: static.servers[1].weight must be between 0 and 256, got "
                          "300",
                          "ep.yaml:3:47: unknown key 'color' in static.servers[1]",
                          "ep.yaml:4:5: static.servers[2].address is required",
                          "ep.yaml:5:1: unknown key 'sever' in static"));
  Diagnostics d2;
  EXPECT_FALSE(options_from_node(yaml("{}"), d2).has_value());
  EXPECT_THAT(d2.errors(), ElementsAre("ep.yaml:1:1: static.servers is required"));
  Diagnostics d3;
  EXPECT_FALSE(options_from_node(yaml("servers: 10.0.0.1:80"), d3).has_value());
  EXPECT_THAT(d3.errors(),
              ElementsAre("ep.yaml:1:10: static.servers must be a list, got a scalar"));
}

TEST(StaticSource, HostileEntriesReachTheGuardAndAreRejectedThere) {
  Diagnostics diag;
  auto o = options_from_node(yaml("servers: [\"10.0.0.1;shutdown:80\", \"web.internal:80\", "
                                  "10.0.0.2:80]\n"),
                             diag);
  ASSERT_TRUE(o.has_value());
  reconcile::BackendPolicy p;
  p.name = "static-test";
  auto v = validate_all(o->servers, p);
  ASSERT_EQ(v.servers.size(), 1u);
  EXPECT_EQ(v.servers[0].name, "ep-10.0.0.2:80");
  EXPECT_EQ(v.rejected.size(), 2u);
}

TEST(StaticSource, Factory) {
  auto kind = source_kind();
  EXPECT_EQ(kind.name, "static");
  Diagnostics diag;
  auto src = kind.create(yaml("servers: [10.0.0.1:80]"), diag, SourceContext{});
  ASSERT_NE(src, nullptr);
  Diagnostics d2;
  EXPECT_EQ(kind.create(yaml("[1]"), d2, SourceContext{}), nullptr);
  EXPECT_THAT(d2.errors(), ElementsAre("ep.yaml:1:1: static must be a map, got a list"));
}

}  // namespace
}  // namespace ep::discovery::static_source

namespace ep::discovery::static_source {
namespace {

TEST(Examples, StaticExampleOptionsAreValid) {
  auto s = config::load_file(std::string(EP_SOURCE_DIR) + "/examples/elasticproxy.static.yaml");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->backends.size(), 1u);
  ASSERT_EQ(s->backends[0].sources.size(), 1u);
  Diagnostics diag;
  auto o = options_from_node(s->backends[0].sources[0].options, diag);
  ASSERT_TRUE(o.has_value()) << diag.joined();
  auto v = validate_all(o->servers, s->backends[0].policy);
  EXPECT_TRUE(v.rejected.empty());
  EXPECT_EQ(v.servers.size(), 4u);
}

}  // namespace
}  // namespace ep::discovery::static_source
