#include "discovery/dns/parse.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/settings.h"
#include "discovery/dns/options.h"

namespace ep::discovery::dns {
namespace {

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/dns/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::vector<AddressRecord>> by_name(const std::vector<AddressRecord>& v) {
  std::map<std::string, std::vector<AddressRecord>> out;
  for (const auto& a : v) out[a.name].push_back(a);
  return out;
}

// dnsmasq: srv-host=_http._tcp.web.test,{a,b,c}.web.test,{8080,8081,8082},{10,10,20},{5,15,1}
// host-record a → 10.0.0.1, b → 10.0.0.2 + fd00::2, c has no address; local-ttl=7.
TEST(DnsReply, SavedSrvReplyWithAdditionalSection) {
  auto r = parse_reply(testdata("srv_three.bin"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->rcode, kRcodeNoError);
  EXPECT_FALSE(r->truncated);
  ASSERT_EQ(r->srv.size(), 3u);
  const SrvRecord* a = nullptr;
  for (const auto& s : r->srv)
    if (s.target == "a.web.test") a = &s;
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->owner, "_http._tcp.web.test");
  EXPECT_EQ(a->priority, 10);
  EXPECT_EQ(a->weight, 5);
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->ttl, 7u);
  ASSERT_EQ(r->addresses.size(), 3u);
  auto names = by_name(r->addresses);
  EXPECT_EQ(names["a.web.test"][0].address, "10.0.0.1");
  ASSERT_EQ(names["b.web.test"].size(), 2u);
  EXPECT_TRUE(names["b.web.test"][0].address == "fd00::2" ||
              names["b.web.test"][1].address == "fd00::2");
}

TEST(DnsReply, TruncatedUdpAndFullTcpReplies) {
  auto udp = parse_reply(testdata("srv_big_udp_truncated.bin"));
  ASSERT_TRUE(udp.ok()) << udp.error().message;
  EXPECT_TRUE(udp->truncated);
  EXPECT_LT(udp->srv.size(), 300u);
  auto tcp = parse_reply(testdata("srv_big_tcp.bin"));
  ASSERT_TRUE(tcp.ok()) << tcp.error().message;
  EXPECT_FALSE(tcp->truncated);
  EXPECT_EQ(tcp->srv.size(), 300u);
  EXPECT_EQ(tcp->addresses.size(), 300u);
}

TEST(DnsReply, NegativeAnswersCarryTheirRcode) {
  auto nx = parse_reply(testdata("nxdomain.bin"));
  ASSERT_TRUE(nx.ok());
  EXPECT_EQ(nx->rcode, kRcodeNxDomain);
  auto nodata = parse_reply(testdata("nodata.bin"));
  ASSERT_TRUE(nodata.ok());
  EXPECT_EQ(nodata->rcode, kRcodeNoError);
  EXPECT_TRUE(nodata->srv.empty());
  EXPECT_EQ(nodata->answer_count, 0u);
  auto refused = parse_reply(testdata("refused.bin"));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->rcode, kRcodeRefused);
}

TEST(DnsReply, EveryTruncationAndCorruptionIsAnErrorNotACrash) {
  const std::string good = testdata("srv_three.bin");
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = parse_reply(good.substr(0, n));
    // A prefix is either rejected or (when it ends on a record boundary) parsed consistently.
    if (r.ok()) EXPECT_LE(r->srv.size(), 3u);
  }
  EXPECT_FALSE(parse_reply(good.substr(0, 40)).ok());
  // A compression pointer to itself (loop).
  std::string loop = good;
  loop[0x24] = static_cast<char>(0xc0);
  loop[0x25] = 0x24;
  EXPECT_FALSE(parse_reply(loop).ok());
  for (size_t i = 12; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(0xff);
    (void)parse_reply(bad);  // must not crash (run under ASan in CI)
  }
  std::string query = good;
  query[2] = 0x01;  // QR bit cleared: not a reply
  EXPECT_FALSE(parse_reply(query).ok());
}

std::vector<SrvRecord> records() {
  return {{"s", 10, 10, 80, "a", 30},
          {"s", 10, 30, 80, "b", 10},
          {"s", 10, 0, 80, "c", 30},
          {"s", 20, 50, 81, "d", 30},
          {"s", 10, 10, 80, ".", 30}};
}

std::map<std::string, std::vector<AddressRecord>> addrs() {
  return {{"a", {{"a", "10.0.0.1", 60}}},
          {"b", {{"b", "10.0.0.2", 5}, {"b", "fd00::2", 60}}},
          {"c", {{"c", "10.0.0.3", 60}}},
          {"d", {{"d", "10.0.0.4", 60}}}};
}

