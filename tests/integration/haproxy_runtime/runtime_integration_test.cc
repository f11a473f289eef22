// RuntimeInstance against the real HAProxy binary (2.6, or 3.0 under `make test-haproxy3`): every
// action kind in dynamic mode (roundrobin, add/del server) and slot mode (static-rr
// server-template), health-gated enable, drain with a held connection, refusals carrying HAProxy's
// text, 1,000 adds in one apply.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "haproxy/runtime/runtime_instance.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"

namespace ep::haproxy {
namespace {

using reconcile::Action;
using reconcile::ActionKind;
using reconcile::ActionResult;
using reconcile::BackendMode;
using reconcile::BackendPolicy;
using reconcile::Plan;
using Outcome = ActionResult::Outcome;
using std::chrono::milliseconds;
using test::HaproxyConfig;
using test::HaproxyFixture;
using test::HttpBackend;

const std::string kConfig =
    HaproxyConfig()
        .global("stats timeout 10s")
        .listen("web", 0)
        .listen("slots", 1, "static-rr",
                {"server-template ep- 4 127.0.0.1:1 check inter 500ms disabled"})
        .str();

std::string outcome_text(const ActionResult& r) {
  const char* o = r.outcome == Outcome::kDone     ? "done"
                  : r.outcome == Outcome::kNotYet ? "not-yet"
                                                  : "failed";
  return std::string(o) + ": " + r.message;
}

ServerSpec spec_for(const std::string& address, int port, int weight = 1) {
  ServerSpec s;
  s.address = address;
  s.port = static_cast<std::uint16_t>(port);
  s.weight = weight;
  s.name = "ep-" + address + ":" + std::to_string(port);
  return s;
}

class RuntimeIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
    hp_ = std::make_unique<HaproxyFixture>(kConfig);
    auto st = hp_->start();
    ASSERT_TRUE(st.ok()) << st.error().message;
    inst_ = std::make_unique<RuntimeInstance>(hp_->socket_path(), milliseconds(2000));
  }

  Plan plan(const std::string& backend, BackendMode mode, bool checks) {
    Plan p;
    p.backend = backend;
    p.mode = mode;
    p.checks = checks;
    return p;
  }

  BackendPolicy policy(const std::string& backend, const std::string& options) {
    BackendPolicy p;
    p.name = backend;
    p.server_options = options;
    p.slots = backend == "slots" ? 4 : 0;
    return p;
  }

  // Runs one action and returns its result.
  ActionResult run(Plan p, const BackendPolicy& pol, ActionKind kind, const std::string& server,
                   ServerSpec spec = {}) {
    p.actions = {Action{kind, server, std::move(spec), reconcile::Reason::kNewInDiscovery, {}}};
    auto results = inst_->apply(p, pol);
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? ActionResult{Outcome::kFailed, "no result"} : results[0];
  }

  std::optional<ActualServer> server(const std::string& backend, const std::string& name) {
    auto obs = inst_->observe({backend});
    EXPECT_TRUE(obs.ok()) << (obs.ok() ? "" : obs.error().message);
    if (!obs.ok()) return std::nullopt;
    for (const auto& s : obs->at(0).servers) {
      if (s.name == name) return s;
    }
    return std::nullopt;
  }

  // `show stat` status of one server ("UP", "DOWN", "DOWN 1/2", ...).
  std::string status(const std::string& backend, const std::string& name) {
    std::string csv = hp_->admin("show stat " + backend + " -1 -1");
    std::size_t pos = csv.find("\n" + backend + "," + name + ",");
    if (pos == std::string::npos) return "<absent>";
    std::string row = csv.substr(pos + 1, csv.find('\n', pos + 1) - pos - 1);
    int field = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= row.size(); ++i) {
      if (i == row.size() || row[i] == ',') {
        if (field == 17) return row.substr(start, i - start);
        ++field;
        start = i + 1;
      }
    }
    return "<short row>";
  }

  bool wait_status(const std::string& backend, const std::string& name, const std::string& want,
                   milliseconds timeout = milliseconds(5000)) {
    return test::eventually([&] { return status(backend, name) == want; }, timeout);
  }

  // What the reconciler does with a server that left maintenance with checks (DRAIN + health
  // down): wait until HAProxy reports a passed check, then set it ready.
  bool warm_up(const Plan& p, const BackendPolicy& pol, const std::string& name,
               milliseconds timeout = milliseconds(5000)) {
    const bool checked = test::eventually(
        [&] {
          auto s = server(pol.name, name);
          return s && s->draining() && s->health_passed();
        },
        timeout);
    if (!checked) return false;
    if (status(pol.name, name) != "DRAIN") return false;  // drained: no traffic meanwhile
    return run(p, pol, ActionKind::kUndrain, name).outcome == Outcome::kDone &&
           wait_status(pol.name, name, "UP");
  }

  std::unique_ptr<HaproxyFixture> hp_;
  std::unique_ptr<RuntimeInstance> inst_;
};

