// Operations end to end: the real `elasticproxy run` against the real HAProxy 2.6 with the file
// source. Scrapes /metrics after a scripted run, hits the endpoints, reloads with SIGHUP (good
// and bad configs), starts a second instance, and listens on NOTIFY_SOCKET like systemd.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "integration/daemon/daemon_process.h"
#include "ops/status_client.h"
#include "support/consul/consul_double.h"
#include "support/etcd/etcd_fixture.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"
#include "support/time_scale.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

const std::string kHaproxyCfg =
    HaproxyConfig().frontend("fe", 0, "web").backend("web").backend("api").str();

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of one sample line `name{labels} value` in a Prometheus text body (-1 if absent).
double sample(const std::string& body, const std::string& series) {
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) : path_(path) {
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifyListener() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  // Collects messages until one contains `what` (true) or the timeout passes.
  bool wait_for(const std::string& what, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (const auto& m : messages_) {
        if (m.find(what) != std::string::npos) return true;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) messages_.emplace_back(buf, static_cast<size_t>(n));
    }
  }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<std::string> messages_;
};

class OpsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
    hp_ = std::make_unique<HaproxyFixture>(kHaproxyCfg);
    ASSERT_TRUE(hp_->start().ok()) << hp_->log();
    for (int i = 0; i < 3; ++i) {
      backends_.push_back(std::make_unique<HttpBackend>("b" + std::to_string(i)));
      ASSERT_TRUE(backends_.back()->ok());
    }
    dir_ = hp_->dir();
    metrics_port_ = free_port();
    address_ = "127.0.0.1:" + std::to_string(metrics_port_);
    write_targets("web.json", {0});
    write_targets("api.json", {});
    write_config();
  }

  void write_targets(const std::string& file, const std::vector<int>& which) {
    std::string t;
    for (int i : which) {
      t += (t.empty() ? "\"" : ", \"") + std::string("127.0.0.1:") +
           std::to_string(backends_[static_cast<size_t>(i)]->port()) + "\"";
    }
    write_file_atomic(dir_ + "/" + file, "[{\"targets\": [" + t + "]}]\n");
  }

  void write_config(bool with_api = false) {
    std::string cfg = "haproxy:\n  sockets: [" + hp_->socket_path() +
                      "]\n  timeout: 1s\n"
                      "backends:\n"
                      "  - name: web\n"
                      "    drain_timeout: 0s\n"
                      "    safety: {max_remove_fraction: 1.0}\n"
                      "    sources:\n"
                      "      - file: {path: web.json}\n";
    if (with_api) {
      cfg +=
          "  - name: api\n"
          "    safety: {allow_empty: true}\n"
          "    sources:\n"
          "      - file: {path: api.json}\n";
    }
    cfg += "metrics:\n  listen: \"" + address_ + "\"\n";
    write_file_atomic(dir_ + "/elasticproxy.yaml", cfg);
  }

  void start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"run", "-c", dir_ + "/elasticproxy.yaml", "--log-level",
                                     "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(daemon_.start(args, dir_ + "/ep.log"));
    ASSERT_TRUE(wait_until([&] { return get("/healthz").status == 200; }, 15s)) << daemon_.log();
  }

  ops::HttpGetReply get(const std::string& path) {
    auto r = ops::http_get(address_, path, 2s);
    return r ? *r : ops::HttpGetReply{};
  }

  std::set<std::string> servers(const std::string& backend) {
    std::istringstream in(hp_->admin("show servers state " + backend));
    std::string line;
    std::set<std::string> out;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#' || !std::isdigit(static_cast<unsigned char>(line[0])))
        continue;
      std::istringstream r(line);
      std::string be_id, be_name, srv_id, srv_name;
      // The first line is the format version ("1"): rows have at least four fields.
      if (r >> be_id >> be_name >> srv_id >> srv_name) out.insert(srv_name);
    }
    return out;
  }

  std::string name_of(int i) {
    return "ep-127.0.0.1:" + std::to_string(backends_[static_cast<size_t>(i)]->port());
  }

  std::unique_ptr<HaproxyFixture> hp_;
  std::vector<std::unique_ptr<HttpBackend>> backends_;
  std::string dir_, address_;
  int metrics_port_ = 0;
  DaemonProcess daemon_;
};

