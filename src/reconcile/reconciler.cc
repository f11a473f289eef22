#include "reconcile/reconciler.h"

#include <algorithm>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/log.h"
#include "os/memory.h"

namespace ep::reconcile {
namespace {

constexpr const char* kLog = "reconcile";

double seconds_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

// A read without server statistics (observe_states) leaves sessions 0 and backup false: keep
// what the last read that had them said (by server name), so /status and ServerStateView do not
// flap to 0 on every resync. No draining server is in such a read (those backends are read in
// full); sessions of the others decide nothing.
// Every field of HAProxy's state the diff reads (not sessions/backup, which a resync does not
// read), in order.
std::size_t state_hash(const ActualBackend& actual) {
  std::size_t h = std::hash<std::string_view>{}(actual.algorithm);
  auto mix = [&h](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  for (const auto& s : actual.servers) {
    mix(std::hash<std::string_view>{}(s.name));
    mix(std::hash<std::string_view>{}(s.address));
    mix(s.port);
    mix(static_cast<std::size_t>(s.op_state));
    mix(static_cast<std::size_t>(s.admin_state));
    mix(static_cast<std::size_t>(s.weight));
    mix(static_cast<std::size_t>(s.check_state));
    mix(static_cast<std::size_t>(s.check_result));
  }
  return h;
}

// The same, from an instance's digest of the rows (Instance::observe_states), plus the algorithm.
std::size_t digest_state(const ActualBackend& actual) {
  std::size_t h = std::hash<std::string_view>{}(actual.algorithm);
  h ^= actual.rows_digest + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

void keep_server_stats(const std::vector<ActualServer>& previous,
                       std::vector<ActualServer>& servers) {
  if (previous.empty()) return;
  std::unordered_map<std::string_view, const ActualServer*> by_name;
  by_name.reserve(previous.size());
  for (const auto& s : previous) by_name.emplace(s.name, &s);
  for (auto& s : servers) {
    auto it = by_name.find(s.name);
    if (it == by_name.end()) continue;
    s.sessions = it->second->sessions;
    s.backup = it->second->backup;
  }
}

}  // namespace

Reconciler::Reconciler(std::vector<BackendPolicy> backends,
                       std::vector<std::unique_ptr<Instance>> instances, const Clock& clock,
                       ReconcilerOptions options)
    : backends_(std::move(backends)),
      clock_(clock),
      options_(options),
      stats_(options.metrics ? *options.metrics : Metrics::global()) {
  desired_.assign(backends_.size(), std::make_shared<const Desired>());
  pass_desired_ = desired_;
  published_flag_.assign(backends_.size(), 0);
  due_.resize(backends_.size());
  status_generation_.assign(backends_.size(), 0);
  for (auto& inst : instances) {
    InstanceRun run;
    run.instance = std::move(inst);
    run.backends.resize(backends_.size());
    run.dirty.assign(backends_.size(), 1);
    run.next_poll.resize(backends_.size());
    runs_.push_back(std::move(run));
  }
  status_.resize(runs_.size());
  for (size_t i = 0; i < runs_.size(); ++i) {
    status_[i].name = runs_[i].instance->name();
    for (const auto& b : backends_) {
      BackendStatus bs;
      bs.backend = b.name;
      status_[i].backends.push_back(bs);
    }
  }
  last_loop_ = clock_.now();
}

Reconciler::~Reconciler() { stop(); }

void Reconciler::publish_shared(size_t backend, SharedList<ServerSpec> servers, bool ready,
                                SteadyTime seen_at) {
  if (backend >= backends_.size()) return;
  std::lock_guard lock(mu_);
  const Desired& old = *desired_[backend];
  const bool changed = old.servers != servers || old.ready != ready;
  if (!changed) return;
  auto d = std::make_shared<Desired>();
  d->servers = std::move(servers);
  d->ready = ready;
  d->seen_at = seen_at;
  d->generation = old.generation + 1;
  desired_[backend] = std::move(d);
  if (!published_flag_[backend]) {
    published_flag_[backend] = 1;
    published_.push_back(backend);
  }
  if (!due_[backend]) due_[backend] = clock_.now() + backends_[backend].debounce;
  wake_ = true;
  cv_.notify_all();
}

void Reconciler::request_resync() {
  std::lock_guard lock(mu_);
  resync_requested_ = true;
  wake_ = true;
  cv_.notify_all();
}

namespace {
PassReport error_report(std::string message) {
  PassReport r;
  r.converged = false;
  r.errors.push_back(std::move(message));
  return r;
}
}  // namespace

bool Reconciler::on_loop_thread() const {
  return running_ && std::this_thread::get_id() == loop_thread_;
}

std::future<PassReport> Reconciler::submit_pass(bool full_resync) {
  std::promise<PassReport> promise;
  std::future<PassReport> future = promise.get_future();
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (running_) {
        if (on_loop_thread()) {
          // A pass listener asking for a pass would wait for itself.
          promise.set_value(error_report("a pass was requested from the reconciler's own thread"));
          return future;
        }
        requests_.emplace_back(full_resync, std::move(promise));
        wake_ = true;
        cv_.notify_all();
        return future;
      }
    }
    // No loop: run it here, one synchronous pass at a time; start() waits for it.
    std::lock_guard pass_lock(pass_mu_);
    {
      std::lock_guard lock(mu_);
      if (running_) continue;  // started meanwhile: post to its mailbox instead
    }
    promise.set_value(do_pass(full_resync));
    return future;
  }
}

PassReport Reconciler::run_pass(bool full_resync) { return submit_pass(full_resync).get(); }

void Reconciler::add_on_pass(std::function<void(const PassReport&)> callback) {
  std::lock_guard lock(mu_);
  on_pass_.push_back(std::move(callback));
}

void Reconciler::set_bulk_loader(BulkLoader* loader) {
  std::lock_guard pass_lock(pass_mu_);
  bulk_ = loader;
}

void Reconciler::start() {
  std::lock_guard pass_lock(pass_mu_);  // no synchronous pass in progress from here on
  std::lock_guard lock(mu_);
  if (running_) return;
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
  loop_thread_ = thread_.get_id();
}

void Reconciler::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::vector<std::pair<bool, std::promise<PassReport>>> pending;
  {
    std::lock_guard lock(mu_);
    running_ = false;
    loop_thread_ = {};
    pending.swap(requests_);
  }
  for (auto& request : pending) request.second.set_value(error_report("reconciler stopped"));
}

