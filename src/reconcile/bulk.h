#pragma once
// A very large addition in dynamic mode: one rendered, validated, confirmed reload instead of
// thousands of `add server` (docs/haproxy-runtime.md, "Bulk additions by reload").
//
// HAProxy's `add server` costs more the larger the backend is (bench/RESULTS.md section 3b), so
// 10,000 of them take seconds whatever the client; a reload parses 10,000 server lines in a
// fraction of that. When config management is enabled (haproxy.template + haproxy.config + a
// reload method, update: auto) the reconciler hands a pass that would add more than
// `haproxy.reload.bulk_threshold` servers to one dynamic backend to a BulkLoader (the config
// manager) — by default (`auto`) over 1,000 additions and when the reload is predicted faster
// than the `add server` it replaces: it renders every managed backend, validates (`haproxy -c`), writes, reloads and
// confirms. The new servers are rendered `disabled` when the backend has health checks, so after
// the reload they leave maintenance through the runtime path's health gate (kEnable: DRAIN until
// their check passes), exactly as added servers do. Anything else (a refused render, a failed
// reload, rolled back) falls back to runtime commands in the same pass.

#include <string>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace ep::reconcile {

// Predicted wall time of one change, both ways (logged with the choice; with `bulk_threshold:
// auto` they decide). Constants measured on the project's 2-core machine with HAProxy 2.6.12 and
// 3.0.11 (see docs/haproxy-runtime.md, "Bulk additions by reload", and bench/RESULTS.md 3s).
struct BulkCost {
  double runtime_seconds = 0;  // `add server` (+ enable health, warm-up state) per new server
  double reload_seconds = 0;   // render + `haproxy -c` + reload + confirm + re-read + enables
};
// `existing`: servers the backend has now; `adds`: servers the pass adds; `total`: servers the
// rendered config holds (every managed backend); `checks`: the new servers are health-gated
// (`enable health` + `set server … state drain; … health down` each, by either path).
BulkCost predict_bulk_cost(size_t existing, size_t adds, size_t total, bool checks);

// When a pass's additions to one dynamic backend take the reload path.
struct BulkRule {
  size_t threshold = 0;  // more additions than this may; 0: never
  bool by_cost = false;  // and only when predict_bulk_cost says the reload is faster
};

class BulkLoader {
 public:
  virtual ~BulkLoader() = default;
  // When additions take the reload path (threshold 0: never).
  virtual BulkRule bulk_rule() const = 0;
  // Renders `servers[i]` as the servers of managed backend i (the reconciler's backend order),
  // validates, writes and reloads HAProxy, and waits for the reload to be confirmed. Blocking (on
  // the reconciler thread: HAProxy changes only from there). Ok: HAProxy runs the new config; the
  // value says how it was confirmed. Error: HAProxy still runs its previous config and the file
  // on disk is the previous one (refused by `haproxy -c`, or reload failed and rolled back).
  virtual Result<std::string> bulk_reload(const std::vector<std::vector<ActualServer>>& servers,
                                          const std::string& why) = 0;
};

}  // namespace ep::reconcile
