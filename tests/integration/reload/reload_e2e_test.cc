// Config management with reloads, end to end: the real elasticproxy binary and a real HAProxy 2.6
// in master-worker mode. Config update mode debounces a burst; slot mode grows its slots with one
// reload; bootstrap starts a stopped HAProxy from the template.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "haproxy/reload/show_proc.h"
#include "integration/daemon/daemon_process.h"
#include "integration/reload/mw_haproxy.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string head() {
  return R"(global
  stats socket @ADMIN@ level admin expose-fd listeners
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:@PORT0@
  default_backend web
)";
}

// The master CLI is briefly unreachable while the master re-executes: retry for a while.
int master_reloads(const MwHaproxy& hp) {
  int n = -1;
  wait_until(
      [&] {
        auto t = haproxy::reload::parse_show_proc(hp.master("show proc"));
        n = t ? t->master_reloads : -1;
        return t.ok();
      },
      5s);
  return n;
}

std::string addr(int port) { return "127.0.0.1:" + std::to_string(port); }

// servers_summary() lines for these "name address weight", sorted by name, all ready.
std::string expected(std::vector<std::string> names_addrs_weights) {
  std::sort(names_addrs_weights.begin(), names_addrs_weights.end());
  std::string out;
  for (const auto& l : names_addrs_weights) out += l + " 0\n";
  return out;
}

// True when `address` is in a slot with `weight` and not in maintenance (admin bits 0x23 clear;
// 0x04 only says the slot was `disabled` in the config before it was enabled at runtime).
bool in_service(const std::string& summary, const std::string& address, int weight) {
  std::istringstream in(summary);
  for (std::string name, a, w, admin; in >> name >> a >> w >> admin;) {
    if (a == address && w == std::to_string(weight) && (std::stoi(admin) & 0x23) == 0) return true;
  }
  return false;
}

std::string file_sd(const std::vector<std::string>& targets, int weight) {
  std::string out = "[{\"targets\": [";
  for (size_t i = 0; i < targets.size(); ++i) out += (i ? ", \"" : "\"") + targets[i] + "\"";
  return out + "], \"labels\": {\"weight\": \"" + std::to_string(weight) + "\"}}]\n";
}

std::string yaml(const MwHaproxy& hp, const std::string& update, const std::string& backend) {
  return "haproxy:\n  sockets: [" + hp.admin_socket() + "]\n  binary: " + haproxy_binary() +
         "\n  master_socket: " + hp.master_socket() + "\n  pidfile: " + hp.pidfile() +
         "\n  config: " + hp.config_path() + "\n  template: " + hp.dir() +
         "/haproxy.cfg.tmpl\n  timeout: 1s\n  update: " + update +
         "\n  bootstrap: true\n"
         "  reload: {quiet: 300ms, max_wait: 2s, min_interval: 500ms, timeout: 10s}\n"
         "metrics: {enabled: false}\n"
         "backends:\n" +
         backend;
}

