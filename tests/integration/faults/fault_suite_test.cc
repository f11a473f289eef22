// Fault injection, end to end: the real `elasticproxy` binary and the real HAProxy 2.6 on
// loopback, with a discovery source that fails in every way we know (real etcd killed or frozen,
// the Consul double answering 5xx, garbage, an empty list, half a body, nothing), HAProxy killed,
// an admin socket that never answers, ElasticProxy SIGKILLed in the middle of a 1,000-server
// apply, a full disk, and 10,000 endpoints. A load loop runs through HAProxy the whole time.
//
// Each case asserts what an operator would check (servers kept, requests failed, recovery) and
// prints one row of the fault table (docs/hardening.md):
//   FAULT-ROW | case | servers kept (min seen / expected) | recovery | requests failed / sent
// Every cell is measured by the case (or says no load ran). `make fault-table` runs this suite,
// keeps its output in bench/data/figures_fault_table.log and writes the table into
// docs/hardening.md (bench/fault_table.sh); by hand: ctest -R Faults -V | grep FAULT-ROW

#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "integration/daemon/daemon_process.h"
#include "support/consul/consul_double.h"
#include "support/etcd/etcd_fixture.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"
#include "support/haproxy/servers_state.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// requests < 0: the case runs no load through HAProxy (printed as such, not as 0 / 0).
void row(const std::string& fault, const std::string& kept, const std::string& recovery,
         long failed, long requests, const std::string& note = "") {
  const std::string counted = requests < 0 ? std::string("no load in this case")
                                           : std::to_string(failed) + " / " + std::to_string(requests);
  std::printf("FAULT-ROW | %s | %s | %s | %s | %s\n", fault.c_str(), kept.c_str(),
              recovery.c_str(), counted.c_str(), note.c_str());
  std::fflush(stdout);
}

// A steady request loop through HAProxy plus a monitor of the managed server count.
class Background {
 public:
  Background(const HaproxyFixture& hp, std::string backend) : hp_(hp), backend_(std::move(backend)) {
    load_ = std::thread([this] {
      while (!stop_) {
        auto r = http_get(hp_.port(0), "/", 2s);
        ++requests_;
        if (!r.ok() || r->status != 200) {
          ++failed_;
          std::lock_guard<std::mutex> lock(mu_);
          if (failures_.size() < 10) {
            failures_.push_back(std::to_string(static_cast<long>(ms_since(started_))) + " ms: " +
                                (r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 80)
                                        : r.error().message));
          }
        }
        std::this_thread::sleep_for(5ms);  // kept: the load generator's own pace, not a wait
      }
    });
    // Counts serving servers only (UP, not in maintenance, not draining): a server still listed
    // but out of rotation does not serve. An empty backend counts 0; only a HAProxy that does not
    // answer is not a sample.
    monitor_ = std::thread([this] {
      while (!stop_) {
        const auto rows = servers_state(hp_, backend_);
        const bool answered =
            !rows.empty() ||
            hp_.admin("show servers state " + backend_).find("be_id") != std::string::npos;
        if (answered) {
          size_t serving = 0;
          for (const auto& [name, r] : rows) {
            if (r.op == 2 && (r.admin & 0x3f) == 0) ++serving;  // maint 0x01|0x02|0x04|0x20, drain 0x08|0x10
          }
          size_t seen = min_servers_.load();
          while (serving < seen && !min_servers_.compare_exchange_weak(seen, serving)) {
          }
        }
        std::this_thread::sleep_for(20ms);  // kept: the monitor's sampling period, not a wait
      }
    });
  }
  ~Background() { stop(); }
  void stop() {
    stop_ = true;
    if (load_.joinable()) load_.join();
    if (monitor_.joinable()) monitor_.join();
  }
  long requests() const { return requests_; }
  long failed() const { return failed_; }
  size_t min_servers() const { return min_servers_; }
  std::string failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& f : failures_) out += f + "\n";
    return out;
  }

 private:
  const HaproxyFixture& hp_;
  std::string backend_;
  std::atomic<bool> stop_{false};
  std::atomic<long> requests_{0};
  std::atomic<long> failed_{0};
  std::atomic<size_t> min_servers_{SIZE_MAX};
  std::thread load_;
  std::thread monitor_;
  const Clock::time_point started_ = Clock::now();
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
};