TEST_F(RuntimeIntegration, InfoReportsPidAndStartTime) {
  auto info = inst_->info();
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->pid, hp_->pid());
  // The version `show info` reports is the binary's own (`haproxy -v`): 2.6 on Debian 12, 3.0
  // under `make test-haproxy3`.
  const auto& v = test::haproxy_version();
  ASSERT_GE(v.major, 2) << "haproxy -v of " << test::haproxy_binary();
  EXPECT_EQ(info->major, v.major);
  EXPECT_EQ(info->minor, v.minor);
  EXPECT_TRUE(info->major > 2 || info->minor >= 6) << "older than 2.6: " << v.text();
  EXPECT_GT(info->start_time_sec, 1600000000);
  EXPECT_EQ(inst_->name(), hp_->socket_path());

  hp_->kill9();
  auto down = inst_->info();
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(down.error().message.find(hp_->socket_path()), std::string::npos);

  ASSERT_TRUE(hp_->start().ok()) << hp_->log();
  auto again = inst_->info();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->pid, hp_->pid());
  EXPECT_NE(again->pid, info->pid);
  EXPECT_GE(again->start_time_sec, info->start_time_sec);
}

TEST_F(RuntimeIntegration, FixtureStopsAndRestarts) {
  pid_t first = hp_->pid();
  EXPECT_NE(hp_->admin("show info").find("Pid: " + std::to_string(first)), std::string::npos);
  ASSERT_TRUE(hp_->stop().ok());
  EXPECT_FALSE(hp_->running());
  EXPECT_NE(::kill(first, 0), 0);  // reaped, gone
  EXPECT_EQ(hp_->admin("show info").rfind("ERROR: ", 0), 0u);
  ASSERT_TRUE(hp_->restart().ok()) << hp_->log();
  EXPECT_NE(hp_->pid(), first);
  EXPECT_NE(hp_->admin("show info").find("Pid: " + std::to_string(hp_->pid())), std::string::npos);
}

TEST(HaproxyFixture, BadConfigFailsWithHaproxyAlert) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyFixture hp("global\n  stats socket @SOCKET@ level admin\nbackend b\n  bogus-keyword\n");
  auto st = hp.start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("bogus-keyword"), std::string::npos) << st.error().message;
  EXPECT_FALSE(hp.running());
}

TEST_F(RuntimeIntegration, ObserveMissingBackendAndAlgorithms) {
  auto obs = inst_->observe({"web", "nosuchbackend", "slots"});
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  ASSERT_EQ(obs->size(), 3u);
  EXPECT_TRUE((*obs)[0].exists);
  EXPECT_EQ((*obs)[0].algorithm, "roundrobin");
  EXPECT_TRUE((*obs)[0].servers.empty());
  EXPECT_FALSE((*obs)[1].exists);
  EXPECT_EQ((*obs)[1].backend, "nosuchbackend");
  EXPECT_TRUE((*obs)[2].exists);
  EXPECT_EQ((*obs)[2].algorithm, "static-rr");
  ASSERT_EQ((*obs)[2].servers.size(), 4u);
  for (const auto& s : (*obs)[2].servers) {
    EXPECT_TRUE(s.in_maint()) << s.name;
    EXPECT_EQ(s.port, 1);
  }
}

TEST_F(RuntimeIntegration, DynamicAddWithoutChecksServesTraffic) {
  HttpBackend a("alpha");
  ASSERT_TRUE(a.ok());
  auto spec = spec_for("127.0.0.1", a.port(), 5);
  auto r = run(plan("web", BackendMode::kDynamic, false), policy("web", ""), ActionKind::kAdd,
               spec.name, spec);
  ASSERT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  auto s = server("web", spec.name);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->in_maint());
  EXPECT_EQ(s->weight, 5);
  EXPECT_EQ(s->address, "127.0.0.1");
  EXPECT_EQ(s->port, a.port());
  auto reply = test::http_get(hp_->port(0), "/");
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "alpha");
  EXPECT_EQ(a.requests(), 1);
}

