#include "discovery/pipeline.h"

#include <future>
#include <set>

#include "core/log.h"
#include "core/metrics.h"

namespace ep::discovery {

struct Pipeline::Backend {
  Backend(reconcile::BackendPolicy policy, std::vector<std::string> names, const Clock& clock,
          std::vector<std::unique_ptr<Source>> srcs)
      : guard(std::move(policy), std::move(names), clock), sources(std::move(srcs)) {}
  mutable std::mutex mu;
  BackendGuard guard;
  std::vector<std::unique_ptr<Source>> sources;
  // State file, under mu: what was loaded for each source (fresh entries only), and each
  // source's last good endpoints with when the source delivered them.
  std::vector<std::optional<SavedSource>> saved;
  std::vector<std::optional<SavedSource>> current;
  // Per source, under mu: snapshots published (good or failed), failed ones, and when each of
  // the last minute's was published (oldest first; bounded), for /status.
  // `recent` is a vector read from `head` (compacted as it empties), not a deque: libstdc++'s
  // deque allocates 576 bytes even for one element, and there is one per source.
  struct Activity {
    uint64_t snapshots = 0;
    uint64_t errors = 0;
    std::vector<SteadyTime> recent;
    size_t head = 0;
    size_t count() const { return recent.size() - head; }
  };
  std::vector<Activity> activity;
};

namespace {
constexpr auto kActivityWindow = std::chrono::seconds(60);
constexpr size_t kMaxRecent = 100'000;  // a runaway source costs at most this many time points

template <class Activity>
void trim_recent(Activity& act, SteadyTime now) {
  auto& r = act.recent;
  while (act.head < r.size() && now - r[act.head] >= kActivityWindow) ++act.head;
  if (r.size() - act.head > kMaxRecent) act.head = r.size() - kMaxRecent;
  if (act.head == r.size()) {
    r.clear();
    r.shrink_to_fit();  // a quiet source keeps nothing
    act.head = 0;
  } else if (act.head > r.size() / 2) {
    r.erase(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(act.head));  // amortised O(1)
    act.head = 0;
  }
}
}  // namespace

class Pipeline::SourceSink final : public Sink {
 public:
  SourceSink(Pipeline& pipeline, size_t backend, size_t source)
      : pipeline_(pipeline), backend_(backend), source_(source) {}
  void publish(Snapshot snapshot) override { pipeline_.deliver(backend_, source_, snapshot); }