Duration Reconciler::backoff(int failures) {
  // Capped exponential backoff with "equal jitter": half fixed, half random.
  const auto base = options_.retry_min.count();
  const auto cap = options_.retry_max.count();
  long long ms = base;
  for (int i = 1; i < failures && ms < cap; ++i) ms *= 2;
  ms = std::min<long long>(ms, cap);
  std::uniform_int_distribution<long long> jitter(0, std::max<long long>(ms / 2, 0));
  return std::chrono::milliseconds(ms / 2 + jitter(rng_));
}

std::optional<SteadyTime> Reconciler::next_wakeup() const {
  std::optional<SteadyTime> next = last_resync_ + options_.resync_interval;
  auto consider = [&next](const std::optional<SteadyTime>& t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (const auto& d : due_) consider(d);
  for (const auto& run : runs_) {
    consider(run.retry_at);
    if (run.last_probe) consider(*run.last_probe + options_.probe_interval);
    for (const auto& t : run.next_poll) consider(t);
  }
  return next;
}

void Reconciler::loop() {
  std::unique_lock lock(mu_);
  last_resync_ = clock_.now();
  bool first = true;
  while (!stop_) {
    if (!first && !wake_) {
      auto next = next_wakeup();
      // The clock is injected; waits use the real clock, bounded so fake clocks still advance.
      const auto wait = next ? std::clamp(*next - clock_.now(), Duration::zero(),
                                          Duration(std::chrono::seconds(1)))
                             : Duration(std::chrono::seconds(1));
      if (wait > Duration::zero()) cv_.wait_for(lock, wait, [this] { return stop_ || wake_; });
      if (stop_) break;
    }
    first = false;
    wake_ = false;
    const SteadyTime now = clock_.now();
    const bool periodic = now >= last_resync_ + options_.resync_interval;
    bool asked_full = resync_requested_;
    // Requests posted before this pass starts are answered by it.
    std::vector<std::promise<PassReport>> answering;
    for (auto& [want_full, promise] : requests_) {
      asked_full = asked_full || want_full;
      answering.push_back(std::move(promise));
    }
    requests_.clear();
    bool change_due = false;
    for (size_t b = 0; b < due_.size(); ++b) {
      if (due_[b] && *due_[b] <= now) change_due = true;
    }
    bool full = periodic || asked_full;
    // A discovery change that falls due with the periodic resync goes first, in a pass of its
    // own backends: the resync (a read of every backend, tens of ms at 2,000 backends) follows
    // at once in the next pass instead of delaying the change. Once per resync, so steady churn
    // cannot postpone it.
    if (full && !asked_full && change_due && !resync_deferred_) {
      full = false;
      resync_deferred_ = true;
      wake_ = true;  // the resync: next iteration, without waiting
    }
    if (full) resync_deferred_ = false;
    bool work = full || !answering.empty() || change_due;
    for (const auto& run : runs_) {
      if (run.retry_at && *run.retry_at <= now) work = true;
      if (!run.last_probe || *run.last_probe + options_.probe_interval <= now) work = true;
      for (const auto& t : run.next_poll) {
        if (t && *t <= now) work = true;
      }
    }
    if (work) {
      resync_requested_ = false;
      lock.unlock();
      const auto started = std::chrono::steady_clock::now();
      PassReport report = do_pass(full, /*paced=*/answering.empty());
      log::debug(kLog, "{} read {} backend(s), {} action(s) in {:.1f} ms",
                 full ? "resync" : "pass", report.backends_read, report.actions_done,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           started)
                     .count());
      // A whole read allocates and frees a few MiB (the reply text of every server, parsed
      // rows) in this thread's malloc arena, which glibc keeps: hand the free pages back so the
      // daemon's RSS stays what it holds (see docs/haproxy-runtime.md). This also returns what
      // start-up and big changes left.
      if (full) os::release_free_memory();
      lock.lock();
      if (full) last_resync_ = clock_.now();
      if (!on_pass_.empty()) {
        auto listeners = on_pass_;
        lock.unlock();
        for (auto& cb : listeners) cb(report);
        lock.lock();
      }
      if (!answering.empty()) {
        lock.unlock();
        for (auto& p : answering) p.set_value(report);
        lock.lock();
      }
    }
    last_loop_ = clock_.now();
  }
}

