#include "discovery/guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "core/log.h"
#include "core/metrics.h"

namespace ep::discovery {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Endpoint ep(std::string address, std::uint32_t port, std::optional<long> weight = std::nullopt,
            std::string id = "") {
  Endpoint e;
  e.address = std::move(address);
  e.port = port;
  e.weight = weight;
  e.id = std::move(id);
  return e;
}

reconcile::BackendPolicy policy(std::string name = "web") {
  reconcile::BackendPolicy p;
  p.name = std::move(name);
  return p;
}

std::vector<std::string> names(const std::vector<ServerSpec>& servers) {
  std::vector<std::string> out;
  for (const auto& s : servers) out.push_back(s.name);
  return out;
}

// Captures log lines for assertions on "logged once".
class LogCapture {
 public:
  LogCapture() {
    log::set_level(log::Level::kDebug);
    log::set_sink([this](log::Level, std::string_view component, std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(component) + ": " + std::string(message));
    });
  }
  ~LogCapture() {
    log::set_sink(nullptr);
    log::set_level(log::Level::kInfo);
  }
  size_t count(std::string_view needle) const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& l : lines_) n += l.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// ---- validate_endpoint -------------------------------------------------------------------

TEST(ValidateEndpoint, Ipv4) {
  auto s = validate_endpoint(ep("10.0.0.5", 8080), policy());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->name, "ep-10.0.0.5:8080");
  EXPECT_EQ(s->address, "10.0.0.5");
  EXPECT_EQ(s->port, 8080);
  EXPECT_EQ(s->weight, 1);
  EXPECT_FALSE(s->backup);
  EXPECT_EQ(s->address_port(), "10.0.0.5:8080");
}

TEST(ValidateEndpoint, Ipv6BracketsStrippedAndCanonical) {
  auto s = validate_endpoint(ep("[2001:DB8:0:0::7]", 443), policy());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->address, "2001:db8::7");
  EXPECT_EQ(s->name, "ep-2001:db8::7:443");
  auto bare = validate_endpoint(ep("2001:db8::7", 443), policy());
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->name, s->name);
}

TEST(ValidateEndpoint, HostileAndNonLiteralAddressesAreRefusedAndNamed) {
  const auto p = policy();
  struct Case {
    Endpoint e;
    std::string message;
  };
  const std::vector<Case> cases = {
      {ep("10.0.0.1;shutdown", 80), "endpoint \"10.0.0.1;shutdown\" port 80: address contains ';'"},
      {ep("1.2.3.4\n", 80),
       "endpoint \"1.2.3.4\\n\" port 80: address contains a control character"},
      {ep("1.2.3.4 ", 80), "endpoint \"1.2.3.4 \" port 80: address contains whitespace"},
      {ep("web-1.internal", 80),
       "endpoint \"web-1.internal\" port 80: address is not an IPv4 or IPv6 literal (hostnames "
       "are not resolved)"},
      {ep("fe80::1%eth0", 80),
       "endpoint \"fe80::1%eth0\" port 80: IPv6 zone ids are not supported"},
      {ep("[fe80::1%eth0]", 80),
       "endpoint \"[fe80::1%eth0]\" port 80: IPv6 zone ids are not supported"},
      {ep("", 80), "endpoint \"\" port 80: address is empty"},
      {ep("10.0.0.256", 80),
       "endpoint \"10.0.0.256\" port 80: address is not an IPv4 or IPv6 literal (hostnames are "
       "not resolved)"},
      {ep("010.0.0.1", 80),
       "endpoint \"010.0.0.1\" port 80: address is not an IPv4 or IPv6 literal (hostnames are "
       "not resolved)"},
      {ep("\xff\xfe", 80),
       "endpoint \"\\xff\\xfe\" port 80: address is not an IPv4 or IPv6 literal (hostnames are "
       "not resolved)"},
  };
  for (const auto& c : cases) {
    auto s = validate_endpoint(c.e, p);
    ASSERT_FALSE(s.ok()) << c.e.address;
    EXPECT_EQ(s.error().message, c.message);
    EXPECT_EQ(s.error().kind, ErrorKind::kInvalid);
  }
}

