#include "reconcile/reconciler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"
#include "core/metrics.h"
#include "fake_instance.h"
#include "support/eventually.h"
#include "support/time_scale.h"

namespace ep::reconcile {
namespace {

using ep::testing::FakeInstance;

using ep::test::eventually;

ServerSpec spec(const std::string& addr, int port, int weight = 1) {
  ServerSpec s;
  s.address = addr;
  s.port = static_cast<uint16_t>(port);
  s.weight = weight;
  s.name = "ep-" + addr + ":" + std::to_string(port);
  return s;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = std::make_unique<FakeInstance>("a");
    auto b = std::make_unique<FakeInstance>("b");
    a->backends["web"] = {};
    b->backends["web"] = {};
    inst_a_ = a.get();
    inst_b_ = b.get();
    std::vector<std::unique_ptr<Instance>> instances;
    instances.push_back(std::move(a));
    instances.push_back(std::move(b));
    BackendPolicy p;
    p.name = "web";
    p.drain_timeout = std::chrono::seconds(30);
    ReconcilerOptions o;
    o.retry_min = std::chrono::milliseconds(100);
    rec_ = std::make_unique<Reconciler>(std::vector<BackendPolicy>{p}, std::move(instances), clock_,
                                        o);
  }

  FakeClock clock_;
  FakeInstance* inst_a_ = nullptr;
  FakeInstance* inst_b_ = nullptr;
  std::unique_ptr<Reconciler> rec_;
};

// A managed server someone else put in maintenance after we had it serving stays there (no
// enable), is shown in status, and is managed again once it is out of maintenance.
TEST_F(ReconcilerTest, OperatorsMaintenanceIsLeftUntilTheOperatorEnablesIt) {
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock_.now());
  ASSERT_TRUE(rec_->run_pass(false).converged);
  auto set_admin = [&](const std::string& name, int admin) {
    for (auto& s : inst_a_->backends["web"]) {
      if (s.name == name) s.admin_state = admin;
    }
  };
  auto admin_of = [&](const std::string& name) {
    for (auto& s : inst_a_->backends["web"]) {
      if (s.name == name) return s.admin_state;
    }
    return -1;
  };
  set_admin("ep-10.0.0.1:80", admin::kForcedMaint);  // `disable server web/ep-10.0.0.1:80`
  inst_a_->log.clear();
  for (int i = 0; i < 3; ++i) {
    PassReport r = rec_->run_pass(true);
    EXPECT_TRUE(r.converged);
    EXPECT_EQ(admin_of("ep-10.0.0.1:80"), admin::kForcedMaint);
  }
  EXPECT_TRUE(inst_a_->log.empty());
  auto st = rec_->status();
  EXPECT_EQ(st[0].backends[0].operator_maint, (std::vector<std::string>{"ep-10.0.0.1:80"}));
  EXPECT_TRUE(st[1].backends[0].operator_maint.empty());
  // A weight change still reaches the other server.
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80, 9)}, true, clock_.now());
  rec_->run_pass(false);
  EXPECT_EQ(admin_of("ep-10.0.0.1:80"), admin::kForcedMaint);
  // The operator enables it: managed again (a later maintenance by hand is noticed again).
  set_admin("ep-10.0.0.1:80", 0);
  rec_->run_pass(true);
  EXPECT_TRUE(rec_->status()[0].backends[0].operator_maint.empty());
  set_admin("ep-10.0.0.1:80", admin::kForcedMaint);
  rec_->run_pass(true);
  EXPECT_EQ(admin_of("ep-10.0.0.1:80"), admin::kForcedMaint);
  EXPECT_EQ(rec_->status()[0].backends[0].operator_maint.size(), 1u);
  // Gone from discovery: removed as usual.
  rec_->publish(0, {spec("10.0.0.2", 80, 9)}, true, clock_.now());
  rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web"), (std::vector<std::string>{"ep-10.0.0.2:80"}));
  EXPECT_TRUE(rec_->status()[0].backends[0].operator_maint.empty());
}

// Without memory (a server found in maintenance at our first look, e.g. an add interrupted by a
// crash) a desired server is enabled, as before.
TEST_F(ReconcilerTest, DesiredServerFoundInMaintenanceAtFirstSightIsEnabled) {
  ActualServer s;
  s.name = "ep-10.0.0.1:80";
  s.address = "10.0.0.1";
  s.port = 80;
  s.admin_state = admin::kForcedMaint;
  s.op_state = 2;
  inst_a_->backends["web"].push_back(s);
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  rec_->run_pass(true);
  EXPECT_EQ(inst_a_->backends["web"][0].admin_state & admin::kMaintMask, 0);
  EXPECT_TRUE(rec_->status()[0].backends[0].operator_maint.empty());
}

// After a HAProxy restart nothing is the operator's any more: a server that comes back in
// maintenance (from the config) is enabled.
TEST_F(ReconcilerTest, HaproxyRestartForgetsTheOperatorsMaintenance) {
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  ASSERT_TRUE(rec_->run_pass(false).converged);
  inst_a_->backends["web"][0].admin_state = admin::kForcedMaint;
  rec_->run_pass(true);
  ASSERT_EQ(rec_->status()[0].backends[0].operator_maint.size(), 1u);
  inst_a_->pid += 1;  // restarted; the server is back in maintenance from its config
  rec_->run_pass(true);
  EXPECT_EQ(inst_a_->backends["web"][0].admin_state & admin::kMaintMask, 0);
  EXPECT_TRUE(rec_->status()[0].backends[0].operator_maint.empty());
}