TEST(ReloadE2E, ConfigModeBurstOfFiftyChangesGivesFewReloads) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  std::vector<std::unique_ptr<HttpBackend>> bs;
  for (int i = 0; i < 3; ++i) bs.push_back(std::make_unique<HttpBackend>("b" + std::to_string(i)));
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail);
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  const std::string dir = hp.dir();
  write_file(dir + "/haproxy.cfg.tmpl", hp.expand(head() + tail + "  {{ servers \"web\" }}\n"));
  write_file(dir + "/web.json", file_sd({addr(bs[0]->port())}, 1));
  write_file(dir + "/ep.yaml",
             yaml(hp, "config", "  - name: web\n    sources:\n      - file: {path: web.json}\n"));
  DaemonProcess daemon;
  ASSERT_TRUE(
      daemon.start({"run", "-c", dir + "/ep.yaml", "--log-level", "debug"}, dir + "/ep.log"));
  const std::string s0 = "ep-" + addr(bs[0]->port());
  ASSERT_TRUE(
      wait_until([&] { return servers_summary(hp, "web").find(s0) != std::string::npos; }, 15s))
      << daemon.log();
  hp.track();
  auto r = http_get(hp.port(0), "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "b0");
  const int before = master_reloads(hp);

  // 50 changes, 20 ms apart: each one a different desired set.
  const auto burst_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    std::vector<std::string> t = {addr(bs[i % 3]->port())};
    if (i % 2) t.push_back(addr(bs[(i + 1) % 3]->port()));
    write_file_atomic(dir + "/web.json", file_sd(t, 1 + i % 7));
    std::this_thread::sleep_for(20ms);  // kept: the burst's own pace (the scenario), not a wait
  }
  write_file_atomic(dir + "/web.json", file_sd({addr(bs[1]->port()), addr(bs[2]->port())}, 9));
  const double burst_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - burst_start).count();
  const std::string want =
      expected({"ep-" + addr(bs[1]->port()) + " " + addr(bs[1]->port()) + " 9",
                "ep-" + addr(bs[2]->port()) + " " + addr(bs[2]->port()) + " 9"});
  ASSERT_TRUE(wait_until([&] { return servers_summary(hp, "web") == want; }, 20s))
      << servers_summary(hp, "web") << daemon.log();
  // Kept sleep, deliberate: no reload may follow within max_wait + min_interval (3 s, real time:
  // the debounce is not scaled); anything still pending has run by then and is counted below.
  std::this_thread::sleep_for(3s);
  hp.track();
  const int reloads = master_reloads(hp) - before;
  std::cout << "[figure] burst of 51 desired-set changes over " << burst_s
            << " s (quiet 300 ms, max_wait 2 s) -> " << reloads << " reload(s)\n";
  RecordProperty("reloads_for_burst", reloads);
  {
    std::istringstream lines(daemon.log());
    for (std::string l; std::getline(lines, l);) {
      if (l.find("config: ") != std::string::npos) std::cout << "  " << l.substr(0, 160) << "\n";
    }
  }
  EXPECT_GE(reloads, 1);
  EXPECT_LE(reloads, 3);
  EXPECT_EQ(servers_summary(hp, "web"), want);
  const std::string cfg = slurp(hp.config_path());
  EXPECT_NE(
      cfg.find("  server ep-" + addr(bs[2]->port()) + " " + addr(bs[2]->port()) + " weight 9\n"),
      std::string::npos)
      << cfg;
  auto m = http_get(hp.port(0), "/");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->body == "b1" || m->body == "b2") << m->body;
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
}

TEST(ReloadE2E, SlotModeGrowsItsSlotsWithOneReload) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail + "  server-template ep- 2 127.0.0.1:1 disabled\n");
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  const std::string dir = hp.dir();
  write_file(dir + "/haproxy.cfg.tmpl", hp.expand(head() + tail + "  {{ servers \"web\" }}\n"));
  std::vector<std::string> targets;
  for (int i = 0; i < 5; ++i) targets.push_back("127.0.0.1:" + std::to_string(20001 + i));
  write_file(dir + "/web.json", file_sd(targets, 4));
  write_file(dir + "/ep.yaml", yaml(hp, "auto",
                                    "  - name: web\n    slots: 2\n    sources:\n"
                                    "      - file: {path: web.json}\n"));
  DaemonProcess daemon;
  ASSERT_TRUE(
      daemon.start({"run", "-c", dir + "/ep.yaml", "--log-level", "debug"}, dir + "/ep.log"));
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string s = servers_summary(hp, "web");
        for (const auto& t : targets) {
          if (!in_service(s, t, 4)) return false;
        }
        return true;
      },
      20s))
      << servers_summary(hp, "web") << daemon.log();
  hp.track();
  const std::string s = servers_summary(hp, "web");
  EXPECT_NE(s.find("ep-12 127.0.0.1:1 "), std::string::npos) << s;  // max(5 + 3, 2 + 10) slots
  EXPECT_EQ(s.find("ep-13 "), std::string::npos) << s;
  EXPECT_EQ(master_reloads(hp), 1) << hp.master("show proc");
  // Disk follows the filled slots.
  ASSERT_TRUE(wait_until([&] {
    return slurp(hp.config_path()).find("  server ep-5 " + targets[4]) != std::string::npos ||
           slurp(hp.config_path()).find(" " + targets[4] + " weight 4") != std::string::npos;
  })) << slurp(hp.config_path());
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  const std::string log = daemon.log();
  EXPECT_NE(log.find("slot growth: web: 5 desired servers, 2 slots (3 without a slot) -> 12 slots"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("reconciling at runtime, no reload"), std::string::npos) << log;
}

