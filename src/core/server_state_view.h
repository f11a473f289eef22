#pragma once
// A read-only, thread-safe view of what HAProxy reported for managed servers, handed to whoever
// needs it (the AWS lifecycle hooks, Kubernetes drain holds) instead of a process-wide global. The
// reconciler implements it from the state of its last pass; tests implement it with scripted
// answers.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/model.h"

namespace ep {

// One HAProxy instance's answer to a ServerStateView query.
struct InstanceServers {
  bool reachable = false;             // the instance answered at the last pass
  std::vector<ActualServer> servers;  // managed servers matching the query (copies)
  // Servers matching the query that the last pass sent a command for. Their state here was read
  // before that command (a server just set ready still shows DRAIN, one just drained shows the
  // sessions of an older read, one just added is missing) until the next pass reads them again:
  // not a basis for a decision.
  std::size_t unsettled = 0;
};

class ServerStateView {
 public:
  virtual ~ServerStateView() = default;

  // Per HAProxy instance (fixed order): whether it answered, and its managed servers of `backend`
  // at `address` (and `port`; 0 = any port), as of the last completed pass. Thread-safe, callable
  // from any thread; never does I/O and never waits for a pass. The result is a copy.
  virtual std::vector<InstanceServers> servers_at(std::string_view backend,
                                                  std::string_view address,
                                                  std::uint16_t port) const = 0;

  // Drain holds (the one request a source may make: an AWS terminate hook that is still pending,
  // a Kubernetes endpoint that is serving and terminating): while held, a managed server of
  // `backend` at address:port that is no longer desired is drained and removed when its sessions
  // end, but not cut by the backend's drain_timeout; the hold ends at `until` or at
  // release_drain(). Thread-safe; const because the view is handed out read-only (the
  // implementation keeps holds apart from its state). Default: ignored (no reconciler).
  virtual void hold_drain(std::string_view backend, std::string_view address, std::uint16_t port,
                          SteadyTime until) const {
    (void)backend, (void)address, (void)port, (void)until;
  }
  virtual void release_drain(std::string_view backend, std::string_view address,
                             std::uint16_t port) const {
    (void)backend, (void)address, (void)port;
  }
};

}  // namespace ep