TEST_F(OpsE2E, MetricsMatchAScriptedRunAndEndpointsReport) {
  // One server, then two (two adds), then only the second (one removal).
  start({"--log-format", "json"});
  ASSERT_TRUE(wait_until([&] { return servers("web").count(name_of(0)) == 1; })) << daemon_.log();
  write_targets("web.json", {0, 1});
  ASSERT_TRUE(wait_until([&] { return servers("web").size() == 2; })) << daemon_.log();
  write_targets("web.json", {1});
  ASSERT_TRUE(wait_until([&] { return servers("web") == std::set<std::string>{name_of(1)}; }))
      << daemon_.log();
  ASSERT_TRUE(wait_until([&] { return get("/readyz").status == 200; })) << get("/readyz").body;

  const std::string m = get("/metrics").body;
  EXPECT_EQ(sample(m, R"(elasticproxy_changes_applied_total{backend="web",kind="add"})"), 2) << m;
  EXPECT_EQ(sample(m, R"(elasticproxy_changes_applied_total{backend="web",kind="remove"})"), 1)
      << m;
  EXPECT_EQ(sample(m, R"(elasticproxy_backend_servers_desired{backend="web"})"), 1) << m;
  EXPECT_EQ(sample(m, R"(elasticproxy_haproxy_instances_reachable)"), 1) << m;
  EXPECT_EQ(sample(m, R"(elasticproxy_ready)"), 1) << m;
  const std::string src = "file " + dir_ + "/web.json";
  EXPECT_EQ(sample(m, "elasticproxy_source_up{backend=\"web\",source=\"" + src + "\"}"), 1) << m;
  const double last =
      sample(m, "elasticproxy_source_last_success_timestamp_seconds{backend=\"web\",source=\"" +
                    src + "\"}");
  EXPECT_NEAR(last, static_cast<double>(std::time(nullptr)), 60) << m;
  EXPECT_EQ(m.find("elasticproxy_changes_failed_total{"), std::string::npos) << m;

  // /status: desired vs actual per backend and the source's health.
  // "actual" is what the last pass observed before applying; the next pass (within a second,
  // the liveness probe) shows the result.
  nlohmann::json status;
  EXPECT_TRUE(wait_until([&] {
    status = nlohmann::json::parse(get("/status").body, nullptr, false);
    return status.is_object() && status["instances"][0]["backends"][0]["actual"] == 1;
  })) << status.dump(2);
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["ready"], true);
  const auto& web = status["instances"][0]["backends"][0];
  EXPECT_EQ(web["desired"], 1);
  EXPECT_EQ(web["actual"], 1);
  EXPECT_EQ(web["actual_servers"][0]["name"], name_of(1));
  EXPECT_EQ(status["backends"][0]["sources"][0]["healthy"], true);

  // `elasticproxy status` prints it as a table and exits 0 (ready).
  auto cmd = run_elasticproxy({"status", "--address", address_});
  EXPECT_EQ(cmd.exit_code, 0) << cmd.output;
  EXPECT_NE(cmd.output.find("converged"), std::string::npos) << cmd.output;
  EXPECT_NE(cmd.output.find(src), std::string::npos) << cmd.output;
  // ... and reads the address from the config when not given.
  EXPECT_EQ(run_elasticproxy({"status", "-c", dir_ + "/elasticproxy.yaml"}).exit_code, 0);

  // Bad requests against the live daemon: answered, bounded, and the daemon stays up.
  TcpClient big;
  ASSERT_TRUE(big.connect(metrics_port_).ok());
  // The server may close before taking all of it (431 at 8 KiB): a failed send is fine here.
  (void)big.send("GET /metrics HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
  auto big_reply = big.read_to_eof(5s);
  if (big_reply.ok() && big_reply->size() > 12) {
    EXPECT_EQ(big_reply->substr(9, 3), "431");
  }
  EXPECT_EQ(get("/nope").status, 404);
  TcpClient post;
  ASSERT_TRUE(post.connect(metrics_port_).ok());
  ASSERT_TRUE(post.send("DELETE /status HTTP/1.1\r\n\r\n").ok());
  auto post_reply = post.read_to_eof(5s);
  ASSERT_TRUE(post_reply.ok());
  EXPECT_EQ(post_reply->substr(9, 3), "405");
  std::vector<std::unique_ptr<TcpClient>> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(std::make_unique<TcpClient>());
    ASSERT_TRUE(slow.back()->connect(metrics_port_).ok());
    ASSERT_TRUE(slow.back()->send("GET /metr").ok());  // and never more
  }
  EXPECT_EQ(get("/healthz").status, 200);  // others are still served meanwhile
  slow.clear();
  EXPECT_TRUE(daemon_.running());

  // --log-format json: every line of the daemon's output is one JSON object.
  daemon_.signal(SIGTERM);
  EXPECT_EQ(daemon_.wait(), 0);
  std::istringstream lines(daemon_.log());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("msg") && j.contains("level")) << line;
  }
  EXPECT_GT(n, 3);
}

