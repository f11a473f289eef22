#pragma once
// Wires sources to guards: one BackendGuard per backend, fed by that backend's sources through
// per-source sinks (on the source runtime's loops). Whenever a guard's desired set changes, the
// callback gets the whole set. A timer on one of the runtime's loops (no thread of its own)
// re-evaluates held snapshots when their confirm_after deadline passes.
//
// Sources start on a runtime::Runtime: the one handed in, or one the pipeline owns
// (kRuntimeThreads loops on the system clock) — so the thread count does not grow with the
// number of sources.

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "discovery/guard.h"
#include "discovery/source.h"
#include "discovery/state_file.h"
#include "runtime/runtime.h"

namespace ep::discovery {

struct BackendSources {
  reconcile::BackendPolicy policy;
  std::vector<std::unique_ptr<Source>> sources;
};

// Called with (backend index, desired servers, ready, when the change was seen). Called with the
// backend's guard lock held, so calls for one backend never reorder; must not block.
// The guard's desired set, shared (a callback taking `const std::vector<ServerSpec>&` works too).
using DesiredCallback =
    std::function<void(size_t, const SharedList<ServerSpec>&, bool, SteadyTime)>;

struct SourceStatus {
  std::string backend;
  std::string source;
  bool delivered = false;
  bool failing = false;
  std::string last_error;
  std::optional<SteadyTime> last_success;
  size_t endpoints = 0;
  size_t rejected = 0;
  std::vector<std::string> rejected_messages;  // why, one per endpoint (capped)
  std::vector<HookInFlight> hooks;             // lifecycle actions it waits on (AWS)
  bool from_state = false;                     // serving the set restored from the state file
  // Snapshots the source published (good or failed) since the daemon started, the failed ones
  // among them, and those published in the last 60 s (events per minute).
  uint64_t snapshots = 0;
  uint64_t errors = 0;
  size_t events_last_minute = 0;
  // The labels discovery gave the last good set's servers (Consul service, tags, meta, ...).
  ServerLabelList labels{};
  // When the backend has more than one source: the servers of this source's last good set (which
  // source each desired server comes from). Empty for a backend's only source.
  std::vector<std::string> servers{};
};

struct GuardStatus {
  std::string backend;
  bool ready = false;
  Hold hold = Hold::kNone;
  size_t desired = 0;
  std::vector<SourceStatus> sources;
  // While something is held: how many servers the held set has, since when, which desired
  // servers it would remove, and when confirm_after applies it (none: never by waiting).
  size_t held_servers = 0;
  std::optional<SteadyTime> held_since;
  std::vector<std::string> would_remove;
  std::optional<SteadyTime> confirm_at;
};

class Pipeline {
 public:
  static constexpr size_t kRuntimeThreads = 2;

  // `runtime`, when given, must outlive the pipeline; otherwise the pipeline makes its own.
  Pipeline(std::vector<BackendSources> backends, const Clock& clock, DesiredCallback callback,
           runtime::Runtime* runtime = nullptr);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The state file (state_file.h); before start(). An empty path: none.
  void set_state(StateOptions options) { state_options_ = std::move(options); }
  // Writes the state file now (the daemon calls it at stop; a timer does after changes).
  void write_state_now();
  // Reads the state file (once; start() does it if nobody did). Before start().
  void load_state();
  // The operator's maintenance marks read from the state file, and the function that gives the
  // current ones for writing it (the reconciler's); any thread.
  OperatorMaint loaded_operator_maint() const { return loaded_operator_maint_; }
  void set_operator_maint_provider(std::function<OperatorMaint()> provider) {
    operator_maint_provider_ = std::move(provider);
  }
  // Asks for a state file write soon (any thread).
  void request_state_write() { schedule_state_write(); }

  // Starts every source (on the runtime) and the confirm timer. Fails (and stops what started) if
  // a source cannot start at all.
  Status start();
  // Stops every source (none publishes any more when it returns) and the confirm timer. The
  // runtime keeps running until the pipeline is destroyed (an owned one) or its owner stops it.
  void stop();
  runtime::Runtime& source_runtime() { return *runtime_; }

  // Fetches every source once, synchronously, and feeds the guards (for `once` and `plan`).
  // Source failures are reported in the guard status, not as an error here.
  void fetch_once(std::chrono::milliseconds timeout);

  std::vector<GuardStatus> status() const;

  // An operator confirms (applies now) or rejects the held snapshot of backend `name` (see
  // BackendGuard::confirm_held / reject_held). Runs on the pipeline's timer loop under the
  // backend's lock, like confirm_after, so the reconciler hears of it through the same callback;
  // the caller (the HTTP thread) only waits up to `timeout` for the outcome. Returns a sentence
  // saying what was done, or why not (unknown backend, nothing held, not running, timeout).
  Result<std::string> resolve_hold(const std::string& name, bool confirm,
                                   std::chrono::milliseconds timeout);
  // The guard's current desired set for backend b.
  std::vector<ServerSpec> desired(size_t b) const;
  // Every backend ready (each source delivered a first good snapshot).
  bool ready() const;
  size_t backend_count() const { return backends_.size(); }
  const reconcile::BackendPolicy& policy(size_t b) const;

 private:
  struct Backend;
  class SourceSink;
  void deliver(size_t backend, size_t source, const Snapshot& snapshot);
  // The confirm timer, on timer_loop_'s thread: (re)arms it for the earliest guard deadline
  // (bounded to 1 s of real time, so an injected clock is re-read regularly).
  void plan_timer();
  void on_timer();
  // State file (requires the backend's lock): gives source s of backend b its saved set when it
  // has not delivered yet and one was loaded. Returns true when desired() changed.
  bool restore_locked(size_t b, size_t s, const char* why);
  void load_state_file();
  void schedule_state_write();

  const Clock& clock_;
  DesiredCallback callback_;
  // Declared before the sources so that an owned runtime is destroyed after them.
  std::unique_ptr<runtime::Runtime> own_runtime_;
  runtime::Runtime* runtime_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<SourceSink>> sinks_;

  // The confirm timer. timer_loop_ is set by start(); timer_id_ and timer_running_ are touched
  // on its thread only (and by start()/stop() through run_sync). replan_pending_ coalesces the
  // re-plans deliver() posts.
  runtime::Loop* timer_loop_ = nullptr;
  runtime::TimerId timer_id_ = 0;
  bool timer_running_ = false;
  // Captured by every posted re-plan and timer callback; false once stopped (on the loop).
  std::shared_ptr<bool> timer_alive_;
  std::atomic<bool> timer_active_{false};
  std::atomic<bool> replan_pending_{false};
  // When the planned timer fires (the guards' clock, time_since_epoch().count()); deliveries
  // re-plan only for a deadline before it. deadline_changes_ counts deliveries that left a
  // deadline (see deliver()).
  std::atomic<SteadyTime::rep> planned_at_{0};
  std::atomic<uint64_t> deadline_changes_{0};
  bool started_ = false;

  StateOptions state_options_;
  std::atomic<bool> state_write_pending_{false};
  std::mutex state_write_mu_;  // one write at a time
  std::string last_state_error_;
  bool state_loaded_ = false;
  OperatorMaint loaded_operator_maint_;
  std::function<OperatorMaint()> operator_maint_provider_;
};

}  // namespace ep::discovery