TEST(ValidateEndpoint, Ports) {
  auto p = policy();
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 0), p).error().message,
            "endpoint \"10.0.0.1\": no port (give one in the target or set the backend's port)");
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 65536), p).error().message,
            "endpoint \"10.0.0.1\" port 65536: port 65536 is out of range 1..65535");
  EXPECT_TRUE(validate_endpoint(ep("10.0.0.1", 1), p).ok());
  EXPECT_TRUE(validate_endpoint(ep("10.0.0.1", 65535), p).ok());
  p.port = 9000;  // the backend's port overrides (and fills) every endpoint's port
  auto s = validate_endpoint(ep("10.0.0.1", 0), p);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->port, 9000);
  EXPECT_EQ(s->name, "ep-10.0.0.1:9000");
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 65536), p)->port, 9000);
}

TEST(ValidateEndpoint, Weights) {
  auto p = policy();
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, -1), p).error().message,
            "endpoint \"10.0.0.1\" port 80: weight -1 is out of range 0..256");
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, 257), p).error().message,
            "endpoint \"10.0.0.1\" port 80: weight 257 is out of range 0..256");
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, 0), p)->weight, 0);
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, 256), p)->weight, 256);
  p.weight = 7;
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80), p)->weight, 7);
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, 3), p)->weight, 3);
}

TEST(ValidateEndpoint, NamesFromIds) {
  auto p = policy();
  p.name_prefix = "web-";
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, {}, "i-0abc.d:e_f"), p)->name, "web-i-0abc.d:e_f");

  // An altered id gets a stable hash suffix so different ids stay different.
  auto a = validate_endpoint(ep("10.0.0.1", 80, {}, "svc/a b"), p);
  auto b = validate_endpoint(ep("10.0.0.1", 80, {}, "svc/a_b"), p);
  auto c = validate_endpoint(ep("10.0.0.1", 80, {}, "svc a/b"), p);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_THAT(a->name, ::testing::MatchesRegex("web-svc_a_b-[0-9a-f]{16}"));
  EXPECT_THAT(b->name, ::testing::MatchesRegex("web-svc_a_b-[0-9a-f]{16}"));
  EXPECT_NE(a->name, b->name);
  EXPECT_NE(a->name, c->name);
  EXPECT_EQ(validate_endpoint(ep("10.0.0.9", 81, {}, "svc/a b"), p)->name, a->name);  // stable

  // Invalid UTF-8 and control characters never reach the name.
  auto u = validate_endpoint(ep("10.0.0.1", 80, {}, "bad\xc3\x28id\n"), p);
  ASSERT_TRUE(u.ok());
  EXPECT_THAT(u->name, ::testing::MatchesRegex("web-bad__id_-[0-9a-f]{16}"));
}

TEST(ValidateEndpoint, LongIdsAreCutWithHash) {
  auto p = policy();
  const std::string long_a(300, 'a');
  const std::string long_b = std::string(299, 'a') + "b";
  auto a = validate_endpoint(ep("10.0.0.1", 80, {}, long_a), p);
  auto b = validate_endpoint(ep("10.0.0.1", 80, {}, long_b), p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->name.size(), 100u);
  EXPECT_EQ(b->name.size(), 100u);
  EXPECT_NE(a->name, b->name);
  EXPECT_EQ(a->name.substr(0, 3), "ep-");
  const std::string exact(97, 'x');  // ep- + 97 = 100: kept as is
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, {}, exact), p)->name, "ep-" + exact);
  const std::string over(98, 'x');
  EXPECT_EQ(validate_endpoint(ep("10.0.0.1", 80, {}, over), p)->name.size(), 100u);
  EXPECT_NE(validate_endpoint(ep("10.0.0.1", 80, {}, over), p)->name, "ep-" + over);
}

TEST(ValidateAll, SortsMergesDuplicatesAndCollectsRejects) {
  std::vector<Endpoint> in = {ep("10.0.0.2", 80, 5), ep("bad host", 80), ep("10.0.0.1", 80),
                              ep("10.0.0.2", 80, 9), ep("10.0.0.3", 0)};
  auto v = validate_all(in, policy());
  EXPECT_THAT(names(v.servers), ElementsAre("ep-10.0.0.1:80", "ep-10.0.0.2:80"));
  EXPECT_EQ(v.servers[1].weight, 5);  // first wins
  EXPECT_THAT(v.rejected,
              ElementsAre("endpoint \"bad host\" port 80: address contains whitespace",
                          "endpoint \"10.0.0.3\": no port (give one in the target or set the "
                          "backend's port)"));
}