const std::string kHaproxyCfg = HaproxyConfig().frontend("fe", 0, "web").backend("web").str();

class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    hp_ = std::make_unique<HaproxyFixture>(kHaproxyCfg);
    ASSERT_TRUE(hp_->start().ok()) << hp_->log();
    for (int i = 0; i < 4; ++i) {
      backends_.push_back(std::make_unique<HttpBackend>("f" + std::to_string(i)));
    }
  }

  // `sources` is the YAML list under the backend (already indented by 6).
  void start_daemon(const std::string& sources, const std::string& haproxy_extra = "",
                    const std::string& backend_extra = "") {
    config_ = hp_->dir() + "/ep.yaml";
    write_file(config_, "haproxy:\n  sockets: [" + hp_->socket_path() + "]\n" + haproxy_extra +
                            "metrics: {enabled: false}\n"
                            "backends:\n  - name: web\n    drain_timeout: 2s\n" +
                            backend_extra + "    sources:\n" + sources);
    ASSERT_TRUE(daemon_.start({"run", "-c", config_}, hp_->dir() + "/ep.log"));
  }

  size_t count() const { return servers_state(*hp_, "web").size(); }
  // Servers that serve (UP, not in maintenance, not draining), as the monitor counts them: a
  // server just added is listed before it is enabled.
  size_t serving() const {
    size_t n = 0;
    for (const auto& [name, r] : servers_state(*hp_, "web")) {
      if (r.op == 2 && (r.admin & 0x3f) == 0) ++n;
    }
    return n;
  }
  bool has_port(int port) const {
    for (const auto& [n, r] : servers_state(*hp_, "web")) {
      if (r.port == port) return true;
    }
    return false;
  }

  std::unique_ptr<HaproxyFixture> hp_;
  std::vector<std::unique_ptr<HttpBackend>> backends_;
  DaemonProcess daemon_;
  std::string config_;
};

// ---------- Consul double: every way an agent answers badly ----------

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

struct ConsulCase {
  ConsulFault fault;
  const char* label;
  const char* source_extra;  // appended inside the consul: {...} map
  std::chrono::milliseconds recovery_bound;
};

class ConsulFaults : public Faults, public ::testing::WithParamInterface<ConsulCase> {};

TEST_P(ConsulFaults, ServersKeptAndRecoveryConverges) {
  const ConsulCase& c = GetParam();
  ConsulDouble consul;
  consul.set_no_jitter(true);
  consul.start();
  consul.register_service(instance("a", backends_[0]->port()));
  consul.register_service(instance("b", backends_[1]->port()));
  start_daemon("      - consul: {address: \"" + consul.address() + "\", service: web" +
               c.source_extra + "}\n");
  ASSERT_TRUE(wait_until([&] { return serving() == 2; })) << daemon_.log();

  Background bg(*hp_, "web");
  consul.set_fault(c.fault);
  consul.touch("web");  // wake the blocking query: it is answered with the fault
  // A change that happens while Consul answers badly: it must arrive once Consul recovers.
  consul.register_service(instance("c", backends_[2]->port()));
  std::this_thread::sleep_for(3s);  // kept: the fault lasts 3 s (the scenario), not a wait
  EXPECT_EQ(count(), 2u) << "the last good set must stay while the source fails";
  EXPECT_TRUE(daemon_.running());

  const auto t0 = Clock::now();
  consul.set_fault(ConsulFault::kNone);
  consul.touch("web");  // the agent is back and in sync: its index moves
  ASSERT_TRUE(wait_until([&] { return has_port(backends_[2]->port()); }, 30s)) << daemon_.log();
  const double recovery = ms_since(t0);
  bg.stop();
  EXPECT_GE(bg.min_servers(), 2u);
  EXPECT_EQ(bg.failed(), 0) << "of " << bg.requests() << "\n" << bg.failures();
  EXPECT_LT(recovery, static_cast<double>(c.recovery_bound.count())) << daemon_.log();
  EXPECT_NE(daemon_.log().find("consul"), std::string::npos);
  row(std::string("Consul: ") + c.label + " for 3 s", std::to_string(bg.min_servers()) + " / 2",
      std::to_string(static_cast<long>(recovery)) + " ms", bg.failed(), bg.requests(),
      c.source_extra[0] ? std::string("source options") + c.source_extra : "default options");
}

