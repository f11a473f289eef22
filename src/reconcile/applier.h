#pragma once
// The reconciler's view of one HAProxy instance. haproxy/runtime implements it over the admin
// socket; tests implement it in memory.

#include <string>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "reconcile/plan.h"

namespace ep::reconcile {

struct InstanceInfo {
  std::string version;  // "2.6.12-1+deb12u4"
  int major = 0;
  int minor = 0;
  long pid = 0;
  long uptime_sec = 0;
  long start_time_sec = 0;  // changes when HAProxy restarts
};

// What an HAProxy version offers the reconciler, derived from `show info`'s Version once per
// HAProxy process (first contact, restart, version change) and logged then. Every difference the
// reconciler relies on is here, so a new version is one line (docs/haproxy-runtime.md,
// "Versions"). Tested: 2.6 and 3.0.
struct Features {
  // `add server` / `del server` at runtime (2.6+; 2.4 and 2.5 lack parts of it): auto mode picks
  // dynamic servers for a non-static-rr backend.
  bool dynamic_servers = false;
  // `add server … cookie <v>` accepted (3.0+; 2.6 answers "'cookie' option is not accepted for
  // dynamic server"): server_options may carry a cookie in dynamic mode.
  bool add_server_cookie = false;

  std::string describe() const {
    return std::string("dynamic servers ") + (dynamic_servers ? "yes" : "no") +
           ", add server cookie " + (add_server_cookie ? "yes" : "no");
  }
};

inline Features features_of(int major, int minor) {
  auto at_least = [&](int ma, int mi) { return major > ma || (major == ma && minor >= mi); };
  Features f;
  f.dynamic_servers = at_least(2, 6);
  f.add_server_cookie = at_least(3, 0);
  return f;
}

// Outcome of one action: done, not yet (retry on a later pass, e.g. sessions remain), or failed
// with HAProxy's own text.
struct ActionResult {
  enum class Outcome { kDone, kNotYet, kFailed };
  Outcome outcome = Outcome::kDone;
  std::string message;
};

class Instance {
 public:
  virtual ~Instance() = default;

  virtual std::string name() const = 0;  // for logs and metrics (the socket path)

  // Version, pid and start time. Fails when HAProxy cannot be reached.
  virtual Result<InstanceInfo> info() = 0;

  // Current servers of each named backend (exists=false for a backend HAProxy does not have),
  // in the same order. Reads only those backends: its cost follows their number, not the size of
  // HAProxy.
  virtual Result<std::vector<ActualBackend>> observe(const std::vector<std::string>& backends) = 0;

  // The same answer, from a read of the whole of HAProxy at once (resync, first contact,
  // reconnect, restart): an instance that caches anything about HAProxy (proxy ids) refreshes
  // it here. The default reads backend by backend.
  virtual Result<std::vector<ActualBackend>> observe_all(const std::vector<std::string>& backends) {
    return observe(backends);
  }

  // The read of a pass that applies a new desired set: what observe() returns, but server
  // statistics (sessions, backup) only for the backends that have a draining server, whose
  // sessions decide a removal; the others come with server_stats = false (the reconciler keeps
  // their statistics from earlier reads, and its follow-up pass reads them). A backend of 10,000
  // servers answers `show stat` with megabytes; the diff of a bulk change does not need them.
  // The default is observe().
  virtual Result<std::vector<ActualBackend>> observe_for_change(
      const std::vector<std::string>& backends) {
    return observe(backends);
  }

  // The periodic resync's read of the whole of HAProxy: every server's address, state and weight
  // (so any drift is seen and repaired), but server statistics (sessions, backup) only for the
  // backends that have a draining server, whose sessions decide a removal. The other backends
  // come with server_stats = false. Refreshes what observe_all() refreshes.
  // `held[i]`, when not 0, is the rows_digest of backend i's state the caller already holds:
  // an instance may then skip parsing those rows when they still have that digest and return
  // the backend with unchanged = true and no servers. The default reads with observe_all().
  virtual Result<std::vector<ActualBackend>> observe_states(
      const std::vector<std::string>& backends, const std::vector<std::size_t>& held) {
    (void)held;
    return observe_all(backends);
  }

  // Executes the plan's actions in order; one result per action, same order. Every HAProxy reply
  // is checked: an action is kDone only when HAProxy said so.
  virtual std::vector<ActionResult> apply(const Plan& plan, const BackendPolicy& policy) = 0;
};

}  // namespace ep::reconcile
