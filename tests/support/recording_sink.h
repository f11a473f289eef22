#pragma once
// A discovery::Sink that records every snapshot a source publishes (with the time it arrived) and
// lets the test wait for one, on the test time budget (support/eventually.h). Thread-safe: the
// source publishes from its own thread, the test reads and waits from another. Header-only.
//
//   ep::test::RecordingSink sink;
//   ASSERT_TRUE(source.start(sink).ok());
//   ASSERT_TRUE(sink.wait_last([](const Snapshot& s) { return s.ok() && s->size() == 2; }));
//   auto i = sink.wait_next(sink.size(), [](const Snapshot& s) { return !s.ok(); });

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "discovery/source.h"
#include "support/eventually.h"

namespace ep::test {

class RecordingSink final : public discovery::Sink {
 public:
  using Snapshot = discovery::Snapshot;
  using Clock = std::chrono::steady_clock;
  using Budget = std::chrono::milliseconds;

  void publish(Snapshot snapshot) override {
    // Notified under the lock: a test may destroy the sink as soon as its wait returns, and the
    // publishing thread must be done with cv_ by then (TSan caught notify-after-unlock here).
    std::lock_guard lock(mu_);
    snapshots_.push_back(std::move(snapshot));
    times_.push_back(Clock::now());
    cv_.notify_all();
  }

  // Waits until pred(all snapshots so far) holds; false when scaled(budget) passes first. The
  // general form of the waits below; pred runs under the sink's lock (it must not call the sink).
  template <class Pred>
  bool wait_all(Pred pred, Budget budget = kMaxTestWaitTime) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, scaled(budget), [&] { return pred(std::as_const(snapshots_)); });
  }

  // Waits until the LATEST snapshot satisfies pred.
  template <class Pred>
  bool wait_last(Pred pred, Budget budget = kMaxTestWaitTime) {
    return wait_all(
        [&](const std::vector<Snapshot>& all) { return !all.empty() && pred(all.back()); }, budget);
  }

  // Waits until ANY snapshot so far satisfies pred.
  template <class Pred>
  bool wait_any(Pred pred, Budget budget = kMaxTestWaitTime) {
    return wait_all(
        [&](const std::vector<Snapshot>& all) { return std::any_of(all.begin(), all.end(), pred); },
        budget);
  }

  // Waits for a snapshot at index >= from that satisfies pred; returns its index.
  template <class Pred>
  std::optional<std::size_t> wait_next(std::size_t from, Pred pred,
                                       Budget budget = kMaxTestWaitTime) {
    std::optional<std::size_t> found;
    wait_all(
        [&](const std::vector<Snapshot>& all) {
          for (std::size_t i = from; i < all.size(); ++i) {
            if (pred(all[i])) {
              found = i;
              return true;
            }
          }
          return false;
        },
        budget);
    return found;
  }

  // Waits until more than n snapshots arrived; returns the (n+1)-th (index n).
  std::optional<Snapshot> wait_count(std::size_t n, Budget budget = kMaxTestWaitTime) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, scaled(budget), [&] { return snapshots_.size() > n; })) {
      return std::nullopt;
    }
    return snapshots_[n];
  }

  std::vector<Snapshot> all() const {
    std::lock_guard lock(mu_);
    return snapshots_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return snapshots_.size();
  }
  // The latest snapshot, or an internal error "none" before the first.
  Snapshot last() const {
    std::lock_guard lock(mu_);
    return snapshots_.empty() ? Snapshot(Error::internal("none")) : snapshots_.back();
  }
  Snapshot at(std::size_t i) const {
    std::lock_guard lock(mu_);
    return snapshots_.at(i);
  }
  // When snapshot i arrived.
  Clock::time_point time(std::size_t i) const {
    std::lock_guard lock(mu_);
    return times_.at(i);
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Snapshot> snapshots_;
  std::vector<Clock::time_point> times_;
};

}  // namespace ep::test
