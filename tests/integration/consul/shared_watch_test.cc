// `watch: shared`: many Consul services on one agent through one AgentHub (3 connections).

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "discovery/consul/agent_hub.h"
#include "discovery/consul/consul_source.h"
#include "runtime/runtime.h"
#include "support/consul/consul_double.h"
#include "support/proc_counts.h"
#include "support/eventually.h"
#include "support/time_scale.h"

namespace ep::discovery::consul {
namespace {

using namespace std::chrono_literals;
using test::ConsulCheck;
using test::ConsulDouble;
using test::ConsulFault;
using test::ConsulService;
using Clock = std::chrono::steady_clock;

class CountingSink final : public Sink {
 public:
  void publish(Snapshot s) override {
    std::lock_guard<std::mutex> lock(mu_);
    all_.push_back(std::move(s));
    times_.push_back(Clock::now());
    cv_.notify_all();
  }
  template <typename P>
  bool wait_for(P pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(all_); });
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return all_.size();
  }
  Snapshot last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return all_.back();
  }
  Clock::time_point last_time() const {
    std::lock_guard<std::mutex> lock(mu_);
    return times_.back();
  }
  std::vector<Snapshot> all() const {
    std::lock_guard<std::mutex> lock(mu_);
    return all_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Snapshot> all_;
  std::vector<Clock::time_point> times_;
};

ConsulService instance(const std::string& service, int n, const std::string& status = "passing") {
  ConsulService s;
  s.name = service;
  s.id = service + "-" + std::to_string(n);
  s.node = "node-" + std::to_string(n % 7);
  s.address = "10.3." + std::to_string(n % 250) + "." + std::to_string(n / 250 + 1);
  s.port = 8000 + n;
  s.checks = {ConsulCheck{"service:" + s.id, "", status, ""}};
  return s;
}

