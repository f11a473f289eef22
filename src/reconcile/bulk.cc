#include "reconcile/bulk.h"

namespace ep::reconcile {

namespace {
// `add server` k servers into a backend of n0 costs k x kAddBase + kAddPerServer x (k x n0 +
// k^2 / 2): HAProxy's own cost per `add server` grows with the servers already there
// (bench/RESULTS.md 3b: ~8 µs each into an empty backend); fitted to the bare-client floor of
// 10,000 into an empty backend (~4 s on 2.6.12, ~3.6 s on 3.0.11, RESULTS.md 3s).
constexpr double kAddBase = 8e-6;
constexpr double kAddPerServer = 78e-9;
// A reload: `haproxy -c` and the new worker each parse the whole config, the master's re-exec
// and the confirmation; fitted to bench/RESULTS.md 3c (~0.1 s for 1,000 servers, ~0.3 s for
// 4,000 on 2.6.12).
constexpr double kReloadBase = 0.05;
constexpr double kReloadPerLine = 60e-6;
// Health-gated new servers leave maintenance with three runtime commands each (`enable health`,
// `state drain`, `health down`), by either path: ~50 µs per command on 2.6.12 (RESULTS.md 3s,
// slot floor), less on 3.0.
constexpr double kEnablePerServer = 150e-6;
}  // namespace

BulkCost predict_bulk_cost(size_t existing, size_t adds, size_t total, bool checks) {
  BulkCost c;
  const double n0 = static_cast<double>(existing);
  const double k = static_cast<double>(adds);
  // With health checks both paths send the same three enable commands per new server (the
  // runtime path after each `add server`, the reload path after the reload).
  const double enables = checks ? kEnablePerServer * k : 0.0;
  c.runtime_seconds = k * kAddBase + kAddPerServer * (k * n0 + k * k / 2) + enables;
  c.reload_seconds = kReloadBase + kReloadPerLine * static_cast<double>(total) + enables;
  return c;
}

}  // namespace ep::reconcile
