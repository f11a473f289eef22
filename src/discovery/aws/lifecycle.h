#pragma once
// DESIGN (not wired yet): how the aws_asg source learns "this instance's server is drained /
// healthy on every managed HAProxy", which lifecycle hooks need (docs/aws.md "Lifecycle hooks").
//
// The source never talks to HAProxy. The application gives it a ServerStateProbe, built from
// Reconciler::status() (which already holds every instance's managed servers with their
// op_state, admin_state and scur), e.g. in src/app/wiring.cc:
//
//   auto probe = ep::aws::make_probe([&reconciler](std::string_view backend,
//                                                 std::string_view address, uint16_t port) {
//     ep::aws::ServerState s;
//     for (const auto& inst : reconciler.status()) {
//       if (!inst.reachable) { s.complete = false; continue; }
//       for (const auto& b : inst.backends) {
//         if (b.backend != backend) continue;
//         for (const auto& srv : b.actual_servers) {
//           if (srv.address != address || srv.port != port) continue;
//           ++s.instances_present;
//           s.sessions += srv.sessions;
//           if (srv.op_state == 2 && !srv.in_maint() && !srv.draining()) ++s.instances_up;
//         }
//       }
//     }
//     return s;
//   });
//
// and the factory passes it through SourceContext-independent runtime state (a process-wide
// registry keyed by backend name, set before the sources start), so that the shared
// SourceFactory signature stays unchanged.
//
// With a probe the SQS consumer will:
//   - EC2_INSTANCE_TERMINATING: re-poll (the instance is Terminating:Wait, so it leaves the set
//     and the reconciler drains it), then every heartbeat_interval: if the server is absent from
//     every reachable HAProxy or has 0 sessions everywhere (`drained()`), CompleteLifecycleAction
//     CONTINUE and delete the message; else RecordLifecycleActionHeartbeat and
//     ChangeMessageVisibility (keep the message invisible while we work). After drain_timeout:
//     CONTINUE anyway (configurable: `on_drain_timeout: continue|abandon`).
//   - EC2_INSTANCE_LAUNCHING: the instance is Pending:Wait; with `lifecycle_states` including
//     Pending:Wait it is added; when healthy()` on every reachable HAProxy → CONTINUE; after
//     launch_timeout → ABANDON.
// Fleet setup: each HAProxy node runs its own ElasticProxy with its own hook name and queue, so
// the ASG waits until every node has completed its own hook.

#include <cstdint>
#include <functional>
#include <string_view>

namespace ep::aws {

// One server (backend, address, port) summed over every managed HAProxy instance.
struct ServerState {
  int instances_present = 0;  // HAProxy instances that have the server
  int instances_up = 0;       // … where it is UP, not in maintenance, not draining
  long sessions = 0;          // current sessions, summed
  bool complete = true;       // false when some HAProxy instance was unreachable

  // Safe to let the instance go: every HAProxy answered, and none has a session on it.
  bool drained() const { return complete && (instances_present == 0 || sessions == 0); }
  // Every HAProxy answered and has the server up.
  bool healthy(int haproxy_instances) const {
    return complete && instances_up == haproxy_instances && haproxy_instances > 0;
  }
};

using ServerStateProbe =
    std::function<ServerState(std::string_view backend, std::string_view address,
                              std::uint16_t port)>;

}  // namespace ep::aws
