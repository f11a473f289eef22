#pragma once
// Deadlines in tests, scaled for slow builds. Sanitized builds (make test-asan / test-tsan) run
// 2-20x slower; they set EP_TEST_TIME_SCALE (e.g. 3) and every test deadline written as
// ep::test::scaled(...) grows by that factor, so the assertions stay the same and only the time
// allowed to reach them changes. Unset, empty or invalid means 1. Header-only: any test can
// include "support/time_scale.h" without linking anything.

#include <chrono>
#include <cstdlib>

namespace ep::test {

// The factor from EP_TEST_TIME_SCALE (1..100), read once.
inline double time_scale() {
  static const double kScale = [] {
    const char* env = std::getenv("EP_TEST_TIME_SCALE");
    if (env == nullptr || *env == '\0') return 1.0;
    char* end = nullptr;
    double v = std::strtod(env, &end);
    if (end == env || *end != '\0' || !(v >= 1.0) || v > 100.0) return 1.0;
    return v;
  }();
  return kScale;
}

// `d` multiplied by time_scale(), in the same duration type.
template <class Rep, class Period>
std::chrono::duration<Rep, Period> scaled(std::chrono::duration<Rep, Period> d) {
  using D = std::chrono::duration<Rep, Period>;
  return std::chrono::duration_cast<D>(
      std::chrono::duration<double, Period>(static_cast<double>(d.count()) * time_scale()));
}

}  // namespace ep::test