TEST_F(ReconcilerTest, BackendNotReadyIsNotTouched) {
  inst_a_->backends["web"].push_back({"ep-10.9.9.9:80", "10.9.9.9", 80});
  PassReport r = rec_->run_pass(true);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(inst_a_->names("web"), (std::vector<std::string>{"ep-10.9.9.9:80"}));
  EXPECT_TRUE(inst_a_->log.empty());
}

TEST_F(ReconcilerTest, EveryInstanceConverges) {
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock_.now());
  PassReport r = rec_->run_pass(false);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.actions_done, 4u);
  const std::vector<std::string> want{"ep-10.0.0.1:80", "ep-10.0.0.2:80"};
  EXPECT_EQ(inst_a_->names("web"), want);
  EXPECT_EQ(inst_b_->names("web"), want);
  EXPECT_TRUE(rec_->converged());
  // A second pass has nothing to do.
  inst_a_->log.clear();
  EXPECT_EQ(rec_->run_pass(true).actions_done, 0u);
  EXPECT_TRUE(inst_a_->log.empty());
}

TEST_F(ReconcilerTest, RemovalWaitsForDrainThenRemoves) {
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock_.now());
  (void)rec_->run_pass(false);
  inst_a_->with_lock([&] {
    for (auto& s : inst_a_->backends["web"]) s.sessions = 2;
    return 0;
  });
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  const SteadyTime drain_started = clock_.now();
  PassReport r = rec_->run_pass(false);
  EXPECT_EQ(r.waiting_drains, 0u);  // drain just started
  auto st = rec_->status();
  EXPECT_EQ(st[0].backends[0].draining, 0u);       // status is what was observed before the drain
  clock_.advance(std::chrono::milliseconds(100));  // drain_poll
  r = rec_->run_pass(false);
  EXPECT_EQ(r.waiting_drains, 1u);  // still has sessions
  EXPECT_EQ(inst_a_->names("web").size(), 2u);
  // /status times the drain: since when, and when drain_timeout (30 s) cuts it (issue #19).
  st = rec_->status();
  ASSERT_EQ(st[0].backends[0].drains.size(), 1u);
  EXPECT_EQ(st[0].backends[0].drains[0].server, "ep-10.0.0.2:80");
  EXPECT_EQ(st[0].backends[0].drains[0].since, drain_started);
  EXPECT_EQ(st[0].backends[0].drains[0].deadline, drain_started + std::chrono::seconds(30));
  EXPECT_TRUE(st[1].backends[0].drains.empty());
  EXPECT_EQ(inst_b_->names("web").size(), 1u);  // b had no sessions: gone after the drain pass

  clock_.advance(std::chrono::seconds(31));  // drain timeout
  r = rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  EXPECT_GE(Metrics::global().value("elasticproxy_drains_timed_out_total", {{"backend", "web"}}),
            1);
}

TEST_F(ReconcilerTest, AHeldDrainIsNotCutAtDrainTimeoutUntilReleasedOrExpired) {
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock_.now());
  (void)rec_->run_pass(false);
  inst_a_->with_lock([&] {
    for (auto& s : inst_a_->backends["web"]) s.sessions = 2;
    return 0;
  });
  // A pending terminate hook holds 10.0.0.2's drain for 300 s (the backend's is 30 s).
  const ServerStateView& view = *rec_;
  view.hold_drain("web", "10.0.0.2", 80, clock_.now() + std::chrono::seconds(300));
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  (void)rec_->run_pass(false);
  clock_.advance(std::chrono::seconds(31));  // past the backend's drain_timeout
  PassReport r = rec_->run_pass(false);
  EXPECT_EQ(r.waiting_drains, 1u);
  EXPECT_EQ(inst_a_->names("web").size(), 2u) << "held: sessions are not cut";
  ASSERT_EQ(rec_->status()[0].backends[0].drains.size(), 1u);
  EXPECT_FALSE(rec_->status()[0].backends[0].drains[0].deadline) << "held: no drain_timeout";
  clock_.advance(std::chrono::seconds(100));
  (void)rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web").size(), 2u);
  // The hook completed: released, and the backend's drain_timeout (long passed) applies.
  view.release_drain("web", "10.0.0.2", 80);
  clock_.advance(std::chrono::milliseconds(100));  // drain_poll
  (void)rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));

  // A hold nobody releases ends by itself at its deadline.
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.3", 80)}, true, clock_.now());
  (void)rec_->run_pass(false);
  inst_a_->with_lock([&] {
    for (auto& s : inst_a_->backends["web"]) s.sessions = 2;
    return 0;
  });
  view.hold_drain("web", "10.0.0.3", 80, clock_.now() + std::chrono::seconds(60));
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  (void)rec_->run_pass(false);
  clock_.advance(std::chrono::seconds(45));
  (void)rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web").size(), 2u);
  clock_.advance(std::chrono::seconds(16));
  (void)rec_->run_pass(false);
  clock_.advance(std::chrono::milliseconds(100));
  (void)rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
}

TEST_F(ReconcilerTest, UnreachableInstanceDoesNotBlockTheOther) {
  inst_a_->down = true;
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  PassReport r = rec_->run_pass(false);
  EXPECT_FALSE(r.converged);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].find("connection refused"), std::string::npos);
  EXPECT_EQ(inst_b_->names("web").size(), 1u);
  EXPECT_FALSE(rec_->status()[0].reachable);

  inst_a_->down = false;
  clock_.advance(std::chrono::seconds(10));
  r = rec_->run_pass(false);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(inst_a_->names("web").size(), 1u);
}

