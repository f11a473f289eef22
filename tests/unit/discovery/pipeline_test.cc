// The Pipeline's confirm timer runs on the source runtime: no thread of its own, and a held
// shrink is still confirmed after confirm_after.

#include "discovery/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

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
    return {};
  }
  void stop() override {}
  Snapshot fetch_once(std::chrono::milliseconds) override { return std::vector<Endpoint>{}; }
  Sink* sink() const { return sink_.load(); }

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

}  // namespace
}  // namespace ep::discovery