TEST(ReloadE2E, BootstrapStartsAStoppedHaproxyFromTheTemplate) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  HttpBackend b0("b0"), b1("b1");
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail);  // never started by the test: elasticproxy starts it
  const std::string dir = hp.dir();
  write_file(dir + "/haproxy.cfg.tmpl", hp.expand(head() + tail + "  {{ nodes }}\n"));
  write_file(dir + "/web.json", file_sd({addr(b0.port()), addr(b1.port())}, 3));
  write_file(dir + "/ep.yaml",
             yaml(hp, "auto", "  - name: web\n    sources:\n      - file: {path: web.json}\n"));
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.start({"run", "-c", dir + "/ep.yaml"}, dir + "/ep.log"));
  const std::string want = expected({"ep-" + addr(b0.port()) + " " + addr(b0.port()) + " 3",
                                     "ep-" + addr(b1.port()) + " " + addr(b1.port()) + " 3"});
  ASSERT_TRUE(wait_until([&] { return servers_summary(hp, "web") == want; }, 20s))
      << servers_summary(hp, "web") << daemon.log();
  hp.track();
  auto r = http_get(hp.port(0), "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(master_reloads(hp), 0);  // started, not reloaded
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  const std::string log = daemon.log();  // complete once the daemon has exited
  EXPECT_NE(log.find("does not answer"), std::string::npos) << log;
  EXPECT_NE(log.find("-W -D -f " + hp.config_path()), std::string::npos) << log;
  // HAProxy keeps running without elasticproxy.
  EXPECT_EQ(servers_summary(hp, "web"), want);
}

// `haproxy.config` without `haproxy.template`: the file is HAProxy's own, used as it is.
// Bootstrap validates it and starts HAProxy from it; the servers come at runtime; the file is
// never written.
TEST(ReloadE2E, BootstrapWithConfigAloneStartsHaproxyFromTheFileAsItIs) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  HttpBackend b0("b0");
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail);  // never started by the test: elasticproxy starts it
  const std::string dir = hp.dir();
  hp.write_config(head() + tail);
  const std::string original = slurp(hp.config_path());
  write_file(dir + "/web.json", file_sd({addr(b0.port())}, 2));
  std::string y =
      yaml(hp, "auto", "  - name: web\n    sources:\n      - file: {path: web.json}\n");
  const std::string t = "\n  template: " + dir + "/haproxy.cfg.tmpl";
  y.erase(y.find(t), t.size());
  write_file(dir + "/ep.yaml", y);
  auto check = run_elasticproxy({"check", "-c", dir + "/ep.yaml"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.start({"run", "-c", dir + "/ep.yaml"}, dir + "/ep.log"));
  const std::string want = expected({"ep-" + addr(b0.port()) + " " + addr(b0.port()) + " 2"});
  ASSERT_TRUE(wait_until([&] { return servers_summary(hp, "web") == want; }, 20s))
      << servers_summary(hp, "web") << daemon.log();
  hp.track();
  auto r = http_get(hp.port(0), "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "b0");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  const std::string log = daemon.log();
  EXPECT_NE(log.find("as it is (no haproxy.template)"), std::string::npos) << log;
  EXPECT_EQ(slurp(hp.config_path()), original);  // never written
}

TEST(ReloadE2E, ConfigModeReloadFailureIsRolledBackAndNamesHaproxysMessage) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  HttpBackend b0("b0");
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail + "  server old " + addr(b0.port()) + "\n");
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  const std::string dir = hp.dir();
  const std::string original = slurp(hp.config_path());
  // The template binds a port another process holds (no SO_REUSEPORT): `haproxy -c` passes, the
  // new HAProxy cannot start.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(hp.port(1)));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  write_file(
      dir + "/haproxy.cfg.tmpl",
      hp.expand(head() + "frontend extra\n  bind 127.0.0.1:@PORT1@\n  default_backend web\n" +
                tail + "  {{ servers \"web\" }}\n"));
  write_file(dir + "/web.json", file_sd({addr(b0.port())}, 1));
  std::string y =
      yaml(hp, "config", "  - name: web\n    sources:\n      - file: {path: web.json}\n");
  const std::string r = "  reload: {quiet: 300ms";
  y.replace(y.find(r), r.size(), "  reload: {method: binary, quiet: 300ms");
  write_file(dir + "/ep.yaml", y);
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.start({"run", "-c", dir + "/ep.yaml"}, dir + "/ep.log"));
  ASSERT_TRUE(wait_until([&] { return !slurp(hp.config_path() + ".rejected").empty(); }, 20s))
      << daemon.log();
  hp.track();
  ASSERT_TRUE(wait_until([&] { return slurp(hp.config_path()) == original; }, 5s));
  auto g = http_get(hp.port(0), "/");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->body, "b0");  // the old worker keeps serving the old config
  EXPECT_NE(servers_summary(hp, "web").find("old " + addr(b0.port())), std::string::npos);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  ::close(fd);
  const std::string log = daemon.log();
  EXPECT_NE(log.find("cannot bind socket"), std::string::npos) << log;
  EXPECT_NE(log.find("rolled back to the last good config"), std::string::npos) << log;
  // Not retried in a loop: one attempt for the one candidate.
  size_t attempts = 0;
  for (size_t at = log.find("reloading HAProxy"); at != std::string::npos;
       at = log.find("reloading HAProxy", at + 1)) {
    ++attempts;
  }
  EXPECT_EQ(attempts, 1u) << log;
}