TEST_F(ReconcilerTest, RestartedHaproxyIsRepopulated) {
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock_.now());
  (void)rec_->run_pass(false);
  // HAProxy restarts from a config without the dynamic servers.
  inst_a_->with_lock([&] {
    inst_a_->backends["web"].clear();
    inst_a_->pid = 200;
    inst_a_->start_time = 2000;
    return 0;
  });
  const double before =
      Metrics::global().value("elasticproxy_haproxy_restarts_detected_total", {{"instance", "a"}});
  clock_.advance(std::chrono::seconds(1));  // probe_interval
  (void)rec_->run_pass(false);              // not a full resync: the probe notices the restart
  EXPECT_EQ(inst_a_->names("web").size(), 2u);
  EXPECT_EQ(
      Metrics::global().value("elasticproxy_haproxy_restarts_detected_total", {{"instance", "a"}}),
      before + 1);
}

TEST_F(ReconcilerTest, RejectedActionIsRetriedAndReported) {
  inst_a_->fail_kind = ActionKind::kAdd;
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  PassReport r = rec_->run_pass(false);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.actions_failed, 1u);
  EXPECT_NE(rec_->status()[0].backends[0].last_error.find("No such server."), std::string::npos);
  EXPECT_FALSE(rec_->converged());
  inst_a_->fail_kind.reset();
  clock_.advance(std::chrono::seconds(6));
  r = rec_->run_pass(false);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(inst_a_->names("web").size(), 1u);
  EXPECT_TRUE(rec_->status()[0].backends[0].last_error.empty());
}

TEST_F(ReconcilerTest, MissingBackendIsAnErrorNotACrash) {
  inst_a_->backends.erase("web");
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, clock_.now());
  PassReport r = rec_->run_pass(false);
  EXPECT_FALSE(r.converged);
  EXPECT_NE(rec_->status()[0].backends[0].last_error.find("does not exist"), std::string::npos);
}

TEST_F(ReconcilerTest, SlotExhaustionIsReported) {
  BackendPolicy p;
  p.name = "slots";
  p.slots = 2;
  auto inst = std::make_unique<FakeInstance>("s");
  for (int i = 1; i <= 2; ++i) {
    ActualServer s;
    s.name = "ep-" + std::to_string(i);
    s.address = "127.0.0.1";
    s.port = 1;
    s.admin_state = admin::kForcedMaint;
    inst->backends["slots"].push_back(s);
  }
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  Reconciler rec({p}, std::move(v), clock_);
  rec.publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80), spec("10.0.0.3", 80)}, true,
              clock_.now());
  PassReport r = rec.run_pass(false);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(rec.status()[0].backends[0].missing_slots, 1);
  EXPECT_NE(r.errors.back().find("out of free slots"), std::string::npos);
  EXPECT_EQ(raw->log.size(), 2u);  // the two that fit were placed
}

TEST(ReconcilerThread, LoopAppliesPublishedChangesPromptly) {
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  Reconciler rec({p}, std::move(v), SystemClock::instance());
  rec.start();
  rec.publish(0, {spec("10.0.0.1", 80)}, true, SystemClock::instance().now());
  EXPECT_TRUE(eventually([&] { return !raw->names("web").empty(); }));
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  rec.stop();
}

// Log lines are true: a new server set ready once its health check passed says so; a server
// that discovery dropped and brought back while it drained says that.
TEST(ReconcilerLog, ReasonsAreTrue) {
  std::vector<std::string> lines;
  std::mutex mu;
  log::set_sink([&](log::Level, std::string_view component, std::string_view message) {
    std::lock_guard lock(mu);
    if (component == "reconcile") lines.emplace_back(message);
  });
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  p.server_options = "check inter 1s";
  FakeClock clock;
  Reconciler rec({p}, std::move(v), clock);
  auto pass = [&] {
    clock.advance(std::chrono::seconds(1));
    return rec.run_pass(false);
  };
  auto logged = [&](const std::string& what) {
    std::lock_guard lock(mu);
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(what) != std::string::npos; });
  };
  rec.publish(0, {spec("10.0.0.1", 80)}, true, clock.now());
  (void)pass();  // add: DRAIN behind the health gate
  (void)pass();  // still warming
  raw->with_lock([&] {
    auto& s = raw->backends["web"][0];
    s.op_state = 2;  // the check passed
    s.check_result = 3;
    return 0;
  });
  (void)pass();
  EXPECT_TRUE(logged("undrain ep-10.0.0.1:80 (new server passed its health check)"));
  EXPECT_FALSE(logged("back in discovery while draining"));

  raw->with_lock([&] {
    raw->backends["web"][0].sessions = 1;  // keeps the drain going
    return 0;
  });
  rec.publish(0, {}, true, clock.now());
  (void)pass();
  EXPECT_TRUE(logged("drain ep-10.0.0.1:80 (gone from discovery)"));
  rec.publish(0, {spec("10.0.0.1", 80)}, true, clock.now());
  (void)pass();
  EXPECT_TRUE(logged("undrain ep-10.0.0.1:80 (back in discovery while draining)"));
  log::set_sink(nullptr);
}