// Issue #14, point 2: idle connections from a local process (the probes' own address) must not
// make /healthz, /readyz or /metrics fail or hang while they are held.
TEST_F(OpsE2E, IdleConnectionsDoNotMakeProbesFail) {
  start();
  ASSERT_TRUE(wait_until([&] { return get("/readyz").status == 200; })) << get("/readyz").body;
  std::vector<std::unique_ptr<TcpClient>> idle;
  for (int i = 0; i < 70; ++i) {
    idle.push_back(std::make_unique<TcpClient>());
    ASSERT_TRUE(idle.back()->connect(metrics_port_).ok());
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    for (int i = 0; i < 20; ++i) {
      auto r = ops::http_get(address_, path, scaled(2000ms));
      ASSERT_TRUE(r.ok()) << path << " probe " << i << ": " << r.error().message;
      EXPECT_EQ(r->status, 200) << path << " probe " << i << ": " << r->body;
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(20s));
  idle.clear();
  EXPECT_TRUE(daemon_.running());
}

// Issue #14, point 9: a name that is not an IP literal or localhost gets 421 (DNS rebinding),
// except on /healthz; every answer says nosniff.
TEST_F(OpsE2E, ForeignHostIsMisdirectedAndEveryAnswerSaysNosniff) {
  start();
  auto raw = [&](const std::string& path, const std::string& host) {
    TcpClient c;
    EXPECT_TRUE(c.connect(metrics_port_).ok());
    EXPECT_TRUE(c.send("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n").ok());
    auto reply = c.read_to_eof(5s);
    return reply.ok() ? *reply : std::string();
  };
  const std::string rebound = "rebound.example:" + std::to_string(metrics_port_);
  for (const char* path : {"/status", "/metrics", "/readyz"}) {
    const std::string reply = raw(path, rebound);
    ASSERT_GT(reply.size(), 12u) << path;
    EXPECT_EQ(reply.substr(9, 3), "421") << path << ": " << reply;
    EXPECT_EQ(reply.find("web.json"), std::string::npos) << reply;
    EXPECT_NE(reply.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos) << reply;
  }
  const std::string health = raw("/healthz", rebound);
  ASSERT_GT(health.size(), 12u);
  EXPECT_EQ(health.substr(9, 3), "200") << health;
  const std::string local = raw("/status", "localhost:" + std::to_string(metrics_port_));
  ASSERT_GT(local.size(), 12u);
  EXPECT_EQ(local.substr(9, 3), "200") << local;
  EXPECT_NE(local.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos) << local;
  daemon_.signal(SIGTERM);
  EXPECT_EQ(daemon_.wait(), 0);
}

// Issue #19: off loopback the dashboard, /status and the action need a token; health and metrics
// stay open. The token is read from a file on SIGHUP, never logged, and the action reaches the
// real pipeline.
TEST_F(OpsE2E, ExposedListenerNeedsTheTokenForDashboardStatusAndAction) {
  auto request = [&](const std::string& method, const std::string& path,
                     const std::string& headers = "") {
    TcpClient c;
    // Not an EXPECT: while SIGHUP restarts the listener a connection may be refused.
    if (!c.connect(metrics_port_).ok()) return std::string();
    if (!c.send(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                std::to_string(metrics_port_) + "\r\n" + headers + "\r\n")
             .ok()) {
      return std::string();
    }
    auto reply = c.read_to_eof(5s);
    return reply.ok() ? *reply : std::string();
  };
  auto status_of = [](const std::string& reply) {
    return reply.size() > 12 ? std::stoi(reply.substr(9, 3)) : 0;
  };
  const std::string exposed = "0.0.0.0:" + std::to_string(metrics_port_);
  auto config = [&](const std::string& metrics_extra) {
    write_config();
    std::string cfg = read_text(dir_ + "/elasticproxy.yaml");
    const std::string from = "listen: \"" + address_ + "\"\n";
    cfg.replace(cfg.find(from), from.size(), "listen: \"" + exposed + "\"\n" + metrics_extra);
    write_file_atomic(dir_ + "/elasticproxy.yaml", cfg);
  };
  config("");
  start();
  EXPECT_EQ(status_of(request("GET", "/")), 403);
  const std::string refused = request("GET", "/status");
  EXPECT_EQ(status_of(refused), 403) << refused;
  EXPECT_EQ(refused.find("web.json"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Content-Security-Policy: default-src 'self'"), std::string::npos)
      << refused;
  EXPECT_NE(refused.find("X-Frame-Options: DENY"), std::string::npos) << refused;
  EXPECT_EQ(
      status_of(request("POST", "/api/guard/confirm?backend=web", "X-ElasticProxy-Action: 1\r\n")),
      403);
  EXPECT_EQ(status_of(request("GET", "/healthz")), 200);
  EXPECT_EQ(status_of(request("GET", "/metrics")), 200);
  EXPECT_EQ(status_of(request("GET", "/dashboard.js")), 200);

  const std::string token = "canary-dashboard-token-8f3a1c";
  write_file_atomic(dir_ + "/token.txt", token + "\n");
  config("  token_file: token.txt\n");
  daemon_.signal(SIGHUP);
  const std::string bearer = "Authorization: Bearer " + token + "\r\n";
  ASSERT_TRUE(wait_until([&] { return status_of(request("GET", "/status", bearer)) == 200; }))
      << daemon_.log();
  EXPECT_EQ(status_of(request("GET", "/status")), 401);
  EXPECT_EQ(status_of(request("GET", "/status", "Authorization: Bearer wrong\r\n")), 401);
  EXPECT_EQ(status_of(request("GET", "/", "Cookie: ep_token=" + token + "\r\n")), 200);
  const std::string form = request("GET", "/");
  EXPECT_EQ(status_of(form), 401);
  EXPECT_NE(form.find("token-form"), std::string::npos) << form;
  // Through the real pipeline: nothing is held, an unknown backend is named.
  // (While the reload swaps daemons the action answers 503 "reloading": wait that out.)
  std::string action;
  ASSERT_TRUE(wait_until([&] {
    action =
        request("POST", "/api/guard/confirm?backend=web", bearer + "X-ElasticProxy-Action: 1\r\n");
    return status_of(action) != 503;
  })) << action;
  EXPECT_EQ(status_of(action), 409) << action;
  EXPECT_NE(action.find("nothing is held"), std::string::npos) << action;
  EXPECT_EQ(status_of(request("POST", "/api/guard/reject?backend=nope",
                              bearer + "X-ElasticProxy-Action: 1\r\n")),
            404);
  EXPECT_EQ(status_of(request("POST", "/api/guard/confirm?backend=web", bearer)), 403);
  daemon_.signal(SIGTERM);
  EXPECT_EQ(daemon_.wait(), 0);
  EXPECT_EQ(daemon_.log().find(token), std::string::npos) << daemon_.log();
}

// Issue #14 point 5: secrets the daemon obtains at run time (CONSUL_HTTP_TOKEN from its
// environment, an etcd password file, the etcd session token) are registered the moment they are
// read: canary values never appear in the log (at debug level), /status, /metrics or
// `elasticproxy status`.
TEST_F(OpsE2E, RuntimeSecretsNeverAppearAnywhere) {
  const std::string consul_canary = "canary-consul-token-7f3a9c";
  const std::string etcd_canary = "canary-etcd-password-51be2d";
  // Static AWS keys in the config (#19: "no AWS key on the page or in the JSON"), for a source
  // whose endpoint refuses connections: its errors reach /status.
  const std::string aws_key_id = "AKIACANARY7F3A9C51BE";
  const std::string aws_secret = "canary-aws-secret-0d4e9b/Xy+Zq";
  test::ConsulDouble consul;
  consul.start();
  consul.set_acl_token(consul_canary);
  test::ConsulService svc;
  svc.id = "api-1";
  svc.name = "api";
  svc.address = "127.0.0.1";
  svc.port = backends_[1]->port();
  consul.register_service(svc);
  test::EtcdFixture etcd{test::EtcdFixture::Options{}};
  ASSERT_TRUE(etcd.start().ok());
  ASSERT_TRUE(etcd.enable_auth("root-pw-for-the-test", "ep", etcd_canary, "/svc/api/").ok());
  ASSERT_TRUE(etcd.put("/svc/api/b2", "127.0.0.1:" + std::to_string(backends_[2]->port())).ok());
  write_file(dir_ + "/etcd.pw", etcd_canary + "\n");
  std::string cfg = "haproxy:\n  sockets: [" + hp_->socket_path() +
                    "]\n  timeout: 1s\n"
                    "backends:\n"
                    "  - name: web\n"
                    "    sources:\n"
                    "      - file: {path: web.json}\n"
                    "      - aws_asg: {groups: [web-asg], region: eu-west-1, access_key_id: " +
                    aws_key_id + ", secret_access_key: '" + aws_secret +
                    "', allow_insecure: true, endpoints: {autoscaling: 'http://127.0.0.1:1', "
                    "ec2: 'http://127.0.0.1:1'}}\n"
                    "  - name: api\n"
                    "    sources:\n"
                    "      - consul: {service: api, address: '" +
                    consul.url() +
                    "'}\n"
                    "      - etcd: {endpoints: ['" +
                    etcd.url() +
                    "'], prefix: /svc/api/, username: ep, password_file: etcd.pw}\n"
                    "metrics:\n  listen: \"" +
                    address_ + "\"\n";
  write_file_atomic(dir_ + "/elasticproxy.yaml", cfg);
  ::setenv("CONSUL_HTTP_TOKEN", consul_canary.c_str(), 1);
  start();
  ::unsetenv("CONSUL_HTTP_TOKEN");
  ASSERT_TRUE(wait_until([&] { return servers("api").size() == 2; }, 20s)) << daemon_.log();

  // The AWS source has tried and failed at least once (its error is in /status).
  auto aws_failed = [&] {
    const auto doc = nlohmann::json::parse(get("/status").body, nullptr, false);
    if (doc.is_discarded()) return false;
    for (const auto& b : doc["backends"]) {
      for (const auto& src : b["sources"]) {
        if (src.value("source", "").find("aws") != std::string::npos &&
            src.contains("last_error")) {
          return true;
        }
      }
    }
    return false;
  };
  ASSERT_TRUE(wait_until(aws_failed, 20s)) << get("/status").body;
  const std::string status = get("/status").body;
  const std::string metrics = get("/metrics").body;
  const std::string page = get("/").body + get("/dashboard.js").body;
  auto cli = run_elasticproxy({"status", "--address", address_});
  EXPECT_NE(status.find("consul"), std::string::npos) << status;
  EXPECT_NE(metrics.find("elasticproxy_"), std::string::npos);
  EXPECT_NE(cli.output.find("api"), std::string::npos) << cli.output;
  daemon_.signal(SIGTERM);
  EXPECT_EQ(daemon_.wait(), 0);
  const std::string log = daemon_.log();
  EXPECT_NE(page.find("ElasticProxy"), std::string::npos) << page;
  for (const std::string& canary : {consul_canary, etcd_canary, aws_key_id, aws_secret}) {
    EXPECT_EQ(log.find(canary), std::string::npos) << canary << " in the log";
    EXPECT_EQ(status.find(canary), std::string::npos) << canary << " in /status";
    EXPECT_EQ(page.find(canary), std::string::npos) << canary << " on the page";
    EXPECT_EQ(metrics.find(canary), std::string::npos) << canary << " in /metrics";
    EXPECT_EQ(cli.output.find(canary), std::string::npos) << canary << " in elasticproxy status";
  }
}

TEST_F(OpsE2E, SighupAppliesAGoodConfigAndKeepsTheOldOneOnABadOne) {
  start();
  ASSERT_TRUE(wait_until([&] { return servers("web").count(name_of(0)) == 1; })) << daemon_.log();

  // Good: a second backend appears; the first keeps its server (state not dropped).
  write_targets("api.json", {2});
  write_config(/*with_api=*/true);
  daemon_.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return servers("api").count(name_of(2)) == 1; })) << daemon_.log();
  EXPECT_EQ(servers("web"), std::set<std::string>{name_of(0)});
  EXPECT_NE(daemon_.log().find("configuration reloaded"), std::string::npos);
  EXPECT_TRUE(wait_until([&] { return get("/readyz").status == 200; }));

  // Bad: refused with the reason, and the old configuration keeps running.
  write_file_atomic(dir_ + "/elasticproxy.yaml",
                    "haproxy:\n  sockets: [" + hp_->socket_path() +
                        "]\nbackends:\n  - name: web\n    bogus_key: 1\n    sources: []\n");
  daemon_.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    return daemon_.log().find("new configuration rejected") != std::string::npos;
  })) << daemon_.log();
  EXPECT_NE(daemon_.log().find("bogus_key"), std::string::npos) << daemon_.log();
  EXPECT_TRUE(daemon_.running());
  // Still following discovery on the old configuration (both backends).
  write_targets("web.json", {0, 1});
  write_targets("api.json", {1, 2});
  EXPECT_TRUE(wait_until([&] { return servers("web").size() == 2 && servers("api").size() == 2; }))
      << daemon_.log();
  EXPECT_EQ(get("/healthz").status, 200);
  daemon_.signal(SIGTERM);
  EXPECT_EQ(daemon_.wait(), 0);
}