 private:
  Pipeline& pipeline_;
  size_t backend_;
  size_t source_;
};

namespace {
std::vector<std::string> describe_all(const std::vector<std::unique_ptr<Source>>& sources) {
  std::vector<std::string> out;
  for (const auto& s : sources) out.push_back(s->describe());
  return out;
}
}  // namespace

Pipeline::Pipeline(std::vector<BackendSources> backends, const Clock& clock,
                   DesiredCallback callback, runtime::Runtime* runtime)
    : clock_(clock), callback_(std::move(callback)), runtime_(runtime) {
  if (runtime_ == nullptr) {
    // Source timers run on real time; `clock` stays the guards' (it may be a test's fake).
    own_runtime_ = std::make_unique<runtime::Runtime>(
        runtime::RuntimeOptions{.threads = kRuntimeThreads, .clock = &SystemClock::instance()});
    runtime_ = own_runtime_.get();
  }
  for (size_t b = 0; b < backends.size(); ++b) {
    auto names = describe_all(backends[b].sources);
    backends_.push_back(std::make_unique<Backend>(std::move(backends[b].policy), std::move(names),
                                                  clock, std::move(backends[b].sources)));
    backends_.back()->saved.resize(backends_.back()->sources.size());
    backends_.back()->current.resize(backends_.back()->sources.size());
    backends_.back()->activity.resize(backends_.back()->sources.size());
    for (size_t s = 0; s < backends_.back()->sources.size(); ++s) {
      sinks_.push_back(std::make_unique<SourceSink>(*this, b, s));
    }
  }
}

Pipeline::~Pipeline() { stop(); }

void Pipeline::deliver(size_t backend, size_t source, const Snapshot& snapshot) {
  Backend& b = *backends_[backend];
  std::lock_guard lock(b.mu);
  const SteadyTime seen = clock_.now();
  const bool was_ready = b.guard.ready();
  if (source < b.activity.size()) {
    auto& act = b.activity[source];
    ++act.snapshots;
    if (!snapshot.ok()) ++act.errors;
    act.recent.push_back(seen);
    trim_recent(act, seen);
  }
  bool changed = b.guard.on_snapshot(source, snapshot);
  if (!state_options_.path.empty()) {
    if (snapshot.ok()) {
      SavedSource cur;
      cur.saved_at = unix_now();
      cur.endpoints.reserve(snapshot->size());
      for (const auto& e : *snapshot) {
        Endpoint copy;
        copy.address = e.address;
        copy.port = e.port;
        copy.weight = e.weight;
        copy.backup = e.backup;
        copy.id = e.id;
        cur.endpoints.push_back(std::move(copy));
      }
      b.current[source] = std::move(cur);
      schedule_state_write();
    } else {
      changed = restore_locked(backend, source, "it failed before answering") || changed;
    }
  }
  if (changed || b.guard.ready() != was_ready) {
    callback_(backend, b.guard.desired(), b.guard.ready(), seen);
  }
  // A hold may have started: re-plan the timer if it now has to fire earlier than planned
  // (coalesced; only while the timer runs). Re-planning reads every backend: at 2,000 backends
  // not something to do on every delivery. The count, bumped before planned_at_ is read, makes
  // a plan_timer() that raced past this backend plan again (it reads the count after storing).
  const std::optional<SteadyTime> deadline = b.guard.next_deadline();
  if (!deadline) return;
  deadline_changes_.fetch_add(1);
  if (deadline->time_since_epoch().count() >= planned_at_.load()) return;
  if (timer_active_.load() && !replan_pending_.exchange(true)) {
    timer_loop_->post([this, alive = timer_alive_] {
      if (!*alive) return;  // stopped (the pipeline may be gone: manual-mode loops keep tasks)
      replan_pending_ = false;
      plan_timer();
    });
  }
}

namespace {
Counter& state_errors() {
  static GuardStats stats(Metrics::global());  // declared once per registry (idempotent)
  return stats.state_file_errors_total;
}
}  // namespace

bool Pipeline::restore_locked(size_t bi, size_t s, const char* why) {
  Backend& b = *backends_[bi];
  if (!b.saved[s] || b.guard.sources()[s].delivered) return false;
  SavedSource saved = std::move(*b.saved[s]);
  b.saved[s].reset();
  const bool changed = b.guard.restore(s, saved.endpoints);
  log::warn("state",
            "backend {} source {}: {}; serving its last good set from the state file ({} "
            "endpoint(s), confirmed {} s ago) until it answers",
            b.guard.policy().name, b.guard.sources()[s].name, why, saved.endpoints.size(),
            unix_now() - saved.saved_at);
  b.current[s] = std::move(saved);  // kept in the file with its original time
  return changed;
}

void Pipeline::load_state() {
  if (state_loaded_ || state_options_.path.empty()) return;
  state_loaded_ = true;
  load_state_file();
}

void Pipeline::load_state_file() {
  Counter& errors = state_errors();
  auto loaded = discovery::load_state(state_options_.path, &loaded_operator_maint_);
  if (!loaded) {
    loaded_operator_maint_.clear();
    if (loaded.error().message.find("No such file") != std::string::npos) {
      log::info("state", "no state file at {} yet", state_options_.path);
    } else {
      log::warn("state", "{}; ignored", loaded.error().message);
      errors.inc({"unreadable"});
    }
    return;
  }
  const std::int64_t now = unix_now();
  const auto max_age = state_options_.max_age.count();
  for (auto& bp : backends_) {
    Backend& b = *bp;
    std::lock_guard lock(b.mu);
    auto bit = loaded->find(b.guard.policy().name);
    if (bit == loaded->end()) continue;
    for (size_t s = 0; s < b.sources.size(); ++s) {
      auto sit = bit->second.find(b.guard.sources()[s].name);
      if (sit == bit->second.end()) continue;
      const std::int64_t age = now - sit->second.saved_at;
      if (age > max_age || age < -60) {
        log::warn("state",
                  "state file {}: backend {} source {}: saved {} s ago, older than max_age {} s "
                  "(or in the future); ignored",
                  state_options_.path, b.guard.policy().name, sit->first, age, max_age);
        errors.inc({"stale"});
        continue;
      }
      b.saved[s] = sit->second;
    }
  }
}

void Pipeline::schedule_state_write() {
  // timer_active_ first: start() sets timer_loop_ and timer_alive_ before it (release/acquire),
  // and the reconciler may ask for a write before the pipeline has started.
  if (!timer_active_.load() || timer_loop_ == nullptr) return;
  if (state_write_pending_.exchange(true)) return;
  timer_loop_->post([this, alive = timer_alive_] {
    if (!*alive) return;
    timer_loop_->after(state_options_.write_delay, [this, alive] {
      if (!*alive) return;
      state_write_pending_ = false;
      write_state_now();
    });
  });
}

void Pipeline::write_state_now() {
  if (state_options_.path.empty()) return;
  Counter& errors = state_errors();
  SavedState state;
  for (auto& bp : backends_) {
    std::lock_guard lock(bp->mu);
    for (size_t s = 0; s < bp->sources.size(); ++s) {
      if (bp->current[s]) {
        state[bp->guard.policy().name][bp->guard.sources()[s].name] = *bp->current[s];
      } else if (bp->saved[s]) {
        state[bp->guard.policy().name][bp->guard.sources()[s].name] = *bp->saved[s];
      }
    }
  }
  OperatorMaint om = operator_maint_provider_ ? operator_maint_provider_() : OperatorMaint{};
  if (state.empty() && om.empty()) return;
  std::lock_guard lock(state_write_mu_);
  Status st = write_state(state_options_.path, render_state(state, unix_now(), &om));
  if (!st) {
    if (st.error().message != last_state_error_) log::warn("state", "{}", st.error().message);
    last_state_error_ = st.error().message;
    errors.inc({"write"});
    return;
  }
  if (!last_state_error_.empty())
    log::info("state", "state file {} written again", state_options_.path);
  last_state_error_.clear();
}

Status Pipeline::start() {
  load_state();
  size_t sink = 0;
  for (auto& b : backends_) {
    for (auto& s : b->sources) {
      Status st = s->start_on(*runtime_, *sinks_[sink++]);
      if (!st) {
        Error e = Error::invalid(s->describe() + ": cannot start: " + st.error().message);
        stop();
        return e;
      }
    }
  }
  if (timer_loop_ == nullptr) timer_loop_ = &runtime_->loop();
  timer_alive_ = std::make_shared<bool>(true);
  replan_pending_ = false;
  timer_active_ = true;
  timer_loop_->run_sync([this] {
    timer_running_ = true;
    plan_timer();
  });
  if (!state_options_.path.empty()) {
    // The sources started before the timer: a set delivered meanwhile asked for a write that
    // schedule_state_write() could not schedule yet (CI saw a Consul source's only set, then a
    // 5-minute blocking query, never written). Catch up now.
    bool delivered = false;
    for (auto& b : backends_) {
      std::lock_guard lock(b->mu);
      for (const auto& c : b->current) delivered = delivered || c.has_value();
    }
    if (delivered) schedule_state_write();
    // A source that says nothing (hangs, frozen) within restore_after gets its saved set too.
    timer_loop_->after(state_options_.restore_after, [this, alive = timer_alive_] {
      if (!*alive) return;
      for (size_t i = 0; i < backends_.size(); ++i) {
        Backend& b = *backends_[i];
        std::lock_guard bl(b.mu);
        const bool was_ready = b.guard.ready();
        bool changed = false;
        for (size_t s = 0; s < b.sources.size(); ++s) {
          changed = restore_locked(i, s, "no answer within restore_after") || changed;
        }
        if (changed || b.guard.ready() != was_ready) {
          callback_(i, b.guard.desired(), b.guard.ready(), clock_.now());
        }
      }
    });
  }
  started_ = true;
  return {};
}

void Pipeline::stop() {
  for (auto& b : backends_) {
    for (auto& s : b->sources) s->stop();
  }
  // The sources no longer deliver: no re-plan is posted after this. run_sync runs after every
  // re-plan already posted (FIFO) and cancels the timer on its own thread (final).
  timer_active_ = false;
  if (timer_loop_ != nullptr) {
    timer_loop_->run_sync([this] {
      timer_running_ = false;
      if (timer_alive_) *timer_alive_ = false;
      if (timer_id_ != 0) timer_loop_->cancel(timer_id_);
      timer_id_ = 0;
    });
  }
  started_ = false;
}

void Pipeline::fetch_once(std::chrono::milliseconds timeout) {
  for (size_t b = 0; b < backends_.size(); ++b) {
    for (size_t s = 0; s < backends_[b]->sources.size(); ++s) {
      Snapshot snap = backends_[b]->sources[s]->fetch_once(timeout);
      deliver(b, s, snap);
    }
  }
}

void Pipeline::plan_timer() {
  if (!timer_running_) return;
  if (timer_id_ != 0) timer_loop_->cancel(timer_id_);
  timer_id_ = 0;
  auto wait = std::chrono::milliseconds(1000);
  // A few rounds at most under steady churn; a deadline missed then waits at most the 1 s bound.
  for (int round = 0; round < 4; ++round) {
    const uint64_t changes = deadline_changes_.load();
    std::optional<SteadyTime> next;
    for (auto& b : backends_) {
      std::lock_guard bl(b->mu);
      auto d = b->guard.next_deadline();
      if (d && (!next || *d < *next)) next = d;
    }
    // Real-time wait bounded to 1 s so an injected clock is re-read regularly.
    const SteadyTime now = clock_.now();
    wait = std::chrono::milliseconds(1000);
    if (next) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now);
      wait = std::clamp(left, std::chrono::milliseconds(0), wait);
    }
    // With a fake clock that stands still this stays "now + wait": deliveries then re-plan
    // for any deadline before it, as they should.
    planned_at_.store((now + wait).time_since_epoch().count());
    if (deadline_changes_.load() == changes) break;  // no delivery set a deadline meanwhile
  }
  timer_id_ = timer_loop_->after(wait, [this, alive = timer_alive_] {
    if (*alive) on_timer();
  });
}

