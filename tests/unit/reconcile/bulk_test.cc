// Bulk additions by reload (reconcile/bulk.h): the reconciler's decision and what it hands the
// loader, on the in-memory instance. The real reload is tested in
// tests/integration/reload/bulk_reload_test.cc.

#include <gtest/gtest.h>

#include <mutex>

#include "core/log.h"
#include "core/metrics.h"
#include "fake_instance.h"
#include "reconcile/reconciler.h"

namespace ep::reconcile {
namespace {

using ep::testing::FakeInstance;

ServerSpec spec(int i, int weight = 1) {
  ServerSpec s;
  s.address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
  s.port = 80;
  s.weight = weight;
  s.name = "ep-" + s.address + ":80";
  return s;
}

std::vector<ServerSpec> specs(int from, int to) {
  std::vector<ServerSpec> out;
  for (int i = from; i < to; ++i) out.push_back(spec(i));
  return out;
}

// Plays the config manager: "reloads" the fake instance with the rendered servers (a new pid,
// every server as the config line says: in maintenance when rendered disabled, else ready with
// its checks starting), or fails.
class FakeLoader : public BulkLoader {
 public:
  explicit FakeLoader(FakeInstance& inst, size_t threshold) : inst_(inst), threshold_(threshold) {}
  BulkRule bulk_rule() const override { return {threshold_, by_cost}; }
  Result<std::string> bulk_reload(const std::vector<std::vector<ActualServer>>& servers,
                                  const std::string& why) override {
    std::lock_guard lock(mu);
    ++calls;
    rendered = servers;
    whys.push_back(why);
    if (!fail.empty()) return Error::refused(fail);
    if (!takes_effect) return std::string("confirmed");
    inst_.with_lock([&] {
      ++inst_.pid;
      for (size_t i = 0; i < names.size() && i < servers.size(); ++i) {
        auto& be = inst_.backends[names[i]];
        // Hand-written servers (not managed) stay; managed ones are what was rendered.
        std::vector<ActualServer> next;
        for (const auto& s : be) {
          if (s.name.rfind("ep-", 0) != 0) next.push_back(s);
        }
        for (auto s : servers[i]) {
          s.check_state = checks ? 0x02 | 0x04 : 0;
          s.check_result = 0;
          s.op_state = s.in_maint() ? 0 : 2;
          s.sessions = 0;
          next.push_back(s);
        }
        be = std::move(next);
      }
    });
    return std::string("new worker confirmed");
  }

  std::mutex mu;
  int calls = 0;
  std::vector<std::vector<ActualServer>> rendered;
  std::vector<std::string> whys;
  std::string fail;                 // non-empty: the reload is refused with this
  std::vector<std::string> names;   // backend order
  bool checks = true;
  bool takes_effect = true;  // false: "confirmed" but HAProxy does not show the servers
  bool by_cost = false;      // `bulk_threshold: auto`: the predictions decide over the threshold

 private:
  FakeInstance& inst_;
  size_t threshold_;
};

class BulkTest : public ::testing::Test {
 protected:
  void make(size_t threshold, std::vector<BackendPolicy> policies, int instances = 1) {
    std::vector<std::unique_ptr<Instance>> v;
    for (int i = 0; i < instances; ++i) {
      auto inst = std::make_unique<FakeInstance>("i" + std::to_string(i));
      for (const auto& p : policies) inst->backends[p.name] = {};
      if (i == 0) inst_ = inst.get();
      v.push_back(std::move(inst));
    }
    loader_ = std::make_unique<FakeLoader>(*inst_, threshold);
    for (const auto& p : policies) loader_->names.push_back(p.name);
    loader_->checks = policies.front().checks();
    ReconcilerOptions o;
    o.metrics = &metrics_;
    rec_ = std::make_unique<Reconciler>(policies, std::move(v), clock_, o);
    rec_->set_bulk_loader(loader_.get());
    log::set_sink([this](log::Level, std::string_view component, std::string_view message) {
      std::lock_guard lock(log_mu_);
      if (component == "reconcile") lines_.emplace_back(message);
    });
  }
  void TearDown() override { log::set_sink(nullptr); }

