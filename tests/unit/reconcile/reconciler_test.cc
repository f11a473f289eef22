#include "reconcile/reconciler.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/metrics.h"
#include "fake_instance.h"

namespace ep::reconcile {
namespace {

using ep::testing::FakeInstance;

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
    rec_ = std::make_unique<Reconciler>(std::vector<BackendPolicy>{p}, std::move(instances), clock_, o);
  }

  FakeClock clock_;
  FakeInstance* inst_a_ = nullptr;
  FakeInstance* inst_b_ = nullptr;
  std::unique_ptr<Reconciler> rec_;
};

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
  PassReport r = rec_->run_pass(false);
  EXPECT_EQ(r.waiting_drains, 0u);  // drain just started
  auto st = rec_->status();
  EXPECT_EQ(st[0].backends[0].draining, 0u);  // status is what was observed before the drain
  clock_.advance(std::chrono::milliseconds(100));  // drain_poll
  r = rec_->run_pass(false);
  EXPECT_EQ(r.waiting_drains, 1u);  // still has sessions
  EXPECT_EQ(inst_a_->names("web").size(), 2u);
  EXPECT_EQ(inst_b_->names("web").size(), 1u);  // b had no sessions: gone after the drain pass

  clock_.advance(std::chrono::seconds(31));  // drain timeout
  r = rec_->run_pass(false);
  EXPECT_EQ(inst_a_->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  EXPECT_GE(Metrics::global().value("elasticproxy_drains_timed_out_total", {{"backend", "web"}}), 1);
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
  (void)rec_->run_pass(false);  // not a full resync: the probe notices the restart
  EXPECT_EQ(inst_a_->names("web").size(), 2u);
  EXPECT_EQ(Metrics::global().value("elasticproxy_haproxy_restarts_detected_total", {{"instance", "a"}}),
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
  rec.publish(0, {spec("10.0.0.1", 80), spec("10.0.0.2", 80), spec("10.0.0.3", 80)}, true, clock_.now());
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
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (raw->names("web").empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(raw->names("web"), (std::vector<std::string>{"ep-10.0.0.1:80"}));
  rec.stop();
}

}  // namespace
}  // namespace ep::reconcile