void Pipeline::on_timer() {
  timer_id_ = 0;
  if (!timer_running_) return;
  for (size_t i = 0; i < backends_.size(); ++i) {
    Backend& b = *backends_[i];
    std::lock_guard bl(b.mu);
    if (b.guard.evaluate()) callback_(i, b.guard.desired(), b.guard.ready(), clock_.now());
  }
  plan_timer();
}

std::vector<GuardStatus> Pipeline::status() const {
  std::vector<GuardStatus> out;
  const SteadyTime now = clock_.now();
  for (const auto& b : backends_) {
    std::lock_guard lock(b->mu);
    GuardStatus gs;
    gs.backend = b->guard.policy().name;
    gs.ready = b->guard.ready();
    gs.hold = b->guard.hold();
    gs.desired = b->guard.desired().size();
    const auto& states = b->guard.sources();
    for (size_t i = 0; i < states.size(); ++i) {
      const auto& s = states[i];
      gs.sources.push_back(
          {gs.backend, s.name, s.delivered, s.failing, s.last_error, s.last_success, s.endpoints,
           s.rejected, s.rejected_messages,
           i < b->sources.size() ? b->sources[i]->hooks_in_flight() : std::vector<HookInFlight>{},
           s.from_state});
      gs.sources.back().labels = s.labels;
      if (states.size() > 1) {
        auto& names = gs.sources.back().servers;
        const auto& good = b->guard.last_good(i);
        names.reserve(good.size());
        for (const auto& spec : good) names.push_back(spec.name);
      }
      if (i < b->activity.size()) {
        auto& act = b->activity[i];
        trim_recent(act, now);
        gs.sources.back().snapshots = act.snapshots;
        gs.sources.back().errors = act.errors;
        gs.sources.back().events_last_minute = act.count();
      }
    }
    if (gs.hold != Hold::kNone) {
      const auto& held = b->guard.held();
      gs.held_servers = held.size();
      gs.held_since = b->guard.held_since();
      gs.confirm_at = b->guard.next_deadline();
      std::set<std::string> kept;
      for (const auto& s : held) kept.insert(s.name);
      for (const auto& s : b->guard.desired()) {
        if (!kept.count(s.name)) gs.would_remove.push_back(s.name);
      }
    }
    out.push_back(std::move(gs));
  }
  return out;
}

