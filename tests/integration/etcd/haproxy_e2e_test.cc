// End to end: the real `elasticproxy` binary, a real etcd and a real dnsmasq driving the real
// HAProxy 2.6 on loopback. Asserts what an operator would check: `show servers state`, requests
// through HAProxy. Also measures etcd put → HAProxy convergence.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "dns/dnsmasq_fixture.h"
#include "etcd/etcd_fixture.h"
#include "integration/daemon/daemon_process.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"
#include "support/haproxy/servers_state.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

using Row = ServerRow;

std::map<std::string, Row> servers(const HaproxyFixture& hp, const std::string& backend) {
  return servers_state(hp, backend);
}

// Managed servers (not in maintenance) as "addr:port/weight".
std::set<std::string> live(const HaproxyFixture& hp, const std::string& backend) {
  std::set<std::string> out;
  for (const auto& [name, row] : servers(hp, backend)) {
    if ((row.admin & 0x23) != 0) continue;
    out.insert(row.addr + ":" + std::to_string(row.port) + "/" + std::to_string(row.weight));
  }
  return out;
}

const std::string kHaproxyCfg = HaproxyConfig()
                                    .frontend("fe", 0, "web")
                                    .backend("web")
                                    .frontend("fe_dns", 1, "dnsweb")
                                    .backend("dnsweb")
                                    .str();

std::string addr(const HttpBackend& b) { return "127.0.0.1:" + std::to_string(b.port()); }

TEST(EtcdDnsHaproxyE2E, EtcdAndDnsSourcesDriveHaproxy) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  HaproxyFixture hp(kHaproxyCfg);
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  std::vector<std::unique_ptr<HttpBackend>> b;
  for (int i = 0; i < 3; ++i) {
    b.push_back(std::make_unique<HttpBackend>("b" + std::to_string(i)));
    ASSERT_TRUE(b.back()->ok());
  }
  EtcdFixture etcd;
  ASSERT_TRUE(etcd.start().ok());
  ASSERT_TRUE(
      etcd.put("/svc/web/b0", R"({"Addr":")" + addr(*b[0]) + R"(","Metadata":{"weight":10}})")
          .ok());
  DnsmasqFixture dns("web.test", 1);
  ASSERT_TRUE(
      dns.start(
             {"srv-host=_http._tcp.web.test,b1.web.test," + std::to_string(b[1]->port()) + ",10,10",
              "srv-host=_http._tcp.web.test,b2.web.test," + std::to_string(b[2]->port()) + ",10,30",
              "host-record=b1.web.test,127.0.0.1", "host-record=b2.web.test,127.0.0.1"})
          .ok())
      << dns.log();

  const std::string config = hp.dir() + "/elasticproxy.yaml";
  write_file(config, "haproxy:\n  sockets: [" + hp.socket_path() +
                         "]\n  timeout: 1s\n"
                         "backends:\n"
                         "  - name: web\n"
                         "    drain_timeout: 1s\n"
                         "    safety: {max_remove_fraction: 1.0, allow_empty: true}\n"
                         "    sources:\n"
                         "      - etcd: {endpoints: [" +
                         etcd.url() +
                         "], prefix: /svc/web/}\n"
                         "  - name: dnsweb\n"
                         "    drain_timeout: 1s\n"
                         "    sources:\n"
                         "      - dns: {name: _http._tcp.web.test, servers: ['" +
                         dns.server() + "'], ttl_floor: 1s}\n");
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.start({"run", "-c", config, "--log-level", "debug"}, hp.dir() + "/ep.log"));

  ASSERT_TRUE(wait_until(
      [&] { return live(hp, "web") == std::set<std::string>{addr(*b[0]) + "/10"}; }, 20s))
      << daemon.log();
  // DNS weights 10:30 → 85:256 in HAProxy (proportional), not 1:1.
  ASSERT_TRUE(wait_until(
      [&] {
        return live(hp, "dnsweb") ==
               std::set<std::string>{addr(*b[1]) + "/85", addr(*b[2]) + "/256"};
      },
      20s))
      << daemon.log();
  auto r = http_get(hp.port(0), "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("b0"), std::string::npos) << r->body;

  // etcd put → HAProxy: add and remove servers (ports of the real backends, distinct weights).
  std::vector<double> ms;
  for (int i = 1; i <= 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string want = addr(*b[1 + i % 2]) + "/" + std::to_string(i);
    ASSERT_TRUE(etcd.put("/svc/web/x", R"({"address":"127.0.0.1","port":)" +
                                           std::to_string(b[1 + i % 2]->port()) + R"(,"weight":)" +
                                           std::to_string(i) + "}")
                    .ok());
    ASSERT_TRUE(wait_until([&] { return live(hp, "web").count(want) == 1; }, 10s))
        << "step " << i << "\n"
        << daemon.log();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("etcd put -> HAProxy over %zu changes: p50 %.1f ms, p99 %.1f ms\n", ms.size(),
              ms[ms.size() / 2], ms.back());

  // etcd down: HAProxy keeps the servers (fail static).
  etcd.stop();
  // Nothing may happen: a wrong implementation would empty the backend within 2 s.
  EXPECT_TRUE(consistently([&] { return live(hp, "web").size() == 2u; }, 2s)) << daemon.log();
  EXPECT_EQ(live(hp, "web").size(), 2u) << daemon.log();
  // DNS down: same.
  dns.stop();
  EXPECT_TRUE(consistently([&] { return live(hp, "dnsweb").size() == 2u; }, 3s)) << daemon.log();
  EXPECT_EQ(live(hp, "dnsweb").size(), 2u) << daemon.log();

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
}

}  // namespace
}  // namespace ep::test