// Issue #14 point 10: ids that become the same server name after sanitising (or a hostile id that
// spells another server's name) must not hide one another: both servers are kept, the second
// under a hashed name, and the renaming is reported.
TEST(ValidateAll, NameCollisionsAfterSanitisingKeepBothServers) {
  const auto p = policy();
  auto first = validate_endpoint(ep("10.0.0.1", 80, {}, "web 1"), p);
  ASSERT_TRUE(first.ok());
  std::vector<Endpoint> in = {ep("10.0.0.1", 80, {}, "web 1"),
                              ep("10.0.0.2", 80, {}, first->name.substr(3)),  // spells its name
                              ep("10.0.0.1", 80, {}, "web 1")};  // a true duplicate: merged
  auto v = validate_all(in, p);
  ASSERT_EQ(v.servers.size(), 2u);
  std::set<std::string> addrs, names;
  for (const auto& s : v.servers) {
    addrs.insert(s.address);
    names.insert(s.name);
  }
  EXPECT_EQ(addrs, (std::set<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(names.size(), 2u);
  EXPECT_TRUE(names.count(first->name));
  ASSERT_EQ(v.renamed.size(), 1u);
  EXPECT_NE(v.renamed[0].find("10.0.0.2:80"), std::string::npos) << v.renamed[0];
  EXPECT_NE(v.renamed[0].find(first->name), std::string::npos) << v.renamed[0];
  EXPECT_TRUE(v.rejected.empty());
}

// Discovery's labels (Consul service name, tags, meta, ...) follow each kept server under its
// final name, for /status and the dashboard: a rejected endpoint or a merged duplicate adds none,
// a renamed one keeps its own.
TEST(ValidateAll, LabelsFollowEachKeptServerUnderItsName) {
  auto with = [](Endpoint e, std::string k, std::string v) {
    e.labels[std::move(k)] = std::move(v);
    return e;
  };
  const auto p = policy();
  auto first = validate_endpoint(ep("10.0.0.1", 80, {}, "web 1"), p);
  ASSERT_TRUE(first.ok());
  std::vector<Endpoint> in = {
      with(ep("10.0.0.3", 80), "consul.tags", "<script>x</script>"),
      with(ep("10.0.0.1", 80, {}, "web 1"), "consul.service", "web"),
      with(ep("10.0.0.2", 80, {}, first->name.substr(3)), "zone", "b"),      // renamed
      with(ep("10.0.0.1", 80, {}, "web 1"), "consul.service", "duplicate"),  // merged
      with(ep("bad host", 80), "zone", "rejected"),
      ep("10.0.0.4", 80)};  // no labels: not listed
  auto v = validate_all(in, p);
  ASSERT_EQ(v.servers.size(), 4u);
  ASSERT_EQ(v.labels.size(), 3u);
  std::map<std::string, std::map<std::string, std::string>> by;
  for (const auto& l : v.labels) {
    for (const auto& [k, val] : l.pairs()) by[l.server][std::string(k)] = std::string(val);
  }
  EXPECT_TRUE(std::is_sorted(v.labels.begin(), v.labels.end(),
                             [](const auto& a, const auto& b) { return a.server < b.server; }));
  EXPECT_EQ(by["ep-10.0.0.3:80"].at("consul.tags"), "<script>x</script>");
  EXPECT_EQ(by[first->name].at("consul.service"), "web");
  EXPECT_EQ(by[first->name].size(), 1u);
  for (const auto& s : v.servers) {
    if (s.address == "10.0.0.2") {
      EXPECT_EQ(by[s.name].at("zone"), "b") << s.name;
    }
  }
}

TEST(ServerLabelsTest, EveryByteOfAKeyOrValueComesBackInKeyOrder) {
  const std::string nul_key("meta.a\0b", 8);
  const std::string nul_value("x\0\0y", 4);
  ServerLabels sl("ep-1", {{"zone", ""}, {nul_key, nul_value}, {"consul.service", "web"}});
  using Pairs = std::vector<std::pair<std::string_view, std::string_view>>;
  EXPECT_EQ(sl.pairs(), (Pairs{{"consul.service", "web"}, {nul_key, nul_value}, {"zone", ""}}));
  EXPECT_TRUE(ServerLabels("ep-2", {}).pairs().empty());
}

// ---- BackendGuard ------------------------------------------------------------------------

std::vector<Endpoint> range(int first, int count, std::uint32_t port = 80) {
  std::vector<Endpoint> out;
  for (int i = first; i < first + count; ++i)
    out.push_back(ep("10.0.0." + std::to_string(i), port));
  return out;
}

class GuardTest : public ::testing::Test {
 protected:
  // Each test uses its own backend name: metrics and log memory are process-wide.
  std::string backend_ =
      std::string("b-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  FakeClock clock_;
  LogCapture logs_;
  reconcile::BackendPolicy policy_ = policy(backend_);

  double metric(const char* name, Labels labels) { return Metrics::global().value(name, labels); }
};

TEST_F(GuardTest, NotReadyUntilEverySourceDelivered) {
  BackendGuard g(policy_, {"file", "static"}, clock_);
  EXPECT_FALSE(g.ready());
  EXPECT_FALSE(g.on_snapshot(0, range(1, 2)));
  EXPECT_FALSE(g.ready());
  EXPECT_THAT(g.desired(), IsEmpty());
  EXPECT_FALSE(g.on_snapshot(1, Error::unavailable("down")));
  EXPECT_FALSE(g.ready());
  EXPECT_TRUE(g.on_snapshot(1, range(3, 1)));
  EXPECT_TRUE(g.ready());
  EXPECT_THAT(names(g.desired()),
              ElementsAre("ep-10.0.0.1:80", "ep-10.0.0.2:80", "ep-10.0.0.3:80"));
}

TEST_F(GuardTest, UnionFirstSourceWins) {
  BackendGuard g(policy_, {"a", "b"}, clock_);
  g.on_snapshot(0, std::vector<Endpoint>{ep("10.0.0.1", 80, 3)});
  EXPECT_TRUE(g.on_snapshot(1, std::vector<Endpoint>{ep("10.0.0.1", 80, 9), ep("10.0.0.2", 80)}));
  ASSERT_EQ(g.desired().size(), 2u);
  EXPECT_EQ(g.desired()[0].weight, 3);
}

TEST_F(GuardTest, ChangesReportedOnlyWhenDesiredChanges) {
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_TRUE(g.on_snapshot(0, range(1, 4)));
  EXPECT_FALSE(g.on_snapshot(0, range(1, 4)));
  EXPECT_TRUE(g.on_snapshot(0, range(1, 5)));
  EXPECT_TRUE(g.on_snapshot(0, range(1, 3)));  // removes 2 of 5 (40% <= 50%)
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_EQ(g.hold(), Hold::kNone);
}

TEST_F(GuardTest, SourceErrorKeepsLastGood) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 3));
  EXPECT_FALSE(g.on_snapshot(0, Error::invalid("web.json:3:1: bad")));
  EXPECT_FALSE(g.on_snapshot(0, Error::invalid("web.json:3:1: bad")));
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_TRUE(g.sources()[0].failing);
  EXPECT_EQ(g.sources()[0].last_error, "web.json:3:1: bad");
  EXPECT_TRUE(g.ready());
  EXPECT_EQ(metric("elasticproxy_source_errors_total",
                   {{"backend", backend_}, {"source", "file"}, {"reason", "invalid"}}),
            2);
  EXPECT_EQ(logs_.count("web.json:3:1: bad"), 1u);  // said once, not every failure
  // Recovery.
  EXPECT_TRUE(g.on_snapshot(0, range(1, 4)));
  EXPECT_FALSE(g.sources()[0].failing);
  EXPECT_EQ(logs_.count("recovered after 2 failure(s)"), 1u);
}

