// AsyncProcess: a program run from a loop without blocking it (the kubernetes exec credential
// plugin): its result, the loop staying responsive meanwhile, the timeout, and cancellation.

#include "runtime/async_process.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <csignal>
#include <optional>

#include "runtime/runtime.h"
#include "support/eventually.h"

namespace ep::runtime {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  std::mutex mu;
  std::optional<Result<os::ProcessResult>> result;
  void set(Result<os::ProcessResult> r) {
    std::lock_guard lock(mu);
    result = std::move(r);
  }
  bool done() {
    std::lock_guard lock(mu);
    return result.has_value();
  }
};

class AsyncProcessTest : public ::testing::Test {
 protected:
  // Starts argv on the loop; the handle lives on the loop until the test ends.
  void start(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    loop_.run_sync([&] {
      os::ProcessOptions po;
      po.timeout = timeout;
      po.merge_stderr = false;
      auto p = AsyncProcess::start(
          loop_, argv, po, [this](Result<os::ProcessResult> r) { outcome_.set(std::move(r)); });
      ASSERT_TRUE(p.ok()) << p.error().message;
      handle_ = std::move(*p);
    });
  }
  void TearDown() override {
    loop_.run_sync([&] { handle_.reset(); });
  }

  Runtime rt_{RuntimeOptions{.threads = 1}};
  Loop& loop_ = rt_.loop();
  Outcome outcome_;
  std::unique_ptr<AsyncProcess> handle_;
};

TEST_F(AsyncProcessTest, ReturnsTheOutputAndExitStatusOnTheLoop) {
  start({"sh", "-c", "echo out; echo err >&2; exit 3"}, 10s);
  ASSERT_TRUE(test::eventually([&] { return outcome_.done(); }, 10s));
  ASSERT_TRUE(outcome_.result->ok());
  EXPECT_EQ((*outcome_.result)->output, "out");
  EXPECT_EQ((*outcome_.result)->error_output, "err");
  EXPECT_EQ((*outcome_.result)->exit_code, 3);
  EXPECT_FALSE((*outcome_.result)->timed_out);
}

TEST_F(AsyncProcessTest, TheLoopKeepsRunningWhileTheProgramRuns) {
  start({"sleep", "1"}, 10s);
  // A timer on the same loop fires long before the program ends.
  std::atomic<bool> fired{false};
  loop_.after(20ms, [&] { fired = true; });
  ASSERT_TRUE(test::eventually([&] { return fired.load(); }, 10s));
  EXPECT_FALSE(outcome_.done()) << "the timer ran while the program still ran";
  ASSERT_TRUE(test::eventually([&] { return outcome_.done(); }, 10s));
  EXPECT_TRUE((*outcome_.result)->succeeded());
}

TEST_F(AsyncProcessTest, IsKilledAtTheTimeout) {
  start({"sleep", "30"}, 200ms);
  ASSERT_TRUE(test::eventually([&] { return outcome_.done(); }, 10s));
  EXPECT_TRUE((*outcome_.result)->timed_out);
  EXPECT_FALSE((*outcome_.result)->succeeded());
}

TEST_F(AsyncProcessTest, DestroyingTheHandleKillsTheChildAndDoneNeverRuns) {
  start({"sleep", "30"}, 60s);
  pid_t pid = 0;
  loop_.run_sync([&] {
    pid = handle_->pid();
    handle_.reset();
  });
  EXPECT_EQ(::kill(pid, 0), -1) << "killed and reaped";
  EXPECT_TRUE(test::consistently([&] { return !outcome_.done(); }, 200ms));
}

TEST_F(AsyncProcessTest, AProgramThatCannotStartIsAnError) {
  loop_.run_sync([&] {
    auto p = AsyncProcess::start(loop_, {"/nonexistent/plugin"}, {}, [](auto) {});
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.error().message.find("/nonexistent/plugin"), std::string::npos);
  });
}

}  // namespace
}  // namespace ep::runtime