PassReport Reconciler::do_pass(bool full_resync, bool paced) {
  PassReport report;
  report.full = full_resync;
  std::vector<size_t> published;
  {
    std::lock_guard lock(mu_);
    const SteadyTime now = clock_.now();
    for (size_t b = 0; b < due_.size(); ++b) {
      if (due_[b] && *due_[b] <= now) {
        due_[b].reset();
        for (auto& run : runs_) run.dirty[b] = 1;
      }
    }
    published.swap(published_);
    for (size_t b : published) {
      pass_desired_[b] = desired_[b];
      published_flag_[b] = 0;
    }
  }
  const std::vector<DesiredPtr>& desired = pass_desired_;
  stats_.reconcile_passes_total.inc();
  std::vector<std::vector<size_t>> touched(runs_.size());
  for (size_t i = 0; i < runs_.size(); ++i) {
    touched[i] = pass_instance(runs_[i], desired, full_resync, paced, report);
  }

  // Publish status for other threads: only what changed (desired sets by generation, observed
  // backends), so a one-backend pass does not copy every backend's servers.
  std::unique_lock status_lock(status_mu_);
  for (size_t b : published) {
    const Desired& d = *desired[b];
    if (status_generation_[b] == d.generation) continue;
    status_generation_[b] = d.generation;
    report.status_changed = true;
    for (auto& st : status_) {
      BackendStatus& bs = st.backends[b];
      bs.ready = d.ready;
      bs.desired = d.servers.size();
      bs.desired_servers = d.servers;  // shared, not copied
    }
  }
  for (size_t i = 0; i < runs_.size(); ++i) {
    const InstanceRun& run = runs_[i];
    InstanceStatus& st = status_[i];
    if (st.reachable != run.reachable || st.info.pid != run.info.pid ||
        st.info.start_time_sec != run.info.start_time_sec || st.last_error != run.last_error) {
      report.status_changed = true;
    }
    st.reachable = run.reachable;
    st.info = run.info;
    st.last_error = run.last_error;
    for (size_t b : touched[i]) {
      const BackendRun& br = run.backends[b];
      BackendStatus& bs = st.backends[b];
      const bool servers_changed = !(bs.actual_servers == br.managed);
      std::vector<std::string> op(br.operator_maint.begin(), br.operator_maint.end());
      if (op != bs.operator_maint) {
        report.status_changed = true;
        report.operator_maint_changed = true;
        bs.operator_maint = std::move(op);
      }
      std::vector<DrainStatus> drains;
      const auto& policy = backends_[b];
      for (const auto& [name, since] : br.drains) {
        DrainStatus d{name, since, std::nullopt};
        if (policy.drain_timeout.count() > 0 && !br.warming.count(name) &&
            !br.held_drains.count(name)) {
          d.deadline = since + policy.drain_timeout;
        }
        drains.push_back(std::move(d));
      }
      if (drains != bs.drains) {
        report.status_changed = true;
        bs.drains = std::move(drains);
      }
      if (servers_changed || bs.mode != br.mode || bs.converged != br.converged ||
          bs.missing_slots != br.missing_slots || bs.last_error != br.last_error) {
        report.status_changed = true;
      }
      bs.actual = br.managed.size();
      bs.draining =
          static_cast<size_t>(std::count_if(br.managed.begin(), br.managed.end(),
                                            [](const ActualServer& s) { return s.draining(); }));
      bs.actual_servers = br.managed;  // a pointer: also drops an older list of equal content
      bs.unsettled = br.acted;
      bs.mode = br.mode;
      bs.converged = br.converged;
      bs.missing_slots = br.missing_slots;
      bs.last_error = br.last_error;
    }
  }
  status_lock.unlock();
  std::lock_guard lock(mu_);
  last_loop_ = clock_.now();
  return report;
}