TEST(DnsMap, LowestPriorityActiveWeightsProportionalTo256) {
  auto recs = records();
  recs.pop_back();  // no "." record
  Mapped m = map_srv(recs, addrs(), {});
  ASSERT_EQ(m.endpoints.size(), 4u);  // a, b (two addresses), c; d dropped (priority 20)
  std::map<std::string, long> w;
  for (const auto& e : m.endpoints) {
    EXPECT_FALSE(e.backup);
    w[e.address] = *e.weight;
  }
  EXPECT_EQ(w["10.0.0.2"], 256);  // the largest SRV weight (30)
  EXPECT_EQ(w["fd00::2"], 256);
  EXPECT_EQ(w["10.0.0.1"], 85);  // 10/30 * 256, not ceil(10/256) = 1 as HAProxy does
  EXPECT_EQ(w["10.0.0.3"], 1);   // weight 0: the smallest non-zero share
  EXPECT_EQ(m.min_ttl, 5u);
}

TEST(DnsMap, OtherPrioritiesAsBackupAndTargetDot) {
  Mapped m = map_srv(records(), addrs(), {.backup_other_priorities = true});
  ASSERT_EQ(m.endpoints.size(), 5u);
  EXPECT_TRUE(m.endpoints.back().backup);
  EXPECT_EQ(m.endpoints.back().address, "10.0.0.4");
  EXPECT_EQ(m.endpoints.back().port, 81u);
  // weights scale over the whole set when backups are kept: d (50) is the maximum.
  EXPECT_EQ(*m.endpoints.back().weight, 256);
  Mapped dot = map_srv({{"s", 0, 0, 0, "", 30}}, {}, {});
  EXPECT_TRUE(dot.endpoints.empty());
}

TEST(DnsMap, UnresolvedTargetsAreReportedAndAllZeroWeightsAreEqual) {
  Mapped m = map_srv({{"s", 1, 0, 80, "a", 30}, {"s", 1, 0, 80, "x", 30}}, addrs(), {});
  ASSERT_EQ(m.endpoints.size(), 1u);
  EXPECT_EQ(*m.endpoints[0].weight, 1);
  ASSERT_EQ(m.unresolved.size(), 1u);
  EXPECT_EQ(m.unresolved[0], "x");
  // Duplicates (same address and port via two targets) are merged.
  Mapped d = map_srv({{"s", 1, 5, 80, "a", 30}, {"s", 1, 5, 80, "a", 30}}, addrs(), {});
  EXPECT_EQ(d.endpoints.size(), 1u);
}

Result<Options> options(const std::string& yaml) {
  auto node = config::parse_yaml(yaml, "ep.yaml");
  if (!node) return node.error();
  Diagnostics diag;
  auto o = options_from_node(*node, diag);
  if (!o) return Error::invalid(diag.joined());
  return *o;
}

TEST(DnsOptions, DefaultsAndServers) {
  auto o = options(
      "name: _HTTP._tcp.Web.Test.\nservers: [127.0.0.1:5353, '::1', 10.0.0.1, "
      "'[::1]:53']\nother_priorities: backup\n");
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->name, "_http._tcp.web.test");
  EXPECT_EQ(o->servers,
            (std::vector<std::string>{"127.0.0.1:5353", "[::1]:53", "10.0.0.1:53", "[::1]:53"}));
  EXPECT_TRUE(o->backup_other_priorities);
  EXPECT_EQ(o->ttl_floor, std::chrono::seconds(2));
  EXPECT_EQ(o->empty_confirmations, 3);
  EXPECT_EQ(o->max_retry_interval, std::chrono::seconds(1));
  auto slow = options("name: x\nretry_interval: 5s\n");  // raises the cap with it: still valid
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  auto capped = options("name: x\nretry_interval: 200ms\nmax_retry_interval: 3s\n");
  ASSERT_TRUE(capped.ok()) << capped.error().message;
  EXPECT_EQ(capped->max_retry_interval, std::chrono::seconds(3));
}

TEST(DnsOptions, BadValuesAreReportedWithPositions) {
  auto bad = options("name: x\nservers: [dns.example:53]\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("ep.yaml:2:"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(options("servers: [127.0.0.1]\n").ok());
  EXPECT_FALSE(options("name: 'a b'\n").ok());
  EXPECT_FALSE(options("name: x\nservers: ['127.0.0.1:0']\n").ok());
  EXPECT_FALSE(options("name: x\nttl_floor: 10s\nttl_ceiling: 5s\n").ok());
  EXPECT_FALSE(options("name: x\nother_priorities: keep\n").ok());
  EXPECT_FALSE(options("name: x\nretry_interval: 2s\nmax_retry_interval: 1s\n").ok());
  EXPECT_FALSE(options("name: x\nempty_confirmations: 0\n").ok());
  EXPECT_FALSE(options("name: x\nunknown: 1\n").ok());
}

}  // namespace
}  // namespace ep::discovery::dns
