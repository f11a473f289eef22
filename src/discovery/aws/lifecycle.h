#pragma once
// Lifecycle hooks of the aws_asg source (docs/aws.md "Lifecycle hooks").
//
// The source never talks to HAProxy. It reads server states through the ServerStateView handed
// in its SourceContext (the daemon hands the reconciler, which answers from its last pass: every
// instance's managed servers with their op_state, admin_state and scur), never a global.
//
// With `lifecycle_hooks:` (or the single `lifecycle_hook: <name>`, which takes both transitions)
// and a queue, the SQS consumer hands every lifecycle action for one of those hook names with a
// matching transition (and one of the source's groups) to a LifecycleWorker, after the re-poll
// it triggered succeeded. Each action uses its own hook's timeouts:
//   - EC2_INSTANCE_TERMINATING: the re-poll saw the instance Terminating:Wait, so it left the set
//     and the reconciler drains it. Every check interval the worker asks the view; once the
//     server is drained on every reachable HAProxy (absent, or draining/in maintenance with 0
//     sessions) it sends CompleteLifecycleAction CONTINUE and deletes the message. Meanwhile,
//     every heartbeat_interval: RecordLifecycleActionHeartbeat and ChangeMessageVisibility (the
//     message stays invisible while we work). While the action is pending, the worker holds the
//     server's drain in the reconciler (ServerStateView::hold_drain) so the backend's own
//     drain_timeout does not delete it and cut its sessions; the hold ends with the action.
//     After the hook's drain_timeout: complete with on_drain_timeout (CONTINUE by default).
//   - EC2_INSTANCE_LAUNCHING: the instance is Pending:Wait, which is a served state when hooks
//     are configured, so the re-poll added it. Once the server is UP (health check passed, not
//     draining, not in maintenance) on every reachable HAProxy: CONTINUE. After launch_timeout:
//     ABANDON (the ASG then terminates the instance).
// A message is deleted only after its action was completed (or AWS said the action is no longer
// pending: ValidationError "No active Lifecycle Action found", treated as done). Duplicates (same
// LifecycleActionToken) join the tracked action; a duplicate of an action completed recently is
// deleted at once. Without a view (no daemon, e.g. tests of the source alone) the state is
// unknown: a terminate completes at once after the re-poll, a launch after launch_timeout with
// ABANDON — logged as a warning.
// Fleet setup: each HAProxy node runs its own ElasticProxy with its own hook name and queue, so
// the ASG waits until every node has completed its own hook.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/model.h"
#include "core/server_state_view.h"
#include "discovery/aws/asg_options.h"
#include "discovery/aws/aws_client.h"
#include "discovery/aws/lifecycle_stats.h"
#include "discovery/aws/parse.h"
#include "discovery/source.h"

namespace ep::aws {

// One server (backend, address, port) summed over every reachable managed HAProxy instance.
struct ServerState {
  int haproxy_instances = 0;  // managed HAProxy instances that answered
  int unreachable = 0;        // … that did not (ignored for the decisions below)
  int instances_present = 0;  // reachable instances that have the server
  int instances_active = 0;   // … where it is neither draining nor in maintenance
  int instances_up = 0;       // … where it is also UP (op_state 2: health check passed)
  long sessions = 0;          // current sessions, summed
  int unsettled = 0;          // instances whose last pass sent it a command: state not read since

