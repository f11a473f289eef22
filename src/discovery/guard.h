#pragma once
// The guard stands between sources and the reconciler: it validates every endpoint (nothing
// unchecked reaches HAProxy), keeps each source's last good set (fail static), and holds back
// suspicious snapshots (empty, or removing too much at once).

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/model.h"
#include "core/result.h"
#include "core/shared_list.h"
#include "discovery/stats.h"
#include "reconcile/policy.h"

namespace ep::discovery {

// An endpoint written as text (file targets, static servers): "ip:port", "[v6]:port", "[v6]" or
// a bare host/address (port 0: the backend's `port` fills it). Text of any other shape is
// returned whole as the address with port 0, and a 5-digit port above 65535 is kept, so that
// validate_endpoint rejects that one endpoint naming what is wrong, instead of its whole list.
// (Lenient on purpose, unlike os::split_host_port, which refuses bad text outright.)
Endpoint endpoint_from_text(std::string_view text);

// Validates one endpoint against the backend policy and builds its ServerSpec.
// Rules: address is an IPv4 or IPv6 literal (brackets stripped; zone ids, hostnames, anything
// with spaces/control chars/`;` refused); port = policy.port if set, else the endpoint's, and must
// be 1..65535; weight = endpoint's, else policy.weight, else 1, and must be 0..256; name =
// policy.name_prefix + (sanitized id if the endpoint has one, else "<addr>:<port>"), only
// [A-Za-z0-9_.:-], at most 100 characters (a long or altered id gets a stable hash suffix).
Result<ServerSpec> validate_endpoint(const Endpoint& endpoint,
                                     const reconcile::BackendPolicy& policy);

// A valid server's labels as discovery gave them (Endpoint::labels: Consul's service name, tags
// and meta, an instance's zone, an etcd key, a file's labels, ...), for /status and the dashboard.
// Packed in one string (each key and value: its length, then its bytes; in key order): a Consul
// instance's five or so labels cost one allocation, not a map node and two strings each.
struct ServerLabels {
  ServerLabels(std::string server_name, const std::map<std::string, std::string>& labels);
  std::string server;  // ServerSpec::name
  // The labels, in key order (views into `packed`).
  std::vector<std::pair<std::string_view, std::string_view>> pairs() const;

 private:
  std::string packed;
};
// Shared, immutable: /status copies the pointer, not the strings.
using ServerLabelList = std::shared_ptr<const std::vector<ServerLabels>>;

struct Validated {
  std::vector<ServerSpec> servers;    // sorted by name, duplicates (same name) merged: first wins
  std::vector<ServerLabels> labels;   // the kept servers that have labels, sorted by name
  std::vector<std::string> rejected;  // one message per rejected endpoint, naming it and why
  // Endpoints kept under another name: two different servers whose ids became the same server
  // name after sanitising (the second gets a hashed name; neither hides the other).
  std::vector<std::string> renamed;
};
Validated validate_all(const std::vector<Endpoint>& endpoints,
                       const reconcile::BackendPolicy& policy);

enum class Hold { kNone, kEmpty, kShrink, kGrowth };
const char* to_string(Hold hold);

// Tracks one backend's sources and produces its desired server set.
//
// - on_snapshot(i, ok):   validates; the source's last good set becomes the valid endpoints
//                         (rejected ones are logged once per distinct message and counted in
//                         elasticproxy_endpoints_rejected_total{backend,source}).
// - on_snapshot(i, error): the source keeps its last good set; counted, logged via a
//                         FailureReporter (once, then summarised).
// - The candidate set is the union of all sources' last good sets (by name; first source wins).
// - Until every source has delivered one good snapshot, ready() is false and desired() is empty:
//   the reconciler must not touch the backend.
// - A candidate that is empty (and the current desired set is not) is held back unless
//   allow_empty; one that shrinks the backend by more than max_remove_fraction of the current
//   desired servers is held back (size-based: a one-for-one replacement is not a shrink). Holding
//   is logged once, counted in elasticproxy_snapshots_held_total{backend,reason} and the gauge
//   elasticproxy_backend_held{backend}. A held candidate that stays identical for confirm_after
//   (>0) is applied at the next evaluate(). A new candidate that is not suspicious replaces the
//   held one at once.
// - A candidate with more than safety.max_servers servers is held back (kGrowth) for as long as
//   it stays that large: never confirmed by waiting; the operator raises the limit or the source
//   shrinks back.
// - The very first desired set (first time ready) is applied as is, except that an empty first
//   set is still subject to allow_empty and a too large one to max_servers. While a first set is
//   held, ready() is false: the reconciler leaves the backend as it is.
class BackendGuard {
 public:
  // `metrics`: the registry its stats (discovery/stats.h) record into; null: Metrics::global().
  // Must outlive the guard.
  BackendGuard(reconcile::BackendPolicy policy, std::vector<std::string> source_names,
               const Clock& clock, Metrics* metrics = nullptr);