// A reconciler with a running loop over one fake instance and one backend "web".
class RunningReconciler : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inst = std::make_unique<FakeInstance>("t");
    inst->backends["web"] = {};
    raw_ = inst.get();
    std::vector<std::unique_ptr<Instance>> v;
    v.push_back(std::move(inst));
    BackendPolicy p;
    p.name = "web";
    ReconcilerOptions o;
    o.resync_interval = std::chrono::hours(1);  // only asked-for resyncs
    rec_ = std::make_unique<Reconciler>(std::vector<BackendPolicy>{p}, std::move(v),
                                        SystemClock::instance(), o);
  }
  void TearDown() override { rec_->stop(); }

  FakeInstance* raw_ = nullptr;
  std::unique_ptr<Reconciler> rec_;
};

// The one-writer rule: with the loop running, passes asked for by other threads (config
// manager, bootstrap, SIGHUP) run on the loop's thread. Before the mailbox, run_pass() ran in
// the caller, racing the loop on the run state (TSan: make test-tsan), and HAProxy was driven
// from several threads (caught here in any build).
TEST_F(RunningReconciler, OnlyTheLoopThreadTalksToHaproxy) {
  rec_->start();
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, SystemClock::instance().now());
  std::atomic<int> reports{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t == 0) (void)rec_->run_pass(i % 2 == 0);
        if (t == 1) (void)rec_->submit_pass(true).get();
        if (t == 2) {
          rec_->request_resync();
          (void)rec_->status();
          (void)rec_->servers_at("web", "10.0.0.1", 80);
          (void)rec_->submit_pass(false).get();
        }
        ++reports;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(reports.load(), 60);
  EXPECT_EQ(raw_->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  raw_->with_lock([&] {
    EXPECT_EQ(raw_->threads.size(), 1u) << "HAProxy was driven from more than one thread";
    EXPECT_EQ(raw_->threads.count(std::this_thread::get_id()), 0u);
    return 0;
  });
}

// "Apply and tell me the result": the answer comes from a pass that started after the request.
TEST_F(RunningReconciler, SubmittedFullPassRepairsAndReports) {
  rec_->start();
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, SystemClock::instance().now());
  ASSERT_TRUE(eventually([&] { return rec_->converged(); }));
  raw_->with_lock([&] {
    raw_->backends["web"].clear();  // removed by hand behind our back
    return 0;
  });
  PassReport r = rec_->submit_pass(true).get();
  EXPECT_TRUE(r.converged);
  EXPECT_GE(r.actions_done, 1u);
  EXPECT_EQ(raw_->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
}

// servers_at() says which servers the last pass sent commands for: their state there was read
// before those commands (one just added is not even listed). The next pass, with nothing to do,
// reads them again and they are settled.
TEST(ReconcilerView, ServersTheLastPassCommandedAreUnsettledUntilReadAgain) {
  FakeClock clock;
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  Reconciler rec({p}, std::move(v), clock);
  rec.publish(0, {spec("10.0.0.1", 80)}, true, clock.now());
  (void)rec.run_pass(false);  // adds it: observed before the add, so not listed yet
  auto view = rec.servers_at("web", "10.0.0.1", 80);
  ASSERT_EQ(view.size(), 1u);
  EXPECT_TRUE(view[0].servers.empty());
  EXPECT_EQ(view[0].unsettled, 1u);
  EXPECT_EQ(rec.servers_at("web", "10.0.0.2", 80)[0].unsettled, 0u);  // another server
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);  // the follow-up read: listed, nothing to do
  view = rec.servers_at("web", "10.0.0.1", 0);
  ASSERT_EQ(view[0].servers.size(), 1u);
  EXPECT_EQ(view[0].unsettled, 0u);
  rec.publish(0, {}, true, clock.now());  // gone from discovery: drained by this pass
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);
  view = rec.servers_at("web", "10.0.0.1", 80);
  ASSERT_EQ(view[0].servers.size(), 1u);
  EXPECT_FALSE(view[0].servers[0].draining());  // as read before the drain command
  EXPECT_EQ(view[0].unsettled, 1u);
}

// A clock the test advances while the loop reads it (FakeClock is not thread-safe).
class SharedFakeClock final : public Clock {
 public:
  SteadyTime now() const override { return SteadyTime(Duration(ticks_.load())); }
  void advance(Duration d) { ticks_ += d.count(); }

 private:
  std::atomic<Duration::rep> ticks_{Duration(std::chrono::hours(1)).count()};
};

// A discovery change that falls due together with the periodic resync goes first, in a pass of
// its own backend; the resync (a read of every backend) follows at once. Before, the change
// waited for the whole read, which at 2,000 backends is tens of ms.
TEST(ReconcilerLoop, AChangeDueWithThePeriodicResyncGoesFirstAndTheResyncFollows) {
  SharedFakeClock clock;
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  inst->backends["other"] = {};
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy web;
  web.name = "web";
  web.debounce = std::chrono::seconds(5);  // the change falls due when the test says
  BackendPolicy other;
  other.name = "other";
  ReconcilerOptions o;
  o.resync_interval = std::chrono::seconds(10);
  Reconciler rec({web, other}, std::move(v), clock, o);
  std::mutex mu;
  std::vector<PassReport> passes;
  rec.add_on_pass([&](const PassReport& r) {
    std::lock_guard lock(mu);
    passes.push_back(r);
  });
  rec.publish(0, {}, true, clock.now());
  rec.publish(1, {spec("10.0.1.1", 80)}, true, clock.now());
  rec.start();
  ASSERT_TRUE(eventually([&] { return raw->names("other").size() == 1; }));
  rec.publish(0, {spec("10.0.0.1", 80)}, true, clock.now());
  (void)rec.submit_pass(false).get();
  EXPECT_TRUE(raw->names("web").empty());  // still debounced
  {
    std::lock_guard lock(mu);
    passes.clear();
  }
  const int wholes = raw->with_lock([&] { return raw->observe_alls; });
  clock.advance(std::chrono::seconds(11));  // both due now: web's change and the resync
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return std::any_of(passes.begin(), passes.end(), [](const PassReport& r) { return r.full; });
  }));
  rec.stop();
  std::lock_guard lock(mu);
  ASSERT_GE(passes.size(), 2u);
  EXPECT_FALSE(passes[0].full) << "the change waited for the resync";
  EXPECT_EQ(passes[0].actions_done, 1u);
  EXPECT_TRUE(passes[1].full) << "the resync did not follow at once";
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  EXPECT_GT(raw->with_lock([&] { return raw->observe_alls; }), wholes);
}