  // Safe to let the instance go: no reachable HAProxy sends it new traffic, none has a session
  // (each as read after our last command to it).
  bool drained() const {
    return haproxy_instances > 0 && unsettled == 0 && instances_active == 0 && sessions == 0;
  }
  // Every reachable HAProxy has the server up (as read after our last command to it).
  bool healthy() const {
    return haproxy_instances > 0 && unsettled == 0 && instances_up == haproxy_instances;
  }
};

// Pure: ServerState for one server from a list of (reachable, servers of `backend`) per HAProxy
// instance.
struct HaproxyView {
  bool reachable = false;
  const std::vector<ActualServer>* servers = nullptr;  // of the backend asked about; may be null
  bool settled = true;  // false: the last pass sent the server a command (InstanceServers)
};
ServerState summarize(const std::vector<HaproxyView>& instances, std::string_view address,
                      std::uint16_t port);
// The same over a ServerStateView's answer. `port` 0 matches any port.
ServerState summarize(const ServerStateView& view, std::string_view backend,
                      std::string_view address, std::uint16_t port);

struct LifecycleStats {
  int tracked = 0;  // actions taken over
  int completed_continue = 0;
  int completed_abandon = 0;
  int heartbeats = 0;
  int visibility_changes = 0;
  int duplicates = 0;
  int errors = 0;  // failed AutoScaling/SQS calls (retried at the next check)
};

// Tracks lifecycle actions until they are completed. add() and step() run on the source's loop
// (step() is a coroutine there: its AWS calls go through the AsyncAwsClient of that loop);
// pending() and stats() are thread-safe.
class LifecycleWorker {
 public:
  struct Deps {
    AsyncAwsClient* client = nullptr;  // on the loop step() runs on
    Endpoint autoscaling;
    Endpoint sqs;
    std::string queue_url;
    std::string backend;
    // Address/port of an instance from the latest polls (nullopt when never seen).
    std::function<std::optional<ep::Endpoint>(const std::string& instance_id)> address_of;
    std::function<SteadyTime()> now = [] { return std::chrono::steady_clock::now(); };
    // Asks for a poll soon (no wait). Called at a heartbeat while a terminating instance's
    // server still takes traffic: Auto Scaling's reads are eventually consistent, so the poll
    // the message triggered may still have seen the instance InService.
    std::function<void()> repoll;
    // HAProxy's server states (thread-safe; must outlive the worker). Null: unknown (see above).
    const ServerStateView* server_states = nullptr;
  };
  LifecycleWorker(AsgOptions options, Deps deps);
  ~LifecycleWorker();  // releases the drains it holds

  // Takes over a lifecycle action message (after its re-poll succeeded). False when the worker
  // does not handle it (another hook name): the caller deletes it as usual.
  bool add(const AsgMessage& action, const SqsMessage& message);
  // Checks every tracked action that is due; sends heartbeats, completions, deletes.
  runtime::Co<void> step();
  // Actions still pending.
  size_t pending() const;
  // The same, described for the dashboard (thread-safe; refreshed by add() and every step()).
  std::vector<discovery::HookInFlight> in_flight() const;
  LifecycleStats stats() const;

 private:
  struct Tracked {
    AsgMessage action;
    LifecycleHookOptions hook;                    // the configured hook this action belongs to
    std::map<std::string, std::string> receipts;  // message id -> latest receipt handle
    SteadyTime started{};
    SteadyTime next_heartbeat{};
    bool visibility_set = false;
    bool warned_no_view = false;
    bool warned_no_address = false;
    std::string progress;               // what the last step saw
    std::optional<ep::Endpoint> held;  // the server whose drain we hold (terminate)
  };
  void publish_in_flight();  // on the loop: copies tracked_ into in_flight_ under mu_
  // True when the action is finished (completed, or AWS no longer knows it).
  runtime::Co<bool> complete(Tracked& t, LifecycleActionResult result, std::string why);
  runtime::Co<void> heartbeat(Tracked& t, SteadyTime now);
  runtime::Co<void> delete_messages(Tracked& t);
  int visibility_seconds(const Tracked& t) const;
  // Asks the reconciler to keep the terminating instance's server in DRAIN (past the backend's
  // drain_timeout) until the hook's own drain_timeout; released when the action is over.
  void hold_drain(Tracked& t, SteadyTime now);
  void release_drain(Tracked& t);
  void note_error();  // counts a failed call (stats and metric); takes mu_

  AsgOptions options_;
  Deps deps_;
  mutable std::mutex mu_;
  std::vector<LifecycleHookOptions> hooks_;
  std::map<std::string, Tracked> tracked_;          // by LifecycleActionToken
  std::vector<discovery::HookInFlight> in_flight_;  // guarded by mu_
  std::set<std::string> done_;                      // tokens completed recently (bounded)
  std::deque<std::string> done_order_;
  LifecycleStats stats_;
  LifecycleMetrics metrics_{Metrics::global()};
};

}  // namespace ep::aws