INSTANTIATE_TEST_SUITE_P(
    Faults, ConsulFaults,
    ::testing::Values(
        ConsulCase{ConsulFault::kRpcEof, "500 rpc error", "", 4000ms},
        ConsulCase{ConsulFault::kNoLeader, "500 No cluster leader", "", 4000ms},
        ConsulCase{ConsulFault::kTooMany, "429 rate limited", "", 4000ms},
        ConsulCase{ConsulFault::kGarbage, "200 with a non-JSON body", "", 4000ms},
        ConsulCase{ConsulFault::kObject, "200 with a JSON object", "", 4000ms},
        ConsulCase{ConsulFault::kTruncated, "200 with truncated JSON", "", 4000ms},
        ConsulCase{ConsulFault::kCloseMidBody, "half a body, then reset", "", 4000ms},
        ConsulCase{ConsulFault::kEmpty, "200 with an empty list", "", 4000ms},
        ConsulCase{ConsulFault::kEmptyNoLeader, "empty list, no known leader", "", 4000ms},
        // A hung request ends only when the client's deadline (wait + wait/16 + timeout) passes.
        ConsulCase{ConsulFault::kHang, "accepts, never answers", ", wait: 2s, timeout: 1s",
                   6000ms}),
    [](const auto& info) {
      std::string n = info.param.label;
      std::string out;
      for (char ch : n) out += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return out;
    });

// ---------- real etcd: killed, frozen ----------

class EtcdFaults : public Faults {
 protected:
  void start_with_etcd() {
    ASSERT_TRUE(etcd_.start().ok()) << etcd_.log();
    ASSERT_TRUE(etcd_.put("/svc/web/a", "127.0.0.1:" + std::to_string(backends_[0]->port())).ok());
    ASSERT_TRUE(etcd_.put("/svc/web/b", "127.0.0.1:" + std::to_string(backends_[1]->port())).ok());
    start_daemon("      - etcd: {endpoints: [" + etcd_.url() + "], prefix: /svc/web/}\n");
    ASSERT_TRUE(wait_until([&] { return serving() == 2; })) << daemon_.log();
  }
  EtcdFixture etcd_;
};

TEST_F(EtcdFaults, KilledForFiveSeconds) {
  start_with_etcd();
  Background bg(*hp_, "web");
  etcd_.kill();
  std::this_thread::sleep_for(5s);  // kept: the outage lasts 5 s (the scenario), not a wait
  EXPECT_EQ(count(), 2u);
  ASSERT_TRUE(etcd_.start().ok()) << etcd_.log();
  const auto t0 = Clock::now();
  ASSERT_TRUE(etcd_.put("/svc/web/c", "127.0.0.1:" + std::to_string(backends_[2]->port())).ok());
  ASSERT_TRUE(wait_until([&] { return has_port(backends_[2]->port()); }, 30s)) << daemon_.log();
  const double recovery = ms_since(t0);
  bg.stop();
  EXPECT_GE(bg.min_servers(), 2u);
  EXPECT_EQ(bg.failed(), 0) << "of " << bg.requests() << "\n" << bg.failures();
  row("etcd: SIGKILLed for 5 s, restarted", std::to_string(bg.min_servers()) + " / 2",
      std::to_string(static_cast<long>(recovery)) + " ms (put after restart → HAProxy)",
      bg.failed(), bg.requests());
}