TEST_F(RuntimeIntegration, HealthGatedAddNeverServesBeforeItsCheckPasses) {
  HttpBackend live("live");
  ASSERT_TRUE(live.ok());
  int dead_port = test::free_port();  // nothing listens there
  auto live_spec = spec_for("127.0.0.1", live.port());
  auto dead_spec = spec_for("127.0.0.1", dead_port);
  Plan p = plan("web", BackendMode::kDynamic, true);
  p.actions = {
      {ActionKind::kAdd, dead_spec.name, dead_spec, reconcile::Reason::kNewInDiscovery, {}},
      {ActionKind::kAdd, live_spec.name, live_spec, reconcile::Reason::kNewInDiscovery, {}}};
  const auto pol = policy("web", "check inter 500ms rise 2 fall 2");
  auto results = inst_->apply(p, pol);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].outcome, Outcome::kDone) << outcome_text(results[0]);
  EXPECT_EQ(results[1].outcome, Outcome::kDone) << outcome_text(results[1]);

  // Right after the enable, neither is UP: no traffic before a check passes.
  EXPECT_EQ(status("web", dead_spec.name).rfind("DOWN", 0), 0u) << status("web", dead_spec.name);
  EXPECT_EQ(status("web", live_spec.name).rfind("DOWN", 0), 0u) << status("web", live_spec.name);

  // The live one passes its checks while still in DRAIN; the dead one never does.
  ASSERT_TRUE(warm_up(p, pol, live_spec.name)) << status("web", live_spec.name);
  EXPECT_FALSE(server("web", dead_spec.name)->health_passed());
  for (int i = 0; i < 10; ++i) {
    auto reply = test::http_get(hp_->port(0), "/");
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, "live");
  }
  EXPECT_EQ(status("web", dead_spec.name), "DOWN");
  EXPECT_GE(live.requests(), 10);
}

TEST_F(RuntimeIntegration, DynamicUpdateKindsAndRemove) {
  HttpBackend a("alpha"), b("beta");
  ASSERT_TRUE(a.ok() && b.ok());
  auto spec = spec_for("127.0.0.1", a.port());
  Plan p = plan("web", BackendMode::kDynamic, false);
  auto pol = policy("web", "");
  ASSERT_EQ(run(p, pol, ActionKind::kAdd, spec.name, spec).outcome, Outcome::kDone);

  ServerSpec heavier = spec;
  heavier.weight = 42;
  auto r = run(p, pol, ActionKind::kSetWeight, spec.name, heavier);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_EQ(server("web", spec.name)->weight, 42);

  ServerSpec moved = heavier;
  moved.port = static_cast<std::uint16_t>(b.port());
  r = run(p, pol, ActionKind::kSetAddress, spec.name, moved);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_NE(r.message.find("port changed from"), std::string::npos) << r.message;
  EXPECT_EQ(server("web", spec.name)->port, b.port());
  auto reply = test::http_get(hp_->port(0), "/");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->body, "beta");

  r = run(p, pol, ActionKind::kDrain, spec.name);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_TRUE(server("web", spec.name)->draining());

  r = run(p, pol, ActionKind::kUndrain, spec.name, moved);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_FALSE(server("web", spec.name)->draining());

  ASSERT_EQ(hp_->admin("set server web/" + spec.name + " state maint"), "\n");
  EXPECT_TRUE(server("web", spec.name)->in_maint());
  r = run(p, pol, ActionKind::kEnable, spec.name, moved);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_FALSE(server("web", spec.name)->in_maint());

  r = run(p, pol, ActionKind::kRemove, spec.name);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_FALSE(server("web", spec.name).has_value());
  EXPECT_EQ(hp_->admin("show servers state web").find(spec.name), std::string::npos);

  // Acting on a server that is gone is a failure with HAProxy's text.
  r = run(p, pol, ActionKind::kSetWeight, spec.name, heavier);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.message.find("No such server."), std::string::npos) << r.message;
}

TEST_F(RuntimeIntegration, EnableWithChecksOnDynamicServerWaitsForCheck) {
  HttpBackend a("alpha");
  ASSERT_TRUE(a.ok());
  auto spec = spec_for("127.0.0.1", a.port());
  Plan p = plan("web", BackendMode::kDynamic, true);
  auto pol = policy("web", "check inter 500ms");
  ASSERT_EQ(run(p, pol, ActionKind::kAdd, spec.name, spec).outcome, Outcome::kDone);
  ASSERT_TRUE(warm_up(p, pol, spec.name)) << status("web", spec.name);
  ASSERT_EQ(hp_->admin("set server web/" + spec.name + " state maint"), "\n");
  auto r = run(p, pol, ActionKind::kEnable, spec.name, spec);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_EQ(status("web", spec.name).rfind("DOWN", 0), 0u) << status("web", spec.name);
  EXPECT_TRUE(warm_up(p, pol, spec.name)) << status("web", spec.name);
}