TEST(ReloadE2E, CheckReportsReloadOptionErrorsWithPositions) {
  MwHaproxy hp("");  // only for its directory
  const std::string dir = hp.dir();
  write_file(dir + "/t.tmpl", "backend web\n  {{ servers \"web\" }}\n");
  write_file(dir + "/web.json", "[]\n");
  write_file(dir + "/ep.yaml",
             "haproxy:\n  sockets: [" + hp.admin_socket() +
                 "]\n  config: h.cfg\n  template: t.tmpl\n  update: config\n"
                 "  reload:\n    method: signal\n    timeout: 0s\n    bogus: 1\n"
                 "backends:\n  - name: web\n    sources:\n      - file: {path: web.json}\n");
  auto r = run_elasticproxy({"check", "-c", dir + "/ep.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("ep.yaml:7:13: haproxy.reload.method signal needs haproxy.pidfile"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ep.yaml:8:14: haproxy.reload.timeout must be greater than 0"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("bogus"), std::string::npos) << r.output;
}

TEST(ReloadE2E, BootstrapWithSystemctlStartsTheUnit) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  HttpBackend b0("b0");
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail);  // started by the fake `systemctl start`
  const std::string dir = hp.dir();
  write_file(dir + "/haproxy.cfg.tmpl", hp.expand(head() + tail + "  {{ nodes }}\n"));
  write_file(dir + "/web.json", file_sd({addr(b0.port())}, 2));
  std::string y = yaml(hp, "auto", "  - name: web\n    sources:\n      - file: {path: web.json}\n");
  const std::string r = "  reload: {quiet: 300ms";
  y.replace(y.find(r), r.size(), "  reload: {method: systemctl, unit: lb-test, quiet: 300ms");
  write_file(dir + "/ep.yaml", y);
  const std::string bin = dir + "/bin";
  ASSERT_EQ(::mkdir(bin.c_str(), 0755), 0);
  write_file(bin + "/systemctl", "#!/bin/sh\necho \"$@\" >> " + dir + "/calls\n" +
                                     "[ \"$1\" = start ] && exec " + haproxy_binary() +
                                     " -W -D -f " + hp.config_path() + " -p " + hp.pidfile() +
                                     " -S " + hp.master_socket() + "\nexit 0\n");
  ::chmod((bin + "/systemctl").c_str(), 0755);
  const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  DaemonProcess daemon;
  const bool started = daemon.start({"run", "-c", dir + "/ep.yaml"}, dir + "/ep.log");
  ::setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(started);
  ASSERT_TRUE(wait_until(
      [&] {
        return servers_summary(hp, "web") ==
               expected({"ep-" + addr(b0.port()) + " " + addr(b0.port()) + " 2"});
      },
      20s))
      << servers_summary(hp, "web") << daemon.log();
  hp.track();
  EXPECT_EQ(slurp(dir + "/calls"), "start lb-test\n");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
}