// #16 (B): a set restored from the state file after the source failed is not the source
// recovering. Before, the restore went through on_snapshot and logged "recovered after 1
// failure(s)" although the source had never answered; now nothing says it recovered until it
// really answers, and the source stays failing + from_state meanwhile.
TEST_F(GuardTest, SetRestoredFromTheStateFileIsNotLoggedAsRecovered) {
  BackendGuard g(policy_, {"consul"}, clock_);
  EXPECT_FALSE(g.on_snapshot(0, Error::unavailable("connection refused")));
  EXPECT_TRUE(g.restore(0, range(1, 3)));
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_TRUE(g.ready());
  EXPECT_TRUE(g.sources()[0].from_state);
  EXPECT_TRUE(g.sources()[0].failing);
  EXPECT_EQ(g.sources()[0].last_error, "connection refused");
  EXPECT_EQ(logs_.count("recovered"), 0u);
  // Still failing: counted as before, no new line for the same message.
  EXPECT_FALSE(g.on_snapshot(0, Error::unavailable("connection refused")));
  EXPECT_EQ(logs_.count("recovered"), 0u);
  // The source answers: now it has recovered, said once, and the set is its own.
  EXPECT_TRUE(g.on_snapshot(0, range(1, 2)));
  EXPECT_FALSE(g.sources()[0].from_state);
  EXPECT_FALSE(g.sources()[0].failing);
  EXPECT_EQ(logs_.count("recovered after 2 failure(s)"), 1u);
}

