// End to end: the real `elasticproxy` binary, the real HAProxy and the Kubernetes API double
// (tests/support/kubernetes, over TLS) on loopback. What an operator checks: servers in
// `show servers state`, requests through HAProxy during a rolling update, and that an API outage,
// a 410 or an RBAC error never costs a server.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "integration/daemon/daemon_process.h"
#include "os/process.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"
#include "support/haproxy/servers_state.h"
#include "support/kubernetes/k8s_double.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

class KubernetesE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    // Client/server timeouts of 60 s: a held request outlives a slow (sanitizer) run.
    hp_ = std::make_unique<HaproxyFixture>(
        HaproxyConfig().client_server_timeout("60s").frontend("fe", 0, "web").backend("web").str());
    ASSERT_TRUE(hp_->start().ok()) << hp_->log();
    for (int i = 0; i < 10; ++i)
      pods_.push_back(std::make_unique<HttpBackend>("pod" + std::to_string(i)));
    api_.start();
  }

  // One slice per pod (each test backend listens on its own port).
  void pod(int i, bool ready = true, bool serving = true, bool terminating = false) {
    api_.apply(K8sApiDouble::slice("shop", "web-" + std::to_string(i), "web",
                                   {{.address = "127.0.0.1",
                                     .ready = ready,
                                     .serving = serving,
                                     .terminating = terminating,
                                     .pod = "web-pod-" + std::to_string(i)}},
                                   pods_[i]->port()));
  }

  void start_daemon(const std::string& token = "test-token",
                    const std::string& backend_extra = "") {
    const std::string kubeconfig = api_.write_kubeconfig("kubeconfig", token, {}, "shop");
    const std::string cfg = hp_->dir() + "/ep.yaml";
    write_file(cfg, "haproxy:\n  sockets: [" + hp_->socket_path() +
                        "]\nbackends:\n  - name: web\n    drain_timeout: 3s\n" + backend_extra +
                        "    sources:\n"
                        "      - kubernetes: {service: web, port: http, kubeconfig: \"" +
                        kubeconfig + "\", max_retry_interval: 1s}\n");
    ASSERT_TRUE(daemon_.start({"run", "-c", cfg}, hp_->dir() + "/ep.log"));
  }

  std::map<int, ServerRow> by_port() {
    std::map<int, ServerRow> out;
    for (const auto& [n, r] : servers_state(*hp_, "web")) out[r.port] = r;
    return out;
  }
  bool serving(int i) {
    auto s = by_port();
    auto it = s.find(pods_[i]->port());
    return it != s.end() && (it->second.admin & 0x29) == 0;
  }
  bool absent(int i) { return by_port().count(pods_[i]->port()) == 0; }
  bool draining(int i) {
    auto s = by_port();
    auto it = s.find(pods_[i]->port());
    return it != s.end() && (it->second.admin & 0x08) != 0;
  }

  std::unique_ptr<HaproxyFixture> hp_;
  std::vector<std::unique_ptr<HttpBackend>> pods_;
  K8sApiDouble api_;
  DaemonProcess daemon_;
};

TEST_F(KubernetesE2E, RollingUpdateDrainsTerminatingPodsWithoutAFailedRequest) {
  pod(0);
  pod(1);
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return serving(0) && serving(1); }, 30s)) << daemon_.log();

  std::atomic<bool> stop{false};
  std::atomic<long> requests{0}, failed{0};
  std::thread load([&] {
    while (!stop) {
      auto r = http_get(hp_->port(0), "/");
      ++requests;
      if (!r.ok() || r->status != 200) ++failed;
      std::this_thread::sleep_for(10ms);  // the load's own pace, not a wait
    }
  });
  // Pod 2 starts: not ready, then ready.
  pod(2, /*ready=*/false, /*serving=*/false);
  ASSERT_TRUE(consistently([&] { return absent(2); }, 500ms));
  pod(2);
  ASSERT_TRUE(wait_until([&] { return serving(2); }, 30s)) << daemon_.log();
  // Pod 0 terminates: serving && terminating → drained (existing sessions finish), then gone.
  pod(0, /*ready=*/false, /*serving=*/true, /*terminating=*/true);
  ASSERT_TRUE(wait_until([&] { return draining(0) || absent(0); }, 30s)) << daemon_.log();
  ASSERT_TRUE(wait_until([&] { return absent(0); }, 30s)) << daemon_.log();
  api_.remove("EndpointSlice", "shop", "web-0");
  // Pod 3 replaces pod 1 the same way.
  pod(3);
  ASSERT_TRUE(wait_until([&] { return serving(3); }, 30s)) << daemon_.log();
  pod(1, false, true, true);
  ASSERT_TRUE(wait_until([&] { return absent(1); }, 30s)) << daemon_.log();
  api_.remove("EndpointSlice", "shop", "web-1");
  stop = true;
  load.join();
  EXPECT_TRUE(serving(2) && serving(3));
  EXPECT_EQ(failed.load(), 0) << "of " << requests.load();
  EXPECT_GT(requests.load(), 20);
}

