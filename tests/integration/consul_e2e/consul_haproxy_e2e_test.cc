// End to end: the real `elasticproxy` binary, the real HAProxy 2.6 and the Consul double
// (tests/support/consul) on loopback. What an operator checks: servers in `show servers state`,
// requests through HAProxy, and that a Consul outage or hostile payload never costs a server.

#include <signal.h>

#include <gtest/gtest.h>
#include <fstream>

#include <algorithm>
#include <map>
#include <set>
#include <memory>
#include <sstream>
#include <thread>

#include "integration/daemon/daemon_process.h"
#include "support/consul/consul_double.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/servers_state.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, ServerRow> servers(const HaproxyFixture& hp) {
  return servers_state(hp, "web");
}

ConsulService instance(const std::string& id, const std::string& address, int port) {
  ConsulService s;
  s.id = id;
  s.name = "web";
  s.node = "node-" + id;
  s.address = address;
  s.port = port;
  s.checks = {{"check-" + id, "service check", "passing", ""}};
  return s;
}

class ConsulE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    hp_ = std::make_unique<HaproxyFixture>(
        HaproxyConfig().frontend("fe", 0, "web").backend("web").str());
    ASSERT_TRUE(hp_->start().ok()) << hp_->log();
    for (int i = 0; i < 3; ++i) {
      backends_.push_back(std::make_unique<HttpBackend>("c" + std::to_string(i)));
    }
    consul_.start();
  }

  void start_daemon(const std::string& extra = "", const std::string& drain = "5s",
                    const std::string& source_extra = "") {
    const std::string cfg = hp_->dir() + "/ep.yaml";
    write_file(cfg, "haproxy:\n  sockets: [" + hp_->socket_path() +
                        "]\nbackends:\n  - name: web\n    drain_timeout: " + drain + "\n" + extra +
                        "    sources:\n      - consul: {address: \"" + consul_.address() +
                        "\", service: web, backoff_max: 1s" + source_extra + "}\n");
    ASSERT_TRUE(daemon_.start({"run", "-c", cfg}, hp_->dir() + "/ep.log"));
  }

  bool has_port(int port) {
    for (const auto& [n, r] : servers(*hp_)) {
      if (r.port == port) return true;
    }
    return false;
  }

  std::unique_ptr<HaproxyFixture> hp_;
  std::vector<std::unique_ptr<HttpBackend>> backends_;
  ConsulDouble consul_;
  DaemonProcess daemon_;
};

TEST_F(ConsulE2E, RegisterCriticalAndWeightChangesReachHaproxy) {
  consul_.register_service(instance("c0", "127.0.0.1", backends_[0]->port()));
  consul_.register_service(instance("c1", "127.0.0.1", backends_[1]->port()));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return has_port(backends_[0]->port()) && has_port(backends_[1]->port()); }))
      << daemon_.log();
  auto r = http_get(hp_->port(0), "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);

  // A check goes critical: the instance is drained, then removed.
  ASSERT_TRUE(consul_.set_check_status("check-c1", "critical"));
  ASSERT_TRUE(wait_until([&] { return !has_port(backends_[1]->port()); })) << daemon_.log();
  EXPECT_NE(daemon_.log().find("drain ep-"), std::string::npos) << daemon_.log();
  EXPECT_TRUE(has_port(backends_[0]->port()));

  // Weights.Passing 128 of weight_max 256 -> HAProxy weight 128.
  ConsulService heavy = instance("c0", "127.0.0.1", backends_[0]->port());
  heavy.weight_passing = 128;
  consul_.register_service(heavy);
  ASSERT_TRUE(wait_until([&] {
    for (const auto& [n, row] : servers(*hp_)) {
      if (row.port == backends_[0]->port()) return row.weight == 128;
    }
    return false;
  })) << daemon_.log();
}

TEST_F(ConsulE2E, ConsulOutageOf30SecondsNeverCostsAServer) {
  consul_.register_service(instance("c0", "127.0.0.1", backends_[0]->port()));
  consul_.register_service(instance("c1", "127.0.0.1", backends_[1]->port()));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 2; })) << daemon_.log();

  // 10 s of faults (5xx, garbage, a JSON object, an empty list without leader), then 20 s with
  // Consul gone entirely. HAProxy keeps both servers and every request succeeds.
  long requests = 0, failed = 0;
  auto load_for = [&](std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      auto reply = http_get(hp_->port(0), "/");
      ++requests;
      if (!reply.ok() || reply->status != 200) ++failed;
      std::this_thread::sleep_for(50ms);  // kept: the load's own pace, not a wait
    }
  };
  for (ConsulFault f : {ConsulFault::kRpcEof, ConsulFault::kGarbage, ConsulFault::kObject,
                        ConsulFault::kEmptyNoLeader, ConsulFault::kHang}) {
    consul_.set_fault(f);
    consul_.touch("web");
    load_for(2s);
    EXPECT_EQ(servers(*hp_).size(), 2u) << "fault " << static_cast<int>(f);
  }
  consul_.stop();
  load_for(20s);
  EXPECT_EQ(servers(*hp_).size(), 2u) << daemon_.log();
  EXPECT_EQ(failed, 0) << "of " << requests;
  EXPECT_GT(requests, 200);
  EXPECT_TRUE(daemon_.running());
}