TEST_F(GuardTest, ErrorBeforeFirstGoodKeepsNotReady) {
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_FALSE(g.on_snapshot(0, Error::unavailable("cannot read x")));
  EXPECT_EQ(metric("elasticproxy_source_errors_total",
                   {{"backend", backend_}, {"source", "file"}, {"reason", "unavailable"}}),
            1);
  EXPECT_FALSE(g.ready());
  EXPECT_THAT(g.desired(), IsEmpty());
}

TEST_F(GuardTest, RejectedEndpointsCountedAndLoggedOncePerMessage) {
  BackendGuard g(policy_, {"file"}, clock_);
  std::vector<Endpoint> snap = range(1, 2);
  snap.push_back(ep("10.0.0.1;shutdown", 80));
  snap.push_back(ep("db.internal", 80));
  EXPECT_TRUE(g.on_snapshot(0, snap));
  EXPECT_FALSE(g.on_snapshot(0, snap));
  EXPECT_FALSE(g.on_snapshot(0, snap));
  EXPECT_THAT(names(g.desired()), ElementsAre("ep-10.0.0.1:80", "ep-10.0.0.2:80"));
  EXPECT_EQ(g.sources()[0].rejected, 2u);
  EXPECT_EQ(g.sources()[0].endpoints, 2u);
  EXPECT_EQ(
      metric("elasticproxy_endpoints_rejected_total", {{"backend", backend_}, {"source", "file"}}),
      6);
  EXPECT_EQ(logs_.count("rejected endpoint \"10.0.0.1;shutdown\" port 80: address contains ';'"),
            1u);
  EXPECT_EQ(logs_.count("rejected endpoint \"db.internal\""), 1u);
  // Gone, then back: said again.
  g.on_snapshot(0, range(1, 2));
  g.on_snapshot(0, snap);
  EXPECT_EQ(logs_.count("rejected endpoint \"db.internal\""), 2u);
}

TEST_F(GuardTest, AllRejectedIsAnEmptyCandidate) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 2));
  EXPECT_FALSE(g.on_snapshot(0, std::vector<Endpoint>{ep("evil\n", 80)}));
  EXPECT_EQ(g.hold(), Hold::kEmpty);
  EXPECT_EQ(g.desired().size(), 2u);
}

TEST_F(GuardTest, EmptySnapshotHeldUntilNonEmpty) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 3));
  EXPECT_FALSE(g.on_snapshot(0, std::vector<Endpoint>{}));
  EXPECT_EQ(g.hold(), Hold::kEmpty);
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_EQ(metric("elasticproxy_backend_held", {{"backend", backend_}}), 1);
  EXPECT_EQ(
      metric("elasticproxy_snapshots_held_total", {{"backend", backend_}, {"reason", "empty"}}), 1);
  EXPECT_FALSE(g.next_deadline().has_value());  // empty is never confirmed by waiting
  clock_.advance(std::chrono::hours(1));
  EXPECT_FALSE(g.on_snapshot(0, std::vector<Endpoint>{}));
  EXPECT_FALSE(g.evaluate());
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_EQ(
      metric("elasticproxy_snapshots_held_total", {{"backend", backend_}, {"reason", "empty"}}),
      1);  // the same held set is counted once
  EXPECT_EQ(logs_.count("holding back an empty server set"), 1u);
  // Recovery: a good set releases the hold at once.
  EXPECT_TRUE(g.on_snapshot(0, range(1, 4)));
  EXPECT_EQ(g.hold(), Hold::kNone);
  EXPECT_EQ(g.desired().size(), 4u);
  EXPECT_EQ(metric("elasticproxy_backend_held", {{"backend", backend_}}), 0);
}

TEST_F(GuardTest, EmptyAllowedByPolicy) {
  policy_.safety.allow_empty = true;
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 3));
  EXPECT_TRUE(g.on_snapshot(0, std::vector<Endpoint>{}));
  EXPECT_THAT(g.desired(), IsEmpty());
  EXPECT_EQ(g.hold(), Hold::kNone);
}

