// EP2 migration, end to end: an ep2.conf and a `{{nodes}}` template in EP2's README style run
// unchanged with `elasticproxy run -f ep2.conf`. ElasticProxy starts HAProxy itself (EP2's
// bootstrap, `start_by = binary`), follows a Consul service ([CONSUL] section, the Consul double),
// and keeps HAProxy in step at runtime (update_by_runtime) or by validated reloads
// (update_by_config).
//
// The template is EP2's README template with only what a test on loopback must change: listen
// ports, the admin socket path, and no chroot/user/errorfile lines (they need Debian's haproxy
// user and files).

#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/daemon/daemon_process.h"
#include "support/consul/consul_double.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"
#include "support/haproxy/servers_state.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

ConsulService instance(const std::string& id, int port) {
  ConsulService s;
  s.id = id;
  s.name = "web";
  s.node = "node-" + id;
  s.address = "127.0.0.1";
  s.port = port;
  s.checks = {{"check-" + id, "service check", "passing", ""}};
  return s;
}

class Ep2E2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    char tmpl[] = "/tmp/ep2.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = free_port();
    stats_port_ = free_port();
    std::string t = read_file(std::string(EP_TESTDATA_DIR) + "/ep2/e2e.cfg.template");
    replace_all(t, "@DIR@", dir_);
    replace_all(t, "@PORT0@", std::to_string(port_));
    replace_all(t, "@PORT1@", std::to_string(stats_port_));
    readme_template_ = t;
    // EP2's README line `option httpchk HEAD / HTTP/1.1\r\nHost:localhost` (headers hidden in
    // the version string) is accepted by HAProxy 2.6 and refused by 3.0 (ReadmeHttpchkLine...
    // below pins both). On 3.0 the other tests run the form 3.0 takes, which 2.6 takes too.
    if (haproxy_version().at_least(3, 0)) replace_all(t, kReadmeHttpchk, kHttpchk30);
    write_file(dir_ + "/haproxy.cfg.template", t);
    for (int i = 0; i < 3; ++i) backends_.push_back(std::make_unique<HttpBackend>("e" + std::to_string(i)));
    consul_.start();
  }

  void TearDown() override {
    daemon_.signal(SIGTERM);
    daemon_.wait(10s);
    // EP2's setup leaves HAProxy running when EP2 stops; the test stops it.
    std::ifstream pid(dir_ + "/haproxy.pid");
    long p = 0;
    if (pid >> p && p > 1 && ::kill(static_cast<pid_t>(p), SIGTERM) == 0) {
      // Not our child (no waitpid): wait until it is gone or a zombie before removing its files.
      const std::string stat = "/proc/" + std::to_string(p) + "/stat";
      eventually(
          [&] {
            std::ifstream in(stat);
            std::string pid_field, comm, state;
            return !(in >> pid_field >> comm >> state) || state == "Z";
          },
          2s);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // An ep2.conf as EP2's README shows it, with this test's paths and ports.
  void write_conf(const std::string& update_type) {
    const std::string conf = "[haproxy]\n"
                             "haproxy_config_file = " + dir_ + "/haproxy.cfg\n"
                             "template_file = " + dir_ + "/haproxy.cfg.template\n"
                             "backend_port = 6003\n"
                             "haproxy_binary = " + haproxy_binary() + "\n"
                             "start_by = binary\n"
                             "haproxy_socket_file = " + dir_ + "/haproxy.sock\n"
                             "pid_file = " + dir_ + "/haproxy.pid\n"
                             "backend_name = haproxynode\n"
                             "update_type = " + update_type + "\n"
                             "node_slots = 5\n"
                             "service_name = haproxy\n"
                             "lock_dir = " + dir_ + "\n"
                             "orchestrator = consul\n"
                             "sleep_before_next_run = 5\n"
                             "log_file = /var/log/ep2/ep2.log\n"
                             "\n"
                             "[CONSUL]\n"
                             "service_name = web\n"
                             "consul_ip = 127.0.0.1\n"
                             "consul_port = " + consul_.address().substr(consul_.address().rfind(':') + 1) + "\n"
                             "only_passing = True\n"
                             "tags =\n";
    write_file(dir_ + "/ep2.conf", conf);
  }

  std::map<std::string, ServerRow> servers() const {
    return servers_state(dir_ + "/haproxy.sock", "haproxynode");
  }
  bool serving(int port) const {  // UP and READY in HAProxy
    for (const auto& [n, r] : servers()) {
      if (r.port == port && (r.admin & ~0x04) == 0 && r.op == 2) return true;  // 0x04: marker
    }
    return false;
  }

  static constexpr const char* kReadmeHttpchk = "option httpchk HEAD / HTTP/1.1\\r\\nHost:localhost";
  static constexpr const char* kHttpchk30 =
      "option httpchk HEAD / HTTP/1.1\n\thttp-check send hdr Host localhost";

  std::string dir_;
  std::string readme_template_;  // EP2's README template, unchanged (with this test's ports)
  int port_ = 0;
  int stats_port_ = 0;
  std::vector<std::unique_ptr<HttpBackend>> backends_;
  ConsulDouble consul_;
  DaemonProcess daemon_;
};

TEST_F(Ep2E2E, RuntimeUpdatesFromAnUnchangedEp2Setup) {
  write_conf("update_by_runtime");
  consul_.register_service(instance("a", backends_[0]->port()));
  consul_.register_service(instance("b", backends_[1]->port()));
  // `check` first: the file is accepted as it is.
  auto check = run_elasticproxy({"check", "-f", dir_ + "/ep2.conf"});
  ASSERT_EQ(check.exit_code, 0) << check.output;

  ASSERT_TRUE(daemon_.start({"run", "-f", dir_ + "/ep2.conf"}, dir_ + "/ep.log"));
  // Bootstrap: HAProxy was not running, so ElasticProxy rendered the template and started it.
  ASSERT_TRUE(wait_until([&] { return serving(backends_[0]->port()) && serving(backends_[1]->port()); },
                         20s))
      << daemon_.log();
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/haproxy.pid"));
  const std::string cfg = read_file(dir_ + "/haproxy.cfg");
  EXPECT_NE(cfg.find("127.0.0.1:" + std::to_string(backends_[0]->port())), std::string::npos) << cfg;
  EXPECT_NE(cfg.find(haproxy_version().at_least(3, 0) ? kHttpchk30 : kReadmeHttpchk),
            std::string::npos)
      << cfg;
  auto reply = http_get(port_, "/");
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->status, 200);

  // Scale out and in, at runtime: HAProxy's pid does not change (no reload).
  const std::string pid_before = read_file(dir_ + "/haproxy.pid");
  consul_.register_service(instance("c", backends_[2]->port()));
  ASSERT_TRUE(wait_until([&] { return serving(backends_[2]->port()); }, 10s)) << daemon_.log();
  ASSERT_TRUE(consul_.deregister_service("a"));
  ASSERT_TRUE(wait_until([&] {
    for (const auto& [n, r] : servers()) {
      if (r.port == backends_[0]->port()) return false;
    }
    return true;
  }, 15s)) << daemon_.log();
  EXPECT_EQ(read_file(dir_ + "/haproxy.pid"), pid_before);
  // Disk follows runtime: the file has what HAProxy runs now.
  ASSERT_TRUE(wait_until([&] {
    const std::string now = read_file(dir_ + "/haproxy.cfg");
    return now.find(std::to_string(backends_[2]->port())) != std::string::npos &&
           now.find(std::to_string(backends_[0]->port())) == std::string::npos;
  }, 10s)) << read_file(dir_ + "/haproxy.cfg");
  // What EP2 did differently is said once, at start.
  EXPECT_NE(daemon_.log().find("not backend_port"), std::string::npos);
  EXPECT_NE(daemon_.log().find("lock_dir is not used"), std::string::npos);
}

