// End to end: the real `elasticproxy` binary driving the real HAProxy 2.6 on loopback through the
// file source. Each test asserts what an operator would check with `show servers state`, HTTP
// requests through HAProxy, the daemon's log and its exit code.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "integration/daemon/daemon_process.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_binary.h"
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

std::string targets_json(const std::vector<const HttpBackend*>& bs,
                         const std::string& labels = "") {
  std::string t;
  for (const auto* b : bs)
    t += (t.empty() ? "\"" : ", \"") + std::string("127.0.0.1:") + std::to_string(b->port()) + "\"";
  return "[{\"targets\": [" + t + "]" + (labels.empty() ? "" : ", \"labels\": " + labels) + "}]\n";
}

std::string name_of(const HttpBackend& b) { return "ep-127.0.0.1:" + std::to_string(b.port()); }

const std::string kHaproxyCfg =
    HaproxyConfig()
        .frontend("fe", 0, "web")
        .backend("web", "roundrobin", {"server handmade 127.0.0.1:@PORT1@ disabled"})
        .listen("slots", 2, "static-rr",
                {"server-template ep- 3 127.0.0.1:1 check inter 200ms disabled"})
        .str();

class DaemonE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    hp_ = std::make_unique<HaproxyFixture>(kHaproxyCfg);
    ASSERT_TRUE(hp_->start().ok()) << hp_->log();
    for (int i = 0; i < 4; ++i) {
      backends_.push_back(std::make_unique<HttpBackend>("b" + std::to_string(i)));
      ASSERT_TRUE(backends_.back()->ok());
    }
    dir_ = hp_->dir();
    targets_ = dir_ + "/web.json";
    slot_targets_ = dir_ + "/slots.json";
  }

  void write_config(const std::string& extra_web = "", const std::string& socket = "") {
    config_ = dir_ + "/elasticproxy.yaml";
    write_file(config_, "haproxy:\n  sockets: [" + (socket.empty() ? hp_->socket_path() : socket) +
                            "]\n  timeout: 1s\n"
                            "backends:\n"
                            "  - name: web\n"
                            "    drain_timeout: 20s\n" +
                            extra_web +
                            "    sources:\n"
                            "      - file: {path: web.json}\n"
                            "  - name: slots\n"
                            "    slots: 3\n"
                            "    safety: {max_remove_fraction: 1.0, allow_empty: true}\n"
                            "    server_options: check inter 200ms\n"
                            "    sources:\n"
                            "      - file: {path: slots.json}\n");
  }

  void start_daemon() {
    if (config_.empty()) write_config();
    if (!std::filesystem::exists(slot_targets_)) write_file(slot_targets_, "[]\n");
    ASSERT_TRUE(daemon_.start({"run", "-c", config_, "--log-level", "debug"}, dir_ + "/ep.log"));
  }

  bool has(const std::string& backend, const std::string& name) {
    return servers(*hp_, backend).count(name) > 0;
  }

  std::unique_ptr<HaproxyFixture> hp_;
  std::vector<std::unique_ptr<HttpBackend>> backends_;
  std::string dir_, targets_, slot_targets_, config_;
  DaemonProcess daemon_;
};

