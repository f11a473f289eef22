// ConfigManager with an in-memory HAProxy (FakeInstance) and a recording reload command: the
// debounce turns a burst into one reload, min_interval spaces reloads, and a slow reload does
// not hold up the reconciler thread. No HAProxy needed (`true` stands in for `haproxy -c`).

#include "haproxy/manage/config_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "config/settings.h"
#include "support/eventually.h"
#include "unit/reconcile/fake_instance.h"

namespace ep::app {
namespace {

using namespace std::chrono_literals;
using haproxy::manage::ConfigManager;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<double> stamps(const std::string& path) {
  std::vector<double> out;
  std::istringstream in(slurp(path));
  for (double t; in >> t;) out.push_back(t);
  return out;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    // Kept: the poll interval of this condition wait. Not eventually(): the 500 ms bound below
    // is itself an assertion and must not grow with the test time scale.
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

ServerSpec server(int i) {
  return ServerSpec{"ep-10.0.0." + std::to_string(i) + ":80", "10.0.0." + std::to_string(i), 80, 1,
                    false};
}

class ConfigManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/epcm-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/t.tmpl") << "backend web\n  {{ servers \"web\" }}\n";
    std::ofstream(dir_ + "/h.cfg") << "backend web\n";
  }
  void TearDown() override {
    if (manager_) manager_->stop();
    if (reconciler_) reconciler_->stop();
    std::filesystem::remove_all(dir_);
  }

  // update: config, reload = a command that appends a timestamp (after `sleep_s` seconds).
  // `bulk`: update: auto instead, bulk_threshold 20, a dynamic backend with checks, `binary` as
  // the `haproxy -c` stand-in, and the reload also copies the config it loaded to reloaded.cfg.
  void start(const std::string& sleep_s, bool bulk = false, const std::string& binary = "true") {
    const std::string yaml =
        "haproxy:\n  sockets: [" + dir_ +
        "/none.sock]\n  config: h.cfg\n  template: t.tmpl\n"
        "  update: " + (bulk ? "auto" : "config") + "\n  binary: '" + binary + "'\n"
        "  reload:\n    method: command\n    command: [sh, -c, 'sleep " +
        sleep_s + "; date +%s.%N >> " + dir_ + "/calls; cp " + dir_ + "/h.cfg " + dir_ +
        "/reloaded.cfg']\n"
        "    quiet: 100ms\n    max_wait: 1s\n    min_interval: 500ms\n    timeout: 5s\n" +
        (bulk ? "    bulk_threshold: 20\n" : "") +
        "backends:\n  - name: web\n" +
        (bulk ? "    mode: dynamic\n    server_options: check\n" : "") +
        "    sources:\n      - static: {servers: []}\n";
    std::ofstream(dir_ + "/ep.yaml") << yaml;
    auto settings = config::load_file(dir_ + "/ep.yaml");
    ASSERT_TRUE(settings.ok()) << settings.error().message;
    auto fake = std::make_unique<testing::FakeInstance>();
    fake->backends["web"] = {};
    fake_ = fake.get();
    std::vector<std::unique_ptr<reconcile::Instance>> instances;
    instances.push_back(std::move(fake));
    reconcile::ReconcilerOptions options;
    options.probe_interval = 50ms;
    reconciler_ = std::make_unique<reconcile::Reconciler>(
        std::vector<reconcile::BackendPolicy>{settings->backends[0].policy}, std::move(instances),
        SystemClock::instance(), options);
    auto m = ConfigManager::create(*settings, reconciler_.get());
    ASSERT_TRUE(m.ok()) << m.error().message;
    manager_ = std::move(*m);
    ASSERT_TRUE(manager_);
    manager_->start();
    reconciler_->start();
  }

  void publish(int n) {
    std::vector<ServerSpec> s;
    for (int i = 1; i <= n; ++i) s.push_back(server(i));
    reconciler_->publish(0, s, true, SystemClock::instance().now());
  }

  std::string dir_;
  testing::FakeInstance* fake_ = nullptr;
  std::unique_ptr<reconcile::Reconciler> reconciler_;
  std::unique_ptr<ConfigManager> manager_;
};

TEST_F(ConfigManagerTest, BurstOfFiftyChangesGivesOneReloadWithTheLastSet) {
  start("0");
  for (int i = 1; i <= 50; ++i) {
    publish(i);
    std::this_thread::sleep_for(10ms);  // kept, the burst's pace: 0.5 s, shorter than max_wait
  }
  ASSERT_TRUE(wait_for([&] { return stamps(dir_ + "/calls").size() >= 1; }, 5s));
  // Anything still pending would have run within 1.5 s: no second reload meanwhile.
  EXPECT_TRUE(test::consistently([&] { return stamps(dir_ + "/calls").size() == 1u; }, 1500ms));
  EXPECT_EQ(stamps(dir_ + "/calls").size(), 1u);
  EXPECT_EQ(manager_->reloads(), 1u);
  const std::string cfg = slurp(dir_ + "/h.cfg");
  EXPECT_NE(cfg.find("  server ep-10.0.0.50:80 10.0.0.50:80 weight 1\n"), std::string::npos) << cfg;
}

TEST_F(ConfigManagerTest, ReloadsAreSpacedByMinInterval) {
  start("0");
  publish(1);
  ASSERT_TRUE(wait_for([&] { return stamps(dir_ + "/calls").size() == 1; }, 5s));
  publish(2);  // right after the first reload: waits for min_interval (500 ms)
  ASSERT_TRUE(wait_for([&] { return stamps(dir_ + "/calls").size() == 2; }, 5s));
  const auto t = stamps(dir_ + "/calls");
  EXPECT_GE(t[1] - t[0], 0.45);
}

TEST_F(ConfigManagerTest, ASlowReloadDoesNotBlockTheReconciler) {
  start("1.5");
  publish(1);
  // The reload command is running (1.5 s); the reconciler keeps taking and applying changes.
  std::this_thread::sleep_for(400ms);  // kept: the scenario (publish during the reload)
  publish(2);
  EXPECT_TRUE(wait_for(
      [&] {
        auto b = fake_->observe({"web"});
        return b.ok() && (*b)[0].servers.size() == 2;
      },
      500ms));
  const auto loop = reconciler_->last_loop();
  EXPECT_TRUE(test::eventually([&] { return reconciler_->last_loop() > loop; }, 200ms));
  EXPECT_GT(reconciler_->last_loop(), loop);
  EXPECT_TRUE(stamps(dir_ + "/calls").empty());  // still reloading
  ASSERT_TRUE(wait_for([&] { return stamps(dir_ + "/calls").size() == 1; }, 5s));
}

// The config manager as the reconciler's BulkLoader: 30 new servers over bulk_threshold 20 are
// rendered (the new ones `disabled`: health-gated), validated, written and reloaded at once, once.
TEST_F(ConfigManagerTest, BulkAdditionIsRenderedDisabledValidatedAndReloadedOnce) {
  start("0", true);
  publish(30);
  // Counted once the reload command has exited (its copy of the config is complete).
  ASSERT_TRUE(wait_for([&] { return manager_->reloads() == 1; }, 5s));
  ASSERT_EQ(stamps(dir_ + "/calls").size(), 1u);
  const std::string loaded = slurp(dir_ + "/reloaded.cfg");
  size_t lines = 0;
  for (size_t at = 0; (at = loaded.find("  server ep-10.0.0.", at)) != std::string::npos; ++at) {
    ++lines;
  }
  EXPECT_EQ(lines, 30u) << loaded;
  EXPECT_NE(loaded.find("  server ep-10.0.0.7:80 10.0.0.7:80 weight 1 id 100007 check disabled\n"),
            std::string::npos)
      << loaded;
  EXPECT_EQ(manager_->reloads(), 1u);
  ASSERT_TRUE(manager_->last_reload().has_value());
  EXPECT_EQ(manager_->last_reload()->result, "ok");
  // The fake HAProxy did not take the servers from the "reload": the reconciler adds them at
  // runtime, and does not reload the same set again.
  EXPECT_TRUE(wait_for([&] { return fake_->names("web").size() == 30; }, 5s));
  std::this_thread::sleep_for(300ms);  // kept: a second reload, if any, would come now
  EXPECT_EQ(stamps(dir_ + "/calls").size(), 1u);
}

// `haproxy -c` refuses the candidate (`false` stands in for it): nothing is written or
// reloaded, the live file keeps its last good content, and the servers come by runtime commands.
TEST_F(ConfigManagerTest, BulkAdditionRefusedByValidationFallsBackToRuntimeCommands) {
  start("0", true, "false");
  publish(30);
  EXPECT_TRUE(wait_for([&] { return fake_->names("web").size() == 30; }, 5s));
  EXPECT_TRUE(stamps(dir_ + "/calls").empty());
  EXPECT_EQ(slurp(dir_ + "/h.cfg"), "backend web\n");
  EXPECT_EQ(manager_->reloads(), 0u);
}

}  // namespace
}  // namespace ep::app
