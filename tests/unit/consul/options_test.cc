#include "discovery/consul/options.h"

#include <gtest/gtest.h>

#include <map>

#include "core/secrets.h"
#include "discovery/consul/consul_source.h"

namespace ep::discovery::consul {
namespace {

ConfigNode scalar(std::string v, int line = 0) {
  return ConfigNode::make_scalar(std::move(v), Mark{"ep.yaml", line, 5});
}

ConfigNode map_of(std::initializer_list<std::pair<std::string, ConfigNode>> kv) {
  ConfigNode n = ConfigNode::make_map(Mark{"ep.yaml", 1, 1});
  int line = 2;
  for (const auto& [k, v] : kv) n.add(k, v, Mark{"ep.yaml", line++, 3});
  return n;
}

ConfigNode list_of(std::initializer_list<std::string> items) {
  ConfigNode n = ConfigNode::make_sequence(Mark{"ep.yaml", 3, 9});
  for (const auto& i : items) n.items.push_back(scalar(i));
  return n;
}

EnvLookup env_of(std::map<std::string, std::string> m) {
  return [m](std::string_view k) -> std::optional<std::string> {
    auto it = m.find(std::string(k));
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

std::optional<Options> parse(const ConfigNode& n, Diagnostics& d,
                             std::map<std::string, std::string> env = {}) {
  SourceContext ctx;
  ctx.backend = "web";
  ctx.base_dir = "/etc/elasticproxy";
  return parse_options(n, d, ctx, env_of(std::move(env)));
}

TEST(ConsulOptions, Defaults) {
  Diagnostics d;
  auto o = parse(map_of({{"service", scalar("web")}}), d);
  ASSERT_TRUE(o) << d.joined();
  EXPECT_EQ(o->base_url, "http://127.0.0.1:8500");
  EXPECT_EQ(o->parse.health, HealthPolicy::kPassing);
  EXPECT_EQ(o->wait, std::chrono::minutes(5));
  EXPECT_TRUE(o->tls_verify);
  EXPECT_TRUE(o->blocking);
  EXPECT_FALSE(o->cached);
  EXPECT_EQ(o->blocking_timeout(),
            std::chrono::minutes(5) + std::chrono::milliseconds(18750) + std::chrono::seconds(10));
}

// Issue #14 point 5: a token taken from CONSUL_HTTP_TOKEN is registered for redaction at once.
TEST(ConsulOptions, TokenFromTheEnvironmentIsRegisteredForRedaction) {
  Diagnostics d;
  auto o = parse(map_of({{"service", scalar("web")}}), d,
                 {{"CONSUL_HTTP_TOKEN", "canary-env-token-9d1e"}});
  ASSERT_TRUE(o) << d.joined();
  std::string line = "X-Consul-Token canary-env-token-9d1e";
  secrets::mask(line);
  EXPECT_EQ(line, "X-Consul-Token ***");
}

TEST(ConsulOptions, MaxResponseSizeTakesUnitsAndBounds) {
  Diagnostics d;
  EXPECT_EQ(parse(map_of({{"service", scalar("web")}}), d)->max_response_bytes, 8u << 20)
      << "small by default";
  EXPECT_EQ(parse(map_of({{"service", scalar("web")}, {"max_response_size", scalar("32MiB")}}), d)
                ->max_response_bytes,
            32u << 20);
  EXPECT_EQ(parse(map_of({{"service", scalar("web")}, {"max_response_size", scalar("500KB")}}), d)
                ->max_response_bytes,
            500'000u);
  for (const char* bad : {"10", "2GiB", "12 MiB", "lots", "-1MiB"}) {
    Diagnostics e;
    EXPECT_FALSE(parse(map_of({{"service", scalar("web")}, {"max_response_size", scalar(bad)}}), e))
        << bad;
    EXPECT_NE(e.joined().find("consul.max_response_size"), std::string::npos) << e.joined();
  }
}

TEST(ConsulOptions, ServiceIsRequired) {
  Diagnostics d;
  EXPECT_FALSE(parse(map_of({{"tags", list_of({"a"})}}), d));
  EXPECT_NE(d.joined().find("ep.yaml:1:1: consul.service is required"), std::string::npos)
      << d.joined();
}

TEST(ConsulOptions, EnvironmentDefaults) {
  Diagnostics d;
  // CONSUL_HTTP_SSL_VERIFY=false with a token to a remote agent needs the explicit opt-in.
  auto o = parse(map_of({{"service", scalar("web")}, {"allow_insecure", scalar("true")}}), d,
                 {{"CONSUL_HTTP_ADDR", "https://consul.internal"},
                  {"CONSUL_HTTP_TOKEN", "s3cr3t"},
                  {"CONSUL_CACERT", "/etc/consul/ca.pem"},
                  {"CONSUL_CLIENT_CERT", "c.pem"},
                  {"CONSUL_CLIENT_KEY", "k.pem"},
                  {"CONSUL_HTTP_SSL_VERIFY", "false"}});
  ASSERT_TRUE(o) << d.joined();
  EXPECT_EQ(o->base_url, "https://consul.internal:8501");
  EXPECT_EQ(o->token, "s3cr3t");
  EXPECT_EQ(o->ca_file, "/etc/consul/ca.pem");
  EXPECT_EQ(o->cert_file, "/etc/elasticproxy/c.pem");  // relative to the config file
  EXPECT_FALSE(o->tls_verify);
}

TEST(ConsulOptions, TokenFileFromEnvironmentWinsOverTokenVariable) {
  Diagnostics d;
  auto o = parse(map_of({{"service", scalar("web")}}), d,
                 {{"CONSUL_HTTP_TOKEN", "t"}, {"CONSUL_HTTP_TOKEN_FILE", "/run/consul.token"}});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->token_file, "/run/consul.token");
  EXPECT_TRUE(o->token.empty());
  // A token in the config wins over the environment.
  o = parse(map_of({{"service", scalar("web")}, {"token", scalar("cfg")}}), d,
            {{"CONSUL_HTTP_TOKEN_FILE", "/run/consul.token"}});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->token, "cfg");
  EXPECT_TRUE(o->token_file.empty());
}

TEST(ConsulOptions, Addresses) {
  auto a = parse_address("127.0.0.1:8500", false);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->base_url, "http://127.0.0.1:8500");
  a = parse_address("consul.local", false);
  EXPECT_EQ(a->base_url, "http://consul.local:8500");
  a = parse_address("consul.local", true);
  EXPECT_EQ(a->base_url, "https://consul.local:8501");
  a = parse_address("https://10.0.0.1:9501/", false);
  EXPECT_EQ(a->base_url, "https://10.0.0.1:9501");
  a = parse_address("[::1]:8500", false);
  EXPECT_EQ(a->base_url, "http://[::1]:8500");
  a = parse_address("unix:///var/run/consul/http.sock", false);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->unix_socket, "/var/run/consul/http.sock");
  EXPECT_EQ(a->base_url, "http://localhost");
  EXPECT_FALSE(parse_address("ftp://x", false));
  EXPECT_FALSE(parse_address("::1", false));
  EXPECT_FALSE(parse_address("host:99999", false));
  EXPECT_FALSE(parse_address("host:8500/v1", false));
  EXPECT_FALSE(parse_address("unix://relative.sock", false));
  EXPECT_FALSE(parse_address("unix:///" + std::string(120, 'x'), false));
  EXPECT_FALSE(parse_address("10.0.0.1\n:8500", false));
}

TEST(ConsulOptions, BadAddressIsReportedAtItsPosition) {
  Diagnostics d;
  EXPECT_FALSE(parse(map_of({{"service", scalar("web")}, {"address", scalar("ftp://x", 7)}}), d));
  EXPECT_NE(d.joined().find("ep.yaml:7:5: consul.address: unsupported scheme 'ftp'"),
            std::string::npos)
      << d.joined();
}

TEST(ConsulOptions, EverythingAndUnknownKeys) {
  Diagnostics d;
  ConfigNode tls = map_of({{"ca_file", scalar("ca.pem")}, {"verify", scalar("true")}});
  ConfigNode nm = map_of({{"rack", scalar("r1")}});
  auto o = parse(map_of({{"service", scalar("web")},
                         {"tags", list_of({"prod", "v2"})},
                         {"health", scalar("warning")},
                         {"datacenter", scalar("dc2")},
                         {"namespace", scalar("team-a")},
                         {"partition", scalar("p1")},
                         {"filter", scalar("Service.Meta.env == \"prod\"")},
                         {"node_meta", nm},
                         {"address_from", scalar("lan_ipv4")},
                         {"kinds", list_of({"mesh-gateway"})},
                         {"weight_max", scalar("100")},
                         {"weight_meta_key", scalar("w")},
                         {"backup_meta_key", scalar("b")},
                         {"tls", tls},
                         {"wait", scalar("30s")},
                         {"cached", scalar("true")},
                         {"stale", scalar("yes")},
                         {"min_interval", scalar("200ms")},
                         {"burst", scalar("3")},
                         {"empty_confirm", scalar("0")}}),
                 d);
  ASSERT_TRUE(o) << d.joined();
  EXPECT_EQ(o->parse.health, HealthPolicy::kWarning);
  EXPECT_EQ(o->parse.tags, (std::vector<std::string>{"prod", "v2"}));
  EXPECT_EQ(o->ca_file, "/etc/elasticproxy/ca.pem");
  EXPECT_EQ(o->node_meta.size(), 1u);
  EXPECT_EQ(o->wait, std::chrono::seconds(30));
  EXPECT_EQ(health_url(*o, 42),
            "http://127.0.0.1:8500/v1/health/service/web?tag=prod&tag=v2&dc=dc2&ns=team-a&"
            "partition=p1&node-meta=rack%3Ar1&filter=Service.Meta.env%20%3D%3D%20%22prod%22&"
            "cached&stale&index=42&wait=30000ms");

  Diagnostics d2;
  EXPECT_FALSE(parse(map_of({{"service", scalar("web")}, {"servce", scalar("x", 9)}}), d2));
  EXPECT_NE(d2.joined().find("unknown key 'servce' in consul"), std::string::npos) << d2.joined();
}

TEST(ConsulOptions, PassingOnlyShorthandAndConflicts) {
  Diagnostics d;
  auto o = parse(map_of({{"service", scalar("web")}, {"passing_only", scalar("false")}}), d);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->parse.health, HealthPolicy::kWarning);
  EXPECT_EQ(health_url(*o, 0), "http://127.0.0.1:8500/v1/health/service/web");
  o = parse(map_of({{"service", scalar("web")}}), d);
  EXPECT_EQ(health_url(*o, 0), "http://127.0.0.1:8500/v1/health/service/web?passing=1");
  Diagnostics d2;
  EXPECT_FALSE(parse(map_of({{"service", scalar("web")},
                             {"passing_only", scalar("true")},
                             {"health", scalar("any")}}),
                     d2));
  Diagnostics d3;
  EXPECT_FALSE(parse(map_of({{"service", scalar("web")}, {"health", scalar("sometimes")}}), d3));
  EXPECT_NE(d3.joined().find("must be one of passing, warning, any"), std::string::npos);
  Diagnostics d4;
  EXPECT_FALSE(parse(map_of({{"service", scalar("web")}, {"wait", scalar("11m")}}), d4));
  EXPECT_NE(d4.joined().find("10m"), std::string::npos);
  Diagnostics d5;
  EXPECT_FALSE(parse(map_of({{"service", scalar("a/b")}}), d5));
  Diagnostics d6;
  EXPECT_FALSE(parse(
      map_of({{"service", scalar("web")}, {"token", scalar("a")}, {"token_file", scalar("b")}}),
      d6));
}

TEST(ConsulOptions, SourceKindBuildsASource) {
  auto kind = source_kind();
  EXPECT_EQ(kind.name, "consul");
  Diagnostics d;
  SourceContext ctx;
  ctx.backend = "web";
  auto src =
      kind.create(map_of({{"service", scalar("web")}, {"address", scalar("127.0.0.1:1")}}), d, ctx);
  ASSERT_TRUE(src) << d.joined();
  EXPECT_EQ(src->describe(), "consul web at http://127.0.0.1:1");
  Diagnostics d2;
  EXPECT_EQ(kind.create(scalar("web"), d2, ctx), nullptr);
  EXPECT_NE(d2.joined().find("consul must be a map"), std::string::npos);
}

}  // namespace
}  // namespace ep::discovery::consul
