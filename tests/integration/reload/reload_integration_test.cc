// Reload methods against a real HAProxy 2.6 in master-worker mode: each method is confirmed, a
// bad candidate is refused or rolled back while HAProxy keeps serving, reloads under load lose no
// request, a read-only config directory is a clear error.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "core/metrics.h"
#include "haproxy/config/writer.h"
#include "haproxy/reload/deploy.h"
#include "haproxy/reload/reloader.h"
#include "integration/reload/mw_haproxy.h"
#include "os/process.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"

namespace ep::test {
namespace {

namespace hr = haproxy::reload;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string config_text(int backend_port, int weight, const std::string& extra = "") {
  return R"(global
  stats socket @ADMIN@ level admin expose-fd listeners
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:@PORT0@
  default_backend be
)" + extra +
         R"(backend be
  balance roundrobin
  server s1 127.0.0.1:)" +
         std::to_string(backend_port) + " weight " + std::to_string(weight) + "\n";
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_script(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ::chmod(path.c_str(), 0755);
}

// A listener without SO_REUSEPORT: HAProxy cannot bind the same port (haproxy -c does not try).
class PortBlocker {
 public:
  explicit PortBlocker(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 1) == 0;
  }
  ~PortBlocker() { ::close(fd_); }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    ASSERT_TRUE(backend_.ok());
    hp_ = std::make_unique<MwHaproxy>(config_text(backend_.port(), 10));
    ASSERT_TRUE(hp_->start().ok()) << hp_->log();
    ASSERT_TRUE(serving());
  }

  bool serving() {
    auto r = http_get(hp_->port(0), "/");
    return r.ok() && r->status == 200 && r->body == "b1";
  }
  std::string weight() { return servers_summary(*hp_, "be"); }
  hr::Options options(hr::Method m) {
    hr::Options o;
    o.method = m;
    o.timeout = seconds(10);
    return o;
  }
  int master_reloads() {  // retried: the master CLI is down while the master re-executes
    auto t = hr::show_proc(hp_->master_socket(), std::chrono::steady_clock::now() + seconds(5));
    return t ? t->master_reloads : -1;
  }

  HttpBackend backend_{"b1"};
  std::unique_ptr<MwHaproxy> hp_;
};

TEST_F(ReloadTest, MasterCliReloadIsConfirmedThroughShowProc) {
  hp_->write_config(config_text(backend_.port(), 20));
  auto r = hr::make_reloader(options(hr::Method::kMasterCli), hp_->target())->reload();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("reloads 0 -> 1, new worker"), std::string::npos) << *r;
  hp_->track();
  EXPECT_NE(weight().find("s1 127.0.0.1:" + std::to_string(backend_.port()) + " 20 0"),
            std::string::npos)
      << weight();
  EXPECT_TRUE(serving());
}

TEST_F(ReloadTest, SignalReloadIsConfirmedThroughShowProc) {
  hp_->write_config(config_text(backend_.port(), 21));
  auto r = hr::make_reloader(options(hr::Method::kSignal), hp_->target())->reload();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("new worker"), std::string::npos) << *r;
  hp_->track();
  EXPECT_NE(weight().find(" 21 0"), std::string::npos) << weight();
  EXPECT_TRUE(serving());
}

TEST_F(ReloadTest, SignalReloadWithoutMasterSocketIsConfirmedByTheWorkerPid) {
  hp_->write_config(config_text(backend_.port(), 22));
  auto t = hp_->target();
  t.master_socket.clear();
  auto r = hr::make_reloader(options(hr::Method::kSignal), t)->reload();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("worker pid"), std::string::npos) << *r;
  hp_->track();
  EXPECT_NE(weight().find(" 22 0"), std::string::npos) << weight();
}

TEST_F(ReloadTest, BinaryReloadStartsANewMasterAndConfirmsIt) {
  const auto old = hr::read_pidfile(hp_->pidfile());
  ASSERT_FALSE(old.empty());
  hp_->write_config(config_text(backend_.port(), 23));
  auto r = hr::make_reloader(options(hr::Method::kBinary), hp_->target())->reload();
  hp_->track();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("new master"), std::string::npos) << *r;
  EXPECT_NE(hr::read_pidfile(hp_->pidfile()), old);
  EXPECT_NE(weight().find(" 23 0"), std::string::npos) << weight();
  EXPECT_TRUE(serving());
  // The old master soft-stops and exits.
  test::eventually([&] { return ::kill(static_cast<pid_t>(old[0]), 0) != 0; }, seconds(5));
  EXPECT_NE(::kill(static_cast<pid_t>(old[0]), 0), 0) << "old master still running";
}