TEST_F(DaemonE2E, AddsServersThatTakeTrafficAndLeavesHandWrittenOnesAlone) {
  write_file(targets_, targets_json({backends_[0].get(), backends_[1].get()}));
  start_daemon();
  ASSERT_TRUE(wait_until([&] {
    return has("web", name_of(*backends_[0])) && has("web", name_of(*backends_[1]));
  })) << daemon_.log();
  auto rows = servers(*hp_, "web");
  EXPECT_EQ(rows[name_of(*backends_[0])].admin & 0x23, 0);  // not in maintenance
  ASSERT_TRUE(rows.count("handmade"));
  EXPECT_EQ(rows["handmade"].admin & 0x01, 0x01) << "the hand-written disabled server is untouched";

  // Requests reach both new servers.
  std::map<std::string, int> seen;
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(hp_->port(0), "/");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
    seen[r->body]++;
  }
  EXPECT_EQ(seen.size(), 2u);
  daemon_.signal(SIGTERM);
  EXPECT_EQ(daemon_.wait(), 0) << daemon_.log();
  EXPECT_NE(daemon_.log().find("stopped"), std::string::npos);
  // The version and what it offers are detected once per HAProxy process, and said once.
  const std::string log = daemon_.log();
  const std::string said = "version " + haproxy_version().text() + ".";
  EXPECT_NE(log.find(said), std::string::npos) << log;
  size_t times = 0;
  for (size_t at = log.find("): dynamic servers yes, add server cookie "); at != std::string::npos;
       at = log.find("): dynamic servers yes", at + 1)) {
    ++times;
  }
  EXPECT_EQ(times, 1u) << log;
}

TEST_F(DaemonE2E, WeightAndRemovalFollowTheFile) {
  write_file(targets_, targets_json({backends_[0].get(), backends_[1].get()}));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return servers(*hp_, "web").size() == 3; })) << daemon_.log();

  write_file_atomic(targets_,
                    targets_json({backends_[0].get(), backends_[1].get()}, R"({"weight": "7"})"));
  ASSERT_TRUE(wait_until([&] { return servers(*hp_, "web")[name_of(*backends_[1])].weight == 7; }))
      << daemon_.log();

  // Removal (no sessions): drained then deleted; the other server stays.
  write_file_atomic(targets_, targets_json({backends_[0].get()}, R"({"weight": "7"})"));
  ASSERT_TRUE(wait_until([&] { return !has("web", name_of(*backends_[1])); })) << daemon_.log();
  EXPECT_TRUE(has("web", name_of(*backends_[0])));
  EXPECT_NE(daemon_.log().find("drain " + name_of(*backends_[1])), std::string::npos);
}

TEST_F(DaemonE2E, RemovedServerDrainsWhileALongRequestIsOpen) {
  write_file(targets_, targets_json({backends_[0].get()}));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return has("web", name_of(*backends_[0])); })) << daemon_.log();

  TcpClient held;
  ASSERT_TRUE(held.connect(hp_->port(0)).ok());
  ASSERT_TRUE(held.send("GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok());
  ASSERT_TRUE(wait_until([&] { return backends_[0]->held() == 1; }));

  write_file_atomic(targets_, targets_json({backends_[1].get()}));
  ASSERT_TRUE(wait_until([&] { return has("web", name_of(*backends_[1])); })) << daemon_.log();
  // The old server is draining (admin bit 0x08), still present while the request is open.
  ASSERT_TRUE(wait_until([&] {
    return (servers(*hp_, "web")[name_of(*backends_[0])].admin & 0x08) != 0;
  })) << daemon_.log();
  EXPECT_TRUE(consistently([&] { return has("web", name_of(*backends_[0])); }, 500ms))
      << "removed while a session was open";
  // New requests go to the new server only.
  for (int i = 0; i < 5; ++i) {
    auto r = http_get(hp_->port(0), "/");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->body, backends_[1]->name());
  }
  backends_[0]->release_held();
  auto reply = held.read_to_eof(2s);
  ASSERT_TRUE(reply.ok());
  EXPECT_NE(reply->find("200"), std::string::npos) << "the held request completed";
  held.close();
  ASSERT_TRUE(wait_until([&] { return !has("web", name_of(*backends_[0])); })) << daemon_.log();
}