TEST_F(RuntimeIntegration, RemoveCutsAHeldSessionThenDeletes) {
  HttpBackend a("alpha");
  ASSERT_TRUE(a.ok());
  auto spec = spec_for("127.0.0.1", a.port());
  Plan p = plan("web", BackendMode::kDynamic, false);
  auto pol = policy("web", "");
  ASSERT_EQ(run(p, pol, ActionKind::kAdd, spec.name, spec).outcome, Outcome::kDone);

  test::TcpClient client;
  ASSERT_TRUE(client.connect(hp_->port(0)).ok());
  ASSERT_TRUE(client.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  test::eventually([&] { return a.held() >= 1; }, std::chrono::seconds(5));
  ASSERT_EQ(a.held(), 1);

  auto r = run(p, pol, ActionKind::kDrain, spec.name);
  ASSERT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  auto s = server("web", spec.name);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->draining());
  EXPECT_EQ(s->sessions, 1);

  r = run(p, pol, ActionKind::kRemove, spec.name);
  std::printf("[ note ] remove with a held session: %s\n", outcome_text(r).c_str());
  if (r.outcome == Outcome::kNotYet) {
    EXPECT_NE(r.message.find("Server still has connections attached to it"), std::string::npos);
    EXPECT_TRUE(server("web", spec.name)->in_maint());
  } else {
    EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  }
  // `shutdown sessions server` cut the held session: the backend sees its connection close.
  test::eventually([&] { return a.held() <= 0; }, std::chrono::seconds(5));
  EXPECT_EQ(a.held(), 0);

  // A later pass removes it for good (each poll runs one more pass; "not yet" until then).
  test::eventually(
      [&] {
        if (!server("web", spec.name).has_value()) return true;
        r = run(p, pol, ActionKind::kRemove, spec.name);
        return r.outcome != Outcome::kNotYet;
      },
      std::chrono::seconds(5));
  ASSERT_TRUE(r.outcome == Outcome::kDone || r.outcome == Outcome::kNotYet) << outcome_text(r);
  EXPECT_FALSE(server("web", spec.name).has_value());
}

TEST_F(RuntimeIntegration, AddRefusedByStaticRrCarriesHaproxyText) {
  auto spec = spec_for("127.0.0.1", 8080);
  auto r = run(plan("slots", BackendMode::kDynamic, true), policy("slots", "check"),
               ActionKind::kAdd, spec.name, spec);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.message.find("Backend must use a dynamic load balancing to support dynamic "
                           "servers."),
            std::string::npos)
      << r.message;
  EXPECT_EQ(r.message.find("No such server."), std::string::npos) << r.message;
}

// Version-specific, both sides pinned: `add server … cookie` is refused by HAProxy 2.6 with its
// own text (the action fails with it, nothing is added) and accepted by 3.0 (the server is added
// with the cookie). docs/haproxy-runtime.md, "Versions".
TEST_F(RuntimeIntegration, AddServerCookieRefusedOn26AcceptedOn30) {
  auto spec = spec_for("127.0.0.1", 8080);
  auto r = run(plan("web", BackendMode::kDynamic, false), policy("web", "cookie abc"),
               ActionKind::kAdd, spec.name, spec);
  if (test::haproxy_version().at_least(3, 0)) {
    EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
    EXPECT_TRUE(server("web", spec.name).has_value());
    const std::string stat = hp_->admin("show stat web 4 -1");  // `cookie` column of the server
    EXPECT_NE(stat.find(",abc,"), std::string::npos) << stat;
  } else {
    EXPECT_EQ(r.outcome, Outcome::kFailed);
    EXPECT_NE(r.message.find("'cookie' option is not accepted for dynamic server"),
              std::string::npos)
        << r.message;
    EXPECT_FALSE(server("web", spec.name).has_value());
  }
}

// A keyword no version accepts on `add server` still fails with HAProxy's own text.
TEST_F(RuntimeIntegration, AddWithAnUnknownKeywordFailsWithHaproxyText) {
  auto spec = spec_for("127.0.0.1", 8080);
  auto r = run(plan("web", BackendMode::kDynamic, false), policy("web", "nosuchkeyword 1"),
               ActionKind::kAdd, spec.name, spec);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.message.find("nosuchkeyword"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("No such server."), std::string::npos) << r.message;
  EXPECT_FALSE(server("web", spec.name).has_value());
}