// serving && terminating = drain for as long as the pod stays so: a long request on a terminating
// pod finishes even past the backend's drain_timeout (3s), no new request reaches it; when the
// endpoint goes away the hold ends and the usual drain/remove path (drain_timeout) applies.
TEST_F(KubernetesE2E, TerminatingPodIsDrainedPastDrainTimeoutWhileItServes) {
  pod(0);
  pod(1);
  pod(2);
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return serving(0) && serving(1) && serving(2); }, 30s))
      << daemon_.log();
  // Long requests through HAProxy until pods 0 and 1 each hold one (round robin).
  std::vector<std::unique_ptr<TcpClient>> clients;
  for (int i = 0; i < 12 && !(pods_[0]->held() >= 1 && pods_[1]->held() >= 1); ++i) {
    clients.push_back(std::make_unique<TcpClient>());
    ASSERT_TRUE(clients.back()->connect(hp_->port(0)).ok());
    ASSERT_TRUE(
        clients.back()->send("GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok());
    const size_t n = clients.size();
    ASSERT_TRUE(wait_until([&] {
      return pods_[0]->held() + pods_[1]->held() + pods_[2]->held() == static_cast<int>(n);
    }));
  }
  ASSERT_TRUE(pods_[0]->held() >= 1 && pods_[1]->held() >= 1);
  const int held0 = pods_[0]->held();

  pod(0, /*ready=*/false, /*serving=*/true, /*terminating=*/true);
  pod(1, /*ready=*/false, /*serving=*/true, /*terminating=*/true);
  ASSERT_TRUE(wait_until([&] { return draining(0) && draining(1); }, 30s)) << daemon_.log();
  const long before0 = pods_[0]->requests(), before1 = pods_[1]->requests();
  // Past drain_timeout (3 s of the daemon's clock, not scaled under sanitizers): still draining,
  // the sessions open; new requests go to pod 2 only. Requests are sent throughout (the load).
  int ok = 0;
  bool held_throughout = true;
  for (const auto end = std::chrono::steady_clock::now() + 4500ms;
       held_throughout && std::chrono::steady_clock::now() < end;) {
    auto r = http_get(hp_->port(0), "/");
    if (r.ok() && r->status == 200) ++ok;
    held_throughout = draining(0) && draining(1) && pods_[0]->held() == held0;
  }
  EXPECT_TRUE(held_throughout) << daemon_.log();
  EXPECT_GT(ok, 5);
  EXPECT_EQ(pods_[0]->requests(), before0) << "no new request reached a terminating pod";
  EXPECT_EQ(pods_[1]->requests(), before1) << "no new request reached a terminating pod";

  // Pod 1 disappears: the hold ends; its drain is older than drain_timeout, so it is removed.
  api_.remove("EndpointSlice", "shop", "web-1");
  ASSERT_TRUE(wait_until([&] { return absent(1); }, 30s)) << daemon_.log();
  EXPECT_TRUE(draining(0)) << "pod 0 still serving && terminating: still held";

  // Pod 0's long requests finish (200), then it is removed as drained.
  pods_[0]->release_held();
  pods_[2]->release_held();
  int answered = 0;
  for (auto& c : clients) {
    auto reply = c->read_to_eof(5s);
    if (reply.ok() && reply->find("200 OK") != std::string::npos &&
        reply->find("pod0") != std::string::npos)
      ++answered;
  }
  EXPECT_EQ(answered, held0) << "every long request on the terminating pod finished";
  ASSERT_TRUE(wait_until([&] { return absent(0); }, 30s)) << daemon_.log();
  EXPECT_TRUE(serving(2));
}

// Several clusters behind one backend: two `kubernetes` sources (two contexts of one kubeconfig)
// feed one HAProxy backend. Hostile slices (addresses with `;` or a newline, port 0) in one of
// them never reach HAProxy; one cluster down keeps its servers while the other still changes.
TEST_F(KubernetesE2E, TwoClustersFeedOneBackendAndHostileSlicesNeverReachHaproxy) {
  K8sApiDouble other;
  other.start();
  pod(0);
  pod(1);
  other.apply(K8sApiDouble::slice("shop", "web-2", "web",
                                  {{.address = "127.0.0.1", .pod = "b-pod-2"}}, pods_[2]->port()));
  other.apply(K8sApiDouble::slice("shop", "web-evil", "web",
                                  {{.address = "127.0.0.1;shutdown sessions server web/x"},
                                   {.address = "127.0.0.1\nadd server web/evil 127.0.0.1:1"}},
                                  pods_[3]->port()));
  other.apply(K8sApiDouble::slice("shop", "web-port0", "web", {{.address = "127.0.0.1"}}, 0));
  auto cluster = [](const K8sApiDouble& d, const std::string& name) {
    return nlohmann::json{
        {"name", name}, {"cluster", {{"server", d.url()}, {"certificate-authority", d.ca_file()}}}};
  };
  nlohmann::json kc = {{"apiVersion", "v1"},
                       {"kind", "Config"},
                       {"clusters", {cluster(api_, "eu"), cluster(other, "us")}},
                       {"users", {{{"name", "u"}, {"user", {{"token", "test-token"}}}}}},
                       {"contexts",
                        {{{"name", "prod-eu"},
                          {"context", {{"cluster", "eu"}, {"user", "u"}, {"namespace", "shop"}}}},
                         {{"name", "prod-us"},
                          {"context", {{"cluster", "us"}, {"user", "u"}, {"namespace", "shop"}}}}}},
                       {"current-context", "prod-eu"}};
  const std::string kubeconfig = hp_->dir() + "/kubeconfig-two";
  write_file(kubeconfig, kc.dump());
  const std::string cfg = hp_->dir() + "/ep.yaml";
  const std::string src = "      - kubernetes: {service: web, port: http, kubeconfig: \"" +
                          kubeconfig + "\", max_retry_interval: 1s, context: ";
  write_file(cfg, "haproxy:\n  sockets: [" + hp_->socket_path() +
                      "]\nbackends:\n  - name: web\n    drain_timeout: 3s\n    sources:\n" + src +
                      "prod-eu}\n" + src + "prod-us}\n");
  ASSERT_TRUE(daemon_.start({"run", "-c", cfg}, hp_->dir() + "/ep.log"));
  ASSERT_TRUE(wait_until([&] { return serving(0) && serving(1) && serving(2); }, 30s))
      << daemon_.log();
  // Only the three real pods: nothing of the hostile slices, no port 0.
  auto servers = by_port();
  EXPECT_EQ(servers.size(), 3u);
  EXPECT_EQ(servers.count(0), 0u);
  EXPECT_EQ(servers.count(pods_[3]->port()), 0u);
  EXPECT_EQ(hp_->admin("show servers state web").find("evil"), std::string::npos);
  EXPECT_TRUE(wait_until(
      [&] { return daemon_.log().find("is not an IPv4 address") != std::string::npos; }, 10s));

  // Cluster "us" down: its server stays; cluster "eu" still changes the same backend.
  other.kill();
  pod(1, /*ready=*/false, /*serving=*/false);
  ASSERT_TRUE(wait_until([&] { return absent(1); }, 30s)) << daemon_.log();
  EXPECT_TRUE(consistently([&] { return serving(0) && serving(2); }, 1s)) << daemon_.log();
}

TEST_F(KubernetesE2E, ApiServerDownFor30SecondsKeepsEveryServerThenRelistsOn410) {
  pod(0);
  pod(1);
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return serving(0) && serving(1); }, 30s)) << daemon_.log();
  api_.kill();
  long requests = 0, failed = 0;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    auto r = http_get(hp_->port(0), "/");
    ++requests;
    if (!r.ok() || r->status != 200) ++failed;
    std::this_thread::sleep_for(50ms);  // the load's own pace, not a wait
  }
  EXPECT_TRUE(serving(0) && serving(1)) << daemon_.log();
  EXPECT_EQ(failed, 0) << "of " << requests;
  EXPECT_TRUE(daemon_.running());
  // The API server is back (its state was lost: the pods are there again, plus a new one).
  api_.start();
  pod(0);
  pod(1);
  pod(2);
  ASSERT_TRUE(wait_until([&] { return serving(2); }, 30s)) << daemon_.log();
  // History compacted while the watch is held: the resumed watch gets 410 and re-lists.
  api_.configure({{"hold", true}});
  api_.remove("EndpointSlice", "shop", "web-1");
  api_.compact();
  api_.close_watches();
  api_.configure({{"hold", false}});
  ASSERT_TRUE(wait_until([&] { return absent(1); }, 30s)) << daemon_.log();
  EXPECT_TRUE(serving(0) && serving(2));
  EXPECT_GE(api_.stats()["gone"].get<int>(), 1);
}

