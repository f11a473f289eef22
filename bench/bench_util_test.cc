// The harness's own parsing and counting, tested on saved wrk outputs and a scripted admin socket:
// a wrong parse here would silently put wrong figures into RESULTS.md.

#include "bench_util.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "support/haproxy/fake_admin_server.h"

namespace ep::bench {
namespace {

std::string testdata(const std::string& name) {
  return read_file(std::string(EP_BENCH_TESTDATA_DIR) + "/" + name);
}

TEST(ParseWrk, ReadsRequestsLatencyAndNon2xx) {
  WrkResult r = parse_wrk(testdata("wrk_4.1_non2xx.txt"));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.requests, 1346);
  EXPECT_DOUBLE_EQ(r.seconds, 1.0);
  EXPECT_EQ(r.non2xx, 1346);
  EXPECT_EQ(r.socket_errors(), 0);
  EXPECT_DOUBLE_EQ(r.p50_ms, 0.91);
  EXPECT_DOUBLE_EQ(r.p99_ms, 7.49);
  EXPECT_DOUBLE_EQ(r.max_ms, 10.03);
}

TEST(ParseWrk, ReadsSocketErrorsAndMicrosecondLatencies) {
  WrkResult r = parse_wrk(testdata("wrk_4.1_socket_errors.txt"));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.requests, 199425);
  EXPECT_DOUBLE_EQ(r.seconds, 6.04);
  EXPECT_EQ(r.non2xx, 0);
  EXPECT_EQ(r.read_errors, 39);
  EXPECT_EQ(r.socket_errors(), 39);
  EXPECT_DOUBLE_EQ(r.p50_ms, 0.333);
  EXPECT_DOUBLE_EQ(r.p99_ms, 40.81);
  EXPECT_DOUBLE_EQ(r.max_ms, 140.43);
}

TEST(ParseWrk, GarbageIsNotOk) {
  EXPECT_FALSE(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n").ok);
  EXPECT_FALSE(parse_wrk("").ok);
}

TEST(Percentile, NearestRank) {
  const std::vector<double> v = {5, 1, 4, 2, 3};
  EXPECT_EQ(percentile(v, 0), 1);
  EXPECT_EQ(percentile(v, 50), 3);
  EXPECT_EQ(percentile(v, 99), 5);
  EXPECT_EQ(percentile(v, 100), 5);
  EXPECT_EQ(percentile({}, 50), 0);
}

TEST(FakeTargets, DistinctLoopbackAddresses) {
  auto t = fake_targets(10000, 20000, 0);
  std::set<std::string> unique(t.begin(), t.end());
  EXPECT_EQ(unique.size(), 10000u);
  EXPECT_EQ(t.front(), "127.1.0.1:20000");
}

TEST(CountingProxy, CountsCommandsBytesAndConnections) {
  TempDir dir("t");
  test::FakeAdminServer haproxy(
      dir.path() + "/h.sock",
      test::FakeAdminServer::prompt_mode([](const std::string&, int) { return std::string(); }));
  ASSERT_TRUE(haproxy.ok());
  CountingProxy proxy(dir.path() + "/p.sock", haproxy.path());
  ASSERT_TRUE(proxy.ok());
  // An escaped `;` inside a value is not a separator; prompt/quit are not commands.
  auto reply = admin_query(dir.path() + "/p.sock",
                           "prompt;add server be/a 10.0.0.1:80;set server be/a\\;x state ready;"
                           "show stat;quit",
                           Ms(2000), /*half_close=*/true);
  ASSERT_TRUE(reply.has_value());
  proxy.wait_quiet(Ms(100), Ms(2000));
  auto c = proxy.counts();
  EXPECT_EQ(c.connections, 1);
  EXPECT_EQ(c.commands, 3);
  EXPECT_EQ(c.by_kind["add server"], 1);
  EXPECT_EQ(c.by_kind["set server"], 1);
  EXPECT_EQ(c.by_kind["show stat"], 1);
  EXPECT_GT(c.bytes_out, 60);
  EXPECT_GT(c.bytes_in, 0);
}

}  // namespace
}  // namespace ep::bench