TEST_F(Ep2E2E, ConfigUpdatesReloadThroughTheBinary) {
  write_conf("update_by_config");
  consul_.register_service(instance("a", backends_[0]->port()));
  ASSERT_TRUE(daemon_.start({"run", "-f", dir_ + "/ep2.conf"}, dir_ + "/ep.log"));
  ASSERT_TRUE(wait_until([&] { return serving(backends_[0]->port()); }, 20s)) << daemon_.log();
  consul_.register_service(instance("b", backends_[1]->port()));
  // update_by_config: the change arrives through a validated, confirmed reload.
  ASSERT_TRUE(wait_until([&] { return serving(backends_[1]->port()); }, 20s)) << daemon_.log();
  EXPECT_NE(read_file(dir_ + "/haproxy.cfg").find(std::to_string(backends_[1]->port())),
            std::string::npos);
  EXPECT_NE(daemon_.log().find("reload"), std::string::npos) << daemon_.log();
  auto reply = http_get(port_, "/");
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->status, 200);
}

// Version-specific, both sides pinned: EP2's README health-check line, headers hidden in the
// version string, is accepted by HAProxy 2.6 (deprecated since 2.2) and refused by 3.0. On 3.0 an
// unchanged EP2 template therefore does not start: the bootstrap names HAProxy's alert, writes
// no config and starts nothing (docs/haproxy-runtime.md, "Versions").
TEST_F(Ep2E2E, ReadmeHttpchkLineRunsOn26AndIsRefusedWithHaproxysAlertOn30) {
  write_file(dir_ + "/haproxy.cfg.template", readme_template_);
  write_conf("update_by_runtime");
  consul_.register_service(instance("a", backends_[0]->port()));
  ASSERT_TRUE(daemon_.start({"run", "-f", dir_ + "/ep2.conf"}, dir_ + "/ep.log"));
  if (haproxy_version().at_least(3, 0)) {
    ASSERT_TRUE(wait_until(
        [&] {
          return daemon_.log().find("hiding headers or body at the end of the version string is "
                                    "unsupported") != std::string::npos;
        },
        20s))
        << daemon_.log();
    EXPECT_NE(daemon_.log().find("haproxy rejected the config"), std::string::npos)
        << daemon_.log();
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/haproxy.cfg"));
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/haproxy.pid"));
  } else {
    ASSERT_TRUE(wait_until([&] { return serving(backends_[0]->port()); }, 20s)) << daemon_.log();
    EXPECT_NE(read_file(dir_ + "/haproxy.cfg").find(kReadmeHttpchk), std::string::npos);
  }
}

TEST_F(Ep2E2E, Ep2ReadmeTemplateWithJinjaBracesIsAClearError) {
  // EP2's README writes `if {{ ssl_fc }}` (Jinja renders it empty, so EP2's config broke too):
  // ElasticProxy names the file, line and column and suggests HAProxy's `{ ssl_fc }`.
  std::string t = read_file(dir_ + "/haproxy.cfg.template");
  replace_all(t, "if { ssl_fc }", "if {{ ssl_fc }}");
  write_file(dir_ + "/haproxy.cfg.template", t);
  write_conf("update_by_runtime");
  auto check = run_elasticproxy({"check", "-f", dir_ + "/ep2.conf"});
  EXPECT_EQ(check.exit_code, 2) << check.output;
  EXPECT_NE(check.output.find("haproxy.cfg.template:31:"), std::string::npos) << check.output;
  EXPECT_NE(check.output.find("write single braces: { ssl_fc }"), std::string::npos) << check.output;
}

}  // namespace
}  // namespace ep::test