TEST_F(DaemonE2E, SlotModeFillsAndFreesSlotsAndReportsExhaustion) {
  // Ports held by enabled slots (placeholder 127.0.0.1:1 slots are free).
  auto placed = [&] {
    std::set<int> ports;
    for (const auto& [name, row] : servers(*hp_, "slots")) {
      if (row.port != 1 && (row.admin & 0x01) == 0) ports.insert(row.port);
    }
    return ports;
  };
  auto free_slots = [&] {
    int n = 0;
    for (const auto& [name, row] : servers(*hp_, "slots")) {
      if (row.port == 1 && row.addr == "127.0.0.1" && (row.admin & 0x01)) ++n;
    }
    return n;
  };
  write_file(targets_, "[]\n");
  write_file(slot_targets_, targets_json({backends_[0].get(), backends_[1].get()}));
  write_config("    safety: {allow_empty: true}\n");
  start_daemon();
  const std::set<int> two{backends_[0]->port(), backends_[1]->port()};
  ASSERT_TRUE(wait_until([&] { return placed() == two; })) << daemon_.log();
  EXPECT_EQ(free_slots(), 1);
  // Health-gated: the slot serves once its check passed.
  ASSERT_TRUE(wait_until([&] {
    auto r = http_get(hp_->port(2), "/");
    return r.ok() && r->status == 200;
  })) << daemon_.log();

  // Four servers for three slots: three placed, exhaustion reported.
  write_file_atomic(slot_targets_, targets_json({backends_[0].get(), backends_[1].get(),
                                                 backends_[2].get(), backends_[3].get()}));
  ASSERT_TRUE(wait_until([&] {
    return daemon_.log().find("out of free slots") != std::string::npos;
  })) << daemon_.log();
  ASSERT_TRUE(wait_until([&] { return placed().size() == 3; })) << daemon_.log();
  EXPECT_TRUE(placed().count(backends_[0]->port()) && placed().count(backends_[1]->port()))
      << "live servers keep their slots";

  // Back to one: the freed slots return to the placeholder, in maintenance.
  write_file_atomic(slot_targets_, targets_json({backends_[0].get()}));
  ASSERT_TRUE(wait_until([&] {
    return placed() == std::set<int>{backends_[0]->port()} && free_slots() == 2;
  })) << daemon_.log();
}

TEST_F(DaemonE2E, HaproxyRestartIsHealedWithoutUserAction) {
  write_file(targets_, targets_json({backends_[0].get(), backends_[1].get()}));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return servers(*hp_, "web").size() == 3; })) << daemon_.log();
  hp_->kill9();
  ASSERT_TRUE(hp_->start().ok()) << hp_->log();
  // The restarted HAProxy has only the hand-written server; ElasticProxy puts the others back.
  ASSERT_TRUE(wait_until([&] { return servers(*hp_, "web").size() == 3; }, 15s)) << daemon_.log();
  auto r = http_get(hp_->port(0), "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(DaemonE2E, InvalidEndpointsNeverReachHaproxy) {
  write_file(targets_,
             "[{\"targets\": [\"10.0.0.1;shutdown:80\", \"1.2.3.4\\n:80\", \"127.0.0.1:0\", "
             "\"localhost:80\", \"127.0.0.1:" +
                 std::to_string(backends_[0]->port()) + "\"]}]\n");
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return has("web", name_of(*backends_[0])); })) << daemon_.log();
  auto rows = servers(*hp_, "web");
  EXPECT_EQ(rows.size(), 2u);  // handmade + the one valid endpoint
  const std::string log = daemon_.log();
  EXPECT_NE(log.find("localhost"), std::string::npos) << log;
  EXPECT_TRUE(hp_->running()) << "HAProxy must not have received `shutdown`";
}

TEST_F(DaemonE2E, InvalidFileKeepsTheLastGoodSet) {
  write_file(targets_, targets_json({backends_[0].get(), backends_[1].get()}));
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return servers(*hp_, "web").size() == 3; })) << daemon_.log();
  write_file(targets_, "[{\"targets\": [\"127.0.0.1:1");  // half-written
  // The failure is said (once) and the servers stay.
  ASSERT_TRUE(
      wait_until([&] { return daemon_.log().find("invalid JSON") != std::string::npos; }, 3s))
      << daemon_.log();
  EXPECT_EQ(servers(*hp_, "web").size(), 3u) << daemon_.log();
  write_file(targets_, "[]\n");  // empty: held back by the guard (allow_empty is false)
  EXPECT_TRUE(consistently([&] { return servers(*hp_, "web").size() == 3u; }, 300ms))
      << daemon_.log();
}