TEST_F(GuardTest, FirstEmptySetSubjectToAllowEmpty) {
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_FALSE(g.on_snapshot(0, std::vector<Endpoint>{}));
  // Held, so not ready: the reconciler must leave the backend's servers in place (a ready empty
  // set would remove them all: the empty backend this hold exists to prevent).
  EXPECT_FALSE(g.ready());
  EXPECT_EQ(g.hold(), Hold::kEmpty);
  EXPECT_TRUE(g.on_snapshot(0, range(1, 1)));
  EXPECT_TRUE(g.ready());

  policy_.safety.allow_empty = true;
  BackendGuard g2(policy_, {"file"}, clock_);
  EXPECT_TRUE(g2.on_snapshot(0, std::vector<Endpoint>{}));  // applied: ready with no servers
  EXPECT_EQ(g2.hold(), Hold::kNone);
}

TEST_F(GuardTest, FirstSetAppliedAsIsEvenIfSmall) {
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_TRUE(g.on_snapshot(0, range(1, 1)));
  EXPECT_EQ(g.desired().size(), 1u);
}

// Issue #14 point 3: nothing let a backend grow without bound. A set above max_servers is held
// back (counted, logged once, shown as held "growth"), is never applied by waiting, and gives way
// to an acceptable set at once.
TEST_F(GuardTest, GrowthBeyondMaxServersIsHeldAndNeverConfirmedByWaiting) {
  policy_.safety.max_servers = 5;
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_TRUE(g.on_snapshot(0, range(1, 3)));
  EXPECT_FALSE(g.on_snapshot(0, range(1, 6)));
  EXPECT_EQ(g.hold(), Hold::kGrowth);
  EXPECT_STREQ(to_string(g.hold()), "growth");
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_TRUE(g.ready());
  EXPECT_FALSE(g.next_deadline().has_value());
  EXPECT_EQ(
      metric("elasticproxy_snapshots_held_total", {{"backend", backend_}, {"reason", "growth"}}),
      1);
  EXPECT_EQ(metric("elasticproxy_backend_held", {{"backend", backend_}}), 1);
  EXPECT_FALSE(g.on_snapshot(0, range(1, 6)));  // the same set again: counted once
  EXPECT_EQ(
      metric("elasticproxy_snapshots_held_total", {{"backend", backend_}, {"reason", "growth"}}),
      1);
  clock_.advance(std::chrono::hours(1));
  EXPECT_FALSE(g.evaluate());
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_EQ(logs_.count("more than safety.max_servers 5"), 1u);

  EXPECT_TRUE(g.on_snapshot(0, range(1, 5)));  // at the limit: applied
  EXPECT_EQ(g.hold(), Hold::kNone);
  EXPECT_EQ(g.desired().size(), 5u);
  EXPECT_EQ(metric("elasticproxy_backend_held", {{"backend", backend_}}), 0);
}

// A first set that is held (too large, or empty) leaves the backend as it is: not ready, so the
// reconciler neither empties nor fills it.
TEST_F(GuardTest, HeldFirstSetIsNotReady) {
  policy_.safety.max_servers = 5;
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_FALSE(g.on_snapshot(0, range(1, 6)));
  EXPECT_EQ(g.hold(), Hold::kGrowth);
  EXPECT_FALSE(g.ready());
  EXPECT_TRUE(g.on_snapshot(0, range(1, 2)));
  EXPECT_TRUE(g.ready());
  EXPECT_EQ(g.desired().size(), 2u);

  BackendGuard e(policy_, {"file"}, clock_);
  EXPECT_FALSE(e.on_snapshot(0, std::vector<Endpoint>{}));
  EXPECT_EQ(e.hold(), Hold::kEmpty);
  EXPECT_FALSE(e.ready());
}

TEST_F(GuardTest, ShrinkHeldThenConfirmedAfterTimeout) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 10));
  EXPECT_FALSE(g.on_snapshot(0, range(1, 4)));  // removes 6 of 10
  EXPECT_EQ(g.hold(), Hold::kShrink);
  EXPECT_EQ(g.desired().size(), 10u);
  EXPECT_EQ(
      metric("elasticproxy_snapshots_held_total", {{"backend", backend_}, {"reason", "shrink"}}),
      1);
  ASSERT_TRUE(g.next_deadline().has_value());
  EXPECT_EQ(*g.next_deadline(), clock_.now() + std::chrono::minutes(2));

  clock_.advance(std::chrono::seconds(119));
  EXPECT_FALSE(g.evaluate());
  EXPECT_FALSE(g.on_snapshot(0, range(1, 4)));  // same candidate: the timer keeps running
  clock_.advance(std::chrono::seconds(1));
  EXPECT_TRUE(g.evaluate());
  EXPECT_EQ(g.desired().size(), 4u);
  EXPECT_EQ(g.hold(), Hold::kNone);
  EXPECT_FALSE(g.next_deadline().has_value());
  EXPECT_EQ(metric("elasticproxy_backend_held", {{"backend", backend_}}), 0);
}