std::vector<size_t> Reconciler::pass_instance(InstanceRun& run,
                                              const std::vector<DesiredPtr>& desired, bool full,
                                              bool paced, PassReport& report) {
  const SteadyTime now = clock_.now();
  const std::string& iname = run.instance->name();

  bool retry_due = run.retry_at && *run.retry_at <= now;
  std::vector<size_t> todo;
  std::vector<size_t> follow_ups;  // due follow-up reads (drains, warm-ups, confirmations)
  for (size_t b = 0; b < backends_.size(); ++b) {
    const auto& poll = run.next_poll[b];
    const bool poll_due = poll && *poll <= now;
    if (full || retry_due || run.dirty[b] || !run.reachable) {
      todo.push_back(b);
    } else if (poll_due) {
      follow_ups.push_back(b);
    }
  }
  if (paced && !todo.empty() && !follow_ups.empty() && !run.polls_deferred && !retry_due &&
      !full && run.reachable) {
    run.polls_deferred = true;  // still due: the loop runs the next pass at once
  } else {
    if (paced && follow_ups.size() > kFollowUpsPerPass) {
      // The longest due first: backends due again at every pass (a drain polls every
      // drain_poll, and a pass can take longer) must not keep the others waiting.
      const auto due_at = [&run](size_t a, size_t b) {
        return *run.next_poll[a] < *run.next_poll[b] || (*run.next_poll[a] == *run.next_poll[b] && a < b);
      };
      std::nth_element(follow_ups.begin(),
                       follow_ups.begin() + static_cast<std::ptrdiff_t>(kFollowUpsPerPass),
                       follow_ups.end(), due_at);
      follow_ups.resize(kFollowUpsPerPass);
    }
    todo.insert(todo.end(), follow_ups.begin(), follow_ups.end());
    std::sort(todo.begin(), todo.end());
    run.polls_deferred = false;
  }
  const bool probe_due = !run.last_probe || now - *run.last_probe >= options_.probe_interval;
  if (todo.empty() && !probe_due) return {};
  if (run.retry_at && !retry_due && !run.reachable) {
    // Still backing off from an unreachable instance.
    report.converged = false;
    return {};
  }

  auto fail_instance = [&](const std::string& message) {
    if (run.reachable || !run.ever_reached || run.last_error != message) {
      log::warn(kLog, "HAProxy {} unreachable: {} (servers left as they are; retrying)", iname,
                message);
    }
    run.reachable = false;
    run.last_error = message;
    ++run.failures;
    run.retry_at = clock_.now() + backoff(run.failures);
    stats_.haproxy_up.set({iname}, 0);
    report.converged = false;
    report.errors.push_back(iname + ": " + message);
  };

  auto info = run.instance->info();
  run.last_probe = now;
  if (!info) {
    fail_instance(info.error().message);
    return {};
  }
  // Read the whole of HAProxy (not backend by backend) on resync, first contact, reconnect and
  // restart; otherwise only the backends that need it. A resync of an instance that answered
  // before and did not restart reads every server's state but server statistics only where a
  // server drains (observe_states): the run state keeps the rest from earlier reads.
  bool whole = full || !run.reachable;
  bool states_only = full && run.reachable;
  const bool new_process = run.ever_reached && (info->start_time_sec != run.info.start_time_sec ||
                                                info->pid != run.info.pid);
  // Our own bulk reload (if its new worker was not yet the one answering when bulk_reload read
  // the pid) is not someone else's restart: the operator's maintenance marks stay.
  const bool restarted = new_process && !run.reloaded;
  if (run.reloaded) {
    // After our own bulk reload: read everything, from the new worker (fresh proxy ids).
    if (new_process) {
      log::info(kLog, "HAProxy {}: new worker after our bulk reload (pid {} -> {})", iname,
                run.info.pid, info->pid);
    }
    run.reloaded = false;
    whole = true;
    states_only = false;
  }
  if (restarted) {
    log::warn(kLog, "HAProxy {} restarted or reloaded (pid {} -> {}); resyncing every backend",
              iname, run.info.pid, info->pid);
    stats_.haproxy_restarts_detected_total.inc({iname});
    // A restarted HAProxy forgot every runtime change, the operator's maintenance included: what
    // it shows now is its config, not anyone's hand.
    for (auto& br : run.backends) {
      br.active.clear();
      br.operator_maint.clear();
    }
    todo.clear();
    for (size_t b = 0; b < backends_.size(); ++b) todo.push_back(b);
    whole = true;
    states_only = false;
  }
  if (!run.reachable && run.ever_reached) {
    log::info(kLog, "HAProxy {} reachable again (pid {}); resyncing", iname, info->pid);
    todo.clear();
    for (size_t b = 0; b < backends_.size(); ++b) todo.push_back(b);
  }
  if (!run.ever_reached || restarted || info->version != run.info.version) {
    run.features = features_of(info->major, info->minor);
    log::info(kLog, "HAProxy {}: version {} (pid {}): {}", iname, info->version, info->pid,
              run.features.describe());
  }
  run.info = *info;
  run.reachable = true;
  run.ever_reached = true;
  run.failures = 0;
  run.retry_at.reset();
  run.last_error.clear();
  stats_.haproxy_up.set({iname}, 1);
  if (todo.empty()) return {};

  report.backends_read += todo.size();
  std::vector<std::string> names;
  for (size_t b : todo) names.push_back(backends_[b].name);
  std::vector<std::size_t> held;  // states_only: the settled backends' digests (settles())
  if (states_only) {
    held.reserve(todo.size());
    for (size_t b : todo) {
      const BackendRun& br = run.backends[b];
      held.push_back(br.settled_state && settles(br, *desired[b]) ? br.settled_rows : 0);
    }
  }
  // A targeted pass that applies new desired sets (a discovery change; not a poll, a retry or a
  // drain follow-up) reads server statistics only where a server drains: the diff needs nothing
  // else from them, and the follow-up pass after the actions reads them in full.
  bool for_change = !whole;
  for (size_t b : todo) {
    if (!desired[b]->ready || desired[b]->generation == run.backends[b].applied_generation) {
      for_change = false;
    }
  }
  auto actual =
      !whole ? (for_change ? run.instance->observe_for_change(names) : run.instance->observe(names))
      : states_only ? run.instance->observe_states(names, held)
                    : run.instance->observe_all(names);
  if (!actual) {
    fail_instance(actual.error().message);
    return {};
  }
  if (actual->size() != todo.size()) {
    fail_instance("observe returned " + std::to_string(actual->size()) + " backends for " +
                  std::to_string(todo.size()));
    return {};
  }
  for (size_t i = 0; i < todo.size(); ++i) {
    apply_backend(run, todo[i], *desired[todo[i]], (*actual)[i], report);
  }
  return todo;
}

void Reconciler::note_operator_maintenance(BackendRun& br, const std::string& backend,
                                           const std::string& iname) {
  std::vector<std::string> active;
  std::set<std::string> operator_maint;
  const std::string where = runs_.size() > 1 ? " on " + iname : "";
  for (const auto& s : br.managed) {
    if (!s.in_maint()) {
      active.push_back(s.name);
      if (br.operator_maint.count(s.name)) {
        log::info(kLog, "{}: {} out of maintenance again{}: ElasticProxy manages it again", backend,
                  s.name, where);
      }
      continue;
    }
    // In maintenance: the operator's when we had it serving and did not command it since (our
    // only maintenance is the first step of a removal, which forgets the server: see kRemove).
    if (br.operator_maint.count(s.name) || br.active.count(s.name)) {
      operator_maint.insert(s.name);
      if (!br.operator_maint.count(s.name)) {
        log::warn(kLog,
                  "{}: {} was put in maintenance by someone else{}: left in maintenance until it "
                  "is enabled again (`elasticproxy maint {}/{} off`)",
                  backend, s.name, where, backend, s.name);
      }
    }
  }
  br.active.assign(std::move(active));
  br.operator_maint = std::move(operator_maint);
  stats_.servers_operator_maint.set({backend, iname},
                                    static_cast<double>(br.operator_maint.size()));
}