  // Returns true when desired() changed.
  bool on_snapshot(size_t source_index, const Result<std::vector<Endpoint>>& snapshot);
  // Re-evaluates a held candidate against confirm_after. Returns true when desired() changed.
  bool evaluate();

  bool ready() const;
  // Shared by pointer with whoever takes it (the reconciler's mailbox, /status): one list.
  const SharedList<ServerSpec>& desired() const { return desired_; }
  Hold hold() const { return hold_; }
  // The held candidate (empty when nothing is held) and when it was first held.
  const std::vector<ServerSpec>& held() const { return held_; }
  // Source i's last good set (valid servers, sorted by name).
  const std::vector<ServerSpec>& last_good(size_t source_index) const {
    return last_good_.at(source_index);
  }
  SteadyTime held_since() const { return held_since_; }

  // An operator's decision on the held candidate (the dashboard's one action), instead of
  // waiting for confirm_after:
  // - confirm_held(): applies it now, like confirm_after would. A kGrowth hold is refused (the
  //   operator raises safety.max_servers instead). Returns true when desired() changed.
  // - reject_held(): drops it and keeps the current set; that exact candidate is not held again
  //   (nor applied) until discovery changes it. Returns false (desired() is unchanged).
  // Both fail (kNotYet) when nothing is held. Logged and counted in
  // elasticproxy_snapshots_resolved_total{backend,decision}.
  Result<bool> confirm_held();
  Result<bool> reject_held();
  // When a held candidate would be confirmed (for the reconciler's timer), if any.
  std::optional<SteadyTime> next_deadline() const;
  const reconcile::BackendPolicy& policy() const { return policy_; }

  struct SourceState {
    std::string name;
    bool delivered = false;  // at least one good snapshot
    bool failing = false;    // last snapshot was an error
    std::string last_error;
    std::optional<SteadyTime> last_success;
    size_t endpoints = 0;  // valid endpoints in the last good set
    size_t rejected = 0;   // rejected endpoints in the last good snapshot
    // Why (one message per rejected endpoint, naming it), at most kMaxRejectedShown of them.
    std::vector<std::string> rejected_messages;
    // The last good set came from the state file (the source has not answered yet).
    bool from_state = false;
    // The labels of the last good set's servers (null: none has any).
    ServerLabelList labels;
  };
  static constexpr size_t kMaxRejectedShown = 20;
  // Marks source i's last good set as restored from the state file (or not).
  void set_from_state(size_t source_index, bool from_state);
  // Source i's last good set restored from the state file: validated and applied like a
  // snapshot, marked from_state, but not the source answering — nothing is logged as its
  // recovery (the caller says where the set came from). Returns true when desired() changed.
  bool restore(size_t source_index, const std::vector<Endpoint>& endpoints);
  const std::vector<SourceState>& sources() const { return sources_; }

 private:
  bool accept(size_t source_index, const Result<std::vector<Endpoint>>& snapshot, bool restored);
  std::vector<ServerSpec> candidate() const;
  bool all_delivered() const;
  bool consider(std::vector<ServerSpec> candidate);

  reconcile::BackendPolicy policy_;
  const Clock& clock_;
  const GuardStats& stats_;  // the registry's one GuardStats (Metrics::shared)
  std::vector<SourceState> sources_;
  std::vector<std::vector<ServerSpec>> last_good_;
  SharedList<ServerSpec> desired_;
  bool applied_once_ = false;
  Hold hold_ = Hold::kNone;
  std::vector<ServerSpec> held_;
  SteadyTime held_since_{};
  // A candidate the operator rejected: not held again until discovery changes it.
  std::optional<std::vector<ServerSpec>> rejected_;
};

}  // namespace ep::discovery