  static BackendPolicy policy(const std::string& name, bool checks) {
    BackendPolicy p;
    p.name = name;
    p.mode = BackendMode::kDynamic;
    if (checks) p.server_options = "check inter 1s";
    return p;
  }
  PassReport pass(bool full = false) {
    clock_.advance(std::chrono::milliseconds(200));
    return rec_->run_pass(full);
  }
  size_t adds() {
    return inst_->with_lock([&] {
      return static_cast<size_t>(std::count_if(
          inst_->log.begin(), inst_->log.end(),
          [](const std::string& l) { return l.rfind("add ", 0) == 0; }));
    });
  }
  bool logged(const std::string& what) {
    std::lock_guard lock(log_mu_);
    return std::any_of(lines_.begin(), lines_.end(),
                       [&](const std::string& l) { return l.find(what) != std::string::npos; });
  }
  double metric(const std::string& series) {
    const std::string text = metrics_.render_prometheus();
    auto at = text.find(series + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
  }

  Metrics metrics_;
  FakeClock clock_;
  FakeInstance* inst_ = nullptr;
  std::unique_ptr<FakeLoader> loader_;
  std::unique_ptr<Reconciler> rec_;
  std::mutex log_mu_;
  std::vector<std::string> lines_;
};

// 50 new servers over a threshold of 20: one reload, no `add server`; the new servers are
// rendered disabled and leave maintenance through the health gate (DRAIN until their check
// passes), then serve. The choice, the count, the threshold and the predictions are logged.
TEST_F(BulkTest, LargeAdditionReloadsOnceAndTheServersPassTheHealthGate) {
  make(20, {policy("web", true)});
  rec_->publish(0, specs(0, 2), true, clock_.now());
  ASSERT_TRUE(pass().converged);  // two servers: runtime commands
  EXPECT_EQ(adds(), 2u);
  EXPECT_EQ(loader_->calls, 0);
  inst_->with_lock([&] {  // their checks passed
    for (auto& s : inst_->backends["web"]) s.op_state = 2, s.check_result = 3;
  });
  (void)pass();
  (void)pass();

  rec_->publish(0, specs(0, 52), true, clock_.now());
  PassReport r = pass();
  EXPECT_FALSE(r.converged);  // reloaded; the new servers are not enabled yet
  ASSERT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), 2u);  // no `add server` for the 50
  ASSERT_EQ(loader_->rendered.size(), 1u);
  const auto& web = loader_->rendered[0];
  ASSERT_EQ(web.size(), 52u);
  EXPECT_FALSE(web[0].in_maint());  // the two serving ones keep serving, first (names never move)
  EXPECT_FALSE(web[1].in_maint());
  for (size_t i = 2; i < web.size(); ++i) EXPECT_TRUE(web[i].in_maint()) << web[i].name;
  EXPECT_TRUE(logged("web: 50 servers to add, more than haproxy.reload.bulk_threshold 20: one "
                     "reload instead of 50 `add server` (predicted"));
  EXPECT_TRUE(logged("s by runtime commands; 52 server lines rendered; the new servers enter "
                     "behind their health check)"));
  EXPECT_TRUE(logged("web: bulk reload done in"));

  // Next pass: the whole of the new worker is read, the 50 are enabled behind the gate.
  (void)pass();
  inst_->with_lock([&] {
    int draining = 0;
    for (const auto& s : inst_->backends["web"]) draining += s.draining() && s.op_state == 0;
    EXPECT_EQ(draining, 50);
  });
  EXPECT_EQ(rec_->status()[0].backends[0].mode, BackendMode::kDynamic);
  (void)pass();  // still warming: nothing set ready before the check passes
  inst_->with_lock([&] {
    for (const auto& s : inst_->backends["web"]) {
      if (s.op_state == 0) EXPECT_TRUE(s.draining()) << s.name;
    }
  });
  inst_->with_lock([&] {
    for (auto& s : inst_->backends["web"]) s.op_state = 2, s.check_result = 3;
  });
  (void)pass();
  r = pass();
  EXPECT_TRUE(r.converged);
  inst_->with_lock([&] {
    ASSERT_EQ(inst_->backends["web"].size(), 52u);
    for (const auto& s : inst_->backends["web"]) EXPECT_EQ(s.admin_state, 0) << s.name;
  });
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), 2u);
  // Our own reload is not reported as someone else's restart.
  EXPECT_FALSE(logged("restarted or reloaded"));
  EXPECT_EQ(metric("elasticproxy_bulk_reloads_total{backend=\"web\",result=\"ok\"}"), 1);
}

// At or under the threshold (and with the threshold 0): runtime commands, no reload.
TEST_F(BulkTest, AtOrUnderTheThresholdNoReload) {
  make(20, {policy("web", true)});
  rec_->publish(0, specs(0, 20), true, clock_.now());
  (void)pass();
  EXPECT_EQ(loader_->calls, 0);
  EXPECT_EQ(adds(), 20u);
  rec_->publish(0, specs(0, 40), true, clock_.now());  // 20 more: still not over
  (void)pass();
  EXPECT_EQ(loader_->calls, 0);
  EXPECT_EQ(adds(), 40u);
}

