// The Pipeline's confirm timer runs on the source runtime: no thread of its own, and a held
// shrink is still confirmed after confirm_after.

#include "discovery/pipeline.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/metrics.h"
#include "os/file.h"
#include "support/eventually.h"
#include "support/proc_counts.h"

namespace ep::discovery {
namespace {

using namespace std::chrono_literals;

// A source the test drives: it publishes what the test hands to its sink.
class ManualSource final : public Source {
 public:
  std::string describe() const override { return "manual"; }
  Status start(Sink& sink) override {
    sink_ = &sink;
    if (!at_start.empty()) sink.publish(at_start);  // answers before Pipeline::start() returns
    return {};
  }
  void stop() override {}
  Snapshot fetch_once(std::chrono::milliseconds) override { return std::vector<Endpoint>{}; }
  Sink* sink() const { return sink_.load(); }
  std::vector<Endpoint> at_start;  // published from start() itself when not empty

 private:
  std::atomic<Sink*> sink_{nullptr};
};

std::vector<Endpoint> endpoints(int n) {
  std::vector<Endpoint> out;
  for (int i = 0; i < n; ++i) {
    Endpoint e;
    e.address = "10.0.0." + std::to_string(i + 1);
    e.port = 80;
    out.push_back(e);
  }
  return out;
}

struct Desired {
  std::mutex mu;
  std::condition_variable cv;
  size_t size = 0;
  bool ready = false;
  void set(const std::vector<ServerSpec>& servers, bool r) {
    std::lock_guard lock(mu);
    size = servers.size();
    ready = r;
    cv.notify_all();
  }
  bool wait_size(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return ready && size == n; });
  }
};

TEST(PipelineTest, ConfirmTimerRunsOnTheRuntimeWithoutAThread) {
  runtime::Runtime rt({.threads = 2});
  const size_t threads_before = test::thread_count();

  std::vector<BackendSources> backends(1);
  backends[0].policy.name = "web";
  backends[0].policy.safety.confirm_after = 100ms;
  auto source = std::make_unique<ManualSource>();
  ManualSource* manual = source.get();
  backends[0].sources.push_back(std::move(source));
  Desired desired;
  Pipeline pipeline(
      std::move(backends), SystemClock::instance(),
      [&](size_t, const std::vector<ServerSpec>& servers, bool ready, SteadyTime) {
        desired.set(servers, ready);
      },
      &rt);
  ASSERT_TRUE(pipeline.start().ok());
  EXPECT_EQ(test::thread_count(), threads_before);  // the timer is on a runtime loop

  ASSERT_NE(manual->sink(), nullptr);
  manual->sink()->publish(endpoints(4));
  ASSERT_TRUE(desired.wait_size(4));
  // 4 -> 1 removes 75% > max_remove_fraction: held, then confirmed by the timer.
  manual->sink()->publish(endpoints(1));
  EXPECT_TRUE(desired.wait_size(1));
  EXPECT_EQ(pipeline.status()[0].hold, Hold::kNone);
  EXPECT_EQ(test::thread_count(), threads_before);

  pipeline.stop();
  EXPECT_EQ(test::thread_count(), threads_before);
}

// Deliveries re-plan the confirm timer only for a deadline earlier than the planned one (a
// re-plan reads every backend). A hold that starts in one of several backends is still confirmed
// at its own deadline, not at the timer's 1 s re-read; driven on a manual loop and a fake clock.
TEST(PipelineTest, AHoldStartedByADeliveryIsConfirmedAtItsDeadlineNotAtTheOneSecondReRead) {
  FakeClock clock;
  runtime::Runtime rt({.threads = 0, .clock = &clock});
  std::vector<BackendSources> backends(3);
  std::vector<ManualSource*> manual;
  for (size_t i = 0; i < backends.size(); ++i) {
    backends[i].policy.name = "b" + std::to_string(i);
    backends[i].policy.safety.confirm_after = 200ms;
    auto source = std::make_unique<ManualSource>();
    manual.push_back(source.get());
    backends[i].sources.push_back(std::move(source));
  }
  std::vector<size_t> sizes(3, 0);
  Pipeline pipeline(
      std::move(backends), clock,
      [&](size_t b, const std::vector<ServerSpec>& servers, bool, SteadyTime) {
        sizes[b] = servers.size();
      },
      &rt);
  ASSERT_TRUE(pipeline.start().ok());  // plans the timer 1 s ahead: no deadline yet
  for (auto* m : manual) m->sink()->publish(endpoints(4));
  rt.run_until_idle();
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 4}));

  clock.advance(300ms);
  rt.run_until_idle();
  // 4 -> 1 removes 75% > max_remove_fraction: held until 200 ms from now.
  manual[2]->sink()->publish(endpoints(1));
  rt.run_until_idle();
  EXPECT_EQ(sizes[2], 4u);
  EXPECT_EQ(pipeline.status()[2].hold, Hold::kShrink);
  clock.advance(200ms);  // 500 ms after start: before the 1 s re-read
  rt.run_until_idle();
  EXPECT_EQ(sizes[2], 1u);
  EXPECT_EQ(pipeline.status()[2].hold, Hold::kNone);
  pipeline.stop();
}