TEST_F(KubernetesE2E, UnauthorizedOrForbiddenKeepsServersAndNamesThePermission) {
  pod(0);
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return serving(0); }, 30s)) << daemon_.log();
  api_.configure({{"forbid", {"list endpointslices", "watch endpointslices"}}});
  api_.close_watches();
  ASSERT_TRUE(wait_until(
      [&] {
        return daemon_.log().find("needs \"watch\" on \"endpointslices\"") != std::string::npos ||
               daemon_.log().find("needs \"list\" on \"endpointslices\"") != std::string::npos;
      },
      30s))
      << daemon_.log();
  api_.configure({{"tokens", {"another-token"}}, {"forbid", nlohmann::json::array()}});
  api_.close_watches();
  ASSERT_TRUE(wait_until([&] { return daemon_.log().find("HTTP 401") != std::string::npos; }, 30s))
      << daemon_.log();
  EXPECT_TRUE(serving(0));
  EXPECT_EQ(daemon_.log().find("test-token"), std::string::npos) << "a token was logged";
  api_.configure({{"tokens", {"test-token"}}});
  pod(1);
  ASSERT_TRUE(wait_until([&] { return serving(0) && serving(1); }, 30s)) << daemon_.log();
}

// The scenario: 5 pods replaced one by one (new pod not ready → ready, old pod
// serving+terminating → drained → gone) under wrk load: 0 failed requests, HAProxy never reloaded.
TEST_F(KubernetesE2E, RollingUpdateOfFivePodsUnderWrkLoadFailsNoRequestAndNeverReloads) {
  if (!os::run_process({"wrk", "-v"}).ok()) GTEST_SKIP() << "wrk not installed";
  for (int i = 0; i < 5; ++i) pod(i);
  start_daemon();
  ASSERT_TRUE(wait_until(
      [&] {
        for (int i = 0; i < 5; ++i)
          if (!serving(i)) return false;
        return true;
      },
      30s))
      << daemon_.log();
  const std::string pid_before = hp_->admin("show info");
  std::string wrk_output;
  std::thread wrk([&] {
    auto r = os::run_process(
        {"wrk", "-t1", "-c4", "-d20s", "http://127.0.0.1:" + std::to_string(hp_->port(0)) + "/"},
        {.timeout = std::chrono::seconds(90)});
    wrk_output = r ? r->output : r.error().message;
  });
  const auto update_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    pod(5 + i, /*ready=*/false, /*serving=*/false);
    pod(5 + i);
    ASSERT_TRUE(wait_until([&] { return serving(5 + i); }, 30s)) << daemon_.log();
    pod(i, /*ready=*/false, /*serving=*/true, /*terminating=*/true);
    ASSERT_TRUE(wait_until([&] { return absent(i); }, 30s)) << daemon_.log();
    api_.remove("EndpointSlice", "shop", "web-" + std::to_string(i));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - update_start, 18s)
      << "the update must happen while wrk runs";
  wrk.join();
  EXPECT_NE(wrk_output.find("requests in"), std::string::npos) << wrk_output;
  EXPECT_EQ(wrk_output.find("Non-2xx"), std::string::npos) << wrk_output;
  EXPECT_EQ(wrk_output.find("Socket errors"), std::string::npos) << wrk_output;
  auto pid_line = [](const std::string& info) {
    auto at = info.find("\nPid: ");
    return at == std::string::npos ? std::string() : info.substr(at, info.find('\n', at + 1) - at);
  };
  EXPECT_EQ(pid_line(hp_->admin("show info")), pid_line(pid_before)) << "HAProxy was restarted";
  EXPECT_FALSE(pid_line(pid_before).empty());
  for (int i = 5; i < 10; ++i) EXPECT_TRUE(serving(i));
  std::printf("rolling update under wrk: %s\n", wrk_output.c_str());
}