TEST_F(ConsulE2E, RecoveryConvergesAtOnceAfterAFault) {
  consul_.register_service(instance("c0", "127.0.0.1", backends_[0]->port()));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 1; })) << daemon_.log();
  consul_.set_fault(ConsulFault::kRpcEof);
  consul_.register_service(instance("c1", "127.0.0.1", backends_[1]->port()));
  // The change must not arrive while Consul fails (1.5 s of failing reads).
  EXPECT_TRUE(consistently([&] { return servers(*hp_).size() == 1u; }, 1500ms));
  EXPECT_EQ(servers(*hp_).size(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  consul_.set_fault(ConsulFault::kNone);
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 2; }, 5s)) << daemon_.log();
  std::printf("recovery after the fault cleared: %.0f ms (retry backoff capped at 1 s)\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
}

// #16.1 end to end: an agent that holds every connection without a reply (wait: 5m). Both
// servers stay and every request through HAProxy succeeds while it is frozen; once it answers
// again the instance registered meanwhile is in HAProxy within 2 s.
TEST_F(ConsulE2E, FrozenAgentKeepsServersAndItsNewSetReachesHaproxyWithinTwoSeconds) {
  consul_.register_service(instance("c0", "127.0.0.1", backends_[0]->port()));
  consul_.register_service(instance("c1", "127.0.0.1", backends_[1]->port()));
  start_daemon("", "5s", ", wait: 5m");
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 2; })) << daemon_.log();
  long requests = 0, failed = 0;
  auto one_request = [&] {
    auto reply = http_get(hp_->port(0), "/");
    ++requests;
    if (!reply.ok() || reply->status != 200) ++failed;
  };
  consul_.set_frozen(true);
  // Frozen past the liveness probe (2 s interval, 1 s timeout): servers stay, requests succeed.
  EXPECT_TRUE(consistently(
      [&] {
        one_request();
        return servers(*hp_).size() == 2u;
      },
      4s));
  ASSERT_TRUE(wait_until([&] {
    return daemon_.log().find("does not answer GET /v1/status/leader") != std::string::npos;
  })) << daemon_.log();
  consul_.register_service(instance("c2", "127.0.0.1", backends_[2]->port()));
  const auto t0 = std::chrono::steady_clock::now();
  consul_.set_frozen(false);
  ASSERT_TRUE(wait_until(
      [&] {
        one_request();
        return has_port(backends_[2]->port());
      },
      10s))
      << daemon_.log();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("frozen agent answers again -> new server in HAProxy: %.0f ms\n", ms);
  EXPECT_LE(ms, 2000.0 * test::time_scale());
  EXPECT_EQ(failed, 0) << "of " << requests;
  EXPECT_GT(requests, 10);
}