TEST_F(OpsE2E, ASecondInstanceForTheSameHaproxyIsRefused) {
  start();
  // Another config file, other port, same admin socket: refused with a distinct exit code.
  std::string other = dir_ + "/other.yaml";
  write_file(other,
             "haproxy:\n  sockets: [" + hp_->socket_path() +
                 "]\nbackends:\n  - name: web\n    sources:\n      - file: {path: web.json}\n"
                 "metrics: {enabled: false}\n");
  auto second = run_elasticproxy({"run", "-c", other}, 10s);
  EXPECT_EQ(second.exit_code, 3) << second.output;
  EXPECT_NE(second.output.find("already manages"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find(hp_->socket_path()), std::string::npos) << second.output;
  // `once` changes HAProxy too: refused next to a running daemon.
  auto once = run_elasticproxy({"once", "-c", other}, 10s);
  EXPECT_EQ(once.exit_code, 3) << once.output;
  EXPECT_TRUE(daemon_.running());
  // Once the first stops, the lock is free.
  daemon_.signal(SIGTERM);
  ASSERT_EQ(daemon_.wait(), 0);
  DaemonProcess again;
  ASSERT_TRUE(again.start({"run", "-c", other}, dir_ + "/again.log"));
  EXPECT_TRUE(wait_until([&] { return again.log().find("running:") != std::string::npos; }))
      << again.log();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait(), 0) << again.log();
}

TEST_F(OpsE2E, NotifiesSystemdReadyWatchdogStatusAndStopping) {
  NotifyListener listener("/tmp/ep-ntf-" + std::to_string(getpid()) + ".sock");
  ASSERT_TRUE(listener.ok());
  setenv("NOTIFY_SOCKET", ("/tmp/ep-ntf-" + std::to_string(getpid()) + ".sock").c_str(), 1);
  setenv("WATCHDOG_USEC", "1000000", 1);
  start();
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  EXPECT_TRUE(listener.wait_for("READY=1\nSTATUS=converged")) << daemon_.log();
  EXPECT_TRUE(listener.wait_for("WATCHDOG=1"));
  // READY only once convergence was reached: HAProxy has the server by then.
  EXPECT_EQ(servers("web").count(name_of(0)), 1u);
  daemon_.signal(SIGHUP);
  EXPECT_TRUE(listener.wait_for("RELOADING=1"));
  EXPECT_TRUE(listener.wait_for("STATUS=configuration reloaded"));
  daemon_.signal(SIGTERM);
  EXPECT_TRUE(listener.wait_for("STOPPING=1"));
  EXPECT_EQ(daemon_.wait(), 0);
}

}  // namespace
}  // namespace ep::test