TEST_F(EtcdFaults, FrozenForFiveSeconds) {
  start_with_etcd();
  Background bg(*hp_, "web");
  ASSERT_TRUE(etcd_.pause().ok());  // connections stay open, nothing is answered
  std::this_thread::sleep_for(5s);  // kept: the freeze lasts 5 s (the scenario), not a wait
  EXPECT_EQ(count(), 2u);
  ASSERT_TRUE(etcd_.resume().ok());
  const auto t0 = Clock::now();
  ASSERT_TRUE(etcd_.put("/svc/web/c", "127.0.0.1:" + std::to_string(backends_[2]->port())).ok());
  ASSERT_TRUE(wait_until([&] { return has_port(backends_[2]->port()); }, 30s)) << daemon_.log();
  const double recovery = ms_since(t0);
  bg.stop();
  EXPECT_GE(bg.min_servers(), 2u);
  EXPECT_EQ(bg.failed(), 0) << "of " << bg.requests() << "\n" << bg.failures();
  row("etcd: frozen (SIGSTOP) for 5 s", std::to_string(bg.min_servers()) + " / 2",
      std::to_string(static_cast<long>(recovery)) + " ms (put after SIGCONT → HAProxy)",
      bg.failed(), bg.requests());
}

// ---------- HAProxy side ----------

std::string targets(const std::vector<int>& ports) {
  std::string t;
  for (int p : ports) t += (t.empty() ? "\"127.0.0.1:" : ", \"127.0.0.1:") + std::to_string(p) + "\"";
  return "[{\"targets\": [" + t + "]}]\n";
}

TEST_F(Faults, HaproxyKilledAndRestartedIsRestoredWithoutReload) {
  const std::string file = hp_->dir() + "/web.json";
  write_file(file, targets({backends_[0]->port(), backends_[1]->port()}));
  start_daemon("      - file: {path: web.json}\n");
  ASSERT_TRUE(wait_until([&] { return count() == 2; })) << daemon_.log();

  hp_->kill9();
  ASSERT_TRUE(hp_->start().ok()) << hp_->log();  // same config (no servers), socket and ports
  const auto t0 = Clock::now();
  // Counted from the moment the new HAProxy listens: the restore window (its config has no
  // servers, so requests get 503 until ElasticProxy has put them back) and 1 s after it.
  Background window(*hp_, "web");
  ASSERT_TRUE(wait_until([&] { return serving() == 2; }, 10s)) << daemon_.log();
  const double restore = ms_since(t0);
  // No reload happened: the HAProxy we started is still the one running (same pid, no reloads).
  const std::string info = hp_->admin("show info");
  EXPECT_NE(info.find("Pid: " + std::to_string(hp_->pid())), std::string::npos) << info;
  // After the restore every request succeeds.
  Background bg(*hp_, "web");
  std::this_thread::sleep_for(1s);  // kept: 1 s of load measured (the scenario), not a wait
  bg.stop();
  window.stop();
  EXPECT_EQ(bg.failed(), 0) << bg.failures();
  EXPECT_GE(bg.min_servers(), 2u);
  EXPECT_LT(restore, 3000.0);
  row("HAProxy SIGKILLed and restarted (config without the servers)",
      std::to_string(bg.min_servers()) + " / 2 after restore",
      std::to_string(static_cast<long>(restore)) + " ms, 0 reloads", window.failed(),
      window.requests(),
      "counted from HAProxy's restart: " + std::to_string(window.failed()) +
          " failed (503, no servers yet) before the restore, " + std::to_string(bg.failed()) +
          " of " + std::to_string(bg.requests()) + " after it; requests while HAProxy itself is "
          "down are not counted");
}

// A unix socket at the admin socket path that accepts connections and never answers.
class SilentSocket {
 public:
  explicit SilentSocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 64) == 0;
    path_ = path;
    thread_ = std::thread([this] {
      while (!stop_) {
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        ++accepted_;
        held_.push_back(c);  // never read, never answered
      }
    });
  }
  ~SilentSocket() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
    for (int c : held_) ::close(c);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string path_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> held_;
  std::thread thread_;
};