// #16.3: ElasticProxy and HAProxy both restart while Consul is down (HAProxy comes back from a
// config without the discovered servers): the last good servers are back from the state file
// without waiting for Consul, marked from_state in /status and the metrics, requests succeed.
// A stale state file is reported and ignored.
TEST_F(ConsulE2E, RestartDuringAnOutageRestoresTheLastGoodServersFromTheStateFile) {
  consul_.register_service(instance("c0", "127.0.0.1", backends_[0]->port()));
  consul_.register_service(instance("c1", "127.0.0.1", backends_[1]->port()));
  const std::string state = hp_->dir() + "/state.json";
  const std::string status_addr = "127.0.0.1:" + std::to_string(hp_->port(5));
  const std::string cfg = hp_->dir() + "/ep.yaml";
  auto write_cfg = [&](const std::string& max_age) {
    write_file(cfg, "haproxy:\n  sockets: [" + hp_->socket_path() +
                        "]\nstate: {file: " + state + ", max_age: " + max_age +
                        "}\nmetrics: {listen: \"" + status_addr +
                        "\"}\nbackends:\n  - name: web\n    sources:\n      - consul: {address: \"" +
                        consul_.address() + "\", service: web}\n");
  };
  write_cfg("1h");
  ASSERT_TRUE(daemon_.start({"run", "-c", cfg}, hp_->dir() + "/ep.log"));
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 2; })) << daemon_.log();
  ASSERT_TRUE(wait_until([&] {
    auto text = read_text(state);
    return text.find(std::to_string(backends_[1]->port())) != std::string::npos;
  })) << daemon_.log();
  daemon_.signal(SIGTERM);
  ASSERT_EQ(daemon_.wait(), 0) << daemon_.log();

  // The outage: Consul gone, HAProxy restarted from its config (no discovered server in it).
  consul_.stop();
  ASSERT_TRUE(hp_->restart().ok()) << hp_->log();
  ASSERT_EQ(servers(*hp_).size(), 0u);
  DaemonProcess again;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(again.start({"run", "-c", cfg}, hp_->dir() + "/ep2.log"));
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 2; }, 20s)) << again.log();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("restart during an outage: last good servers in HAProxy %.0f ms after the start\n", ms);
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(hp_->port(0), "/");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  }
  auto st = run_elasticproxy({"status", "--json", "--address", status_addr});
  EXPECT_NE(st.output.find("\"from_state\": true"), std::string::npos) << st.output;
  auto metrics = http_get(hp_->port(5), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("elasticproxy_source_from_state{backend=\"web\""), std::string::npos);
  again.signal(SIGTERM);
  ASSERT_EQ(again.wait(), 0) << again.log();

  // Stale: the same file is older than max_age now: reported, ignored, nothing restored.
  ASSERT_TRUE(hp_->restart().ok()) << hp_->log();
  write_cfg("1s");
  std::string text = read_text(state);
  for (size_t at = text.find("\"saved_at\": "); at != std::string::npos;
       at = text.find("\"saved_at\": ", at + 1)) {
    const size_t from = at + 12, to = text.find_first_of(",\n}", from);
    text.replace(from, to - from, "1000");
  }
  write_file(state, text);
  DaemonProcess stale;
  ASSERT_TRUE(stale.start({"run", "-c", cfg}, hp_->dir() + "/ep3.log"));
  ASSERT_TRUE(wait_until([&] { return stale.log().find("older than max_age") != std::string::npos; }))
      << stale.log();
  EXPECT_TRUE(consistently([&] { return servers(*hp_).empty(); }, 3s)) << stale.log();
}

TEST_F(ConsulE2E, HostilePayloadsNeverReachHaproxy) {
  consul_.register_service(instance("ok", "127.0.0.1", backends_[0]->port()));
  consul_.register_service(instance("semi", "10.0.0.1;shutdown", 80));
  consul_.register_service(instance("nl", "1.2.3.4\n", 80));
  consul_.register_service(instance("p0", "127.0.0.1", 0));
  consul_.register_service(instance("p70k", "127.0.0.1", 70000));
  consul_.register_service(instance("v6", "::1", backends_[2]->port()));
  consul_.register_service(instance("host", "localhost", 80));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 2; })) << daemon_.log();
  auto rows = servers(*hp_);
  std::set<std::string> addrs;
  for (const auto& [n, r] : rows) addrs.insert(r.addr);
  EXPECT_EQ(addrs, (std::set<std::string>{"127.0.0.1", "::1"}));
  EXPECT_TRUE(consistently([&] { return servers(*hp_).size() == 2u; }, 300ms));
  EXPECT_EQ(servers(*hp_).size(), 2u);
  EXPECT_TRUE(hp_->running()) << "HAProxy must not have received `shutdown`";
  EXPECT_NE(daemon_.log().find("rejected"), std::string::npos) << daemon_.log();
}

TEST_F(ConsulE2E, TenThousandInstances) {
  consul_.set_no_jitter(true);
  for (int i = 0; i < 10000; ++i) {
    ConsulService s = instance("i" + std::to_string(i),
                               "127.2." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250), 8080);
    s.checks.clear();
    consul_.register_service(s);
  }
  start_daemon("    safety: {max_remove_fraction: 1.0}\n");
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 10000; }, 120s)) << daemon_.log().substr(0, 2000);
  EXPECT_TRUE(daemon_.running());
}

TEST_F(ConsulE2E, RegistrationToHaproxyLatency) {
  consul_.set_no_jitter(true);
  consul_.register_service(instance("c0", "127.0.0.1", backends_[0]->port()));
  // The default token bucket (burst 5, one request per second) paces a service that changes
  // faster than once a second; this measures the pipeline itself, so the bucket refills faster.
  start_daemon("    safety: {max_remove_fraction: 1.0}\n", "0s", ", refill: 100ms");
  ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == 1; })) << daemon_.log();
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    const bool add = i % 2 == 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (add) {
      consul_.register_service(instance("c1", "127.0.0.1", backends_[1]->port()));
    } else {
      consul_.deregister_service("c1", "node-c1");
    }
    ASSERT_TRUE(wait_until([&] { return servers(*hp_).size() == (add ? 2u : 1u); }, 5s)) << daemon_.log();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    // Kept: paces the changes at the source's min_interval (real time), not a wait.
    std::this_thread::sleep_for(120ms);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("Consul registration -> HAProxy, n=%zu: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              ms.size(), ms[ms.size() / 2], ms[static_cast<size_t>(0.99 * (ms.size() - 1))], ms.back());
}

}  // namespace
}  // namespace ep::test