TEST_F(BulkTest, ThresholdZeroNeverReloads) {
  make(0, {policy("web", false)});
  rec_->publish(0, specs(0, 500), true, clock_.now());
  EXPECT_TRUE(pass().converged);
  EXPECT_EQ(loader_->calls, 0);
  EXPECT_EQ(adds(), 500u);
}

// A refused or rolled-back reload: the same pass adds the servers with runtime commands, and
// that desired set is not tried by reload again.
TEST_F(BulkTest, FailedReloadFallsBackToRuntimeCommandsInTheSamePass) {
  make(20, {policy("web", false)});
  loader_->fail = "haproxy -c: [ALERT] something";
  rec_->publish(0, specs(0, 50), true, clock_.now());
  EXPECT_TRUE(pass().converged);
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), 50u);
  EXPECT_EQ(inst_->names("web").size(), 50u);
  EXPECT_TRUE(logged("bulk reload not done (haproxy -c: [ALERT] something); HAProxy runs its "
                     "previous config: adding the 50 servers with runtime commands"));
  (void)pass(true);
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(metric("elasticproxy_bulk_reloads_total{backend=\"web\",result=\"fallback\"}"), 1);
}

// Without checks the new servers are rendered serving (as `add server` + `state ready`); the
// other backends are rendered as HAProxy runs them, an operator's maintenance stays (not enabled
// after the reload), a server warming behind its gate goes back through it, and a server being
// drained away is left out.
TEST_F(BulkTest, OtherBackendsAreRenderedAsHaproxyRunsThemAndTheOperatorsMaintenanceStays) {
  make(20, {policy("web", false), policy("api", true)});
  rec_->publish(0, specs(0, 1), true, clock_.now());
  rec_->publish(1, specs(100, 104), true, clock_.now());
  (void)pass();
  inst_->with_lock([&] {
    auto& api = inst_->backends["api"];
    api[0].op_state = 2, api[0].check_result = 3;
    api[1].op_state = 2, api[1].check_result = 3;
    api[2].op_state = 2, api[2].check_result = 3;
    // api[3] still warming (DRAIN, check not passed)
  });
  (void)pass();
  (void)pass();
  inst_->with_lock([&] { inst_->backends["api"][1].admin_state = admin::kForcedMaint; });
  (void)pass(true);  // the operator's maintenance is noticed
  rec_->publish(1, specs(101, 104), true, clock_.now());  // api[0] gone: drained
  (void)pass();
  inst_->with_lock([&] {
    inst_->backends["api"][0].sessions = 3;  // still draining
    inst_->kill_sessions = false;
  });
  rec_->publish(0, specs(0, 30), true, clock_.now());
  (void)pass();
  ASSERT_EQ(loader_->calls, 1);
  const auto& web = loader_->rendered[0];
  ASSERT_EQ(web.size(), 30u);
  for (const auto& s : web) EXPECT_FALSE(s.in_maint()) << s.name;
  const auto& api = loader_->rendered[1];
  ASSERT_EQ(api.size(), 3u);  // the drained one left out
  EXPECT_EQ(api[0].name, spec(101).name);
  EXPECT_TRUE(api[0].in_maint());  // the operator's
  EXPECT_FALSE(api[1].in_maint());
  EXPECT_TRUE(api[2].in_maint());  // warming: back behind the gate
  (void)pass();
  (void)pass();
  inst_->with_lock([&] {
    for (const auto& s : inst_->backends["api"]) {
      if (s.name == spec(101).name) EXPECT_TRUE(s.in_maint()) << "operator's maintenance kept";
      if (s.name == spec(103).name) EXPECT_TRUE(s.draining() && s.op_state == 0) << "gated";
    }
    EXPECT_EQ(inst_->backends["web"].size(), 30u);
  });
  EXPECT_EQ(adds(), 5u);  // 1 web + 4 api before; none for the 29
}

// A reload confirmed but after which HAProxy does not show the servers (a template that lost its
// placeholder, someone else's reload): the rest comes by runtime commands, never a reload storm.
TEST_F(BulkTest, ASetIsTriedByReloadOnceOnly) {
  make(20, {policy("web", false)});
  loader_->takes_effect = false;
  rec_->publish(0, specs(0, 50), true, clock_.now());
  EXPECT_FALSE(pass().converged);
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), 0u);
  EXPECT_TRUE(pass().converged);
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), 50u);
  rec_->publish(0, specs(0, 100), true, clock_.now());  // a new set may use it again
  (void)pass();
  EXPECT_EQ(loader_->calls, 2);
}

