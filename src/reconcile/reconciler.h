#pragma once
// The reconciler: the one thread that changes HAProxy. Desired server sets arrive through a
// mailbox (publish); the loop diffs them against what each HAProxy instance reports and applies
// the difference, then keeps going: per-backend debounce, periodic resync (and at once when an
// instance restarts or comes back), retries with capped jittered backoff, drains tracked with
// timers. Level-triggered: every pass re-reads the backends it touches from HAProxy, so lost
// events and restarts heal alike; a pass reads only the backends it must (changed, polled,
// retried), and the whole of HAProxy on resync, first contact, reconnect and restart.
//
// One writer: while the loop runs, its thread alone talks to HAProxy and touches the run state.
// Other threads (config manager, bootstrap, SIGHUP, lifecycle hooks) post to the mailbox:
// publish(), request_resync() (fire and forget) or submit_pass() (apply and tell me the result),
// and read through status() / ServerStateView, which are copies taken under a lock.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/clock.h"
#include "core/model.h"
#include "core/server_state_view.h"
#include "core/shared_list.h"
#include "reconcile/applier.h"
#include "reconcile/bulk.h"
#include "reconcile/diff.h"
#include "reconcile/journal.h"
#include "reconcile/name_set.h"
#include "reconcile/plan.h"
#include "reconcile/policy.h"
#include "reconcile/stats.h"