bool Reconciler::settles(const BackendRun& br, const Desired& desired) {
  return desired.ready && br.converged && br.applied_generation == desired.generation &&
         br.drains.empty() && br.warming.empty();
}

void Reconciler::apply_backend(InstanceRun& run, size_t b, const Desired& desired,
                               const ActualBackend& actual, PassReport& report) {
  const BackendPolicy& policy = backends_[b];
  BackendRun& br = run.backends[b];
  const std::string& iname = run.instance->name();
  run.dirty[b] = 0;
  auto& next_poll = run.next_poll[b];
  next_poll.reset();
  br.acted.clear();  // this pass's observation is newer than any earlier command
  std::optional<std::size_t> settled;
  settled.swap(br.settled_state);

  auto set_error = [&](const std::string& message) {
    if (br.last_logged_error != message) log::error(kLog, "{}", message);
    br.last_logged_error = message;
    br.last_error = message;
    br.converged = false;
    report.converged = false;
    report.errors.push_back(message);
  };

  if (!actual.exists) {
    set_error("backend '" + policy.name + "' does not exist in HAProxy " + iname +
              " (add it to haproxy.cfg); nothing changed");
    br.managed = {};
    return;
  }
  const BackendMode mode = resolve_mode(policy, run.features, actual.algorithm);
  // A resync finds most backends as the last pass left them. When HAProxy shows the same state
  // as after a pass that had nothing to do, for the same desired set, the diff would be empty
  // again (it depends on time only through drains and warm-ups, and a settled backend has
  // neither): skip it. Any difference, in HAProxy or in discovery, runs it, so drift is still
  // repaired.
  std::optional<std::size_t> state;
  if (!actual.server_stats) {
    state = actual.rows_digest != 0 ? digest_state(actual) : state_hash(actual);
    if (settled && *settled == *state && br.mode == mode && settles(br, desired)) {
      br.settled_state = settled;
      return;
    }
  }
  if (actual.unchanged) {
    // The instance skipped rows we said we held, but they no longer settle this backend (its
    // algorithm changed): read it again, whole, on the next pass.
    br.settled_rows = 0;
    next_poll = clock_.now();
    br.converged = false;
    report.converged = false;
    return;
  }
  br.mode = mode;
  {
    std::vector<ActualServer> managed;
    managed.reserve(static_cast<size_t>(std::count_if(
        actual.servers.begin(), actual.servers.end(),
        [&](const ActualServer& s) { return is_managed(s, policy, mode); })));  // kept: exact
    for (const auto& s : actual.servers) {
      if (is_managed(s, policy, mode)) managed.push_back(s);
    }
    if (!actual.server_stats) keep_server_stats(br.managed, managed);
    // Shared with the published status (one list, not two).
    br.managed = SharedList<ActualServer>(std::move(managed));
  }
  note_operator_maintenance(br, policy.name, iname);
  stats_.backend_servers_actual.set({policy.name, iname}, static_cast<double>(br.managed.size()));
  if (!desired.ready) {
    // No desired set yet (a source has not delivered): leave HAProxy as it is.
    br.converged = false;
    report.converged = false;
    return;
  }
  stats_.backend_servers_desired.set({policy.name}, static_cast<double>(desired.servers.size()));
  const SteadyTime now = clock_.now();
  // Servers found draining that we did not start draining (e.g. after our restart): time their
  // drain from now.
  for (const auto& s : br.managed) {
    if (s.draining() && !br.drains.count(s.name)) br.drains[s.name] = now;
  }
  std::unordered_set<std::string_view> draining;
  for (const auto& s : br.managed) {
    if (s.draining()) draining.insert(s.name);
  }
  for (auto it = br.drains.begin(); it != br.drains.end();) {
    const bool still = draining.count(it->first) != 0;
    if (!still) br.removing.erase(it->first);
    it = still ? std::next(it) : br.drains.erase(it);
  }

  DesiredBackend want{policy.name, desired.servers};
  DrainOrigins origins;
  for (const auto& [name, since] : br.warming) origins.warming.insert(name);
  origins.removing = br.removing;
  for (const auto& s : br.managed) {
    if (s.draining() && held(policy.name, s, now)) origins.held.insert(s.name);
  }
  origins.operator_maint = br.operator_maint;
  br.held_drains = origins.held;
  Plan plan = diff(want, actual, policy, mode, br.drains, now, origins);
  br.missing_slots = plan.missing_slots;
  stats_.slots_missing.set({policy.name, iname}, plan.missing_slots);
  if (!plan.actions.empty()) {
    std::unordered_map<std::string_view, const ActualServer*> by_name;  // as HAProxy has them
    by_name.reserve(br.managed.size());
    for (const auto& s : br.managed) by_name.emplace(s.name, &s);
    for (const auto& a : plan.actions) {
      if (!a.spec.address.empty()) br.acted.emplace_back(a.spec.address, a.spec.port);
      if (auto it = by_name.find(a.server); it != by_name.end()) {
        br.acted.emplace_back(it->second->address, it->second->port);
      }
    }
    std::sort(br.acted.begin(), br.acted.end());
    br.acted.erase(std::unique(br.acted.begin(), br.acted.end()), br.acted.end());
  }

  if (bulk_ != nullptr && mode == BackendMode::kDynamic && !plan.empty() &&
      br.bulk_tried_generation != desired.generation &&
      bulk_reload(run, b, desired, plan, report)) {
    return;
  }

  bool failed = false;
  if (!plan.empty()) {
    std::vector<ActionResult> results = run.instance->apply(plan, policy);
    std::vector<std::pair<std::string, bool>> active_changes;  // applied to br.active at once
    for (size_t i = 0; i < plan.actions.size(); ++i) {
      const Action& a = plan.actions[i];
      const ActionResult r = i < results.size()
                                 ? results[i]
                                 : ActionResult{ActionResult::Outcome::kFailed, "no result"};
      const LabelValues kind_labels{policy.name, to_string(a.kind)};
      const std::string what =
          a.kind == ActionKind::kAssignSlot ? a.server + " <- " + a.spec.address_port() : a.server;
      if (r.outcome != ActionResult::Outcome::kNotYet) {
        const SteadyTime acked = clock_.now();
        journal_.record({acked, iname, policy.name, what, to_string(a.kind), reason_text(a),
                         r.outcome == ActionResult::Outcome::kDone,
                         r.outcome == ActionResult::Outcome::kDone ? std::string() : r.message,
                         seconds_between(desired.seen_at, acked)});
      }
      switch (r.outcome) {
        case ActionResult::Outcome::kDone:
          ++report.actions_done;
          stats_.changes_applied_total.inc(kind_labels);
          log::info(kLog, "{}: {} {} ({}){}", policy.name, to_string(a.kind), what, reason_text(a),
                    runs_.size() > 1 ? " on " + iname : "");
          if (a.kind == ActionKind::kDrain) {
            br.drains[a.server] = now;
            br.removing.insert(a.server);
          }
          if (a.kind == ActionKind::kUndrain) br.removing.erase(a.server);
          if (a.kind == ActionKind::kAdd || a.kind == ActionKind::kAssignSlot ||
              a.kind == ActionKind::kEnable) {
            active_changes.emplace_back(a.server, true);  // we took it out of maintenance
          }
          if (a.kind == ActionKind::kRemove) {
            active_changes.emplace_back(a.server, false);  // our own maintenance (removal's 1st step)
            br.operator_maint.erase(a.server);
            if (a.reason == Reason::kDrainTimeout) {
              stats_.drains_timed_out_total.inc({policy.name});
            }
            br.drains.erase(a.server);
            br.removing.erase(a.server);
          }
          break;
        case ActionResult::Outcome::kNotYet:
          if (a.kind == ActionKind::kRemove) active_changes.emplace_back(a.server, false);
          plan.waiting.push_back(a.server);
          log::debug(kLog, "{}: {} {} not yet: {}", policy.name, to_string(a.kind), what,
                     r.message);
          break;
        case ActionResult::Outcome::kFailed:
          if (a.kind == ActionKind::kRemove) active_changes.emplace_back(a.server, false);
          failed = true;
          ++report.actions_failed;
          stats_.changes_failed_total.inc(kind_labels);
          set_error(policy.name + ": " + to_string(a.kind) + " " + what + " failed: " + r.message);
          break;
      }
    }
    br.active.apply(std::move(active_changes));
  }
  // A warming server is DRAIN in HAProxy but it is not being removed: not a drain.
  for (const auto& name : plan.warming) {
    br.drains.erase(name);
    br.removing.erase(name);
  }
  report.waiting_drains += plan.waiting.size();
  stats_.drains_in_progress.set({policy.name, iname}, static_cast<double>(br.drains.size()));

  if (plan.missing_slots > 0) {
    set_error(policy.name +
              ": slot mode is out of free slots: " + std::to_string(plan.missing_slots) +
              " desired server(s) have no slot; add slots to the server-template (a reload) or "
              "lower the number of servers");
    failed = true;
  }
  const bool had_actions = !plan.empty();
  if (failed) {
    ++br.failures;
    next_poll = clock_.now() + backoff(br.failures);
    return;
  }
  br.failures = 0;
  br.last_error.clear();
  br.last_logged_error.clear();
  if (!plan.waiting.empty() || had_actions) {
    // Follow up soon: drains to finish, or confirm what was just applied.
    next_poll = clock_.now() + options_.drain_poll;
  }
  // Servers warming up (DRAIN until a health check passes): poll quickly for the first seconds
  // (checks usually pass within `rise` x `inter`), then once a second, so a server that stays
  // DOWN does not make us poll HAProxy ten times a second forever.
  std::map<std::string, SteadyTime> still_warming;
  for (const auto& name : plan.warming) {
    auto it = br.warming.find(name);
    still_warming[name] = it != br.warming.end() ? it->second : now;
  }
  br.warming = std::move(still_warming);
  if (!br.warming.empty()) {
    SteadyTime newest{};
    for (const auto& [n, since] : br.warming) newest = std::max(newest, since);
    const Duration step = now - newest < std::chrono::seconds(5)
                              ? Duration(options_.drain_poll)
                              : Duration(std::chrono::seconds(1));
    const SteadyTime at = clock_.now() + step;
    if (!next_poll || at < *next_poll) next_poll = at;
  }
  if (!had_actions && plan.waiting.empty() && br.warming.empty() && br.drains.empty()) {
    // On the instance's digest when it gave one (any read), so the next resync can hold it.
    br.settled_state = actual.rows_digest != 0 ? digest_state(actual)
                       : state                 ? *state
                                               : state_hash(actual);
    br.settled_rows = actual.rows_digest;
  }
  const bool was_converged = br.converged && br.applied_generation == desired.generation;
  br.converged = true;
  if (br.applied_generation != desired.generation) {
    br.applied_generation = desired.generation;
    if (had_actions || !was_converged) {
      const double took = seconds_between(desired.seen_at, clock_.now());
      stats_.convergence_seconds.observe({policy.name}, took);
      journal_.converged(clock_.now(), took);
    }
  }
}

