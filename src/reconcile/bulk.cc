#include "reconcile/bulk.h"

namespace ep::reconcile {

namespace {
// `add server` n costs kAddBase + kAddPerServer x (servers already in the backend): 10,000 into
// an empty backend take ~3.5 s on 2.6.12 and 3.0.11 alike (bare client, RESULTS.md 3b), 1,000
// take ~0.1 s. The daemon adds its enable-health / warm-up lines and reply checks.
constexpr double kAddBase = 60e-6;
constexpr double kAddPerServer = 58e-9;
// A reload: `haproxy -c` and the new worker each parse the whole config (~25 µs per server line
// for both together), the master CLI round trip and the confirmation (~0.15 s), the re-read.
constexpr double kReloadBase = 0.15;
constexpr double kReloadPerLine = 25e-6;
// Health-gated new servers leave maintenance with three commands each after the reload.
constexpr double kEnablePerServer = 45e-6;
}  // namespace

BulkCost predict_bulk_cost(size_t existing, size_t adds, size_t total, bool checks) {
  BulkCost c;
  const double n0 = static_cast<double>(existing);
  const double k = static_cast<double>(adds);
  c.runtime_seconds = k * kAddBase + kAddPerServer * (k * n0 + k * k / 2);
  c.reload_seconds = kReloadBase + kReloadPerLine * static_cast<double>(total) +
                     (checks ? kEnablePerServer * k : 0.0);
  return c;
}

}  // namespace ep::reconcile