namespace ep::reconcile {

struct ReconcilerOptions {
  std::chrono::milliseconds resync_interval{10'000};
  std::chrono::milliseconds retry_min{100};
  std::chrono::milliseconds retry_max{5'000};
  std::chrono::milliseconds drain_poll{100};  // re-check draining servers this often
  // Cheap liveness probe (`show info`) per instance: a restart (new pid/start time) or a socket
  // that answers again triggers a full resync at once instead of at the next resync_interval.
  std::chrono::milliseconds probe_interval{1'000};
  // Registry the reconciler's stats (reconcile/stats.h) are declared on and record into; null:
  // Metrics::global(). Must outlive the reconciler.
  Metrics* metrics = nullptr;
};

// What the reconciler knows about one backend on one instance (for /status, `once`, tests).
// A server draining in HAProxy, as the reconciler times it.
struct DrainStatus {
  std::string server;
  SteadyTime since{};  // when the drain started (or was first seen, after our restart)
  // When the backend's drain_timeout removes it with sessions left; none while the drain is not
  // cut by drain_timeout (a warming server, a removal held by a source, drain_timeout 0).
  std::optional<SteadyTime> deadline;
  bool operator==(const DrainStatus&) const = default;
};

struct BackendStatus {
  std::string backend;
  bool ready = false;  // the guard has a desired set for it
  size_t desired = 0;  // desired servers
  size_t actual = 0;   // managed servers in HAProxy (incl. draining)
  size_t draining = 0;
  BackendMode mode = BackendMode::kAuto;  // resolved mode (kAuto until first observed)
  bool converged = false;  // last pass applied everything (drains may still be waiting)
  int missing_slots = 0;
  std::string last_error;
  // Shared, immutable lists: copying a status copies pointers (see core/shared_list.h).
  SharedList<ServerSpec> desired_servers;
  SharedList<ActualServer> actual_servers;  // managed ones
  // Managed servers an operator put in maintenance (ElasticProxy leaves them there until they
  // are enabled again); sorted names.
  std::vector<std::string> operator_maint;
  // Servers draining, by name.
  std::vector<DrainStatus> drains;
  // The servers (address, port) the last pass of this backend sent commands for, sorted: their
  // state in actual_servers predates those commands, and one just added is not there yet
  // (InstanceServers::unsettled).
  std::vector<std::pair<std::string, int>> unsettled;
};

struct InstanceStatus {
  std::string name;
  bool reachable = false;
  InstanceInfo info;
  std::string last_error;
  std::vector<BackendStatus> backends;
};

// Result of one synchronous pass (for `once`).
struct PassReport {
  bool converged = true;  // every instance reachable, every action done, no missing slots
  size_t actions_done = 0;
  size_t actions_failed = 0;
  size_t waiting_drains = 0;
  std::vector<std::string> errors;
  // status() differs from what it was before this pass (a desired set, what an instance
  // reported, an error). Listeners that derive something from status() may skip a pass without.
  bool status_changed = false;
  bool full = false;  // a resync pass: the whole of HAProxy was read
  size_t backends_read = 0;  // backend reads, summed over instances
  bool operator_maint_changed = false;  // status(): some backend's operator_maint differs
};

class Reconciler : public ServerStateView {
 public:
  Reconciler(std::vector<BackendPolicy> backends, std::vector<std::unique_ptr<Instance>> instances,
             const Clock& clock, ReconcilerOptions options = {});
  ~Reconciler();

  // The reconciler's metric handles (the demo reads changes_applied_total).
  const ReconcileStats& stats() const { return stats_; }
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Thread-safe mailbox. `ready` = false means "do not touch this backend yet" (a source has not
  // delivered). `seen_at` is when discovery saw the change (for the convergence histogram).
  // publish_shared takes the guard's list without copying it.
  void publish_shared(size_t backend, SharedList<ServerSpec> servers, bool ready,
                      SteadyTime seen_at);
  void publish(size_t backend, std::vector<ServerSpec> servers, bool ready, SteadyTime seen_at) {
    publish_shared(backend, SharedList<ServerSpec>(std::move(servers)), ready, seen_at);
  }

  // Mailbox, fire and forget (any thread): the loop runs a full pass (whole HAProxy re-read)
  // at once. Without a running loop it is remembered: the first pass after start() is full.
  void request_resync();

  // Mailbox, "apply and tell me the result" (any thread but the reconciler's own): while the
  // loop runs, it runs a pass that starts after this call (full when `full_resync`) and fulfils
  // the future with its report; stop() fulfils pending futures with converged = false and the
  // error "reconciler stopped". Without a running loop the pass runs in the caller (serialised
  // with other such calls) and the future is ready on return.
  std::future<PassReport> submit_pass(bool full_resync);

  // Runs the loop on its own thread until stop(). Waits for a synchronous pass in progress.
  void start();
  // Stops and joins the loop; pending submit_pass() futures get a "reconciler stopped" report.
  // Idempotent.
  void stop();

  // One pass over every instance (only the backends that need one unless `full_resync`). The
  // synchronous path for `once` and `plan` (no loop running): runs in the caller, one at a
  // time. While the loop runs it is submit_pass(full_resync).get(): the loop's thread does the
  // work. Must not be called from an on_pass listener (that is the loop's thread: it returns a
  // report with an error instead of deadlocking).
  PassReport run_pass(bool full_resync);
  // Follow-up reads (drains, warm-ups, confirmations) in one of the loop's passes, at most.
  static constexpr size_t kFollowUpsPerPass = 16;

  // Thread-safe snapshot of the state.
  std::vector<InstanceStatus> status() const;
  // Time of the last completed loop iteration (for /healthz: "not stuck").
  SteadyTime last_loop() const;
  // True when every backend is ready and every instance converged on it.
  bool converged() const;
  // Adds a listener called on the reconciler thread after every pass of the running loop (not
  // for run_pass() called directly). Used by systemd notify, disk-follows-runtime, tests. Must
  // be cheap and must not call back into the reconciler's mutating API. Add before start().
  void add_on_pass(std::function<void(const PassReport&)> callback);

  const std::vector<BackendPolicy>& backends() const { return backends_; }

  // Before start(): a pass whose additions to one dynamic backend pass loader->bulk_rule() hands
  // them to `loader` (one rendered, validated, confirmed reload; see
  // reconcile/bulk.h) instead of sending `add server` for each; null: never. Only with a single
  // HAProxy instance (the loader reloads one HAProxy). The loader must outlive the reconciler's
  // loop.
  void set_bulk_loader(BulkLoader* loader);

  // The last actions and the last hour's convergence latencies and changes (for the dashboard;
  // any thread).
  JournalView journal() const { return journal_.view(clock_.now()); }
  // An action taken outside the passes, for the same timeline: the config manager's reloads in
  // config mode (any thread).
  void record_action(ActionRecord record) { journal_.record(std::move(record)); }
  // Before start(): managed servers (backend name -> server names) an operator had put in
  // maintenance before our restart (the state file): found in maintenance, they stay there.
  void seed_operator_maint(const std::map<std::string, std::vector<std::string>>& marks);

  // ServerStateView: from the status of the last pass, under the status lock (any thread).
  std::vector<InstanceServers> servers_at(std::string_view backend, std::string_view address,
                                          std::uint16_t port) const override;
  void hold_drain(std::string_view backend, std::string_view address, std::uint16_t port,
                  SteadyTime until) const override;
  void release_drain(std::string_view backend, std::string_view address,
                     std::uint16_t port) const override;

 private:
  // Drain holds by (backend, address, port) -> until; own lock, taken last (never held while taking
  // mu_).
  using HoldKey = std::tuple<std::string, std::string, std::uint16_t>;
  mutable std::mutex holds_mu_;
  mutable std::map<HoldKey, SteadyTime> holds_;
  bool held(const std::string& backend, const ActualServer& s, SteadyTime now) const;

  // Immutable once published (shared with passes in progress: a pass copies pointers, not
  // server lists, so its cost does not grow with the number of backends).
  struct Desired {
    SharedList<ServerSpec> servers;  // shared with the guard that produced it and with status_
    bool ready = false;
    SteadyTime seen_at{};
    uint64_t generation = 0;
  };
  using DesiredPtr = std::shared_ptr<const Desired>;
  struct BackendRun {  // per instance x backend
    DrainBook drains;
    std::set<std::string> removing;             // drained by us for removal (subset of drains)
    std::map<std::string, SteadyTime> warming;  // desired servers waiting for a passing check
    uint64_t applied_generation = 0;
    std::optional<SteadyTime> pending_since;  // oldest unapplied change seen_at
    bool converged = false;
    int failures = 0;
    int missing_slots = 0;
    BackendMode mode = BackendMode::kAuto;
    std::string last_error;
    std::string last_logged_error;
    SharedList<ActualServer> managed;  // immutable: replaced whole, shared with status_
    std::vector<std::pair<std::string, int>> acted;  // sorted (address, port) the last pass
                                                     // sent commands for
    // Managed servers last seen out of maintenance, and those found in maintenance afterwards
    // without ElasticProxy having commanded it (the operator's: DrainOrigins::operator_maint).
    NameSet active;
    std::set<std::string> operator_maint;
    std::set<std::string> held_drains;  // drains a source holds (DrainOrigins::held), last pass
    // Hash of what HAProxy showed (state_hash) when the last pass found nothing to do: a resync
    // that finds the same state and desired set skips the diff.
    std::optional<std::size_t> settled_state;
    // The instance's rows_digest of that state (0: none): handed to the next resync's
    // observe_states, which then does not even parse this backend's rows while they keep it.
    std::size_t settled_rows = 0;
    // Desired generation last handed to the bulk path (done or failed): whatever of that set is
    // still missing afterwards is added with runtime commands, never by a second reload.
    uint64_t bulk_tried_generation = 0;
  };
  struct InstanceRun {
    std::unique_ptr<Instance> instance;
    bool reachable = false;
    bool ever_reached = false;
    InstanceInfo info;
    Features features;  // of info.version, derived when the process or version changes
    int failures = 0;
    std::optional<SteadyTime> retry_at;
    std::optional<SteadyTime> last_probe;
    std::string last_error;
    std::vector<BackendRun> backends;
    // Per backend, apart from BackendRun so that the loop's and every pass's scans of all
    // backends read two small arrays, not a cache line per backend (0.3 ms a pass at 2,000):
    std::vector<char> dirty;                            // a desired set to apply (or first pass)
    std::vector<std::optional<SteadyTime>> next_poll;  // follow-up read: drain poll / retry
    // A bulk reload of ours just replaced the worker: the next pass reads the whole of HAProxy
    // (fresh proxy ids) without treating the new pid as someone else's restart.
    bool reloaded = false;
    // The last pass applied a discovery change and left the due follow-up reads to the next one.
    bool polls_deferred = false;
  };

  void loop();
  // The pass itself; only on the thread that owns runs_ (the loop's, or a synchronous caller
  // holding pass_mu_ while no loop runs).
  // `paced`: the loop's own passes. A discovery change does not wait behind follow-up reads: a
  // paced pass that applies one leaves the due follow-ups to the next pass (once in a row, so
  // steady churn cannot starve them), and reads at most kFollowUpsPerPass of them, so a change
  // that arrives meanwhile waits for a few milliseconds, not for a read of every backend
  // started at once. A pass someone asked for (run_pass) does everything due.
  PassReport do_pass(bool full_resync, bool paced = false);
  Duration backoff(int failures);
  // Returns the backends it observed (their run state changed).
  std::vector<size_t> pass_instance(InstanceRun& run, const std::vector<DesiredPtr>& desired,
                                    bool full, bool paced, PassReport& report);
  // Updates br.active / br.operator_maint from br.managed (just observed); logs changes once.
  void note_operator_maintenance(BackendRun& br, const std::string& backend,
                                 const std::string& iname);
  // True when nothing but HAProxy's state could make a pass over this backend do anything: its
  // desired set is ready and applied, and no drain or warm-up is running.
  static bool settles(const BackendRun& br, const Desired& desired);
  void apply_backend(InstanceRun& run, size_t b, const Desired& desired,
                     const ActualBackend& actual, PassReport& report);
  // The bulk path (set_bulk_loader): true when HAProxy was reloaded with `plan`'s additions (the
  // pass is done for this backend; the next one, at once, enables them behind the health gate).
  bool bulk_reload(InstanceRun& run, size_t b, const Desired& desired, const Plan& plan,
                   PassReport& report);
  std::optional<SteadyTime> next_wakeup() const;  // requires mu_, on the loop's thread
  bool on_loop_thread() const;

  const std::vector<BackendPolicy> backends_;
  const Clock& clock_;
  const ReconcilerOptions options_;
  const ReconcileStats stats_;

  // runs_ and rng_ belong to the thread running passes: the loop's thread while it runs (no
  // lock: I/O happens there), else a synchronous run_pass() caller holding pass_mu_ (start()
  // takes pass_mu_ too, so the two never overlap). Everything other threads read or post goes
  // through mu_ (desired_, due_, requests, flags).
  mutable std::mutex mu_;
  std::mutex pass_mu_;  // synchronous passes (no loop) one at a time; start() waits for them
  std::condition_variable cv_;
  std::vector<DesiredPtr> desired_;
  // Backends published since the last pass took them (published_flag_: listed already). A pass
  // copies only these into pass_desired_ (the pass thread's own copy of desired_), so a pass
  // costs nothing per unchanged backend.
  std::vector<size_t> published_;
  std::vector<char> published_flag_;
  std::vector<DesiredPtr> pass_desired_;
  std::vector<std::optional<SteadyTime>> due_;  // per backend: debounce deadline
  std::vector<InstanceRun> runs_;
  // What passes publish for other threads, under its own lock: a reader copying every backend's
  // status (the systemd STATUS line, the dashboard: a millisecond at 2,000 backends) never holds
  // mu_, which a source's delivery needs to wake the next pass.
  mutable std::mutex status_mu_;
  std::vector<InstanceStatus> status_;
  std::vector<uint64_t> status_generation_;  // per backend: desired generation in status_
  bool stop_ = false;
  bool wake_ = false;
  bool running_ = false;           // the loop thread exists (start() .. stop())
  bool resync_requested_ = false;  // request_resync(): next pass is full
  bool resync_deferred_ = false;   // a due periodic resync let a change's pass go first
  std::vector<std::pair<bool, std::promise<PassReport>>> requests_;  // submit_pass(): full, promise
  std::thread::id loop_thread_;
  SteadyTime last_loop_{};
  SteadyTime last_resync_{};
  std::vector<std::function<void(const PassReport&)>> on_pass_;
  BulkLoader* bulk_ = nullptr;  // set before start()
  ActionJournal journal_;  // thread-safe on its own
  std::mt19937 rng_{std::random_device{}()};
  std::thread thread_;
};

}  // namespace ep::reconcile