bool Reconciler::bulk_reload(InstanceRun& run, size_t b, const Desired& desired, const Plan& plan,
                             PassReport& report) {
  const BulkRule rule = bulk_->bulk_rule();
  const size_t threshold = rule.threshold;
  const size_t adds = static_cast<size_t>(std::count_if(
      plan.actions.begin(), plan.actions.end(),
      [](const Action& a) { return a.kind == ActionKind::kAdd; }));
  if (threshold == 0 || adds <= threshold) return false;
  // "haproxy.reload.bulk_threshold 2000", or "1000 (haproxy.reload.bulk_threshold auto)"
  const std::string over =
      rule.by_cost ? std::to_string(threshold) + " (haproxy.reload.bulk_threshold auto)"
                   : "haproxy.reload.bulk_threshold " + std::to_string(threshold);
  const BackendPolicy& policy = backends_[b];
  BackendRun& br = run.backends[b];
  const std::string& iname = run.instance->name();
  if (runs_.size() != 1) {
    log::info(kLog,
              "{}: {} servers to add, more than {}, but {} HAProxy instances are configured (the "
              "reload path serves one): runtime commands",
              policy.name, adds, over, runs_.size());
    br.bulk_tried_generation = desired.generation;
    return false;
  }
  // Every managed backend is rendered from what HAProxy showed us: all must have been observed.
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (i != b && run.backends[i].mode == BackendMode::kAuto) {
      log::info(kLog,
                "{}: {} servers to add, more than {}, but backend '{}' has not been read from "
                "HAProxy yet (a reload would render it empty): runtime commands",
                policy.name, adds, over, backends_[i].name);
      br.bulk_tried_generation = desired.generation;
      return false;
    }
  }
  const bool gate = policy.checks();
  // The predictions, from the sizes alone (before rendering anything): the servers HAProxy has
  // in this backend, the additions, and the server lines the reload would render.
  size_t lines = desired.servers.size();
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (i == b) continue;
    const BackendRun& o = run.backends[i];
    lines += o.managed.size() - std::min(o.managed.size(), o.removing.size());
  }
  const BulkCost cost = predict_bulk_cost(br.managed.size(), adds, lines, gate);
  if (rule.by_cost && cost.reload_seconds >= cost.runtime_seconds) {
    log::info(kLog,
              "{}: {} servers to add, more than {}, but `add server` is predicted faster "
              "({:.2f} s by runtime commands, {:.2f} s by a reload of {} server lines): runtime "
              "commands",
              policy.name, adds, over, cost.runtime_seconds, cost.reload_seconds, lines);
    br.bulk_tried_generation = desired.generation;
    return false;
  }
  std::vector<std::vector<ActualServer>> servers(backends_.size());
  std::vector<std::pair<size_t, std::string>> regated;  // (backend, server) rendered disabled
  size_t total = 0;
  for (size_t i = 0; i < backends_.size(); ++i) {
    const BackendRun& o = run.backends[i];
    if (i == b) continue;
    for (const auto& s : o.managed) {
      // Being drained away: left out (the old worker finishes its sessions, like update: config).
      if (o.removing.count(s.name)) continue;
      ActualServer copy = s;
      if (o.warming.count(s.name)) {
        // Still behind its health gate: it leaves maintenance through the gate again.
        copy.admin_state |= admin::kForcedMaint;
        regated.emplace_back(i, s.name);
      }
      servers[i].push_back(std::move(copy));
    }
    total += servers[i].size();
  }
  {
    // The backend itself: its desired servers; those HAProxy has keep their position (names never
    // move), the new ones follow in desired order. Servers no longer desired are left out.
    std::unordered_map<std::string_view, const ServerSpec*> wanted;
    wanted.reserve(desired.servers.size());
    for (const auto& d : desired.servers) wanted.emplace(d.name, &d);
    std::set<std::string_view> placed;
    auto rendered = [](const std::string& name, const ServerSpec& spec) {
      ActualServer s;
      s.name = name;
      s.address = spec.address;
      s.port = static_cast<std::uint16_t>(spec.port);
      s.weight = spec.weight;
      s.backup = spec.backup;
      s.op_state = 2;
      return s;
    };
    auto& out = servers[b];
    out.reserve(desired.servers.size());
    for (const auto& s : br.managed) {
      auto it = wanted.find(s.name);
      if (it == wanted.end() || !placed.insert(it->first).second) continue;
      ActualServer r = rendered(s.name, *it->second);
      if (s.in_maint() || (s.draining() && !s.health_passed())) {
        r.admin_state = admin::kForcedMaint;  // the operator's, or on its way through the gate
        if (!s.in_maint()) regated.emplace_back(b, s.name);
      }
      out.push_back(std::move(r));
    }
    for (const auto& d : desired.servers) {
      if (!placed.insert(d.name).second) continue;
      ActualServer r = rendered(d.name, d);
      // Health-gated: in maintenance until the runtime path enables it (DRAIN until its check
      // passes), as `add server` does; without checks it serves at once, as `state ready` does.
      if (gate) r.admin_state = admin::kForcedMaint;
      out.push_back(std::move(r));
    }
    total += out.size();
  }
  br.bulk_tried_generation = desired.generation;
  const std::string why = policy.name + ": " + std::to_string(adds) + " servers to add";
  log::info(kLog,
            "{}: {} servers to add, more than {}: one reload instead of {} `add server` "
            "(predicted {:.2f} s by reload, {:.2f} s by runtime commands; {} server lines "
            "rendered{})",
            policy.name, adds, over, adds, cost.reload_seconds, cost.runtime_seconds, total,
            gate ? "; the new servers enter behind their health check" : "");
  const SteadyTime started = clock_.now();
  auto done = bulk_->bulk_reload(servers, why);
  const SteadyTime acked = clock_.now();
  journal_.record({acked, iname, policy.name, std::to_string(adds) + " servers", "bulk_reload",
                   std::to_string(adds) + " servers to add, more than " + over,
                   static_cast<bool>(done), done ? std::string() : done.error().message,
                   seconds_between(desired.seen_at, acked)});
  if (!done) {
    log::warn(kLog,
              "{}: bulk reload not done ({}); HAProxy runs its previous config: adding the {} "
              "servers with runtime commands",
              policy.name, done.error().message, adds);
    stats_.bulk_reloads_total.inc({policy.name, "fallback"});
    return false;
  }
  stats_.bulk_reloads_total.inc({policy.name, "ok"});
  log::info(kLog, "{}: bulk reload done in {:.3f} s ({}); reading HAProxy again{}", policy.name,
            seconds_between(started, acked), *done,
            gate ? " and enabling the new servers behind their health check" : "");
  // The new worker has a new pid: ours, not someone else's restart (which would forget the
  // operator's maintenance marks).
  if (auto fresh = run.instance->info()) run.info = *fresh;
  run.reloaded = true;
  std::fill(run.dirty.begin(), run.dirty.end(), 1);
  for (auto& o : run.backends) {
    o.settled_state.reset();
    o.settled_rows = 0;
  }
  // Rendered in maintenance by us: not the operator's when the next pass finds them there.
  std::map<std::size_t, std::vector<std::pair<std::string, bool>>> unmarked;
  for (const auto& [i, name] : regated) unmarked[i].emplace_back(name, false);
  for (auto& [i, names] : unmarked) run.backends[i].active.apply(std::move(names));
  run.next_poll[b] = clock_.now();  // the next pass runs at once
  br.converged = false;
  report.converged = false;
  return true;
}

