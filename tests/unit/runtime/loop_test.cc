#include "runtime/loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "support/proc_counts.h"
#include "support/time_scale.h"

namespace ep::runtime {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Waits (on a condition variable, not a sleep) until `n` marks were counted.
class Counter {
 public:
  void mark() {
    std::lock_guard lock(mu_);
    ++n_;
    cv_.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, test::scaled(seconds(10)), [&] { return n_ >= n; });
  }
  int value() {
    std::lock_guard lock(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void put() { EXPECT_EQ(::write(fds[1], "x", 1), 1); }
  void drain() {
    char buf[64];
    while (::read(fds[0], buf, sizeof buf) > 0) {
    }
  }
  int fds[2];
};

TEST(RuntimeLoop, PostedTasksRunOnTheLoopThreadFromManyThreads) {
  Runtime rt({.threads = 2});
  Loop& loop = rt.loop(1);
  Counter done;
  std::atomic<int> off_thread{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        loop.post([&] {
          if (!loop.on_loop_thread()) off_thread.fetch_add(1);
          done.mark();
        });
      }
    });
  }
  for (auto& t : posters) t.join();
  ASSERT_TRUE(done.wait_for(1000));
  EXPECT_EQ(off_thread.load(), 0);
  EXPECT_FALSE(loop.on_loop_thread());
}

TEST(RuntimeLoop, TimersFollowTheInjectedClockInOrder) {
  FakeClock clock;
  Runtime rt({.threads = 0, .clock = &clock});
  Loop& loop = rt.loop();
  std::vector<int> order;
  loop.after(milliseconds(300), [&] { order.push_back(3); });
  loop.after(milliseconds(100), [&] { order.push_back(1); });
  loop.after(milliseconds(200), [&] { order.push_back(2); });
  rt.run_until_idle();
  EXPECT_TRUE(order.empty());  // no time has passed
  clock.advance(milliseconds(150));
  rt.run_until_idle();
  EXPECT_EQ(order, std::vector<int>({1}));
  clock.advance(milliseconds(150));
  rt.run_until_idle();
  EXPECT_EQ(order, std::vector<int>({1, 2, 3}));
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST(RuntimeLoop, CancelledTimerNeverRunsEvenWhenDueInTheSameBatch) {
  FakeClock clock;
  Runtime rt({.threads = 0, .clock = &clock});
  Loop& loop = rt.loop();
  bool second_ran = false;
  TimerId second = 0;
  loop.after(milliseconds(10), [&] { EXPECT_TRUE(loop.cancel(second)); });
  second = loop.after(milliseconds(20), [&] { second_ran = true; });
  const TimerId third = loop.after(milliseconds(30), [] {});
  EXPECT_TRUE(loop.cancel(third));
  EXPECT_FALSE(loop.cancel(third));
  clock.advance(seconds(1));
  rt.run_until_idle();
  EXPECT_FALSE(second_ran);
  EXPECT_FALSE(loop.cancel(12345));
}

TEST(RuntimeLoop, ATimerThatReschedulesItselfDoesNotSpinOneTurn) {
  FakeClock clock;
  Runtime rt({.threads = 0, .clock = &clock});
  Loop& loop = rt.loop();
  int runs = 0;
  std::function<void()> tick = [&] {
    ++runs;
    loop.after(milliseconds(100), tick);
  };
  loop.after(milliseconds(100), tick);
  for (int i = 0; i < 5; ++i) {
    clock.advance(milliseconds(100));
    rt.run_until_idle();
  }
  EXPECT_EQ(runs, 5);
}

TEST(RuntimeLoop, RealTimersFireOnTheirOwn) {
  Runtime rt({.threads = 1});
  Counter fired;
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point at;
  rt.loop().after(milliseconds(30), [&] {
    at = std::chrono::steady_clock::now();
    fired.mark();
  });
  ASSERT_TRUE(fired.wait_for(1));
  EXPECT_GE(at - t0, milliseconds(30));
}

TEST(RuntimeLoop, FdWatchCallsBackUntilUnwatched) {
  Runtime rt({.threads = 0});
  Loop& loop = rt.loop();
  Pipe p;
  int calls = 0;
  auto id = loop.watch_fd(p.fds[0], EPOLLIN, [&](std::uint32_t ev) {
    EXPECT_TRUE(ev & EPOLLIN);
    ++calls;
    p.drain();
  });
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(loop.watch_count(), 1u);
  rt.run_until_idle();
  EXPECT_EQ(calls, 0);
  p.put();
  rt.run_until_idle();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(loop.unwatch_fd(*id));
  EXPECT_FALSE(loop.unwatch_fd(*id));
  p.put();
  rt.run_until_idle();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.watch_count(), 0u);
}

TEST(RuntimeLoop, ModifyFdSwitchesEvents) {
  Runtime rt({.threads = 0});
  Loop& loop = rt.loop();
  Pipe p;
  int writable = 0;
  auto id = loop.watch_fd(p.fds[1], 0, [&](std::uint32_t ev) {
    if (ev & EPOLLOUT) ++writable;
  });
  ASSERT_TRUE(id.ok());
  rt.run_until_idle();
  EXPECT_EQ(writable, 0);
  ASSERT_TRUE(loop.modify_fd(*id, EPOLLOUT).ok());
  loop.run_until([&] { return writable > 0; }, test::scaled(seconds(5)));
  EXPECT_GT(writable, 0);
  loop.unwatch_fd(*id);
}

