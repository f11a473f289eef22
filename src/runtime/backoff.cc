#include "runtime/backoff.h"

#include <algorithm>

namespace ep::runtime {

Backoff::Backoff(BackoffPolicy policy) : Backoff(policy, std::random_device{}()) {}

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {
  policy_.multiplier = std::max(policy_.multiplier, 1.0);
  policy_.jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  policy_.initial = std::max(policy_.initial, Duration::zero());
  policy_.max = std::max(policy_.max, policy_.initial);
}

Duration Backoff::next() {
  const double cap = static_cast<double>(policy_.max.count());
  double d = static_cast<double>(policy_.initial.count());
  for (int i = 0; i < failures_ && d < cap; ++i) d *= policy_.multiplier;
  d = std::min(d, cap);
  if (failures_ < 1'000'000) ++failures_;
  if (policy_.jitter > 0) {
    std::uniform_real_distribution<double> u(1.0 - policy_.jitter, 1.0);
    d *= u(rng_);
  }
  return Duration(static_cast<Duration::rep>(d));
}

}  // namespace ep::runtime