// The one instance of a reconciler, and options with only the resync interval set.
std::vector<std::unique_ptr<Instance>> only(std::unique_ptr<FakeInstance> inst) {
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  return v;
}
ReconcilerOptions resync_every(std::chrono::milliseconds interval) {
  ReconcilerOptions o;
  o.resync_interval = interval;
  return o;
}

// Backends "b0".."b<n-1>": empty in `inst`, their policies returned (defaults otherwise).
std::vector<BackendPolicy> numbered_backends(FakeInstance& inst, int n) {
  std::vector<BackendPolicy> policies;
  for (int i = 0; i < n; ++i) {
    BackendPolicy p;
    p.name = "b" + std::to_string(i);
    inst.backends[p.name] = {};
    policies.push_back(p);
  }
  return policies;
}

// A discovery change does not wait behind follow-up reads: when it falls due together with the
// follow-ups of 100 backends just changed (as after start-up), it goes first in a pass of its
// own backend, and the follow-ups follow in passes of at most kFollowUpsPerPass backends, so a
// change arriving meanwhile waits for a few reads, not for all of them.
TEST(ReconcilerLoop, AChangeGoesBeforeDueFollowUpsAndFollowUpsGoInSmallPasses) {
  SharedFakeClock clock;
  auto inst = std::make_unique<FakeInstance>("t");
  constexpr int kOthers = 100;
  std::vector<BackendPolicy> policies = numbered_backends(*inst, kOthers);
  inst->backends["web"] = {};
  BackendPolicy web;
  web.name = "web";
  web.debounce = std::chrono::seconds(5);  // the change falls due when the test says
  policies.push_back(web);
  FakeInstance* raw = inst.get();
  Reconciler rec(policies, only(std::move(inst)), clock, resync_every(std::chrono::hours(1)));
  std::mutex mu;
  std::vector<PassReport> passes;
  rec.add_on_pass([&](const PassReport& r) {
    std::lock_guard lock(mu);
    passes.push_back(r);
  });
  for (int i = 0; i < kOthers; ++i) {
    rec.publish(static_cast<size_t>(i), {spec("10.0.1." + std::to_string(i), 80)}, true,
                clock.now());
  }
  rec.publish(kOthers, {}, true, clock.now());
  rec.start();
  ASSERT_TRUE(eventually([&] { return raw->names("b99").size() == 1; }));
  rec.publish(kOthers, {spec("10.0.0.1", 80)}, true, clock.now());
  (void)rec.submit_pass(false).get();  // takes the change in; still debounced
  EXPECT_TRUE(raw->names("web").empty());
  {
    std::lock_guard lock(mu);
    passes.clear();
  }
  // Due at once: web's change and the follow-ups of the 100 backends changed at start.
  clock.advance(std::chrono::seconds(6));
  size_t followed = 0;
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    followed = 0;
    for (size_t i = 1; i < passes.size(); ++i) followed += passes[i].backends_read;
    return !passes.empty() && followed >= static_cast<size_t>(kOthers);
  })) << followed;
  rec.stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(passes[0].backends_read, 1u) << "the change waited for the follow-ups";
  EXPECT_EQ(passes[0].actions_done, 1u);
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  for (size_t i = 1; i < passes.size(); ++i) {
    EXPECT_LE(passes[i].backends_read, Reconciler::kFollowUpsPerPass) << "pass " << i;
  }
  EXPECT_GE(passes.size(), 1u + kOthers / Reconciler::kFollowUpsPerPass);
}