// 5 → 500 endpoints (5 slices of 100, as the EndpointSlice controller splits them) → 5.
TEST_F(KubernetesE2E, ScalesFrom5To500EndpointsAndBack) {
  auto slices_for = [](int n) {
    nlohmann::json all = nlohmann::json::array();
    for (int s = 0; s * 100 < n; ++s) {
      std::vector<K8sApiDouble::Ep> eps;
      for (int i = s * 100; i < std::min(n, (s + 1) * 100); ++i)
        eps.push_back({.address = "127.0." + std::to_string(10 + i / 250) + "." +
                                  std::to_string(i % 250 + 1)});
      all.push_back(K8sApiDouble::slice("shop", "web-s" + std::to_string(s), "web", eps, 8080));
    }
    return all;
  };
  api_.apply(slices_for(5));
  start_daemon("test-token", "    safety: {max_remove_fraction: 1.0}\n");
  auto count = [&] { return servers_state(*hp_, "web").size(); };
  ASSERT_TRUE(wait_until([&] { return count() == 5; }, 30s)) << daemon_.log();
  api_.apply(slices_for(500));
  ASSERT_TRUE(wait_until([&] { return count() == 500; }, 120s)) << count() << "\n"
                                                                << daemon_.log().substr(0, 4000);
  for (int s = 1; s < 5; ++s) api_.remove("EndpointSlice", "shop", "web-s" + std::to_string(s));
  api_.apply(slices_for(5));
  ASSERT_TRUE(wait_until([&] { return count() == 5; }, 120s)) << count();
}

