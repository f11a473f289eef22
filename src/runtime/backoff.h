#pragma once
// The one retry delay of every source: capped exponential growth with jitter, reset on success.
//
//   Backoff b({.initial = 250ms, .max = 30s});
//   on failure: loop.after(b.next(), retry);   on success: b.reset();
//
// The n-th delay after a reset (n = 0, 1, ...) is d = min(max, initial × multiplier^n), then
// jittered down to a uniformly random value in [d × (1 − jitter), d]: never above `max`, never
// below initial × (1 − jitter). Saturating: no overflow at any attempt count. Not thread-safe (one
// handler owns it, on its loop).

#include <chrono>
#include <cstdint>
#include <random>

#include "core/clock.h"

namespace ep::runtime {

// SplitMix64: an 8-byte random bit generator (std::mt19937_64 holds 2.5 KiB, and every source of
// a 2,000-source daemon owns a Backoff). Jitter needs spread, not cryptographic quality.
class SplitMix64 {
 public:
  using result_type = std::uint64_t;
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

struct BackoffPolicy {
  Duration initial = std::chrono::milliseconds(250);
  Duration max = std::chrono::seconds(30);
  double multiplier = 2.0;  // >= 1
  double jitter = 0.5;      // 0 (none) .. 1 (full jitter)
};

class Backoff {
 public:
  // `seed` makes the jitter reproducible in tests; by default it is random per instance.
  explicit Backoff(BackoffPolicy policy = {});
  Backoff(BackoffPolicy policy, std::uint64_t seed);

  // The delay before the next attempt; counts one failure.
  Duration next();
  // After a success: the next delay starts again from `initial`.
  void reset() { failures_ = 0; }
  // Failures counted since the last reset.
  int failures() const { return failures_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  int failures_ = 0;
  SplitMix64 rng_;
};

}  // namespace ep::runtime