TEST(ReloadE2E, SlotModeWithoutReloadKeepsServingWhatFits) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail + "  server-template ep- 2 127.0.0.1:1 disabled\n");
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  const std::string dir = hp.dir();
  write_file(dir + "/haproxy.cfg.tmpl", hp.expand(head() + tail + "  {{ servers \"web\" }}\n"));
  std::vector<std::string> targets;
  for (int i = 0; i < 5; ++i) targets.push_back("127.0.0.1:" + std::to_string(20001 + i));
  write_file(dir + "/web.json", file_sd(targets, 1));
  write_file(dir + "/ep.yaml", yaml(hp, "runtime",
                                    "  - name: web\n    slots: 2\n    sources:\n"
                                    "      - file: {path: web.json}\n"));
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.start({"run", "-c", dir + "/ep.yaml"}, dir + "/ep.log"));
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string s = servers_summary(hp, "web");
        return in_service(s, targets[0], 1) && in_service(s, targets[1], 1);
      },
      20s))
      << servers_summary(hp, "web") << daemon.log();
  // update: runtime never reloads (none during a second after convergence either).
  EXPECT_TRUE(consistently([&] { return master_reloads(hp) == 0; }, 1s));
  EXPECT_EQ(master_reloads(hp), 0);
  EXPECT_EQ(servers_summary(hp, "web").find("ep-3 "), std::string::npos);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  EXPECT_NE(daemon.log().find("slot mode is out of free slots: web: 5 desired servers, 2 slots"),
            std::string::npos)
      << daemon.log();
  EXPECT_NE(daemon.log().find("so the slots cannot grow"), std::string::npos) << daemon.log();
}

namespace bulk {

struct Row {
  std::string address;  // addr:port
  int op = -1;
  int admin = -1;
};

// `show servers state <backend>`: name -> address, op state, admin state.
std::map<std::string, Row> rows(const MwHaproxy& hp, const std::string& backend) {
  std::map<std::string, Row> out;
  for (auto& [name, f] : servers_state(hp, backend)) {
    out[name] = {f["srv_addr"] + ":" + f["srv_port"], std::stoi(f["srv_op_state"]),
                 std::stoi(f["srv_admin_state"])};
  }
  return out;
}

}  // namespace bulk