TEST_F(Faults, AdminSocketThatNeverAnswersIsBoundedByTheTimeout) {
  const std::string file = hp_->dir() + "/web.json";
  write_file(file, targets({backends_[0]->port()}));
  start_daemon("      - file: {path: web.json}\n", "  timeout: 1s\n");
  ASSERT_TRUE(wait_until([&] { return count() == 1; })) << daemon_.log();

  ASSERT_TRUE(hp_->stop().ok());
  double detected = -1;
  long silent_connections = -1;
  {
    SilentSocket silent(hp_->socket_path());
    ASSERT_TRUE(silent.ok());
    const auto t0 = Clock::now();
    // A change while the socket is silent: the apply must time out, not hang.
    write_file_atomic(file, targets({backends_[0]->port(), backends_[1]->port()}));
    ASSERT_TRUE(wait_until([&] { return silent.accepted() > 0; }, 5s)) << daemon_.log();
    ASSERT_TRUE(wait_until(
        [&] { return daemon_.log().find("timed out") != std::string::npos ||
                     daemon_.log().find("timeout") != std::string::npos; },
        10s))
        << daemon_.log();
    detected = ms_since(t0);
    // The daemon keeps answering: a second change is accepted by the pipeline, the process is
    // alive, and it does not pile up connections (one attempt per retry/backoff step).
    // Kept sleep, deliberate: the retry count is bounded over 3 s of real time (the backoff is
    // not scaled), so a busy retry loop would show here.
    std::this_thread::sleep_for(3s);
    EXPECT_TRUE(daemon_.running());
    EXPECT_LT(silent.accepted(), 20) << "retries must back off";
    silent_connections = silent.accepted();
  }
  ASSERT_TRUE(hp_->start().ok()) << hp_->log();
  const auto t1 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return count() == 2; }, 10s)) << daemon_.log();
  const double recovery = ms_since(t1);
  EXPECT_LT(recovery, 3000.0);
  row("admin socket replaced by a process that never answers",
      std::string(daemon_.running() ? "daemon alive" : "daemon DEAD") + ", " +
          std::to_string(silent_connections) + " connections to the silent socket in 3 s",
      "timeout seen after " + std::to_string(static_cast<long>(detected)) +
          " ms; converged " + std::to_string(static_cast<long>(recovery)) +
          " ms after HAProxy returned",
      0, -1, "haproxy.timeout: 1s");
}

// ---------- ElasticProxy SIGKILLed during a 1,000-server apply ----------