// Follow-ups go the longest due first: with 40 backends draining (each due again every
// drain_poll) and passes that take longer than drain_poll, every backend is still read within a
// few passes, not only the first kFollowUpsPerPass by index.
TEST(ReconcilerLoop, FollowUpsDueAgainAtEveryPassDoNotStarveTheOthers) {
  SharedFakeClock clock;
  auto inst = std::make_unique<FakeInstance>("t");
  constexpr int kBackends = 40;
  std::vector<BackendPolicy> policies = numbered_backends(*inst, kBackends);
  for (auto& p : policies) p.drain_timeout = std::chrono::hours(100);  // no drain ends meanwhile
  FakeInstance* raw = inst.get();
  Reconciler rec(policies, only(std::move(inst)), clock, resync_every(std::chrono::hours(100000)));
  std::atomic<bool> slow{false};
  rec.add_on_pass([&](const PassReport&) {
    if (slow) clock.advance(std::chrono::milliseconds(150));  // a pass longer than drain_poll
  });
  auto publish_all = [&](bool both) {
    for (int i = 0; i < kBackends; ++i) {
      std::vector<ServerSpec> servers = {spec("10.0.1." + std::to_string(i), 80)};
      if (both) servers.push_back(spec("10.0.2." + std::to_string(i), 80));
      rec.publish(static_cast<size_t>(i), servers, true, clock.now());
    }
  };
  publish_all(true);
  rec.start();
  ASSERT_TRUE(eventually([&] { return raw->names("b39").size() == 2; }));
  raw->with_lock([&] {
    for (auto& [name, servers] : raw->backends) {
      for (auto& s : servers) s.sessions = 2;  // drains never end
    }
    return 0;
  });
  (void)rec.submit_pass(false).get();
  publish_all(false);  // every backend drains its second server
  ASSERT_TRUE(eventually([&] {
    return rec.status()[0].backends[kBackends - 1].drains.size() == 1u;
  }));
  raw->with_lock([&] {
    raw->observed.clear();
    return 0;
  });
  slow = true;
  clock.advance(std::chrono::milliseconds(150));  // every drain due: the passes begin
  std::set<std::string> read;
  const bool all = eventually([&] {
    raw->with_lock([&] {
      for (const auto& names : raw->observed) read.insert(names.begin(), names.end());
      raw->observed.clear();
      return 0;
    });
    return read.size() == static_cast<size_t>(kBackends);
  });
  rec.stop();
  EXPECT_TRUE(all) << read.size() << " of " << kBackends << " backends read again";
}

// request_resync() is fire and forget, yet a full pass follows (the backend is not dirty: only a
// whole read notices the server removed by hand).
TEST_F(RunningReconciler, RequestedResyncReadsEverything) {
  rec_->start();
  rec_->publish(0, {spec("10.0.0.1", 80)}, true, SystemClock::instance().now());
  ASSERT_TRUE(eventually([&] { return rec_->converged(); }));
  const int alls = raw_->with_lock([&] { return raw_->observe_alls; });
  raw_->with_lock([&] {
    raw_->backends["web"].clear();
    return 0;
  });
  rec_->request_resync();
  EXPECT_TRUE(eventually([&] { return !raw_->names("web").empty(); }));
  EXPECT_GT(raw_->with_lock([&] { return raw_->observe_alls; }), alls);
}

TEST_F(RunningReconciler, PassAskedFromAListenerIsRefusedNotADeadlock) {
  std::promise<PassReport> inner;
  std::atomic<bool> asked{false};
  rec_->add_on_pass([&](const PassReport&) {
    if (!asked.exchange(true)) inner.set_value(rec_->run_pass(false));
  });
  rec_->start();
  auto f = inner.get_future();
  ASSERT_EQ(f.wait_for(ep::test::scaled(std::chrono::seconds(5))), std::future_status::ready);
  PassReport r = f.get();
  EXPECT_FALSE(r.converged);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].find("own thread"), std::string::npos);
}

TEST(ReconcilerMailbox, WithoutALoopAPassRunsInTheCaller) {
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  FakeClock clock;
  Reconciler rec({p}, std::move(v), clock);
  rec.publish(0, {spec("10.0.0.1", 80)}, true, clock.now());
  auto f = rec.submit_pass(false);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(f.get().converged);
  EXPECT_EQ(raw->threads.count(std::this_thread::get_id()), 1u);
}

// The view handed to the AWS lifecycle hooks: per instance, the managed servers at an address.
TEST_F(ReconcilerTest, ServerStateViewAnswersFromTheLastPass) {
  rec_->publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock_.now());
  const ServerStateView& view = *rec_;
  EXPECT_TRUE(view.servers_at("web", "10.0.0.1", 80)[0].servers.empty());  // no pass yet
  (void)rec_->run_pass(false);
  (void)rec_->run_pass(true);  // observes what the first pass added
  auto seen = view.servers_at("web", "10.0.0.1", 0);
  ASSERT_EQ(seen.size(), 2u);  // instances a and b
  EXPECT_TRUE(seen[0].reachable);
  ASSERT_EQ(seen[0].servers.size(), 1u);
  EXPECT_EQ(seen[0].servers[0].name, "ep-10.0.0.1:80");
  EXPECT_TRUE(view.servers_at("web", "10.0.0.1", 81)[0].servers.empty());
  EXPECT_TRUE(view.servers_at("other", "10.0.0.1", 80)[0].servers.empty());
}