// Issue #19: /status shows, per source, the snapshots it published, the failed ones, and those of
// the last 60 s (events per minute), on the pipeline's clock.
TEST(PipelineTest, StatusCountsEachSourcesSnapshotsErrorsAndEventsOfTheLastMinute) {
  runtime::Runtime rt({.threads = 1});
  FakeClock clock;
  std::vector<BackendSources> backends(1);
  backends[0].policy.name = "web";
  auto source = std::make_unique<ManualSource>();
  ManualSource* manual = source.get();
  backends[0].sources.push_back(std::move(source));
  Pipeline pipeline(
      std::move(backends), clock, [](size_t, const std::vector<ServerSpec>&, bool, SteadyTime) {},
      &rt);
  ASSERT_TRUE(pipeline.start().ok());
  ASSERT_NE(manual->sink(), nullptr);
  auto src = [&] { return pipeline.status()[0].sources[0]; };
  EXPECT_EQ(src().snapshots, 0u);
  EXPECT_EQ(src().events_last_minute, 0u);
  // The same counts in Prometheus (process-wide registry: compared as deltas).
  const Labels key{{"backend", "web"}, {"source", "manual"}};
  const double published = Metrics::global().value("elasticproxy_source_snapshots_total", key);
  auto errors_metric = [&] {
    return Metrics::global().value(
        "elasticproxy_source_errors_total",
        {{"backend", "web"}, {"source", "manual"}, {"reason", "unavailable"}});
  };
  const double failed = errors_metric();

  // Discovery's labels follow the last good set (and stay through a failure).
  auto labelled = endpoints(2);
  labelled[1].labels = {{"consul.service", "web"}, {"consul.tags", "<b>blue</b>"}};
  manual->sink()->publish(labelled);
  ASSERT_NE(src().labels, nullptr);
  ASSERT_EQ(src().labels->size(), 1u);
  EXPECT_EQ((*src().labels)[0].server, "ep-10.0.0.2:80");
  using Pairs = std::vector<std::pair<std::string_view, std::string_view>>;
  EXPECT_EQ((*src().labels)[0].pairs(),
            (Pairs{{"consul.service", "web"}, {"consul.tags", "<b>blue</b>"}}));
  manual->sink()->publish(endpoints(2));
  EXPECT_EQ(src().labels, nullptr);
  EXPECT_EQ(Metrics::global().value("elasticproxy_source_snapshots_total", key), published + 2);
  clock.advance(61s);  // those two leave the minute

  manual->sink()->publish(endpoints(2));
  clock.advance(20s);
  manual->sink()->publish(Error::unavailable("connection refused"));
  clock.advance(20s);
  manual->sink()->publish(endpoints(2));  // same set: still an event
  EXPECT_EQ(src().snapshots, 5u);
  EXPECT_EQ(src().errors, 1u);
  EXPECT_EQ(src().events_last_minute, 3u);
  clock.advance(21s);  // the first is older than a minute
  EXPECT_EQ(src().events_last_minute, 2u);
  clock.advance(40s);
  EXPECT_EQ(src().events_last_minute, 0u);
  EXPECT_EQ(src().snapshots, 5u);  // totals stay
  EXPECT_EQ(src().errors, 1u);
  EXPECT_EQ(Metrics::global().value("elasticproxy_source_snapshots_total", key), published + 5);
  EXPECT_EQ(errors_metric(), failed + 1);
  pipeline.stop();
}

// With several sources, /status says which servers each one gives (the dashboard's "from
// source"); a backend's only source lists none (the backend's desired set is its set).
TEST(PipelineTest, StatusNamesEachSourcesServersWhenABackendHasSeveral) {
  runtime::Runtime rt({.threads = 1});
  FakeClock clock;
  std::vector<BackendSources> backends(2);
  backends[0].policy.name = "two";
  backends[1].policy.name = "one";
  std::vector<ManualSource*> manual;
  for (auto* b : {&backends[0], &backends[0], &backends[1]}) {
    auto source = std::make_unique<ManualSource>();
    manual.push_back(source.get());
    b->sources.push_back(std::move(source));
  }
  Pipeline pipeline(
      std::move(backends), clock, [](size_t, const std::vector<ServerSpec>&, bool, SteadyTime) {},
      &rt);
  ASSERT_TRUE(pipeline.start().ok());
  auto eps = endpoints(3);
  manual[0]->sink()->publish(std::vector<Endpoint>{eps[0], eps[1]});
  manual[1]->sink()->publish(std::vector<Endpoint>{eps[1], eps[2]});
  manual[2]->sink()->publish(std::vector<Endpoint>{eps[0]});
  const auto st = pipeline.status();
  EXPECT_EQ(st[0].sources[0].servers,
            (std::vector<std::string>{"ep-10.0.0.1:80", "ep-10.0.0.2:80"}));
  EXPECT_EQ(st[0].sources[1].servers,
            (std::vector<std::string>{"ep-10.0.0.2:80", "ep-10.0.0.3:80"}));
  EXPECT_TRUE(st[1].sources[0].servers.empty());
  pipeline.stop();
}