Options shared_options(const ConsulDouble& consul, const std::string& service) {
  Options o;
  o.base_url = consul.url();
  o.service = service;
  o.watch = Options::WatchMode::kShared;
  o.wait = 30s;
  o.min_interval = 0ms;
  o.jitter = 0ms;
  o.backoff_min = 20ms;
  o.backoff_max = 100ms;
  o.empty_confirm = 300ms;
  o.timeout = 2s;
  return o;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

auto size_is(size_t n) {
  return [n](const std::vector<Snapshot>& all) {
    return !all.empty() && all.back().ok() && all.back()->size() == n;
  };
}

TEST(ConsulSharedWatch, TwoHundredServicesOverAFewConnections) {
  constexpr int kServices = 200;
  ConsulDouble consul;
  consul.start();
  for (int i = 0; i < kServices; ++i)
    consul.register_service(instance("svc" + std::to_string(i), i));

  SourceContext ctx;
  ctx.backend = "many";
  std::vector<std::unique_ptr<CountingSink>> sinks;
  std::vector<std::unique_ptr<ConsulSource>> sources;
  for (int i = 0; i < kServices; ++i) {
    sinks.push_back(std::make_unique<CountingSink>());
    sources.push_back(
        std::make_unique<ConsulSource>(shared_options(consul, "svc" + std::to_string(i)), ctx));
    ASSERT_TRUE(sources.back()->start(*sinks.back()).ok());
  }
  for (auto& s : sinks) ASSERT_TRUE(s->wait_for(size_is(1)));

  // Start-up settles (baseline refreshes), then idle: detectors blocked, nothing else happens.
  // The quiet window grows under sanitizers (EP_TEST_TIME_SCALE): start-up is slower there.
  for (auto n = consul.requests_to("/v1/health/service/");;) {
    std::this_thread::sleep_for(ep::test::scaled(200ms));  // kept: the quiet-window length
    const auto m = consul.requests_to("/v1/health/service/");
    if (m == n) break;
    n = m;
  }
  const auto conns_after_start = consul.connections_accepted();
  const double cpu0 = cpu_seconds();
  const auto reads0 = consul.requests_to("/v1/health/service/");
  std::this_thread::sleep_for(1s);  // kept: the idle window measured, not a wait
  const double idle_cpu = cpu_seconds() - cpu0;
  std::printf(
      "shared hub: %d services, %llu connections after start, idle 1 s: %.3f s CPU (whole "
      "test process incl. the double), %llu health reads\n",
      kServices, static_cast<unsigned long long>(conns_after_start), idle_cpu,
      static_cast<unsigned long long>(consul.requests_to("/v1/health/service/") - reads0));
  EXPECT_LE(conns_after_start, 8u);  // 3 steady + checks-filter restarts during the start burst
  EXPECT_EQ(consul.requests_to("/v1/health/service/"), reads0);
  EXPECT_LT(idle_cpu, 0.2);

  // A health change refreshes only that service.
  const auto reads1 = consul.requests_to("/v1/health/service/");
  auto t0 = Clock::now();
  consul.set_check_status("service:svc42-42", "critical");
  ASSERT_TRUE(sinks[42]->wait_for(size_is(0), 10s) || sinks[42]->wait_for([](const auto& all) {
    return all.back().ok() && all.back()->empty();
  }));
  std::printf(
      "shared hub: health change -> sink %.2f ms (includes the %d ms empty-answer confirmation)\n",
      std::chrono::duration<double, std::milli>(sinks[42]->last_time() - t0).count(), 300);
  EXPECT_LE(consul.requests_to("/v1/health/service/") - reads1, 3u);  // the read + confirmation

  // A registration moves the catalog index: every service is re-read, only svc17 publishes.
  std::vector<size_t> before;
  for (auto& s : sinks) before.push_back(s->size());
  t0 = Clock::now();
  consul.register_service(instance("svc17", 1017));
  ASSERT_TRUE(sinks[17]->wait_for(size_is(2)));
  std::printf("shared hub: registration -> sink %.2f ms\n",
              std::chrono::duration<double, std::milli>(sinks[17]->last_time() - t0).count());
  // Kept sleep, deliberate: let the other re-reads finish; they must publish nothing.
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < kServices; ++i) {
    if (i == 17 || i == 42) continue;
    EXPECT_EQ(sinks[i]->size(), before[i]) << i;
  }
  EXPECT_LE(consul.connections_accepted(), conns_after_start + 1);

  const auto t_stop = Clock::now();
  for (auto& s : sources) s->stop();
  EXPECT_LT(Clock::now() - t_stop, 3s);
  consul.stop();
}

