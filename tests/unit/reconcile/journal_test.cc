// The action journal behind the dashboard's timeline and convergence chart.

#include "reconcile/journal.h"

#include <gtest/gtest.h>

namespace ep::reconcile {
namespace {

using namespace std::chrono_literals;

ActionRecord action(SteadyTime at, std::string server, bool ok = true) {
  ActionRecord r;
  r.at = at;
  r.instance = "/run/haproxy/admin.sock";
  r.backend = "web";
  r.server = std::move(server);
  r.action = "add";
  r.reason = "new in discovery";
  r.ok = ok;
  r.latency_s = 0.05;
  return r;
}

TEST(Quantile, NearestRank) {
  std::vector<double> none;
  EXPECT_EQ(quantile(none, 0.5), 0.0);
  std::vector<double> v{5, 1, 4, 2, 3};
  EXPECT_EQ(quantile(v, 0.5), 3);
  EXPECT_EQ(quantile(v, 0.99), 5);
  EXPECT_EQ(quantile(v, 0.0), 1);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_EQ(quantile(hundred, 0.99), 99);
}

TEST(ActionJournal, KeepsTheLast500ActionsOldestFirst) {
  ActionJournal j;
  const SteadyTime t0 = SteadyTime{} + 10h;
  for (int i = 0; i < 600; ++i)
    j.record(action(t0 + std::chrono::milliseconds(i), std::to_string(i)));
  const JournalView v = j.view(t0 + 1s);
  ASSERT_EQ(v.actions.size(), ActionJournal::kMaxActions);
  EXPECT_EQ(v.actions.front().server, "100");
  EXPECT_EQ(v.actions.back().server, "599");
  EXPECT_EQ(v.changes, 600u);  // counted over the window, not capped at 500
}

TEST(ActionJournal, PerMinuteChangesAndLatencyOverTheLastHour) {
  ActionJournal j;
  const SteadyTime now = SteadyTime{} + 10h;
  j.record(action(now - 90min, "too-old"));  // outside the window
  j.converged(now - 90min, 100.0);
  j.record(action(now - 30s, "a"));
  j.record(action(now - 20s, "b"));
  j.record(action(now - 10s, "failed", false));  // not a change
  j.record(action(now - 5min - 1s, "c"));
  j.converged(now - 30s, 0.1);
  j.converged(now - 20s, 0.3);
  j.converged(now - 5min - 1s, 2.0);
  const JournalView v = j.view(now);
  ASSERT_EQ(v.minutes.size(), 60u);
  EXPECT_EQ(v.minutes[59].changes, 2u);  // the last minute
  EXPECT_EQ(v.minutes[59].convergences, 2u);
  EXPECT_DOUBLE_EQ(v.minutes[59].p50_s, 0.1);
  EXPECT_DOUBLE_EQ(v.minutes[59].p99_s, 0.3);
  EXPECT_EQ(v.minutes[54].changes, 1u);  // 5 minutes back
  EXPECT_EQ(v.changes, 3u);
  EXPECT_EQ(v.convergences, 3u);
  EXPECT_DOUBLE_EQ(v.p50_s, 0.3);
  EXPECT_DOUBLE_EQ(v.p99_s, 2.0);
  // The timeline keeps the old entries (it is capped by count, not by time).
  EXPECT_EQ(v.actions.size(), 5u);
  EXPECT_FALSE(v.actions[3].ok);
}

}  // namespace
}  // namespace ep::reconcile