// Cost follows the change: with 200 backends, a one-server change reads that backend only; a
// resync (and the first contact) reads the whole of HAProxy at once.
TEST(ReconcilerScale, OneServerChangeReadsOneBackend) {
  constexpr int kBackends = 200;
  auto inst = std::make_unique<FakeInstance>("big");
  std::vector<BackendPolicy> policies;
  for (int b = 0; b < kBackends; ++b) {
    BackendPolicy p;
    p.name = "be" + std::to_string(b);
    inst->backends[p.name] = {};
    policies.push_back(p);
  }
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  FakeClock clock;
  Reconciler rec(policies, std::move(v), clock);
  for (int b = 0; b < kBackends; ++b) {
    rec.publish(b, {spec("10.1.0." + std::to_string(b % 250), 80)}, true, clock.now());
  }
  PassReport first = rec.run_pass(false);
  EXPECT_TRUE(first.converged);
  ASSERT_EQ(raw->observed.size(), 1u);
  EXPECT_EQ(raw->observed[0].size(), static_cast<size_t>(kBackends));
  EXPECT_EQ(raw->observe_alls, 1);  // first contact: the whole of HAProxy
  (void)rec.run_pass(false);        // follow-up poll of what was just applied
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);

  raw->observed.clear();
  rec.publish(17, {spec("10.1.0.17", 80), spec("10.2.0.17", 80)}, true, clock.now());
  PassReport r = rec.run_pass(false);
  EXPECT_EQ(r.actions_done, 1u);
  EXPECT_TRUE(r.status_changed);
  ASSERT_EQ(raw->observed.size(), 1u);
  EXPECT_EQ(raw->observed[0], (std::vector<std::string>{"be17"}));
  EXPECT_EQ(raw->observe_alls, 1);
  clock.advance(std::chrono::milliseconds(100));  // the follow-up poll confirms it
  (void)rec.run_pass(false);
  ASSERT_EQ(raw->observed.size(), 2u);
  EXPECT_EQ(raw->observed[1], (std::vector<std::string>{"be17"}));
  EXPECT_EQ(rec.status()[0].backends[17].actual, 2u);
  EXPECT_EQ(rec.status()[0].backends[16].actual, 1u);

  PassReport resync = rec.run_pass(true);
  EXPECT_EQ(raw->observe_alls, 2);
  EXPECT_FALSE(resync.status_changed);  // listeners (config manager) may skip it
  EXPECT_EQ(raw->observed.back().size(), static_cast<size_t>(kBackends));
}

// A resync of a known instance reads every server's state but server statistics only where a
// server drains (observe_states): it still repairs drift, sessions and backup seen by an earlier
// read are kept (no status flap), and a draining server's sessions still decide its removal.
TEST(ReconcilerResync, StatesOnlyResyncHealsAndKeepsServerStats) {
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  inst->states_without_stats = true;
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  p.drain_timeout = std::chrono::seconds(60);
  FakeClock clock;
  Reconciler rec({p}, std::move(v), clock);
  rec.publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock.now());
  ASSERT_TRUE(rec.run_pass(false).converged);
  EXPECT_EQ(raw->observe_alls, 1);  // first contact: everything, stats included
  EXPECT_EQ(raw->observe_states_calls, 0);

  // HAProxy's statistics for a server, seen by a targeted read (the follow-up poll).
  raw->backends["web"][0].sessions = 7;
  raw->backends["web"][0].backup = true;
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);
  ASSERT_EQ(rec.status()[0].backends[0].actual_servers.at(0).sessions, 7);

  PassReport resync = rec.run_pass(true);
  EXPECT_EQ(raw->observe_states_calls, 1);
  EXPECT_EQ(raw->observe_alls, 1);
  EXPECT_TRUE(resync.converged);
  EXPECT_FALSE(resync.status_changed);  // sessions and backup kept, not reset to 0
  EXPECT_EQ(rec.status()[0].backends[0].actual_servers.at(0).sessions, 7);
  EXPECT_TRUE(rec.status()[0].backends[0].actual_servers.at(0).backup);

  // Drift behind our back is repaired by the states-only resync.
  raw->backends["web"].erase(raw->backends["web"].begin() + 1);
  PassReport heal = rec.run_pass(true);
  EXPECT_EQ(raw->observe_states_calls, 2);
  EXPECT_EQ(heal.actions_done, 1u);
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80", "ep-10.0.0.2:80"}));
  // A resync that finds the backend settled skips the diff; a weight changed by hand is not
  // settled and is repaired.
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);  // follow-up poll: settled again
  EXPECT_EQ(rec.run_pass(true).actions_done, 0u);
  raw->backends["web"][0].weight = 50;
  EXPECT_EQ(rec.run_pass(true).actions_done, 1u);
  EXPECT_EQ(raw->backends["web"][0].weight, 1);

  // A server leaves discovery: drained; while it has sessions the resync's read carries them
  // (its backend is read with stats) and it waits; at 0 sessions it is removed.
  rec.publish(0, {spec("10.0.0.2", 80)}, true, clock.now());
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);
  ASSERT_TRUE(raw->backends["web"][0].draining());
  raw->backends["web"][0].sessions = 3;
  PassReport waiting = rec.run_pass(true);
  EXPECT_EQ(waiting.waiting_drains, 1u);
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80", "ep-10.0.0.2:80"}));
  raw->backends["web"][0].sessions = 0;
  (void)rec.run_pass(true);
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.2:80"}));
}

