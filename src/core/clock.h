#pragma once
// Injected time. The reconciler and sources take a Clock&; tests use FakeClock.

#include <chrono>

namespace ep {

using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;
using std::chrono::milliseconds;
using std::chrono::seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  static SystemClock& instance() {
    static SystemClock clock;
    return clock;
  }
};

// Manually advanced clock for tests.
class FakeClock final : public Clock {
 public:
  SteadyTime now() const override { return now_; }
  void advance(Duration d) { now_ += d; }

 private:
  SteadyTime now_{std::chrono::hours(1)};
};

}  // namespace ep