TEST_F(Faults, SigkillDuringThousandServerApplyLeavesNothingHalfConfigured) {
  const int kTrials = 20;
  const std::string file = hp_->dir() + "/web.json";
  const std::vector<int> real = {backends_[0]->port(), backends_[1]->port(), backends_[2]->port()};
  // 997 servers that refuse connections (health checks keep them DOWN) plus 3 real ones: a
  // server enabled without its health check passing would fail requests at once.
  std::string big = "[{\"targets\": [";
  std::set<std::string> want_big;
  for (int i = 0; i < 997; ++i) {
    const std::string a = "127.0.3." + std::to_string(1 + i % 250) + ":" + std::to_string(20000 + i);
    big += "\"" + a + "\", ";
    want_big.insert(a);
  }
  for (int p : real) {
    big += "\"127.0.0.1:" + std::to_string(p) + "\"" + (p == real.back() ? "" : ", ");
    want_big.insert("127.0.0.1:" + std::to_string(p));
  }
  big += "]}]\n";
  const std::string small = targets(real);
  std::set<std::string> want_small;
  for (int p : real) want_small.insert("127.0.0.1:" + std::to_string(p));

  write_file(file, small);
  const std::string backend_extra =
      "    server_options: check inter 500ms\n"
      "    safety: {max_remove_fraction: 1.0}\n";
  start_daemon("      - file: {path: web.json}\n", "", backend_extra);
  ASSERT_TRUE(wait_until([&] { return count() == 3; }, 10s)) << daemon_.log();
  ASSERT_TRUE(wait_until([&] {  // the 3 real servers passed their health checks: READY and UP
    for (const auto& [n, r] : servers_state(*hp_, "web")) {
      if (r.op != 2 || r.admin != 0) return false;
    }
    return true;
  }, 10s));

  Background bg(*hp_, "web");
  const auto bg_start = Clock::now();
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(0, 150);
  double worst_converge = 0;
  int converged = 0;
  for (int t = 0; t < kTrials; ++t) {
    const bool grow = t % 2 == 0;
    write_file_atomic(file, grow ? big : small);
    // Kept: the random point at which the daemon is killed (the scenario), not a wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    daemon_.signal(SIGKILL);
    daemon_.wait(5s);
    ASSERT_TRUE(daemon_.start({"run", "-c", config_}, hp_->dir() + "/ep.log"));
    const auto t0 = Clock::now();
    const auto& want = grow ? want_big : want_small;
    bool ok = wait_until([&] {
      auto rows = servers_state(*hp_, "web");
      if (rows.size() != want.size()) return false;
      // Every wanted server present and none left in maintenance; the live ones READY and UP;
      // the dead ones (refusing connections) held in DRAIN with their health check failing.
      for (const auto& [n, r] : rows) {
        if (!want.count(r.addr + ":" + std::to_string(r.port))) return false;
        if (r.admin & 0x01) return false;
        const bool live = r.addr == "127.0.0.1";
        if (live && (r.admin != 0 || r.op != 2)) return false;
        if (!live && r.op == 2 && r.admin == 0) return false;  // a dead server must not be UP
      }
      return true;
    }, 30s);
    if (!ok) {
      std::string bad;
      auto rows = servers_state(*hp_, "web");
      int shown = 0;
      for (const auto& [n, r] : rows) {
        const bool wanted = want.count(r.addr + ":" + std::to_string(r.port)) > 0;
        if ((!wanted || r.admin & 0x01 || (r.addr == "127.0.0.1" && (r.admin != 0 || r.op != 2))) &&
            shown++ < 10) {
          bad += n + " " + r.addr + ":" + std::to_string(r.port) + " admin=" +
                 std::to_string(r.admin) + " op=" + std::to_string(r.op) +
                 (wanted ? "" : " (not wanted)") + "\n";
        }
      }
      const std::string log = daemon_.log();
      FAIL() << "trial " << t << ": did not converge: " << rows.size() << " servers, want "
             << want.size() << "\n" << bad << "--- daemon log (tail)\n"
             << log.substr(log.size() > 3000 ? log.size() - 3000 : 0) << "--- haproxy log (tail)\n"
             << hp_->log().substr(hp_->log().size() > 3000 ? hp_->log().size() - 3000 : 0)
             << "haproxy running: " << hp_->running();
    }
    ++converged;
    worst_converge = std::max(worst_converge, ms_since(t0));
    std::printf("trial %d (%s): killed after %s, converged %.0f ms after restart, at %.0f ms\n", t,
                grow ? "grow" : "shrink", "random delay", ms_since(t0), ms_since(bg_start));
  }
  std::this_thread::sleep_for(500ms);  // kept: load keeps running on the result, not a wait
  bg.stop();
  EXPECT_EQ(bg.failed(), 0) << "of " << bg.requests() << "\n" << bg.failures();
  row("ElasticProxy SIGKILLed at a random point (0-150 ms) of a 1,000-server add or remove, " +
          std::to_string(kTrials) + " trials",
      std::to_string(converged) + " / " + std::to_string(kTrials) +
          " trials converged: none left in maint, live servers READY, dead ones held in DRAIN; "
          "serving never below " + std::to_string(bg.min_servers()) + " / 3",
      "worst " + std::to_string(static_cast<long>(worst_converge)) + " ms after restart",
      bg.failed(), bg.requests());
}

// ---------- disk full ----------