void Reconciler::seed_operator_maint(const std::map<std::string, std::vector<std::string>>& marks) {
  std::lock_guard pass_lock(pass_mu_);
  for (auto& run : runs_) {
    for (size_t b = 0; b < backends_.size(); ++b) {
      auto it = marks.find(backends_[b].name);
      if (it == marks.end()) continue;
      run.backends[b].operator_maint.insert(it->second.begin(), it->second.end());
    }
  }
}

std::vector<InstanceStatus> Reconciler::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

std::vector<InstanceServers> Reconciler::servers_at(std::string_view backend,
                                                    std::string_view address,
                                                    std::uint16_t port) const {
  std::lock_guard lock(status_mu_);
  std::vector<InstanceServers> out;
  out.reserve(status_.size());
  for (const auto& inst : status_) {
    InstanceServers view;
    view.reachable = inst.reachable;
    for (const auto& b : inst.backends) {
      if (b.backend != backend) continue;
      for (const auto& s : b.actual_servers) {
        if (s.address != address || (port != 0 && s.port != port)) continue;
        view.servers.push_back(s);
      }
      // Servers the last pass sent commands for, present or not (one just added is not).
      for (const auto& [a, p] : b.unsettled) {
        if (a == address && (port == 0 || p == port)) ++view.unsettled;
      }
    }
    out.push_back(std::move(view));
  }
  return out;
}