TEST_F(GuardTest, ChangedHeldCandidateRestartsTimer) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 10));
  g.on_snapshot(0, range(1, 4));
  clock_.advance(std::chrono::seconds(90));
  EXPECT_FALSE(g.on_snapshot(0, range(1, 3)));  // different suspicious set
  EXPECT_EQ(g.hold(), Hold::kShrink);
  clock_.advance(std::chrono::seconds(90));
  EXPECT_FALSE(g.evaluate());
  clock_.advance(std::chrono::seconds(30));
  EXPECT_TRUE(g.evaluate());
  EXPECT_EQ(g.desired().size(), 3u);
  EXPECT_EQ(
      metric("elasticproxy_snapshots_held_total", {{"backend", backend_}, {"reason", "shrink"}}),
      2);
}

TEST_F(GuardTest, ConfirmAfterZeroNeverConfirms) {
  policy_.safety.confirm_after = std::chrono::milliseconds(0);
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 10));
  g.on_snapshot(0, range(1, 2));
  EXPECT_FALSE(g.next_deadline().has_value());
  clock_.advance(std::chrono::hours(24));
  EXPECT_FALSE(g.evaluate());
  EXPECT_EQ(g.desired().size(), 10u);
}

TEST_F(GuardTest, NonSuspiciousCandidateReplacesHeldAtOnce) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 10));
  g.on_snapshot(0, range(1, 2));
  EXPECT_EQ(g.hold(), Hold::kShrink);
  EXPECT_TRUE(g.on_snapshot(0, range(1, 9)));
  EXPECT_EQ(g.hold(), Hold::kNone);
  EXPECT_EQ(g.desired().size(), 9u);
  EXPECT_FALSE(g.evaluate());
  // Back to the current set also clears the hold (no change to report).
  g.on_snapshot(0, range(1, 2));
  EXPECT_EQ(g.hold(), Hold::kShrink);
  EXPECT_FALSE(g.on_snapshot(0, range(1, 9)));
  EXPECT_EQ(g.hold(), Hold::kNone);
}

TEST_F(GuardTest, OneForOneReplacementIsNotAShrink) {
  // A rolling deploy replaces every member at the same size: not a "bad minute".
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 4));
  EXPECT_TRUE(g.on_snapshot(0, range(11, 4)));
  EXPECT_EQ(g.hold(), Hold::kNone);
  // Replacing while also losing most of them is held.
  EXPECT_FALSE(g.on_snapshot(0, range(21, 1)));
  EXPECT_EQ(g.hold(), Hold::kShrink);
}

TEST_F(GuardTest, MaxRemoveFractionBoundary) {
  policy_.safety.max_remove_fraction = 0.25;
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 8));
  EXPECT_TRUE(g.on_snapshot(0, range(1, 6)));   // 2/8 = 0.25: allowed
  EXPECT_FALSE(g.on_snapshot(0, range(1, 4)));  // 2/6 > 0.25: held
  policy_.safety.max_remove_fraction = 1.0;
  BackendGuard g2(policy_, {"file"}, clock_);
  g2.on_snapshot(0, range(1, 8));
  EXPECT_TRUE(g2.on_snapshot(0, range(9, 1)));  // everything replaced: allowed at 1.0
}

TEST_F(GuardTest, SourceErrorWhileHeldKeepsHolding) {
  BackendGuard g(policy_, {"a", "b"}, clock_);
  g.on_snapshot(0, range(1, 5));
  g.on_snapshot(1, range(11, 5));
  EXPECT_TRUE(g.on_snapshot(0, std::vector<Endpoint>{}));  // 5 of 10 removed = 0.5: allowed
  EXPECT_EQ(g.desired().size(), 5u);
  EXPECT_FALSE(g.on_snapshot(1, range(11, 1)));  // 4 of 5 removed: held
  EXPECT_EQ(g.hold(), Hold::kShrink);
  clock_.advance(std::chrono::seconds(60));
  EXPECT_FALSE(g.on_snapshot(1, Error::unavailable("timeout")));
  EXPECT_EQ(g.hold(), Hold::kShrink);
  EXPECT_EQ(g.desired().size(), 5u);
  clock_.advance(std::chrono::seconds(60));
  EXPECT_TRUE(g.evaluate());  // the held set was still every source's last good set
  EXPECT_EQ(g.desired().size(), 1u);
}