// With an instance that digests its rows, a resync hands it the digests of the settled backends
// and they are not even parsed; drift behind our back changes the digest and is repaired; a
// backend with a drain in progress, or whose desired set changed, is never handed over.
TEST(ReconcilerResync, SettledBackendsAreHeldByDigestAndDriftIsStillRepaired) {
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  inst->backends["api"] = {};
  inst->states_without_stats = true;
  inst->digests = true;
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy web;
  web.name = "web";
  web.drain_timeout = std::chrono::seconds(60);
  BackendPolicy api = web;
  api.name = "api";
  FakeClock clock;
  Reconciler rec({web, api}, std::move(v), clock);
  rec.publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock.now());
  rec.publish(1, {spec("10.0.1.1", 80)}, true, clock.now());
  ASSERT_TRUE(rec.run_pass(false).converged);
  EXPECT_EQ(rec.run_pass(true).actions_done, 0u);  // first digests: parsed, settled
  EXPECT_EQ(raw->skipped_backends, 0);
  PassReport held = rec.run_pass(true);
  EXPECT_TRUE(held.converged);
  EXPECT_FALSE(held.status_changed);
  EXPECT_EQ(raw->skipped_backends, 2);
  EXPECT_EQ(rec.status()[0].backends[0].actual, 2u);  // the servers we hold are kept

  // Drift: a weight changed by hand and a server deleted by hand are seen and repaired.
  raw->backends["web"][0].weight = 50;
  raw->backends["api"].clear();
  PassReport heal = rec.run_pass(true);
  EXPECT_EQ(heal.actions_done, 2u);
  EXPECT_EQ(raw->skipped_backends, 2);
  EXPECT_EQ(raw->backends["web"][0].weight, 1);
  EXPECT_EQ(raw->names("api"), (std::vector<std::string>{"ep-10.0.1.1:80"}));
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);  // follow-up poll of the repaired backends
  (void)rec.run_pass(true);   // settled on the new digests
  const int before = raw->skipped_backends;
  (void)rec.run_pass(true);
  EXPECT_EQ(raw->skipped_backends, before + 2);

  // A new desired set: that backend is read and changed, never skipped on an old digest.
  rec.publish(1, {spec("10.0.1.1", 80), spec("10.0.1.2", 80)}, true, clock.now());
  PassReport grow = rec.run_pass(true);
  EXPECT_EQ(grow.actions_done, 1u);
  EXPECT_EQ(raw->skipped_backends, before + 3);  // web only
  EXPECT_EQ(raw->names("api"), (std::vector<std::string>{"ep-10.0.1.1:80", "ep-10.0.1.2:80"}));

  // The algorithm changes under a held digest (its rows did not): the backend is read again.
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);
  (void)rec.run_pass(true);  // both settled again
  raw->algorithm = "source";
  const int skipped = raw->skipped_backends;
  PassReport moved = rec.run_pass(true);
  EXPECT_EQ(raw->skipped_backends, skipped + 2);
  EXPECT_FALSE(moved.converged);  // a held backend no longer settles: re-read on the next pass
  clock.advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(rec.run_pass(false).converged);
  EXPECT_EQ(rec.status()[0].backends[0].actual, 2u);
}

// A pass that applies a new desired set reads server statistics only where a server drains
// (observe_for_change): the others keep theirs from the last read, and the follow-up poll reads
// them in full. A draining server's sessions still decide its removal.
TEST(ReconcilerChange, AChangeReadsStatsOnlyWhereAServerDrains) {
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  inst->change_without_stats = true;
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  p.drain_timeout = std::chrono::seconds(60);
  FakeClock clock;
  Reconciler rec({p}, std::move(v), clock);
  rec.publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, true, clock.now());
  ASSERT_TRUE(rec.run_pass(false).converged);
  EXPECT_EQ(raw->observe_for_change_calls, 0);  // first contact: the whole of HAProxy
  raw->backends["web"][0].sessions = 7;
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);  // follow-up poll: full read
  ASSERT_EQ(rec.status()[0].backends[0].actual_servers.at(0).sessions, 7);

  rec.publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80), spec("10.0.0.3", 80)}, true,
              clock.now());
  PassReport add = rec.run_pass(false);
  EXPECT_EQ(raw->observe_for_change_calls, 1);
  EXPECT_EQ(add.actions_done, 1u);
  EXPECT_EQ(rec.status()[0].backends[0].actual_servers.at(0).sessions, 7);  // kept, not 0
  raw->backends["web"][0].sessions = 9;
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);  // the follow-up poll reads statistics again
  EXPECT_EQ(raw->observe_for_change_calls, 1);
  EXPECT_EQ(rec.status()[0].backends[0].actual_servers.at(0).sessions, 9);

  // 10.0.0.1 leaves: drained. Another change while it still has sessions: its backend is read
  // with statistics, so it keeps waiting instead of being removed as drained.
  rec.publish(0, {spec("10.0.0.2", 80), spec("10.0.0.3", 80)}, true, clock.now());
  (void)rec.run_pass(false);
  ASSERT_TRUE(raw->backends["web"][0].draining());
  raw->backends["web"][0].sessions = 3;
  rec.publish(0, {spec("10.0.0.2", 80), spec("10.0.0.3", 80), spec("10.0.0.4", 80)}, true,
              clock.now());
  PassReport waiting = rec.run_pass(false);
  EXPECT_EQ(raw->observe_for_change_calls, 3);
  EXPECT_EQ(waiting.waiting_drains, 1u);
  EXPECT_EQ(raw->names("web").size(), 4u);
  raw->backends["web"][0].sessions = 0;
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);
  EXPECT_EQ(raw->names("web"),
            (std::vector<std::string>{"ep-10.0.0.2:80", "ep-10.0.0.3:80", "ep-10.0.0.4:80"}));
}

// A restart detected on a resync reads everything, stats included (nothing to keep from before).
TEST(ReconcilerResync, RestartReadsEverything) {
  auto inst = std::make_unique<FakeInstance>("t");
  inst->backends["web"] = {};
  inst->states_without_stats = true;
  FakeInstance* raw = inst.get();
  std::vector<std::unique_ptr<Instance>> v;
  v.push_back(std::move(inst));
  BackendPolicy p;
  p.name = "web";
  FakeClock clock;
  Reconciler rec({p}, std::move(v), clock);
  rec.publish(0, {spec("10.0.0.1", 80)}, true, clock.now());
  ASSERT_TRUE(rec.run_pass(false).converged);
  raw->pid += 1;
  (void)rec.run_pass(true);
  EXPECT_EQ(raw->observe_alls, 2);
  EXPECT_EQ(raw->observe_states_calls, 0);
}

}  // namespace
}  // namespace ep::reconcile