// Dynamic mode with config management (update: auto) and haproxy.reload.bulk_threshold 20: a
// change adding 4 servers uses runtime commands (0 reloads); one adding 50 is one rendered,
// validated, confirmed reload, and the new servers enter behind the health gate: the two that
// answer their checks serve, the 48 that do not stay in DRAIN with their check failing (never
// UP and ready before a passing check). The choice is logged with the count and threshold.
TEST(ReloadE2E, DynamicBulkAdditionIsOneReloadBehindTheHealthGate) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  const std::string tail = "backend web\n  balance roundrobin\n";
  MwHaproxy hp(head() + tail);
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  const std::string dir = hp.dir();
  write_file(dir + "/haproxy.cfg.tmpl", hp.expand(head() + tail + "  {{ servers \"web\" }}\n"));
  HttpBackend up1("up1"), up2("up2");
  ASSERT_TRUE(up1.ok() && up2.ok());
  // Distinct addresses nobody listens on (free_port() may hand out a port twice).
  std::set<std::string> used = {addr(up1.port()), addr(up2.port())};
  auto fresh = [&] {
    for (;;) {
      const std::string a = addr(free_port());
      if (used.insert(a).second) return a;
    }
  };
  std::vector<std::string> targets;
  for (int i = 0; i < 5; ++i) targets.push_back(fresh());
  write_file(dir + "/web.json", file_sd({targets[0]}, 1));
  std::string config = yaml(hp, "auto",
                            "  - name: web\n    mode: dynamic\n"
                            "    server_options: check inter 200ms\n"
                            "    drain_timeout: 0s\n"
                            "    safety: {max_remove_fraction: 1.0}\n"
                            "    sources:\n      - file: {path: web.json}\n");
  const std::string reload_line =
      "  reload: {quiet: 300ms, max_wait: 2s, min_interval: 500ms, timeout: 10s}\n";
  const auto at = config.find(reload_line);
  ASSERT_NE(at, std::string::npos);
  config.replace(at, reload_line.size(),
                 "  reload: {quiet: 300ms, max_wait: 2s, min_interval: 500ms, timeout: 10s, "
                 "bulk_threshold: 20}\n");
  write_file(dir + "/ep.yaml", config);
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.start({"run", "-c", dir + "/ep.yaml"}, dir + "/ep.log"));
  auto present = [&](const std::vector<std::string>& want) {
    auto r = bulk::rows(hp, "web");
    std::set<std::string> have;
    for (const auto& [name, row] : r) have.insert(row.address);
    return std::all_of(want.begin(), want.end(), [&](const auto& t) { return have.count(t); }) &&
           r.size() == want.size();
  };
  ASSERT_TRUE(wait_until([&] { return present({targets[0]}); }, 20s)) << daemon.log();

  // 4 added (under the threshold): runtime commands, no reload.
  write_file(dir + "/web.json", file_sd({targets.begin(), targets.end()}, 1));
  ASSERT_TRUE(wait_until([&] { return present(targets); }, 20s))
      << servers_summary(hp, "web") << daemon.log();
  EXPECT_EQ(master_reloads(hp), 0) << hp.master("show proc");

  // 50 added (over it): one reload.
  std::vector<std::string> many = targets;
  many.push_back(addr(up1.port()));
  many.push_back(addr(up2.port()));
  while (many.size() < 55) many.push_back(fresh());
  write_file(dir + "/web.json", file_sd(many, 1));
  ASSERT_TRUE(wait_until(
      [&] {
        if (!present(many)) return false;
        // The two that answer serve; the rest are held in DRAIN (0x08) and not UP (op 0).
        for (const auto& [name, row] : bulk::rows(hp, "web")) {
          const bool answers =
              row.address == addr(up1.port()) || row.address == addr(up2.port());
          if (answers && !(row.op == 2 && (row.admin & 0x3b) == 0)) return false;
          if (!answers && !(row.op == 0 && (row.admin & 0x08) != 0)) return false;
        }
        return true;
      },
      30s))
      << servers_summary(hp, "web") << daemon.log();
  hp.track();
  EXPECT_EQ(master_reloads(hp), 1) << hp.master("show proc");
  // Traffic reaches only servers that passed their check.
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(hp.port(0), "/");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->body.find("up1") != std::string::npos ||
                r->body.find("up2") != std::string::npos)
        << r->status << " " << r->body;
  }
  // The servers the reload brought in are ordinary servers afterwards: removed at runtime
  // (`del server` takes servers from the config too), no reload.
  // (Shrunk to a serving server: a plan never removes the last serving ones while the servers
  // that stay are still behind their gate.)
  write_file(dir + "/web.json", file_sd({addr(up1.port())}, 1));
  EXPECT_TRUE(wait_until([&] { return present({addr(up1.port())}); }, 30s))
      << servers_summary(hp, "web") << daemon.log();
  EXPECT_EQ(master_reloads(hp), 1) << hp.master("show proc");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  const std::string log = daemon.log();
  EXPECT_NE(log.find("web: 50 servers to add, more than haproxy.reload.bulk_threshold 20: one "
                     "reload instead of 50 `add server` (predicted "),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("bulk reload done in"), std::string::npos) << log;
  EXPECT_EQ(log.find("restarted or reloaded"), std::string::npos) << log;
  EXPECT_EQ(log.find("servers to add, more than haproxy.reload.bulk_threshold 20", 0),
            log.rfind("servers to add, more than haproxy.reload.bulk_threshold 20"))
      << "one bulk decision";
}

}  // namespace
}  // namespace ep::test