TEST_F(GuardTest, OperatorConfirmsAHeldShrinkNow) {
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_EQ(g.confirm_held().error().kind, ErrorKind::kNotYet);  // nothing held
  g.on_snapshot(0, range(1, 10));
  EXPECT_FALSE(g.on_snapshot(0, range(1, 4)));
  ASSERT_EQ(g.hold(), Hold::kShrink);
  EXPECT_EQ(g.held().size(), 4u);
  EXPECT_EQ(g.held_since(), clock_.now());
  auto r = g.confirm_held();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(g.desired().size(), 4u);
  EXPECT_EQ(g.hold(), Hold::kNone);
  EXPECT_FALSE(g.next_deadline().has_value());
  EXPECT_EQ(metric("elasticproxy_backend_held", {{"backend", backend_}}), 0);
  EXPECT_EQ(metric("elasticproxy_snapshots_resolved_total",
                   {{"backend", backend_}, {"decision", "confirm"}}),
            1);
  EXPECT_EQ(logs_.count("confirmed by an operator"), 1u);
}

TEST_F(GuardTest, OperatorRejectsAHeldShrinkUntilDiscoveryChanges) {
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 10));
  g.on_snapshot(0, range(1, 4));
  ASSERT_EQ(g.hold(), Hold::kShrink);
  auto r = g.reject_held();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(*r);
  EXPECT_EQ(g.desired().size(), 10u);
  EXPECT_EQ(g.hold(), Hold::kNone);
  EXPECT_TRUE(g.ready());
  // The same set again is neither held nor applied, even after confirm_after.
  EXPECT_FALSE(g.on_snapshot(0, range(1, 4)));
  EXPECT_EQ(g.hold(), Hold::kNone);
  clock_.advance(std::chrono::minutes(5));
  EXPECT_FALSE(g.evaluate());
  EXPECT_EQ(g.desired().size(), 10u);
  // Discovery changes: judged afresh (another shrink is held again).
  EXPECT_FALSE(g.on_snapshot(0, range(1, 3)));
  EXPECT_EQ(g.hold(), Hold::kShrink);
  EXPECT_EQ(metric("elasticproxy_snapshots_resolved_total",
                   {{"backend", backend_}, {"decision", "reject"}}),
            1);
}

TEST_F(GuardTest, RejectedFirstSetKeepsTheBackendNotReady) {
  BackendGuard g(policy_, {"file"}, clock_);
  EXPECT_FALSE(g.on_snapshot(0, std::vector<Endpoint>{}));
  ASSERT_EQ(g.hold(), Hold::kEmpty);
  ASSERT_TRUE(g.reject_held().ok());
  EXPECT_FALSE(g.ready());  // an empty first set must not empty HAProxy's backend
  EXPECT_TRUE(g.on_snapshot(0, range(1, 2)));
  EXPECT_TRUE(g.ready());
}

TEST_F(GuardTest, GrowthHoldCannotBeConfirmedByAnOperator) {
  policy_.safety.max_servers = 5;
  BackendGuard g(policy_, {"file"}, clock_);
  g.on_snapshot(0, range(1, 3));
  g.on_snapshot(0, range(1, 8));
  ASSERT_EQ(g.hold(), Hold::kGrowth);
  auto r = g.confirm_held();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kRefused);
  EXPECT_THAT(r.error().message, HasSubstr("max_servers"));
  EXPECT_EQ(g.desired().size(), 3u);
}

TEST_F(GuardTest, RejectedEndpointReasonsAreKeptForTheDashboard) {
  BackendGuard g(policy_, {"file"}, clock_);
  std::vector<Endpoint> eps = range(1, 2);
  eps.push_back(ep("\"><img src=x onerror=alert(1)>", 80));
  g.on_snapshot(0, eps);
  ASSERT_EQ(g.sources()[0].rejected_messages.size(), 1u);
  EXPECT_THAT(g.sources()[0].rejected_messages[0], HasSubstr("<img src=x"));
}

TEST(GuardNames, HoldToString) {
  EXPECT_STREQ(to_string(Hold::kNone), "none");
  EXPECT_STREQ(to_string(Hold::kEmpty), "empty");
  EXPECT_STREQ(to_string(Hold::kShrink), "shrink");
}

}  // namespace
}  // namespace ep::discovery