TEST_F(ReloadTest, SystemctlReloadRunsTheUnitReloadAndIsConfirmed) {
  // A recording fake `systemctl` first on PATH; like Debian's unit, it sends SIGUSR2 to the master.
  const std::string bin = hp_->dir() + "/bin";
  ASSERT_EQ(::mkdir(bin.c_str(), 0755), 0);
  write_script(bin + "/systemctl", "echo \"$@\" >> " + hp_->dir() +
                                       "/calls\nkill -USR2 $(head -n1 " + hp_->pidfile() + ")\n");
  const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  hp_->write_config(config_text(backend_.port(), 24));
  auto o = options(hr::Method::kSystemctl);
  o.unit = "haproxy-test";
  auto r = hr::make_reloader(o, hp_->target())->reload();
  ::setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(hp_->dir() + "/calls"), "reload haproxy-test\n");
  hp_->track();
  EXPECT_NE(weight().find(" 24 0"), std::string::npos) << weight();
}

TEST_F(ReloadTest, CommandReloadPassesArgumentsWithoutAShell) {
  const std::string script = hp_->dir() + "/reload.sh";
  write_script(script, "printf '%s|' \"$#\" \"$@\" > " + hp_->dir() +
                           "/args\nkill -USR2 $(head -n1 " + hp_->pidfile() + ")\n");
  hp_->write_config(config_text(backend_.port(), 25));
  auto o = options(hr::Method::kCommand);
  o.command = {script, "--fast", "a b;c $(reboot)"};
  auto r = hr::make_reloader(o, hp_->target())->reload();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(hp_->dir() + "/args"), "2|--fast|a b;c $(reboot)|");
  hp_->track();
  EXPECT_NE(weight().find(" 25 0"), std::string::npos) << weight();
}

TEST_F(ReloadTest, CommandFailureIsReportedWithItsOutput) {
  auto o = options(hr::Method::kCommand);
  o.command = {"sh", "-c", "echo 'unit haproxy not loaded' >&2; exit 5"};
  auto r = hr::make_reloader(o, hp_->target())->reload();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kRefused);
  EXPECT_NE(r.error().message.find("exit 5"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("unit haproxy not loaded"), std::string::npos);
}

TEST_F(ReloadTest, CandidateRejectedByHaproxyCheckNeverReachesHaproxy) {
  const std::string before = read(hp_->config_path());
  auto reloader = hr::make_reloader(options(hr::Method::kMasterCli), hp_->target());
  auto report = hr::deploy(hp_->config_path(),
                           hp_->expand(config_text(backend_.port(), 30) + "  bogus-keyword 1\n"),
                           *reloader, {});
  EXPECT_EQ(report.outcome, hr::DeployReport::Outcome::kRejected) << report.message;
  EXPECT_NE(report.message.find("bogus-keyword"), std::string::npos) << report.message;
  EXPECT_NE(report.message.find("the live file is unchanged"), std::string::npos);
  EXPECT_EQ(read(hp_->config_path()), before);
  EXPECT_EQ(master_reloads(), 0);
  EXPECT_TRUE(serving());
}

TEST_F(ReloadTest, FailedMasterCliReloadIsRolledBackAndHaproxyKeepsServing) {
  PortBlocker blocker(hp_->port(1));
  ASSERT_TRUE(blocker.ok());
  const std::string before = read(hp_->config_path());
  const double rolled =
      Metrics::global().value("elasticproxy_reloads_total", {{"result", "rolled_back"}});
  const std::string candidate = hp_->expand(config_text(
      backend_.port(), 31, "frontend extra\n  bind 127.0.0.1:@PORT1@\n  default_backend be\n"));
  auto reloader = hr::make_reloader(options(hr::Method::kMasterCli), hp_->target());
  auto report = hr::deploy(hp_->config_path(), candidate, *reloader, {});
  hp_->track();
  EXPECT_EQ(report.outcome, hr::DeployReport::Outcome::kRolledBack) << report.message;
  EXPECT_NE(report.message.find("[failed: 1]"), std::string::npos) << report.message;
  EXPECT_NE(report.message.find("rolled back to the last good config"), std::string::npos);
  EXPECT_EQ(read(hp_->config_path()), before);
  EXPECT_EQ(read(hp_->config_path() + ".rejected"), candidate);
  EXPECT_EQ(Metrics::global().value("elasticproxy_reloads_total", {{"result", "rolled_back"}}),
            rolled + 1);
  EXPECT_TRUE(serving());
  EXPECT_NE(weight().find(" 10 0"), std::string::npos) << weight();  // still the old config
}