// Several HAProxy instances: the reload path serves one, so runtime commands.
TEST_F(BulkTest, SeveralInstancesUseRuntimeCommands) {
  make(20, {policy("web", false)}, 2);
  rec_->publish(0, specs(0, 50), true, clock_.now());
  EXPECT_TRUE(pass().converged);
  EXPECT_EQ(loader_->calls, 0);
  EXPECT_EQ(adds(), 50u);
  EXPECT_TRUE(logged("2 HAProxy instances are configured"));
}

// `bulk_threshold: auto`: over the floor, the predictions decide. A large addition into an empty
// backend reloads; the same addition while other managed backends hold so many servers that the
// reload (which renders them all) is predicted slower stays runtime commands, and says why.
TEST_F(BulkTest, AutoReloadsOnlyWhenTheReloadIsPredictedFaster) {
  make(1000, {policy("web", false), policy("big", false)});
  loader_->by_cost = true;
  rec_->publish(1, specs(10'000, 60'000), true, clock_.now());  // 50,000 servers elsewhere:
  rec_->publish(0, {}, true, clock_.now());                      // themselves one reload
  (void)pass();
  (void)pass();
  ASSERT_EQ(loader_->calls, 1);
  EXPECT_TRUE(logged("big: 50000 servers to add, more than 1000 (haproxy.reload.bulk_threshold "
                     "auto): one reload"));
  const size_t before = adds();
  rec_->publish(0, specs(0, 3000), true, clock_.now());  // 3,000: `add server` wins here
  EXPECT_TRUE(pass().converged);
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), before + 3000);
  EXPECT_TRUE(logged("web: 3000 servers to add, more than 1000 (haproxy.reload.bulk_threshold "
                     "auto), but `add server` is predicted faster ("));
  EXPECT_TRUE(logged("s by a reload of 53000 server lines): runtime commands"));
}

TEST_F(BulkTest, AutoReloadsALargeAdditionIntoASmallConfig) {
  make(1000, {policy("web", false)});
  loader_->by_cost = true;
  rec_->publish(0, specs(0, 900), true, clock_.now());  // under the floor: runtime commands
  (void)pass();
  EXPECT_EQ(loader_->calls, 0);
  EXPECT_EQ(adds(), 900u);
  rec_->publish(0, specs(0, 5900), true, clock_.now());  // 5,000 more into a backend of 900
  (void)pass();
  EXPECT_EQ(loader_->calls, 1);
  EXPECT_EQ(adds(), 900u);
  EXPECT_TRUE(logged("web: 5000 servers to add, more than 1000 (haproxy.reload.bulk_threshold "
                     "auto): one reload instead of 5000 `add server` (predicted"));
}

// The predictions the log line carries: runtime commands win for small additions, the reload for
// large ones (add server grows with the backend's size), and the crossover is above 1,000 only
// when the backend is small.
TEST(BulkCost, ReloadWinsOnlyForLargeAdditions) {
  auto small = predict_bulk_cost(0, 100, 100, true);
  EXPECT_LT(small.runtime_seconds, small.reload_seconds);
  auto large = predict_bulk_cost(0, 10'000, 10'000, false);
  EXPECT_GT(large.runtime_seconds, 2 * large.reload_seconds);
  EXPECT_GT(large.runtime_seconds, 3.0);  // measured: ~3.6-4 s for 10,000 `add server`
  EXPECT_LT(large.reload_seconds, 1.0);
  auto gated = predict_bulk_cost(0, 10'000, 10'000, true);  // + the enables, by either path
  EXPECT_GT(gated.reload_seconds, large.reload_seconds);
  EXPECT_DOUBLE_EQ(gated.runtime_seconds - large.runtime_seconds,
                   gated.reload_seconds - large.reload_seconds);
  EXPECT_LT(gated.reload_seconds, gated.runtime_seconds);
  // A reload renders every managed backend: with 50,000 other servers it loses to 3,000 adds.
  auto crowded = predict_bulk_cost(0, 3'000, 53'000, false);
  EXPECT_LT(crowded.runtime_seconds, crowded.reload_seconds);
  auto into_big = predict_bulk_cost(10'000, 1'000, 11'000, true);
  auto into_empty = predict_bulk_cost(0, 1'000, 1'000, true);
  EXPECT_GT(into_big.runtime_seconds, into_empty.runtime_seconds);
}

}  // namespace
}  // namespace ep::reconcile
