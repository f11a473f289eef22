// The DNS SRV source against a real dnsmasq on loopback.
#include "discovery/dns/dns_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "dns/dnsmasq_fixture.h"
#include "runtime/runtime.h"
#include "support/haproxy/loopback.h"
#include "support/proc_counts.h"
#include "support/recording_sink.h"

namespace ep::discovery::dns {
namespace {

using namespace std::chrono_literals;
using test::DnsmasqFixture;

using test::RecordingSink;

std::vector<std::string> addrs(const Snapshot& s) {
  std::vector<std::string> out;
  if (!s.ok()) return out;
  for (const auto& e : *s)
    out.push_back((e.backup ? "backup " : "") + e.address + ":" + std::to_string(e.port) + " w" +
                  std::to_string(e.weight.value_or(-1)));
  std::sort(out.begin(), out.end());
  return out;
}

auto has_exactly(std::vector<std::string> want) {
  std::sort(want.begin(), want.end());
  return [want](const Snapshot& s) { return s.ok() && addrs(s) == want; };
}

Options options_for(const DnsmasqFixture& dns, const std::string& name = "_http._tcp.web.test") {
  Options o;
  o.name = name;
  o.servers = {dns.server()};
  o.ttl_floor = 200ms;
  o.ttl_ceiling = 30s;
  o.timeout = 300ms;
  o.tries = 1;
  o.retry_interval = 100ms;
  return o;
}

const std::vector<std::string> kTwo = {
    "srv-host=_http._tcp.web.test,a.web.test,8080,10,10",
    "srv-host=_http._tcp.web.test,b.web.test,8081,10,30",
    "host-record=a.web.test,10.0.0.1",
    "host-record=b.web.test,10.0.0.2",
};

TEST(DnsSourceTest, RecordsAddedAndRemovedConverge) {
  DnsmasqFixture dns;
  ASSERT_TRUE(dns.start(kTwo).ok()) << dns.log();
  DnsSource source(options_for(dns));
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  // Weights 10 and 30 → 85 and 256 (proportional), not 1 and 1.
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"})));
  auto three = kTwo;
  three.push_back("srv-host=_http._tcp.web.test,c.web.test,8082,10,30");
  three.push_back("host-record=c.web.test,10.0.0.3,fd00::3");
  ASSERT_TRUE(dns.set_records(three).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly(
      {"10.0.0.1:8080 w85", "10.0.0.2:8081 w256", "10.0.0.3:8082 w256", "fd00::3:8082 w256"})));
  ASSERT_TRUE(dns.set_records({kTwo[1], kTwo[3]}).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8081 w256"})));
}

TEST(DnsSourceTest, LowerPrioritiesAreDroppedOrBackups) {
  DnsmasqFixture dns;
  auto lines = kTwo;
  lines.push_back("srv-host=_http._tcp.web.test,c.web.test,9000,20,10");
  lines.push_back("host-record=c.web.test,10.0.0.3");
  ASSERT_TRUE(dns.start(lines).ok()) << dns.log();
  DnsSource dropped(options_for(dns));
  auto a = dropped.fetch_once(5s);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"})(a));
  Options o = options_for(dns);
  o.backup_other_priorities = true;
  DnsSource backup(o);
  auto b = backup.fetch_once(5s);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(
      has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256", "backup 10.0.0.3:9000 w85"})(b))
      << ::testing::PrintToString(addrs(b));
}

TEST(DnsSourceTest, ThreeHundredRecordsNeedTcpAndAllArrive) {
  std::vector<std::string> lines;
  for (int i = 1; i <= 300; ++i) {
    lines.push_back("srv-host=_big._tcp.web.test,h" + std::to_string(i) + ".web.test," +
                    std::to_string(10000 + i) + ",10,10");
    lines.push_back("host-record=h" + std::to_string(i) + ".web.test,10.1." +
                    std::to_string(i / 256) + "." + std::to_string(i % 256));
  }
  DnsmasqFixture dns;
  ASSERT_TRUE(dns.start(lines).ok()) << dns.log();
  Options o = options_for(dns, "_big._tcp.web.test");
  o.timeout = 2s;
  DnsSource source(o);
  auto snap = source.fetch_once(10s);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(snap->size(), 300u);
  // Without EDNS0 the answer is truncated at 512 bytes too: TCP still gets everything.
  o.edns_payload = 512;
  DnsSource plain(o);
  auto snap2 = plain.fetch_once(10s);
  ASSERT_TRUE(snap2.ok()) << snap2.error().message;
  EXPECT_EQ(snap2->size(), 300u);
}

TEST(DnsSourceTest, ServerStoppedPublishesErrorsNeverAnEmptySet) {
  DnsmasqFixture dns;
  ASSERT_TRUE(dns.start(kTwo).ok()) << dns.log();
  DnsSource source(options_for(dns));
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"})));
  dns.stop();
  ASSERT_TRUE(sink.wait_last(
      [](const Snapshot& s) { return !s.ok() && s.error().kind == ErrorKind::kUnavailable; }));
  ASSERT_TRUE(dns.start(kTwo).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"}), 20s));
  for (const auto& s : sink.all()) {
    if (s.ok()) EXPECT_FALSE(s->empty()) << "an outage must never look like an empty set";
  }
}

// #16.1 for DNS: dnsmasq stopped by SIGSTOP (its sockets stay open, queries are never answered)
// for 6 s. While it is
// stopped only errors or the old set are published (never an empty set). A target address added
// meanwhile (a hostsdir file, read by dnsmasq through inotify once it runs again) reaches the
// sink within 2 s of SIGCONT: the retry is capped by max_retry_interval (1 s by default), so a
// resolver that answers again is re-asked at once whatever the outage length was.
TEST(DnsSourceStopped, SigstopThenSigcontNewSetWithinTwoSeconds) {
  test::TempDir hosts("dnshosts");
  DnsmasqFixture dns;
  auto lines = kTwo;
  lines.push_back("srv-host=_http._tcp.web.test,c.web.test,8082,10,10");  // no address yet
  lines.push_back("hostsdir=" + hosts.path());
  ASSERT_TRUE(dns.start(lines).ok()) << dns.log();
  // Short tries and a short first retry, so that 6 s of failures would grow a backoff doubling
  // up to ttl_ceiling (the behaviour before) to a 5 s sleep: SIGCONT then lands in it. Capped
  // at max_retry_interval's default (1 s), the new set is there within about 1 s.
  Options o = options_for(dns);
  o.timeout = 30ms;
  o.tries = 1;
  o.retry_interval = 10ms;
  ASSERT_EQ(o.max_retry_interval, std::chrono::seconds(1));  // the default
  DnsSource source(o);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  const std::vector<std::string> two = {"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"};
  ASSERT_TRUE(sink.wait_last(has_exactly(two)));
  const size_t before = sink.size();
  ASSERT_TRUE(dns.pause().ok());
  {
    std::ofstream out(hosts.path() + "/c");
    out << "10.0.0.3 c.web.test\n";
  }
  // The freeze itself (6 s): nothing but the old set or errors meanwhile.
  EXPECT_TRUE(test::consistently(
      [&] {
        auto all = sink.all();
        return std::all_of(all.begin() + static_cast<long>(before), all.end(),
                           [&](const Snapshot& s) { return !s.ok() || addrs(s) == two; });
      },
      6s));
  EXPECT_TRUE(sink.wait_next(before, [](const Snapshot& s) { return !s.ok(); }, 1s))
      << "the stopped resolver was noticed (timeouts published as errors)";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(dns.resume().ok());
  auto got = sink.wait_next(before, has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256",
                                                 "10.0.0.3:8082 w85"}),
                            10s);
  ASSERT_TRUE(got) << dns.log();
  const double ms = std::chrono::duration<double, std::milli>(sink.time(*got) - t0).count();
  std::printf("dnsmasq SIGSTOP 6 s/SIGCONT: new set after SIGCONT: %.0f ms\n", ms);
  EXPECT_LE(ms, 2000.0 * test::time_scale());
}

TEST(DnsSourceTest, NxDomainCountsAsEmptyOnlyAfterConfirmations) {
  DnsmasqFixture dns;
  ASSERT_TRUE(dns.start(kTwo).ok()) << dns.log();
  Options o = options_for(dns);
  o.empty_confirmations = 3;
  DnsSource source(o);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"})));
  ASSERT_TRUE(dns.set_records({"host-record=a.web.test,10.0.0.1"}).ok());  // SRV name gone
  ASSERT_TRUE(sink.wait_last([](const Snapshot& s) { return s.ok() && s->empty(); }));
  // Before the empty set: exactly two "not yet" errors naming the confirmations.
  int not_yet = 0;
  for (const auto& s : sink.all()) {
    if (!s.ok() && s.error().kind == ErrorKind::kNotYet) {
      ++not_yet;
      EXPECT_NE(s.error().message.find("NXDOMAIN"), std::string::npos) << s.error().message;
    }
  }
  EXPECT_EQ(not_yet, 2);
}

TEST(DnsSourceTest, ConvergenceFollowsTheTtl) {
  for (int ttl : {1, 5}) {
    DnsmasqFixture dns("web.test", ttl);
    ASSERT_TRUE(dns.start(kTwo).ok()) << dns.log();
    Options o = options_for(dns);
    o.ttl_floor = 1s;
    DnsSource source(o);
    RecordingSink sink;
    ASSERT_TRUE(source.start(sink).ok());
    ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"})));
    const auto changed = std::chrono::steady_clock::now();
    ASSERT_TRUE(dns.set_records({kTwo[1], kTwo[3]}).ok());
    ASSERT_TRUE(
        sink.wait_last(has_exactly({"10.0.0.2:8081 w256"}), std::chrono::seconds(ttl + 10)));
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - changed)
                        .count();
    std::printf("DNS convergence with TTL %ds (floor 1s): %lld ms\n", ttl,
                static_cast<long long>(ms));
    EXPECT_LE(ms, ttl * 1000 + 2000);
  }
}

TEST(DnsSourceTest, ManySourcesShareTheRuntimeThreads) {
  DnsmasqFixture dns;
  ASSERT_TRUE(dns.start(kTwo).ok()) << dns.log();
  runtime::Runtime rt({.threads = 2});
  const size_t threads = test::thread_count();
  constexpr int kSources = 40;
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  std::vector<std::unique_ptr<DnsSource>> sources;
  for (int i = 0; i < kSources; ++i) {
    sinks.push_back(std::make_unique<RecordingSink>());
    sources.push_back(std::make_unique<DnsSource>(options_for(dns)));
    ASSERT_TRUE(sources.back()->start_on(rt, *sinks.back()).ok());
  }
  for (auto& sink : sinks) {
    ASSERT_TRUE(sink->wait_last(has_exactly({"10.0.0.1:8080 w85", "10.0.0.2:8081 w256"})));
  }
  EXPECT_EQ(test::thread_count(), threads);  // no thread per source
  // A change reaches every one of them (re-queried at the TTL on the shared loops).
  ASSERT_TRUE(dns.set_records({kTwo[1], kTwo[3]}).ok());
  for (auto& sink : sinks) ASSERT_TRUE(sink->wait_last(has_exactly({"10.0.0.2:8081 w256"})));
  for (auto& s : sources) s->stop();
  EXPECT_EQ(rt.loop(0).watch_count() + rt.loop(1).watch_count(), 0u);  // sockets unwatched
  EXPECT_EQ(rt.loop(0).timer_count() + rt.loop(1).timer_count(), 0u);  // timers cancelled
}

TEST(DnsSourceTest, StopDuringARoundIsPromptAndFinal) {
  // A resolver that never answers (a bound UDP socket nobody reads): the round stays in flight.
  const int silent = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  Options o;
  o.name = "_http._tcp.web.test";
  o.servers = {"127.0.0.1:" + std::to_string(ntohs(addr.sin_port))};
  o.timeout = 5s;
  o.tries = 3;
  runtime::Runtime rt({.threads = 1});
  RecordingSink sink;
  DnsSource source(o);
  ASSERT_TRUE(source.start_on(rt, sink).ok());
  // Wait (polling a condition, with a deadline) until the query's socket is watched and the
  // round deadline and c-ares retransmission timers are armed.
  auto in_flight = [&] { return rt.loop(0).watch_count() == 1 && rt.loop(0).timer_count() >= 2; };
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (!in_flight() && std::chrono::steady_clock::now() < end) std::this_thread::yield();
  ASSERT_TRUE(in_flight());
  const auto t0 = std::chrono::steady_clock::now();
  source.stop();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(rt.loop(0).watch_count(), 0u);
  EXPECT_EQ(rt.loop(0).timer_count(), 0u);  // round deadline, c-ares timeout, next round: gone
  EXPECT_TRUE(sink.all().empty());          // the round never finished
  ::close(silent);
}

TEST(DnsSourceNoServer, NothingListeningIsAnError) {
  Options o;
  o.name = "_http._tcp.web.test";
  o.servers = {"127.0.0.1:" + std::to_string(test::free_port())};
  o.timeout = 200ms;
  o.tries = 1;
  DnsSource source(o);
  auto snap = source.fetch_once(3s);
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.error().kind, ErrorKind::kUnavailable);
}

}  // namespace
}  // namespace ep::discovery::dns