// The figure in docs/kubernetes.md ("Figures"): EndpointSlice change written to the API server →
// HAProxy's `show servers state` shows it, over 60 changes of each kind. Printed, not asserted
// beyond a generous bound (the machine is shared).
TEST_F(KubernetesE2E, FigureWatchEventToHaproxyLatency) {
  pod(0);
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return serving(0); }, 30s)) << daemon_.log();
  std::vector<double> add_ms, remove_ms;
  // From before the write to the API double (the control request, a TLS connection of its own,
  // is included: the figure is an upper bound).
  auto measure = [&](const std::function<void()>& change, const std::function<bool()>& done) {
    const auto t0 = std::chrono::steady_clock::now();
    change();
    while (!done()) {
      if (std::chrono::steady_clock::now() - t0 > 30s) return -1.0;
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int i = 0; i < 60; ++i) {
    add_ms.push_back(measure([&] { pod(1); }, [&] { return serving(1); }));
    remove_ms.push_back(
        measure([&] { pod(1, /*ready=*/false, /*serving=*/false); }, [&] { return absent(1); }));
  }
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(p * (v.size() - 1))];
  };
  for (double v : add_ms) ASSERT_GE(v, 0) << daemon_.log();
  for (double v : remove_ms) ASSERT_GE(v, 0) << daemon_.log();
  std::printf(
      "FIGURE: EndpointSlice write -> HAProxy (n = %zu each): ready -> in rotation p50 "
      "%.1f ms, p99 %.1f ms; not ready -> removed (drain with no sessions, then del) p50 "
      "%.1f ms, p99 %.1f ms\n",
      add_ms.size(), pct(add_ms, 0.5), pct(add_ms, 0.99), pct(remove_ms, 0.5),
      pct(remove_ms, 0.99));
  EXPECT_LT(pct(add_ms, 0.5), 5000 * test::time_scale());
}

}  // namespace
}  // namespace ep::test

namespace ep::test {
namespace {

TEST(KubernetesExample, ShippedExamplePassesCheck) {
  auto r = run_elasticproxy(
      {"check", "-c", std::string(EP_SOURCE_DIR) + "/examples/elasticproxy.kubernetes.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("5 source(s)"), std::string::npos) << r.output;
}

TEST(KubernetesExample, BadOptionsFailCheckWithThePosition) {
  const std::string dir = ::testing::TempDir();
  write_file(dir + "/bad-k8s.yaml",
             "haproxy:\n  sockets: [/tmp/none.sock]\nbackends:\n  - name: web\n    sources:\n"
             "      - kubernetes: {service: web, address: pods}\n");
  auto r = run_elasticproxy({"check", "-c", dir + "/bad-k8s.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("bad-k8s.yaml:6"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("must be endpoints, node, cluster_ip or load_balancer"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ep::test