TEST_F(Faults, DiskFullKeepsHaproxyServingAndRuntimeUpdating) {
  const std::string mnt = hp_->dir() + "/full";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const std::string cfg = mnt + "/haproxy.cfg";
  const std::string tpl = hp_->dir() + "/haproxy.cfg.tmpl";
  write_file(tpl, hp_->config() + "  {{ servers \"web\" }}\n");
  // The config HAProxy runs from lives on the small filesystem; fill it completely.
  std::string cfg_text = hp_->config();
  write_file(cfg, cfg_text);
  {
    std::ofstream filler(mnt + "/filler", std::ios::binary);
    std::string chunk(4096, 'x');
    while (filler.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
    }
  }
  const std::string file = hp_->dir() + "/web.json";
  write_file(file, targets({backends_[0]->port()}));
  start_daemon("      - file: {path: web.json}\n",
               "  config: " + cfg + "\n  template: " + tpl + "\n  binary: " + haproxy_binary() + "\n");
  ASSERT_TRUE(wait_until([&] { return serving() == 1; })) << daemon_.log();
  Background bg(*hp_, "web");
  write_file_atomic(file, targets({backends_[0]->port(), backends_[1]->port()}));
  ASSERT_TRUE(wait_until([&] { return count() == 2; })) << daemon_.log();  // runtime still works
  const size_t applied_while_full = count();
  ASSERT_TRUE(wait_until(
      [&] { return daemon_.log().find("No space left on device") != std::string::npos; }, 10s))
      << daemon_.log();
  // The live config file is untouched (not truncated, not half written).
  std::ifstream in(cfg);
  std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(now, cfg_text);
  // Space comes back: the next pass writes the file.
  std::filesystem::remove(mnt + "/filler");
  write_file_atomic(file, targets({backends_[0]->port(), backends_[1]->port(), backends_[2]->port()}));
  const auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] {
    std::ifstream f(cfg);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return text.find(std::to_string(backends_[2]->port())) != std::string::npos;
  }, 15s)) << daemon_.log();
  const double recovery = ms_since(t0);
  bg.stop();
  EXPECT_EQ(bg.failed(), 0) << bg.failures();
  EXPECT_GE(bg.min_servers(), 1u);
  EXPECT_TRUE(hp_->running());
  row("config filesystem full (ENOSPC)",
      std::to_string(bg.min_servers()) + " / 1 kept; runtime change applied while full: " +
          std::to_string(applied_while_full) + " servers",
      "file written " + std::to_string(static_cast<long>(recovery)) + " ms after space returned",
      bg.failed(), bg.requests(), "error names the file and 'No space left on device'");
}

// ---------- 10,000 endpoints ----------

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(Faults, TenThousandEndpointsInBoundedTimeAndMemory) {
  const std::string file = hp_->dir() + "/web.json";
  write_file(file, targets({backends_[0]->port()}));
  start_daemon("      - file: {path: web.json}\n", "",
               "    safety: {max_remove_fraction: 1.0}\n");
  ASSERT_TRUE(wait_until([&] { return count() == 1; })) << daemon_.log();
  const long rss_before = rss_kb(daemon_.pid());
  std::string t = "[{\"targets\": [";
  for (int i = 0; i < 10000; ++i) {
    t += (i ? ", \"127.4." : "\"127.4.") + std::to_string(i / 250) + "." +
         std::to_string(1 + i % 250) + ":8080\"";
  }
  t += "]}]\n";
  const auto t0 = Clock::now();
  write_file_atomic(file, t);
  ASSERT_TRUE(wait_until([&] { return count() == 10000; }, 120s)) << daemon_.log().substr(0, 3000);
  const double took = ms_since(t0);
  const size_t in_haproxy = count();
  const long rss_after = rss_kb(daemon_.pid());
  EXPECT_TRUE(daemon_.running());
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizer shadow memory multiplies RSS (509 MB seen under ASan): the bound is for real builds.
  (void)rss_after;
#else
  EXPECT_LT(rss_after, 80 * 1024) << "RSS in kB";
#endif
  row("10,000 endpoints from one source", std::to_string(in_haproxy) + " / 10000 in HAProxy",
      std::to_string(static_cast<long>(took)) + " ms to converge", 0, -1,
      "daemon RSS " + std::to_string(rss_before / 1024) + " MB → " +
          std::to_string(rss_after / 1024) + " MB");
}

}  // namespace
}  // namespace ep::test
