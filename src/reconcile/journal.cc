#include "reconcile/journal.h"

#include <algorithm>
#include <cmath>

namespace ep::reconcile {

double quantile(std::vector<double>& values, double p) {
  if (values.empty()) return 0.0;
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  const size_t k = std::min(values.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

void ActionJournal::record(ActionRecord r) {
  std::lock_guard lock(mu_);
  if (r.ok) {
    changes_.push_back(r.at);
    if (changes_.size() > kMaxSamples) changes_.pop_front();
  }
  actions_.push_back(std::move(r));
  if (actions_.size() > kMaxActions) actions_.pop_front();
}

void ActionJournal::converged(SteadyTime at, double seconds) {
  std::lock_guard lock(mu_);
  convergence_.push_back({at, seconds});
  if (convergence_.size() > kMaxSamples) convergence_.pop_front();
}

void ActionJournal::trim(SteadyTime now) const {
  const SteadyTime oldest = now - kWindow;
  while (!convergence_.empty() && convergence_.front().at < oldest) convergence_.pop_front();
  while (!changes_.empty() && changes_.front() < oldest) changes_.pop_front();
}

JournalView ActionJournal::view(SteadyTime now) const {
  std::lock_guard lock(mu_);
  trim(now);
  JournalView v;
  v.actions.assign(actions_.begin(), actions_.end());
  const size_t n = static_cast<size_t>(kWindow.count());
  v.minutes.resize(n);
  // Minute index counted back from `now`: 0 = the last minute (stored last).
  auto slot = [&](SteadyTime t) -> JournalMinute* {
    const auto back = std::chrono::duration_cast<std::chrono::minutes>(now - t).count();
    if (back < 0 || static_cast<size_t>(back) >= n) return nullptr;
    return &v.minutes[n - 1 - static_cast<size_t>(back)];
  };
  std::vector<double> all;
  std::vector<std::vector<double>> per(n);
  for (const auto& c : convergence_) {
    all.push_back(c.seconds);
    if (JournalMinute* m = slot(c.at))
      per[static_cast<size_t>(m - v.minutes.data())].push_back(c.seconds);
  }
  for (const auto& t : changes_) {
    if (JournalMinute* m = slot(t)) ++m->changes;
  }
  v.convergences = all.size();
  v.p50_s = quantile(all, 0.5);
  v.p99_s = quantile(all, 0.99);
  v.changes = changes_.size();
  for (size_t i = 0; i < n; ++i) {
    v.minutes[i].convergences = per[i].size();
    v.minutes[i].p50_s = quantile(per[i], 0.5);
    v.minutes[i].p99_s = quantile(per[i], 0.99);
  }
  return v;
}

}  // namespace ep::reconcile