Result<std::string> Pipeline::resolve_hold(const std::string& name, bool confirm,
                                           std::chrono::milliseconds timeout) {
  size_t index = backends_.size();
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (backends_[i]->guard.policy().name == name) index = i;  // policies are immutable
  }
  if (index == backends_.size()) return Error::invalid("no backend named '" + name + "'");
  if (!timer_active_.load() || timer_loop_ == nullptr) {
    return Error::unavailable("the discovery pipeline is not running");
  }
  auto done = std::make_shared<std::promise<Result<std::string>>>();
  auto outcome = done->get_future();
  timer_loop_->post([this, alive = timer_alive_, done, index, confirm] {
    if (!*alive) {
      done->set_value(Error::unavailable("the discovery pipeline stopped"));
      return;
    }
    Backend& b = *backends_[index];
    Result<std::string> out = std::string();
    {
      std::lock_guard bl(b.mu);
      const size_t held = b.guard.held().size();
      Result<bool> r = confirm ? b.guard.confirm_held() : b.guard.reject_held();
      if (!r) {
        out = r.error();
      } else {
        if (*r) callback_(index, b.guard.desired(), b.guard.ready(), clock_.now());
        out = std::string(confirm ? "confirmed: " : "rejected: ") + "the held set of " +
              std::to_string(held) + " server(s); backend " + b.guard.policy().name + " now has " +
              std::to_string(b.guard.desired().size()) + " desired server(s)";
      }
    }
    plan_timer();  // the deadline it waited for is gone
    done->set_value(std::move(out));
  });
  if (outcome.wait_for(timeout) != std::future_status::ready) {
    return Error::unavailable("the discovery pipeline did not answer within " +
                              std::to_string(timeout.count()) + " ms");
  }
  return outcome.get();
}

const reconcile::BackendPolicy& Pipeline::policy(size_t b) const {
  return backends_[b]->guard.policy();
}

std::vector<ServerSpec> Pipeline::desired(size_t b) const {
  std::lock_guard lock(backends_[b]->mu);
  return backends_[b]->guard.desired();
}

bool Pipeline::ready() const {
  for (const auto& b : backends_) {
    std::lock_guard lock(b->mu);
    if (!b->guard.ready()) return false;
  }
  return true;
}

}  // namespace ep::discovery