TEST_F(DaemonE2E, OnceConvergesAndExitsZero) {
  write_file(targets_, targets_json({backends_[0].get()}));
  write_file(slot_targets_, "[]\n");
  write_config();
  auto r = run_elasticproxy({"once", "-c", config_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has("web", name_of(*backends_[0])));
}

TEST_F(DaemonE2E, OnceFailsWhenHaproxyIsUnreachable) {
  write_file(targets_, targets_json({backends_[0].get()}));
  write_file(slot_targets_, "[]\n");
  write_config("", dir_ + "/nosuch.sock");
  auto r = run_elasticproxy({"once", "-c", config_});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("nosuch.sock"), std::string::npos) << r.output;
}

TEST_F(DaemonE2E, PlanPrintsChangesAndChangesNothing) {
  write_file(targets_, targets_json({backends_[0].get()}));
  write_file(slot_targets_, "[]\n");
  write_config();
  auto r = run_elasticproxy({"plan", "-c", config_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("add"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(name_of(*backends_[0])), std::string::npos) << r.output;
  EXPECT_FALSE(has("web", name_of(*backends_[0])));
}

TEST(Cli, CheckReportsConfigErrorsWithPositions) {
  char tmpl[] = "/tmp/ep-chk-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/bad.yaml";
  write_file(path,
             "haproxy:\n  sockets: [/tmp/x.sock]\n  bogus: 1\nbackends:\n  - name: web\n"
             "    sources:\n      - nosuchsource: {}\n");
  auto r = run_elasticproxy({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("bad.yaml:3:3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("nosuchsource"), std::string::npos) << r.output;
  std::filesystem::remove_all(tmpl);
}

// Issue #14 point 11: a zero interval or timeout is a hot loop or a request that cannot finish;
// a negative one is nonsense. Every such key is refused with its position, in every source.
TEST(Cli, CheckRefusesZeroAndNegativeIntervalsWithPositions) {
  char tmpl[] = "/tmp/ep-chk-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/zero.yaml";
  write_file(path,
             "haproxy:\n"
             "  sockets: [/tmp/x.sock]\n"
             "  resync_interval: 0s\n"
             "backends:\n"
             "  - name: web\n"
             "    sources:\n"
             "      - file: {path: /tmp/x.json, refresh_interval: 0ms}\n"
             "      - consul: {service: web, timeout: 0s, refill: -1s}\n"
             "      - etcd: {endpoints: [http://127.0.0.1:2379], prefix: /a/, retry_interval: 0s}\n"
             "      - dns: {name: _web._tcp.example.internal, ttl_floor: 0s}\n"
             "      - aws_asg: {groups: [web], region: eu-west-1, interval: 0s}\n");
  auto r = run_elasticproxy({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  for (const char* want : {
           "zero.yaml:3:20: haproxy.resync_interval must be greater than 0, got '0s'",
           "zero.yaml:7:53: file.refresh_interval must be greater than 0, got '0ms'",
           "zero.yaml:8:41: consul.timeout must be greater than 0, got '0s'",
           "zero.yaml:8:53: consul.refill must not be negative, got '-1s'",
           "zero.yaml:9:81: etcd.retry_interval must be greater than 0, got '0s'",
           "zero.yaml:10:60: dns.ttl_floor must be greater than 0, got '0s'",
           "zero.yaml:11:63: aws_asg.interval must be greater than 0, got '0s'",
       }) {
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  }
  std::filesystem::remove_all(tmpl);
}

// Issue #14 points 5 and 8: credentials never go in clear text (or unverified TLS) to a
// non-loopback endpoint unless allow_insecure says so (and then the start says so), and an
// endpoint URL with user information is refused without repeating it. (Nothing is contacted:
// `check` only reads the configuration.)
TEST(Cli, CheckRefusesCredentialsOverInsecureTransport) {
  char tmpl[] = "/tmp/ep-chk-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto config = [&](const std::string& extra) {
    return "haproxy:\n  sockets: [/tmp/x.sock]\nbackends:\n  - name: web\n    sources:\n"
           "      - consul: {service: web, address: 'http://192.0.2.10:8500', token: t0ken" +
           extra +
           "}\n"
           "      - etcd: {endpoints: ['http://192.0.2.11:2379'], prefix: /a/, username: root, "
           "password: pw" +
           extra +
           "}\n"
           "      - aws_asg: {groups: [web], region: eu-west-1, endpoints: {sqs: "
           "'http://192.0.2.12:9324'}" +
           extra + "}\n";
  };
  write_file(dir + "/insecure.yaml", config(""));
  auto r = run_elasticproxy({"check", "-c", dir + "/insecure.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  for (const char* want : {
           "insecure.yaml:6:41: consul: the ACL token would go to http://192.0.2.10:8500 in clear "
           "text; use https:// with verification, or set allow_insecure: true",
           "etcd.endpoints[0]: the etcd password would go to 'http://192.0.2.11:2379' in clear "
           "text",
           "aws_asg.endpoints.sqs: signed requests would go to http://192.0.2.12:9324 in clear "
           "text",
       }) {
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  }
  EXPECT_EQ(r.output.find("t0ken"), std::string::npos);

  write_file(dir + "/allowed.yaml", config(", allow_insecure: true"));
  auto ok = run_elasticproxy({"check", "-c", dir + "/allowed.yaml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("consul: allow_insecure: the ACL token goes to http://192.0.2.10:8500 "
                           "in clear text"),
            std::string::npos)
      << ok.output;
  EXPECT_NE(ok.output.find("etcd: allow_insecure: the password goes to"), std::string::npos);
  EXPECT_NE(ok.output.find("aws_asg: allow_insecure: signed requests go to"), std::string::npos);

  // Loopback needs no opt-in (a local agent or a test double).
  write_file(dir + "/local.yaml",
             "haproxy:\n  sockets: [/tmp/x.sock]\nbackends:\n  - name: web\n    sources:\n"
             "      - consul: {service: web, address: 'http://127.0.0.1:8500', token: t0ken}\n");
  EXPECT_EQ(run_elasticproxy({"check", "-c", dir + "/local.yaml"}).exit_code, 0);

  // User information in an etcd endpoint is refused and never echoed.
  write_file(dir + "/userinfo.yaml",
             "haproxy:\n  sockets: [/tmp/x.sock]\nbackends:\n  - name: web\n    sources:\n"
             "      - etcd: {endpoints: ['https://root:s3cr,et@127.0.0.1:2379'], prefix: /a/}\n");
  auto ui = run_elasticproxy({"check", "-c", dir + "/userinfo.yaml"});
  EXPECT_EQ(ui.exit_code, 2) << ui.output;
  EXPECT_NE(ui.output.find("user information in the URL is refused"), std::string::npos)
      << ui.output;
  EXPECT_EQ(ui.output.find("s3cr"), std::string::npos) << ui.output;
  std::filesystem::remove_all(dir);
}

TEST(Cli, DemoRunsWithZeroFailedRequests) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  auto r = run_elasticproxy({"demo", "--duration", "8s"}, 60s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("failed: 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("add ep-127.0.0.1:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("holding back an empty server set"), std::string::npos) << r.output;
}

TEST(Cli, VersionAndHelp) {
  auto r = run_elasticproxy({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("elasticproxy "), std::string::npos);
  for (const char* cmd : {"run", "once", "plan", "check", "demo"}) {
    auto h = run_elasticproxy({cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.output.find("--"), std::string::npos) << cmd;
  }
}

}  // namespace
}  // namespace ep::test