TEST_F(RuntimeIntegration, SlotModeKinds) {
  HttpBackend a("alpha"), b("beta");
  ASSERT_TRUE(a.ok() && b.ok());
  Plan p = plan("slots", BackendMode::kSlots, true);
  auto pol = policy("slots", "check inter 500ms");
  auto spec = spec_for("127.0.0.1", a.port());

  auto r = run(p, pol, ActionKind::kAssignSlot, "ep-1", spec);
  ASSERT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_NE(r.message.find("changed from"), std::string::npos) << r.message;
  EXPECT_EQ(status("slots", "ep-1").rfind("DOWN", 0), 0u) << status("slots", "ep-1");
  ASSERT_TRUE(warm_up(p, pol, "ep-1")) << status("slots", "ep-1");
  auto reply = test::http_get(hp_->port(1), "/");
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->body, "alpha");

  // static-rr refuses absolute weights: the applier falls back to 0%/100% and says so.
  ServerSpec w = spec;
  w.weight = 7;
  r = run(p, pol, ActionKind::kSetWeight, "ep-1", w);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_NE(r.message.find("100%"), std::string::npos) << r.message;

  ServerSpec moved = spec;
  moved.port = static_cast<std::uint16_t>(b.port());
  r = run(p, pol, ActionKind::kSetAddress, "ep-1", moved);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  reply = test::http_get(hp_->port(1), "/");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->body, "beta");

  r = run(p, pol, ActionKind::kDrain, "ep-1");
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_TRUE(server("slots", "ep-1")->draining());
  r = run(p, pol, ActionKind::kUndrain, "ep-1", moved);
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_FALSE(server("slots", "ep-1")->draining());

  r = run(p, pol, ActionKind::kRemove, "ep-1");
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  auto s = server("slots", "ep-1");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->in_maint());
  EXPECT_EQ(s->address, reconcile::kSlotPlaceholderAddr);
  EXPECT_EQ(s->port, reconcile::kSlotPlaceholderPort);

  r = run(p, pol, ActionKind::kEnable, "ep-1", moved);  // slot re-enabled in place
  EXPECT_EQ(r.outcome, Outcome::kDone) << outcome_text(r);
  EXPECT_FALSE(server("slots", "ep-1")->in_maint());
}

TEST_F(RuntimeIntegration, SlotWhoseAddressIsRefusedIsNotEnabled) {
  Plan p = plan("slots", BackendMode::kSlots, true);
  auto pol = policy("slots", "check inter 500ms");
  auto r = run(p, pol, ActionKind::kAssignSlot, "ep-9", spec_for("127.0.0.1", 8080));
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.message.find("No such server."), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("not enabled"), std::string::npos) << r.message;
  for (int i = 1; i <= 4; ++i) EXPECT_TRUE(server("slots", "ep-" + std::to_string(i))->in_maint());
}

TEST_F(RuntimeIntegration, ThousandAddsInOneApply) {
  Plan p = plan("web", BackendMode::kDynamic, true);
  auto pol = policy("web", "check inter 5s");
  for (int i = 0; i < 1000; ++i) {
    // Loopback addresses only; nothing listens, checks simply fail.
    auto spec =
        spec_for("127.0." + std::to_string(10 + i / 250) + "." + std::to_string(1 + i % 250), 9);
    p.actions.push_back(
        {ActionKind::kAdd, spec.name, spec, reconcile::Reason::kNewInDiscovery, {}});
  }
  auto start = std::chrono::steady_clock::now();
  auto results = inst_->apply(p, pol);
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_EQ(results.size(), 1000u);
  int done = 0;
  for (const auto& r : results) {
    done += r.outcome == Outcome::kDone;
    if (r.outcome != Outcome::kDone) ADD_FAILURE() << outcome_text(r);
  }
  EXPECT_EQ(done, 1000);
  std::printf(
      "[ note ] 1000 add-server actions (add + enable health + ready;health down = 3,000 "
      "commands, one connection) took %.1f ms on this machine (informational, not asserted)\n",
      elapsed.count() / 1000.0);
  auto obs = inst_->observe({"web"});
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  ASSERT_EQ(obs->at(0).servers.size(), 1000u);
  for (const auto& s : obs->at(0).servers) {
    EXPECT_FALSE(s.in_maint()) << s.name;
    EXPECT_TRUE(s.check_configured()) << s.name;
  }
}

}  // namespace
}  // namespace ep::haproxy