TEST_F(ReloadTest, FailedBinaryReloadNamesHaproxysOwnMessage) {
  PortBlocker blocker(hp_->port(1));
  ASSERT_TRUE(blocker.ok());
  const std::string before = read(hp_->config_path());
  const std::string candidate = hp_->expand(config_text(
      backend_.port(), 32, "frontend extra\n  bind 127.0.0.1:@PORT1@\n  default_backend be\n"));
  auto reloader = hr::make_reloader(options(hr::Method::kBinary), hp_->target());
  auto report = hr::deploy(hp_->config_path(), candidate, *reloader, {});
  hp_->track();
  EXPECT_EQ(report.outcome, hr::DeployReport::Outcome::kRolledBack) << report.message;
  EXPECT_NE(report.message.find("cannot bind socket"), std::string::npos) << report.message;
  EXPECT_EQ(read(hp_->config_path()), before);
  EXPECT_TRUE(serving());
}

TEST_F(ReloadTest, TwentyReloadsUnderLoadLoseNoRequest) {
  std::atomic<bool> stop{false};
  std::atomic<long> ok{0}, failed{0};
  std::vector<std::thread> load;
  for (int i = 0; i < 4; ++i) {
    load.emplace_back([&] {
      while (!stop) {
        auto r = http_get(hp_->port(0), "/", seconds(5));
        if (r.ok() && r->status == 200) {
          ++ok;
        } else {
          ++failed;
        }
      }
    });
  }
  auto reloader = hr::make_reloader(options(hr::Method::kMasterCli), hp_->target());
  int reloaded = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto report = hr::deploy(hp_->config_path(), hp_->expand(config_text(backend_.port(), 40 + i)),
                             *reloader, {});
    if (report.outcome == hr::DeployReport::Outcome::kOk) ++reloaded;
    EXPECT_EQ(report.outcome, hr::DeployReport::Outcome::kOk) << report.message;
    hp_->track();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  for (auto& t : load) t.join();
  std::cout << "[figure] " << reloaded << " confirmed master-cli reloads in " << secs
            << " s under load: " << ok << " requests ok, " << failed << " failed\n";
  RecordProperty("requests_ok", static_cast<int>(ok));
  RecordProperty("requests_failed", static_cast<int>(failed));
  EXPECT_EQ(reloaded, 20);
  EXPECT_GT(ok, 100);
  EXPECT_EQ(failed, 0);
}

TEST_F(ReloadTest, ReadOnlyConfigDirectoryIsAClearErrorAndHaproxyKeepsServing) {
  // Root ignores permission bits; the immutable flag stops root too.
  auto set = os::run_process({"chattr", "+i", hp_->dir()});
  if (!set.ok() || set->exit_code != 0) GTEST_SKIP() << "chattr +i not available";
  const std::string before = read(hp_->config_path());
  auto reloader = hr::make_reloader(options(hr::Method::kMasterCli), hp_->target());
  auto report =
      hr::deploy(hp_->config_path(), hp_->expand(config_text(backend_.port(), 50)), *reloader, {});
  (void)os::run_process({"chattr", "-i", hp_->dir()});
  EXPECT_EQ(report.outcome, hr::DeployReport::Outcome::kRejected) << report.message;
  EXPECT_NE(report.message.find("cannot write " + hp_->config_path()), std::string::npos)
      << report.message;
  EXPECT_NE(report.message.find("Operation not permitted"), std::string::npos) << report.message;
  EXPECT_EQ(read(hp_->config_path()), before);
  EXPECT_EQ(master_reloads(), 0) << hp_->master("show proc");
  EXPECT_TRUE(serving()) << hp_->admin("show info");
}

}  // namespace
}  // namespace ep::test