TEST(PipelineTest, ResolveHoldRunsOnThePipelineLoopAndReachesTheCallback) {
  runtime::Runtime rt({.threads = 2});
  std::vector<BackendSources> backends(1);
  backends[0].policy.name = "web";
  backends[0].policy.safety.confirm_after = std::chrono::hours(1);
  auto source = std::make_unique<ManualSource>();
  ManualSource* manual = source.get();
  backends[0].sources.push_back(std::move(source));
  Desired desired;
  Pipeline pipeline(
      std::move(backends), SystemClock::instance(),
      [&](size_t, const std::vector<ServerSpec>& servers, bool ready, SteadyTime) {
        desired.set(servers, ready);
      },
      &rt);
  // Not running yet: refused, nothing touched.
  EXPECT_EQ(pipeline.resolve_hold("web", true, 2s).error().kind, ErrorKind::kUnavailable);
  ASSERT_TRUE(pipeline.start().ok());
  manual->sink()->publish(endpoints(4));
  ASSERT_TRUE(desired.wait_size(4));
  EXPECT_EQ(pipeline.resolve_hold("nope", true, 2s).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(pipeline.resolve_hold("web", true, 2s).error().kind, ErrorKind::kNotYet);

  manual->sink()->publish(endpoints(1));  // 4 -> 1: held for an hour
  ASSERT_TRUE(test::eventually([&] { return pipeline.status()[0].hold == Hold::kShrink; }));
  auto st = pipeline.status()[0];
  EXPECT_EQ(st.held_servers, 1u);
  EXPECT_EQ(st.would_remove.size(), 3u);
  ASSERT_TRUE(st.confirm_at.has_value());
  auto r = pipeline.resolve_hold("web", true, 5s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("confirmed"), std::string::npos) << *r;
  EXPECT_TRUE(desired.wait_size(1));  // the reconciler hears it through the callback
  EXPECT_EQ(pipeline.status()[0].hold, Hold::kNone);

  pipeline.stop();
  EXPECT_EQ(pipeline.resolve_hold("web", true, 2s).error().kind, ErrorKind::kUnavailable);
}

// ---- the state file (#16.3)

std::string temp_dir() {
  char tmpl[] = "/tmp/ep-state.XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  return d ? d : "/tmp";
}

std::string slurp(const std::string& path) {
  auto r = os::read_file(path);
  return r ? *r : std::string();
}

struct StateRig {
  runtime::Runtime rt{{.threads = 1}};
  ManualSource* manual = nullptr;
  Desired desired;
  std::unique_ptr<Pipeline> pipeline;

  explicit StateRig(StateOptions options) {
    std::vector<BackendSources> backends(1);
    backends[0].policy.name = "web";
    auto source = std::make_unique<ManualSource>();
    manual = source.get();
    backends[0].sources.push_back(std::move(source));
    pipeline = std::make_unique<Pipeline>(
        std::move(backends), SystemClock::instance(),
        [this](size_t, const std::vector<ServerSpec>& servers, bool ready, SteadyTime) {
          desired.set(servers, ready);
        },
        &rt);
    pipeline->set_state(std::move(options));
  }
};

StateOptions state_options(const std::string& path) {
  StateOptions o;
  o.path = path;
  o.write_delay = 50ms;
  o.restore_after = 10s;  // only errors restore, unless a test says otherwise
  return o;
}

TEST(PipelineState, LastGoodSetIsWrittenAndRestoredWhenTheSourceFailsAtStart) {
  const std::string path = temp_dir() + "/state.json";
  {
    StateRig rig(state_options(path));
    ASSERT_TRUE(rig.pipeline->start().ok());
    rig.manual->sink()->publish(endpoints(3));
    ASSERT_TRUE(rig.desired.wait_size(3));
    // Written after write_delay, atomically (no temp file left).
    ASSERT_TRUE(
        test::eventually([&] { return slurp(path).find("10.0.0.3") != std::string::npos; }));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    rig.pipeline->stop();
  }
  StateRig rig(state_options(path));
  ASSERT_TRUE(rig.pipeline->start().ok());
  EXPECT_FALSE(rig.pipeline->ready());
  rig.manual->sink()->publish(Error::unavailable("connection refused"));
  ASSERT_TRUE(rig.desired.wait_size(3));
  auto st = rig.pipeline->status()[0].sources[0];
  EXPECT_TRUE(st.from_state);
  EXPECT_TRUE(st.failing);
  // The source answers: its own set replaces the saved one, no longer from the state file.
  rig.manual->sink()->publish(endpoints(2));
  ASSERT_TRUE(rig.desired.wait_size(2));
  EXPECT_FALSE(rig.pipeline->status()[0].sources[0].from_state);
  rig.pipeline->stop();
}

// A source that delivers while the pipeline is still starting (before its timer runs) has its
// set written too: CI saw a Consul source's only set (then a 5-minute blocking query) never
// reach the state file.
TEST(PipelineState, ASetDeliveredWhileThePipelineStartsIsWrittenToo) {
  const std::string path = temp_dir() + "/state.json";
  StateRig rig(state_options(path));
  rig.manual->at_start = endpoints(2);
  ASSERT_TRUE(rig.pipeline->start().ok());
  ASSERT_TRUE(rig.desired.wait_size(2));
  EXPECT_TRUE(
      test::eventually([&] { return slurp(path).find("10.0.0.2") != std::string::npos; }))
      << slurp(path);
  rig.pipeline->stop();
}

TEST(PipelineState, ASilentSourceGetsItsSavedSetAfterRestoreAfter) {
  const std::string path = temp_dir() + "/state.json";
  SavedState saved;
  saved["web"]["manual"] = {endpoints(2), unix_now() - 5};
  ASSERT_TRUE(write_state(path, render_state(saved, unix_now())).ok());
  StateOptions o = state_options(path);
  o.restore_after = 100ms;
  StateRig rig(o);
  ASSERT_TRUE(rig.pipeline->start().ok());
  ASSERT_TRUE(rig.desired.wait_size(2));
  EXPECT_TRUE(rig.pipeline->status()[0].sources[0].from_state);
  rig.pipeline->stop();
}

TEST(PipelineState, StaleEntryIsIgnoredNeverTrustedPastItsAge) {
  const std::string path = temp_dir() + "/state.json";
  SavedState saved;
  saved["web"]["manual"] = {endpoints(2), unix_now() - 7200};
  ASSERT_TRUE(write_state(path, render_state(saved, unix_now())).ok());
  StateOptions o = state_options(path);
  o.max_age = std::chrono::hours(1);
  o.restore_after = 50ms;
  StateRig rig(o);
  ASSERT_TRUE(rig.pipeline->start().ok());
  rig.manual->sink()->publish(Error::unavailable("connection refused"));
  EXPECT_TRUE(test::consistently([&] { return !rig.pipeline->ready(); }, 300ms));
  EXPECT_FALSE(rig.pipeline->status()[0].sources[0].from_state);
  rig.pipeline->stop();
}

TEST(PipelineState, UnreadableFileIsReportedAndIgnored) {
  const std::string path = temp_dir() + "/state.json";
  { std::ofstream(path) << "{not json"; }
  StateOptions o = state_options(path);
  o.restore_after = 50ms;
  StateRig rig(o);
  ASSERT_TRUE(rig.pipeline->start().ok());
  EXPECT_TRUE(test::consistently([&] { return !rig.pipeline->ready(); }, 200ms));
  // The source still works, and its set replaces the bad file.
  rig.manual->sink()->publish(endpoints(1));
  ASSERT_TRUE(rig.desired.wait_size(1));
  ASSERT_TRUE(
      test::eventually([&] { return slurp(path).find("\"version\": 1") != std::string::npos; }));
  rig.pipeline->stop();
}

TEST(StateFile, ParseErrorsNameTheFileAndWhat) {
  auto bad = parse_state("{\"version\": 2}", "/x/state.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("/x/state.json"), std::string::npos);
  auto port = parse_state(
      R"({"version": 1, "backends": {"web": {"sources": {"s": {"saved_at": 1, "endpoints": [{"address": "10.0.0.1", "port": 70000}]}}}}})",
      "f");
  ASSERT_FALSE(port.ok());
  EXPECT_NE(port.error().message.find("out of range"), std::string::npos);
  SavedState s;
  s["web"]["s"] = {endpoints(2), 42};
  s["web"]["s"].endpoints[0].weight = 7;
  auto back = parse_state(render_state(s, 43), "f");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ((*back)["web"]["s"].saved_at, 42);
  EXPECT_EQ((*back)["web"]["s"].endpoints, s["web"]["s"].endpoints);
  auto w = write_state("/nonexistent-dir/state.json", "x");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("/nonexistent-dir/state.json"), std::string::npos);
}

}  // namespace
}  // namespace ep::discovery