void Reconciler::hold_drain(std::string_view backend, std::string_view address, std::uint16_t port,
                            SteadyTime until) const {
  std::lock_guard lock(holds_mu_);
  holds_[HoldKey{std::string(backend), std::string(address), port}] = until;
}

void Reconciler::release_drain(std::string_view backend, std::string_view address,
                               std::uint16_t port) const {
  std::lock_guard lock(holds_mu_);
  holds_.erase(HoldKey{std::string(backend), std::string(address), port});
}

bool Reconciler::held(const std::string& backend, const ActualServer& s, SteadyTime now) const {
  std::lock_guard lock(holds_mu_);
  auto it = holds_.find(HoldKey{backend, s.address, static_cast<std::uint16_t>(s.port)});
  if (it == holds_.end()) return false;
  if (it->second <= now) {
    holds_.erase(it);
    return false;
  }
  return true;
}

SteadyTime Reconciler::last_loop() const {
  std::lock_guard lock(mu_);
  return last_loop_;
}

bool Reconciler::converged() const {
  std::lock_guard lock(status_mu_);
  for (const auto& inst : status_) {
    if (!inst.reachable) return false;
    for (const auto& b : inst.backends) {
      if (!b.ready || !b.converged) return false;
    }
  }
  return true;
}

}  // namespace ep::reconcile
