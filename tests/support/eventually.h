#pragma once
// Waiting on conditions in tests, on one budget (docs/STYLE.md, example 10). A test never sleeps
// to wait for something it can observe: it asks eventually() to poll the observation until it
// holds. Budgets are on the test time scale (support/time_scale.h): every budget given here is
// multiplied by EP_TEST_TIME_SCALE, so sanitized builds get more time and the same assertions.
// Header-only; prints nothing.
//
//   ASSERT_TRUE(ep::test::eventually([&] { return hp.admin("show servers state web")
//                                                     .find("ep-1") != std::string::npos; }));
//   EP_ASSERT_EVENTUALLY(sink.size() >= 2);           // the same, with the condition in the
//   message EXPECT_TRUE(ep::test::consistently([&] { return sink.size() == 2; }, 300ms));  //
//   nothing else

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "support/time_scale.h"

namespace ep::test {

// The longest a test waits for something it expects to happen (before scaling). A condition that
// needs longer is a bug or a hang; a test that needs a tighter bound asserts on the time itself.
inline constexpr std::chrono::milliseconds kMaxTestWaitTime{15000};

// Polls `predicate` (callable with no arguments, returning something testable as bool) until it
// holds or scaled(budget) has passed, pausing 1 ms at first and doubling up to 20 ms between
// polls. Returns true as soon as it holds; false if it still does not hold at the deadline (it
// is asked once more then). Runs the predicate on the calling thread.
template <class Predicate, class Rep = std::chrono::milliseconds::rep,
          class Period = std::chrono::milliseconds::period>
bool eventually(Predicate&& predicate,
                std::chrono::duration<Rep, Period> budget = kMaxTestWaitTime) {
  using std::chrono::steady_clock;
  const auto deadline =
      steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(scaled(budget));
  steady_clock::duration pause = std::chrono::milliseconds(1);
  while (!static_cast<bool>(predicate())) {
    const auto now = steady_clock::now();
    if (now >= deadline) return static_cast<bool>(predicate());
    // The backoff is the poll interval of a condition wait, not a wait in itself.
    std::this_thread::sleep_for(std::min(pause, deadline - now));
    pause = std::min<steady_clock::duration>(pause * 2, std::chrono::milliseconds(20));
  }
  return true;
}

// The opposite check: "nothing happens during `window`". Polls `predicate` every few ms for
// scaled(window) and returns false as soon as it does not hold, true if it held throughout. Use
// it where a test must let time pass to show that something does NOT happen (a wrong
// implementation would act within the window). The other sleeps a test may keep are a double's or
// a load's own pace and the length of a scenario (a fault that lasts 5 s), each saying so.
template <class Predicate, class Rep, class Period>
bool consistently(Predicate&& predicate, std::chrono::duration<Rep, Period> window) {
  using std::chrono::steady_clock;
  const auto deadline =
      steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(scaled(window));
  while (true) {
    if (!static_cast<bool>(predicate())) return false;
    const auto now = steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(
        std::min<steady_clock::duration>(deadline - now, std::chrono::milliseconds(5)));
  }
}

}  // namespace ep::test

// gtest assertions on eventually(): the failure message names the condition that never held.
#define EP_ASSERT_EVENTUALLY(condition)                                                   \
  ASSERT_TRUE(::ep::test::eventually([&] { return (condition); }))                        \
      << "never held within " << ::ep::test::scaled(::ep::test::kMaxTestWaitTime).count() \
      << " ms: " #condition
#define EP_EXPECT_EVENTUALLY(condition)                                                   \
  EXPECT_TRUE(::ep::test::eventually([&] { return (condition); }))                        \
      << "never held within " << ::ep::test::scaled(::ep::test::kMaxTestWaitTime).count() \
      << " ms: " #condition
