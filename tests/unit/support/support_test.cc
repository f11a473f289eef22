// The shared test helpers (tests/support): condition waits on the test time budget, the
// recording sink and the HAProxy test-config builder.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support/eventually.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/haproxy_config.h"
#include "support/recording_sink.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using discovery::Snapshot;

TEST(Eventually, TrueAtOnceDoesNotWait) {
  const auto t0 = Clock::now();
  int calls = 0;
  EXPECT_TRUE(eventually([&] { return ++calls > 0; }, 10s));
  EXPECT_EQ(calls, 1);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST(Eventually, ReturnsOnceTheConditionHoldsFromAnotherThread) {
  std::atomic<bool> flag{false};
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);  // the test double's own pacing: set the flag later
    flag = true;
  });
  const auto t0 = Clock::now();
  EXPECT_TRUE(eventually([&] { return flag.load(); }, 10s));
  EXPECT_LT(Clock::now() - t0, 5s);  // returned on the condition, not at the deadline
  t.join();
}

TEST(Eventually, FalseAfterTheScaledBudget) {
  int calls = 0;
  const auto t0 = Clock::now();
  EXPECT_FALSE(eventually([&] { return ++calls < 0; }, 50ms));
  EXPECT_GE(Clock::now() - t0, scaled(50ms));
  EXPECT_GT(calls, 2);  // polled, with a backoff of a few ms
}

TEST(Eventually, AssertionMacroPasses) {
  std::atomic<int> n{0};
  std::thread t([&] {
    for (int i = 0; i < 3; ++i) ++n;
  });
  EP_ASSERT_EVENTUALLY(n.load() == 3);
  EP_EXPECT_EVENTUALLY(n.load() >= 1);
  t.join();
}

TEST(Consistently, HoldsThroughTheWindow) {
  const auto t0 = Clock::now();
  EXPECT_TRUE(consistently([] { return true; }, 40ms));
  EXPECT_GE(Clock::now() - t0, scaled(40ms));
}

TEST(Consistently, FalseAsSoonAsItBreaks) {
  std::atomic<bool> ok{true};
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);  // the test double's own pacing: break it later
    ok = false;
  });
  const auto t0 = Clock::now();
  EXPECT_FALSE(consistently([&] { return ok.load(); }, 10s));
  EXPECT_LT(Clock::now() - t0, 5s);
  t.join();
}

Snapshot endpoints(int n) {
  std::vector<Endpoint> v(static_cast<std::size_t>(n));
  return Snapshot(std::move(v));
}

TEST(RecordingSink, RecordsAndWaits) {
  RecordingSink sink;
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_FALSE(sink.last().ok());
  EXPECT_FALSE(sink.wait_count(0, 20ms).has_value());
  std::thread t([&] {
    sink.publish(endpoints(1));
    sink.publish(Snapshot(Error::unavailable("down")));
    sink.publish(endpoints(3));
  });
  auto third = sink.wait_count(2);
  ASSERT_TRUE(third.has_value());
  ASSERT_TRUE(third->ok());
  EXPECT_EQ((*third)->size(), 3u);
  t.join();
  EXPECT_EQ(sink.size(), 3u);
  EXPECT_TRUE(sink.wait_last([](const Snapshot& s) { return s.ok() && s->size() == 3; }));
  EXPECT_TRUE(sink.wait_any([](const Snapshot& s) { return !s.ok(); }));
  EXPECT_FALSE(sink.wait_last([](const Snapshot& s) { return !s.ok(); }, 20ms));
  EXPECT_EQ(sink.wait_next(0, [](const Snapshot& s) { return !s.ok(); }), std::optional<size_t>(1));
  EXPECT_EQ(sink.wait_next(
                2, [](const Snapshot& s) { return !s.ok(); }, 20ms),
            std::nullopt);
  EXPECT_TRUE(sink.wait_all([](const std::vector<Snapshot>& all) { return all.size() == 3; }));
  EXPECT_EQ(sink.all().size(), 3u);
  EXPECT_FALSE(sink.at(1).ok());
  EXPECT_LE(sink.time(0), sink.time(2));
}

TEST(HaproxyConfig, DefaultsFrontendsAndBackends) {
  const std::string cfg =
      HaproxyConfig()
          .global("stats timeout 10s")
          .frontend("fe", 0, "web")
          .backend("web")
          .listen("slots", 1, "static-rr",
                  {"server-template ep- 4 127.0.0.1:1 check inter 500ms disabled"})
          .str();
  EXPECT_EQ(cfg, R"(global
  stats socket @SOCKET@ level admin
  stats timeout 10s
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:@PORT0@
  default_backend web
backend web
  balance roundrobin
frontend fe_slots
  bind 127.0.0.1:@PORT1@
  default_backend slots
backend slots
  balance static-rr
  server-template ep- 4 127.0.0.1:1 check inter 500ms disabled
)");
}

TEST(HaproxyConfig, TimeoutsAndRawText) {
  const std::string cfg =
      HaproxyConfig().client_server_timeout("60s").raw("backend b\n  bogus-keyword").str();
  EXPECT_EQ(cfg, R"(global
  stats socket @SOCKET@ level admin
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
backend b
  bogus-keyword
)");
}

TEST(HaproxyBinary, EpHaproxyPicksTheBinaryElseHaproxyFromPath) {
  EXPECT_EQ(haproxy_binary_from(nullptr), "haproxy");
  EXPECT_EQ(haproxy_binary_from(""), "haproxy");
  EXPECT_EQ(haproxy_binary_from("/opt/h3/haproxy"), "/opt/h3/haproxy");
}

TEST(HaproxyBinary, VersionIsReadFromHaproxyV) {
  auto v30 = parse_haproxy_version(
      "HAProxy version 3.0.11-9e587df 2025/06/02 - https://haproxy.org/\nStatus: long-term\n");
  EXPECT_EQ(v30.major, 3);
  EXPECT_EQ(v30.minor, 0);
  EXPECT_TRUE(v30.at_least(3, 0));
  EXPECT_TRUE(v30.at_least(2, 6));
  EXPECT_FALSE(v30.at_least(3, 2));
  auto v26 = parse_haproxy_version("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - x\n");
  EXPECT_EQ(v26.text(), "2.6");
  EXPECT_FALSE(v26.at_least(3, 0));
  EXPECT_EQ(parse_haproxy_version("HA-Proxy version 1.8.19 2019/02/11\n").text(), "1.8");
  EXPECT_EQ(parse_haproxy_version("sh: haproxy: not found").major, 0);
}

}  // namespace
}  // namespace ep::test