TEST(RuntimeLoop, FdUnwatchedByAnEarlierCallbackOfTheBatchDoesNotRun) {
  Runtime rt({.threads = 0});
  Loop& loop = rt.loop();
  Pipe a, b;
  WatchId wa = 0, wb = 0;
  int ran = 0;
  // Whichever runs first unwatches the other: exactly one runs.
  wa = *loop.watch_fd(a.fds[0], EPOLLIN, [&](std::uint32_t) {
    ++ran;
    loop.unwatch_fd(wb);
    loop.unwatch_fd(wa);
  });
  wb = *loop.watch_fd(b.fds[0], EPOLLIN, [&](std::uint32_t) {
    ++ran;
    loop.unwatch_fd(wa);
    loop.unwatch_fd(wb);
  });
  a.put();
  b.put();
  rt.run_until_idle();
  EXPECT_EQ(ran, 1);
}

TEST(RuntimeLoop, RunSyncWaitsForTheLoopThread) {
  Runtime rt({.threads = 1});
  Loop& loop = rt.loop();
  bool on_thread = false;
  int value = 0;
  loop.run_sync([&] {
    on_thread = loop.on_loop_thread();
    value = 42;
  });
  EXPECT_TRUE(on_thread);
  EXPECT_EQ(value, 42);
  // From the loop thread itself it runs inline (no deadlock).
  Counter done;
  loop.post([&] {
    loop.run_sync([&] { value = 7; });
    done.mark();
  });
  ASSERT_TRUE(done.wait_for(1));
  EXPECT_EQ(value, 7);
}

TEST(RuntimeLoop, StopRunsNothingAfterwardAndDestroysQueuedWork) {
  Runtime rt({.threads = 2});
  std::atomic<int> ran{0};
  Counter started;
  // Keep loop 0 busy until stop() has begun, so the work posted meanwhile stays queued.
  rt.loop(0).post([&] {
    started.mark();
    const auto end = std::chrono::steady_clock::now() + test::scaled(seconds(10));
    while (!rt.loop(0).stopping() && std::chrono::steady_clock::now() < end) {
      std::this_thread::yield();
    }
  });
  ASSERT_TRUE(started.wait_for(1));
  for (int i = 0; i < 10; ++i) rt.loop(0).post([&] { ran.fetch_add(1); });
  rt.loop(1).after(milliseconds(1), [&] { ran.fetch_add(100); });
  rt.loop(1).after(seconds(3600), [&] { ran.fetch_add(1000); });
  auto token = std::make_shared<int>(0);
  rt.loop(0).post([token] {});
  rt.stop();
  const int after_stop = ran.load();
  EXPECT_FALSE(rt.loop(0).post([&] { ran.fetch_add(1); }));
  EXPECT_EQ(rt.loop(1).after(milliseconds(0), [&] { ran.fetch_add(1); }), 0u);
  EXPECT_EQ(rt.loop(0).timer_count() + rt.loop(1).timer_count(), 0u);
  EXPECT_EQ(ran.load(), after_stop);
  EXPECT_EQ(ran.load() % 100, 0);   // loop 0's queued tasks were dropped unrun...
  EXPECT_EQ(token.use_count(), 1);  // ...and destroyed
  // run_sync on a stopped loop runs inline.
  bool inline_ran = false;
  rt.loop(0).run_sync([&] { inline_ran = true; });
  EXPECT_TRUE(inline_ran);
  rt.stop();  // idempotent
}

TEST(RuntimeLoop, PendingTimerCallbacksAreDestroyedAtStop) {
  auto token = std::make_shared<int>(0);
  Runtime rt({.threads = 1});
  rt.loop().after(seconds(3600), [token] {});
  EXPECT_EQ(token.use_count(), 2);
  rt.stop();
  EXPECT_EQ(token.use_count(), 1);
}

TEST(Runtime, ThreadCountIsFixedByOptions) {
  const size_t before = test::thread_count();
  {
    Runtime rt({.threads = 3});
    EXPECT_EQ(rt.loop_count(), 3u);
    EXPECT_EQ(test::thread_count(), before + 3);
    // Handing out loops creates no thread.
    for (int i = 0; i < 100; ++i) rt.loop();
    EXPECT_EQ(test::thread_count(), before + 3);
  }
  EXPECT_EQ(test::thread_count(), before);
  Runtime manual({.threads = 0});
  EXPECT_TRUE(manual.manual());
  EXPECT_EQ(test::thread_count(), before);
}

TEST(Runtime, LoopThreadsAreNamed) {
  Runtime rt({.threads = 2});
  std::string name;
  rt.loop(1).run_sync([&] {
    char buf[16] = {0};
    ::pthread_getname_np(::pthread_self(), buf, sizeof buf);
    name = buf;
  });
  EXPECT_EQ(name, "ep-runtime-1");
}

TEST(Runtime, LoopsAreHandedOutRoundRobin) {
  Runtime rt({.threads = 2});
  EXPECT_NE(&rt.loop(), &rt.loop());
}

}  // namespace
}  // namespace ep::runtime
