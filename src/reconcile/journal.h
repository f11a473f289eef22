#pragma once
// What the reconciler did, for the dashboard: the last actions (time, instance, backend, server,
// action, reason, outcome, latency from the discovery event to HAProxy's acknowledgement) and,
// over the last hour, each convergence's latency and the time of each applied change (for p50/p99
// and changes per minute). Written by the reconciler's thread, read by the ops HTTP thread;
// bounded in memory. Thread-safe.

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"

namespace ep::reconcile {

struct ActionRecord {
  SteadyTime at{};
  std::string instance;
  std::string backend;
  std::string server;
  std::string action;  // to_string(ActionKind): add, remove, drain, ...
  std::string reason;  // reason_text()
  bool ok = true;
  std::string error;       // HAProxy's text when !ok
  double latency_s = 0.0;  // from when discovery saw the change to the acknowledgement
};

struct ConvergenceSample {
  SteadyTime at{};
  double seconds = 0.0;
};

// One minute of the window.
struct JournalMinute {
  size_t changes = 0;  // applied changes
  size_t convergences = 0;
  double p50_s = 0.0;  // convergence latency percentiles (0 when none)
  double p99_s = 0.0;
};

struct JournalView {
  std::vector<ActionRecord> actions;  // oldest first, at most kMaxActions
  // Over the whole window:
  size_t convergences = 0;
  double p50_s = 0.0;
  double p99_s = 0.0;
  size_t changes = 0;
  // kWindow minutes, oldest first; the last one is the minute ending at `now`.
  std::vector<JournalMinute> minutes;
};

// The p-quantile (0..1) of `values` by nearest rank; 0 when empty. Reorders `values`.
double quantile(std::vector<double>& values, double p);

class ActionJournal {
 public:
  static constexpr size_t kMaxActions = 500;
  static constexpr size_t kMaxSamples = 100'000;  // per series, whatever the window holds
  static constexpr std::chrono::minutes kWindow{60};

  void record(ActionRecord r);
  void converged(SteadyTime at, double seconds);
  // A copy; samples older than kWindow before `now` are left out (and dropped).
  JournalView view(SteadyTime now) const;

 private:
  void trim(SteadyTime now) const;  // requires mu_
  mutable std::mutex mu_;
  std::deque<ActionRecord> actions_;
  mutable std::deque<ConvergenceSample> convergence_;
  mutable std::deque<SteadyTime> changes_;
};

}  // namespace ep::reconcile