TEST(ConsulSharedWatch, LatencyOverFiftyRegistrations) {
  ConsulDouble consul;
  consul.start();
  SourceContext ctx;
  ctx.backend = "web";
  CountingSink sink, other_sink;
  ConsulSource src(shared_options(consul, "web"), ctx);
  ConsulSource other(shared_options(consul, "other"), ctx);
  consul.register_service(instance("other", 0));
  ASSERT_TRUE(src.start(sink).ok());
  ASSERT_TRUE(other.start(other_sink).ok());
  ASSERT_TRUE(sink.wait_for(size_is(0)));
  std::vector<double> ms;
  for (int n = 1; n <= 50; ++n) {
    auto t0 = Clock::now();
    consul.register_service(instance("web", n));
    ASSERT_TRUE(sink.wait_for(size_is(static_cast<size_t>(n)))) << n;
    ms.push_back(std::chrono::duration<double, std::milli>(sink.last_time() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("shared hub: registration -> sink over %zu changes: p50 %.2f ms, p99 %.2f ms\n",
              ms.size(), ms[ms.size() / 2], ms[ms.size() * 99 / 100]);
  EXPECT_LT(ms[ms.size() / 2], 1000.0);  // ms, not a poll interval (also under sanitizers)
  src.stop();
  other.stop();
}

TEST(ConsulSharedWatch, FailuresAreReportedPerSourceAndRecoverAtOnce) {
  ConsulDouble consul;
  consul.start();
  consul.register_service(instance("web", 1));
  consul.register_service(instance("web", 2));
  SourceContext ctx;
  ctx.backend = "web";
  CountingSink sink;
  ConsulSource src(shared_options(consul, "web"), ctx);
  ASSERT_TRUE(src.start(sink).ok());
  ASSERT_TRUE(sink.wait_for(size_is(2)));
  consul.set_fault(ConsulFault::kNoLeader);
  consul.set_check_status("service:web-1", "warning");  // wakes the checks detector
  ASSERT_TRUE(sink.wait_for([](const auto& all) { return !all.back().ok(); }));
  EXPECT_EQ(sink.last().error().kind, ErrorKind::kUnavailable);
  consul.set_fault(ConsulFault::kNone);
  ASSERT_TRUE(sink.wait_for(size_is(1)));  // web-1 is warning now: passing-only drops it
  for (const auto& s : sink.all()) {
    if (s.ok()) {
      EXPECT_FALSE(s->empty());
    }
  }
  src.stop();
}

TEST(ConsulSharedWatch, AgentDownPublishesErrorsForEverySubscriber) {
  ConsulDouble consul;
  consul.start();
  consul.register_service(instance("a", 1));
  consul.register_service(instance("b", 2));
  SourceContext ctx;
  CountingSink sa, sb;
  ConsulSource a(shared_options(consul, "a"), ctx), b(shared_options(consul, "b"), ctx);
  ASSERT_TRUE(a.start(sa).ok());
  ASSERT_TRUE(b.start(sb).ok());
  ASSERT_TRUE(sa.wait_for(size_is(1)));
  ASSERT_TRUE(sb.wait_for(size_is(1)));
  consul.stop();  // the detectors' blocked queries fail; every subscriber re-reads and fails
  auto failed = [](const auto& all) { return !all.back().ok(); };
  ASSERT_TRUE(sa.wait_for(failed));
  ASSERT_TRUE(sb.wait_for(failed));
  for (const auto& s : sa.all()) {
    if (s.ok()) {
      EXPECT_EQ(s->size(), 1u);
    }
  }
  a.stop();
  b.stop();
}

TEST(ConsulSharedWatch, StopDoesNotWaitForAHungRead) {
  ConsulDouble consul;
  consul.start();
  consul.register_service(instance("web", 1));
  SourceContext ctx;
  CountingSink sink;
  Options o = shared_options(consul, "web");
  o.timeout = 20s;
  ConsulSource src(o, ctx);
  ASSERT_TRUE(src.start(sink).ok());
  ASSERT_TRUE(sink.wait_for(size_is(1)));
  consul.set_fault(ConsulFault::kHang);
  const auto reads = consul.requests_to("/v1/health/service/");
  consul.set_check_status("service:web-1", "warning");  // the worker re-reads and hangs
  ep::test::eventually([&] { return consul.requests_to("/v1/health/service/") != reads; }, 5s);
  ASSERT_GT(consul.requests_to("/v1/health/service/"), reads);
  const size_t published = sink.size();
  const auto t0 = Clock::now();
  src.stop();
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(sink.size(), published);  // the aborted read is not reported as a failure
  consul.stop();
}

TEST(ConsulSharedWatch, ManyHubsShareTheRuntimeThreads) {
  // Ten agent identities (distinct tokens: ten hubs) of five services each, on one runtime: the
  // hubs are handlers on its loops, so no thread is added. The Consul double serves each
  // connection on a thread of its own (some may have ended): at most one per connection.
  constexpr int kAgents = 10;
  constexpr int kServicesPerAgent = 5;
  ConsulDouble consul;
  consul.start();
  runtime::Runtime rt({.threads = 2});
  const size_t threads = test::thread_count();
  const std::uint64_t connections = consul.connections_accepted();
  SourceContext ctx;
  ctx.backend = "many";
  std::vector<std::unique_ptr<CountingSink>> sinks;
  std::vector<std::unique_ptr<ConsulSource>> sources;
  for (int a = 0; a < kAgents; ++a) {
    for (int i = 0; i < kServicesPerAgent; ++i) {
      const std::string name = "a" + std::to_string(a) + "s" + std::to_string(i);
      consul.register_service(instance(name, a * kServicesPerAgent + i));
      Options o = shared_options(consul, name);
      o.token = "token-" + std::to_string(a);
      sinks.push_back(std::make_unique<CountingSink>());
      sources.push_back(std::make_unique<ConsulSource>(o, ctx));
      ASSERT_TRUE(sources.back()->start_on(rt, *sinks.back()).ok());
    }
  }
  for (auto& s : sinks) ASSERT_TRUE(s->wait_for(size_is(1)));
  EXPECT_LE(test::thread_count() - threads, consul.connections_accepted() - connections);
  // Changes still reach each source through its hub.
  consul.register_service(instance("a7s3", 1000));
  ASSERT_TRUE(sinks[7 * kServicesPerAgent + 3]->wait_for(size_is(2)));
  EXPECT_LE(test::thread_count() - threads, consul.connections_accepted() - connections);
  for (auto& s : sources) s->stop();
  // The last source of a hub drops it: its requests and timers are gone from the loops.
  EXPECT_EQ(rt.loop(0).timer_count() + rt.loop(1).timer_count(), 0u);
  EXPECT_EQ(rt.loop(0).watch_count() + rt.loop(1).watch_count(), 0u);
  consul.stop();
}

TEST(ConsulSharedWatch, CheckStatesParser) {
  auto r = parse_check_states(R"([
    {"Node":"n1","CheckID":"serfHealth","Status":"passing","ServiceID":"","ServiceName":""},
    {"Node":"n1","CheckID":"service:a","Status":"critical","ServiceID":"a","ServiceName":"web"},
    {"Node":"n2","CheckID":"service:b","Status":"passing","ServiceID":"b","ServiceName":"web"}])");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at("web"), "n1/a/service:a:critical\nn2/b/service:b:passing\n");
  EXPECT_FALSE(parse_check_states("{}").ok());
  EXPECT_FALSE(parse_check_states("[{\"Node\":1}]").ok());
}

// #16.1 in shared mode: the hub's detector queries are aborted while the agent is frozen (held
// without a reply) and re-armed, with every service re-read, once it answers again.
TEST(ConsulSharedWatch, FrozenAgentNewSetsArriveWithinTwoSecondsOfItsReturn) {
  ConsulDouble consul;
  consul.start();
  consul.register_service(instance("fa", 1));
  consul.register_service(instance("fb", 2));
  SourceContext ctx;
  ctx.backend = "b";
  CountingSink sa, sb;
  Options oa = shared_options(consul, "fa"), ob = shared_options(consul, "fb");
  oa.wait = ob.wait = std::chrono::minutes(5);
  ConsulSource a(oa, ctx), b(ob, ctx);
  ASSERT_TRUE(a.start(sa).ok());
  ASSERT_TRUE(b.start(sb).ok());
  ASSERT_TRUE(sa.wait_for(size_is(1)));
  ASSERT_TRUE(sb.wait_for(size_is(1)));
  consul.set_frozen(true);
  // Past detection (liveness 2 s + 1 s): the held detector queries would otherwise pin the hub.
  // Errors may be published meanwhile (a read timing out); never another set.
  EXPECT_TRUE(test::consistently(
      [&] {
        for (const auto& s : sa.all()) {
          if (s.ok() && s->size() != 1) return false;
        }
        return true;
      },
      3500ms));
  consul.register_service(instance("fa", 3));
  consul.register_service(instance("fb", 4));
  const auto t0 = Clock::now();
  consul.set_frozen(false);
  ASSERT_TRUE(sa.wait_for(size_is(2), 10s));
  ASSERT_TRUE(sb.wait_for(size_is(2), 10s));
  const double ms = std::chrono::duration<double, std::milli>(
                        std::max(sa.last_time(), sb.last_time()) - t0)
                        .count();
  std::printf("shared hub, frozen agent answers again -> both services' new sets: %.0f ms\n", ms);
  EXPECT_LE(ms, 2000.0 * test::time_scale());
  a.stop();
  b.stop();
  consul.stop();
}

}  // namespace
}  // namespace ep::discovery::consul
