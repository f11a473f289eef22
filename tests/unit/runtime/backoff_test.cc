#include "runtime/backoff.h"

#include <gtest/gtest.h>

namespace ep::runtime {
namespace {

using std::chrono::milliseconds;

TEST(RuntimeBackoff, GrowsDoublingUpToTheCapWithoutJitter) {
  Backoff b({.initial = milliseconds(100), .max = milliseconds(1000), .jitter = 0}, 1);
  EXPECT_EQ(b.next(), milliseconds(100));
  EXPECT_EQ(b.next(), milliseconds(200));
  EXPECT_EQ(b.next(), milliseconds(400));
  EXPECT_EQ(b.next(), milliseconds(800));
  EXPECT_EQ(b.next(), milliseconds(1000));
  EXPECT_EQ(b.next(), milliseconds(1000));
  EXPECT_EQ(b.failures(), 6);
}

TEST(RuntimeBackoff, ResetStartsOver) {
  Backoff b({.initial = milliseconds(100), .max = milliseconds(1000), .jitter = 0}, 1);
  b.next();
  b.next();
  b.reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_EQ(b.next(), milliseconds(100));
}

TEST(RuntimeBackoff, JitterStaysWithinItsBandAndVaries) {
  Backoff b({.initial = milliseconds(100), .max = milliseconds(800), .jitter = 0.5}, 42);
  std::vector<Duration> first;
  for (int round = 0; round < 50; ++round) {
    b.reset();
    Duration cap = milliseconds(100);
    for (int i = 0; i < 6; ++i) {
      const Duration d = b.next();
      EXPECT_LE(d, cap) << "attempt " << i;
      EXPECT_GE(d, cap / 2) << "attempt " << i;
      if (i == 0) first.push_back(d);
      cap = std::min<Duration>(cap * 2, milliseconds(800));
    }
  }
  std::sort(first.begin(), first.end());
  EXPECT_LT(first.front(), first.back());  // jittered, not constant
}

TEST(RuntimeBackoff, SameSeedSameSequence) {
  BackoffPolicy p{.initial = milliseconds(10), .max = milliseconds(10000), .jitter = 1.0};
  Backoff a(p, 7), b(p, 7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.next(), b.next());
}

TEST(RuntimeBackoff, NoOverflowAtAnyAttempt) {
  Backoff b({.initial = std::chrono::seconds(1), .max = std::chrono::hours(1), .jitter = 0}, 1);
  for (int i = 0; i < 10000; ++i) {
    const Duration d = b.next();
    ASSERT_GT(d, Duration::zero());
    ASSERT_LE(d, std::chrono::hours(1));
  }
  EXPECT_EQ(b.next(), std::chrono::hours(1));
}

TEST(RuntimeBackoff, MaxBelowInitialIsRaisedToInitial) {
  Backoff b({.initial = milliseconds(500), .max = milliseconds(100), .jitter = 0}, 1);
  EXPECT_EQ(b.next(), milliseconds(500));
  EXPECT_EQ(b.next(), milliseconds(500));
}

}  // namespace
}  // namespace ep::runtime
