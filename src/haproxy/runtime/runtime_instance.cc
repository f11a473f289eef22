#include "haproxy/runtime/runtime_instance.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>

#include "haproxy/runtime/commands.h"
#include "haproxy/runtime/parsers.h"
#include "haproxy/runtime/replies.h"

namespace ep::haproxy {

using reconcile::ActionKind;
using reconcile::ActionResult;
using Outcome = reconcile::ActionResult::Outcome;

namespace {

enum class Check { kEmpty, kAddr, kAdd, kDel };

// apply(): at most max(kMinGroup, actions / kGroups) jobs of a plan run at once (its window).
constexpr std::size_t kMinGroup = 500;
constexpr std::size_t kGroups = 8;

struct Step {
  std::string line;
  Check check = Check::kEmpty;
  std::string what;           // "add server", "set addr", ... for messages
  std::string static_weight;  // replacement line if a static LB algorithm refuses the weight
  // kDel: when HAProxy answers that the server still has connections, this line (`shutdown
  // sessions server B/S`) and the del again are sent instead of giving up for this pass.
  std::string shutdown_first;
};

struct Job {
  std::vector<Step> steps;
  std::size_t next = 0;
  bool finished = false;
  ActionResult result;
  std::vector<std::string> notes;  // accepted non-empty replies worth reporting
};

// Appends a built command or records why it could not be built.
bool push(Job& job, Result<std::string> line, Check check, std::string what,
          std::string static_weight = {}) {
  if (!line) {
    job.finished = true;
    job.result = {Outcome::kFailed, fmt::format("not sent: {}", line.error().message)};
    return false;
  }
  job.steps.push_back({std::move(*line), check, std::move(what), std::move(static_weight)});
  return true;
}

Job build(const reconcile::Action& a, const reconcile::Plan& plan,
          const reconcile::BackendPolicy& policy) {
  Job job;
  const std::string& b = plan.backend;
  const std::string& s = a.server;
  const bool checks = plan.checks;
  auto weight_step = [&](Job& j) {
    auto percent = cmd::set_weight_percent(b, s, a.spec.weight == 0 ? 0 : 100);
    return push(j, cmd::set_weight(b, s, a.spec.weight), Check::kEmpty, "set weight",
                percent ? *percent : std::string());
  };
  switch (a.kind) {
    case ActionKind::kAdd:
      push(job,
           cmd::add_server(b, s, a.spec.address, a.spec.port, a.spec.weight, a.spec.backup,
                           policy.server_options),
           Check::kAdd, "add server") &&
          (!checks || push(job, cmd::enable_health(b, s), Check::kEmpty, "enable health")) &&
          (!plan.agent || push(job, cmd::enable_agent(b, s), Check::kEmpty, "enable agent")) &&
          push(job, cmd::warm_line(b, s, checks), Check::kEmpty,
               checks ? "set state drain (until its health check passes)" : "set state ready");
      break;
    case ActionKind::kAssignSlot:
      // The weight step only where the slot's weight differs (diff sets slot_weight_ok).
      push(job, cmd::set_addr(b, s, a.spec.address, a.spec.port), Check::kAddr, "set addr") &&
          (a.slot_weight_ok || weight_step(job)) &&
          push(job, cmd::warm_line(b, s, checks), Check::kEmpty,
               checks ? "set state drain (until its health check passes)" : "set state ready");
      break;
    case ActionKind::kEnable:
      (!(checks && plan.mode == reconcile::BackendMode::kDynamic) ||
       push(job, cmd::enable_health(b, s), Check::kEmpty, "enable health")) &&
          push(job, cmd::warm_line(b, s, checks), Check::kEmpty,
               checks ? "set state drain (until its health check passes)" : "set state ready");
      break;
    case ActionKind::kUndrain:
      push(job, cmd::set_state(b, s, cmd::State::kReady), Check::kEmpty, "set state ready");
      break;
    case ActionKind::kSetWeight:
      weight_step(job);
      break;
    case ActionKind::kSetAddress:
      push(job, cmd::set_addr(b, s, a.spec.address, a.spec.port), Check::kAddr, "set addr");
      break;
    case ActionKind::kDrain:
      push(job, cmd::set_state(b, s, cmd::State::kDrain), Check::kEmpty, "set state drain");
      break;
    case ActionKind::kRemove:
      if (plan.mode == reconcile::BackendMode::kSlots) {
        // A slot keeps no connection to its old address: sessions are cut before re-addressing.
        push(job, cmd::set_state(b, s, cmd::State::kMaint), Check::kEmpty, "set state maint") &&
            push(job, cmd::shutdown_sessions(b, s), Check::kEmpty, "shutdown sessions") &&
            push(job,
                 cmd::set_addr(b, s, reconcile::kSlotPlaceholderAddr,
                               reconcile::kSlotPlaceholderPort),
                 Check::kAddr, "reset slot address");
      } else {
        // `del server` refuses a server that still has connections, so sessions are cut only
        // when it says so (on 2.6.12, 10,000 `shutdown sessions server` cost as much as the
        // maint and del commands together): maint -> del [-> shutdown sessions -> del].
        auto shutdown = cmd::shutdown_sessions(b, s);
        push(job, cmd::set_state(b, s, cmd::State::kMaint), Check::kEmpty, "set state maint") &&
            push(job, cmd::del_server(b, s), Check::kDel, "del server") &&
            (shutdown ? (job.steps.back().shutdown_first = std::move(*shutdown), true)
                      : push(job, std::move(shutdown), Check::kEmpty, "shutdown sessions"));
      }
      break;
  }
  if (!job.finished && job.steps.empty()) {
    job.finished = true;
    job.result = {Outcome::kFailed, "internal: no command for this action"};
  }
  return job;
}

std::string failure_text(const Job& job, const Step& step, std::string_view reply,
                         reconcile::ActionKind kind) {
  std::string text = reply.empty() ? std::string("<empty reply>") : std::string(reply);
  std::string msg = fmt::format("{}: {}", step.what, text);
  if (job.next > 0) {
    msg += fmt::format(" (after {} of {} steps succeeded)", job.next, job.steps.size());
  }
  if (kind == ActionKind::kAssignSlot && job.next < job.steps.size() - 1) {
    msg += "; slot left in maintenance, not enabled";
  }
  return msg;
}

// Judges one reply; advances or finishes the job.
void judge(Job& job, std::string_view reply, reconcile::ActionKind kind) {
  Step& step = job.steps[job.next];
  bool ok = false;
  switch (step.check) {
    case Check::kEmpty:
      ok = reply::empty_accepted(reply);
      if (!ok && !step.static_weight.empty() && reply::static_weight_refused(reply)) {
        // static-rr accepts only 0%/100%: retry this step once with the percentage form.
        job.notes.push_back(
            fmt::format("static LB algorithm: weight sent as '{}'",
                        step.static_weight.substr(step.static_weight.rfind(' ') + 1)));
        step.line = std::move(step.static_weight);
        step.static_weight.clear();
        return;
      }
      break;
    case Check::kAddr:
      ok = reply::addr_accepted(reply);
      if (ok) job.notes.emplace_back(reply);
      break;
    case Check::kAdd:
      ok = reply::add_accepted(reply);
      break;
    case Check::kDel:
      switch (reply::del_outcome(reply)) {
        case reply::DelOutcome::kDeleted:
          ok = true;
          break;
        case reply::DelOutcome::kHasConnections:
          if (!step.shutdown_first.empty()) {
            // Cut the sessions, then delete again (the job's next two steps).
            Step shutdown{
                std::move(step.shutdown_first), Check::kEmpty, "shutdown sessions", {}, {}};
            Step again{step.line, Check::kDel, "del server", {}, {}};
            step.shutdown_first.clear();
            job.steps.insert(job.steps.begin() + static_cast<std::ptrdiff_t>(job.next) + 1,
                             {std::move(shutdown), std::move(again)});
            ++job.next;
            return;
          }
          job.finished = true;
          job.result = {Outcome::kNotYet,
                        fmt::format("del server: {} (left in maintenance)", reply)};
          return;
        case reply::DelOutcome::kFailed:
          break;
      }
      break;
  }
  if (!ok) {
    job.finished = true;
    job.result = {Outcome::kFailed, failure_text(job, step, reply, kind)};
    return;
  }
  ++job.next;
  if (job.next == job.steps.size()) {
    job.finished = true;
    std::string msg;
    for (const auto& n : job.notes) msg += (msg.empty() ? "" : "; ") + n;
    job.result = {Outcome::kDone, msg};
  }
}

}  // namespace

RuntimeInstance::RuntimeInstance(std::string socket_path, std::chrono::milliseconds timeout)
    : admin_(std::move(socket_path), timeout) {}

void RuntimeInstance::count(const std::vector<std::string>& lines,
                            const std::vector<std::string>& replies) {
  io_.commands += lines.size();
  for (const auto& r : replies) io_.bytes_read += r.size();
}

Result<std::vector<std::string>> RuntimeInstance::run(const std::vector<std::string>& lines) {
  ++io_.connections;
  auto replies = admin_.run(lines);
  if (replies) count(lines, *replies);
  return replies;
}

Result<reconcile::InstanceInfo> RuntimeInstance::info() {
  auto replies = run({cmd::show_info()});
  if (!replies) return replies.error();
  auto parsed = parse_show_info(replies->at(0));
  if (!parsed) {
    return Error::invalid(fmt::format("haproxy {}: {}", admin_.path(), parsed.error().message));
  }
  seen_pid_ = parsed->pid;
  if (algorithms_pid_ != seen_pid_) algorithms_.clear();  // another process: read them again
  return parsed;
}

namespace {

// The rows of one backend in a `show servers state` and a `show stat` reply.
struct Rows {
  std::vector<ServerStateRow*> state;
  std::vector<const StatRow*> stat;
  const StatRow* backend_row = nullptr;
};

void index_state(ServersState& state, std::map<std::string_view, Rows>& by_name) {
  for (auto& row : state.rows) by_name[row.backend].state.push_back(&row);
}

void index_stat(const StatTable& stat, std::map<std::string_view, Rows>& by_name) {
  for (const auto& row : stat.rows) {
    if (row.is_frontend()) continue;
    Rows& r = by_name[row.proxy];
    if (row.is_backend()) {
      r.backend_row = &row;
    } else {
      r.stat.push_back(&row);
    }
  }
}

ActualBackend assemble(const std::string& name, const Rows* rows) {
  ActualBackend be;
  be.backend = name;
  if (rows == nullptr || rows->backend_row == nullptr) return be;  // exists = false
  be.exists = true;
  be.algorithm = rows->backend_row->algo;
  std::map<std::string_view, const StatRow*> stat_of;
  for (const StatRow* st : rows->stat) stat_of.emplace(st->name, st);
  for (ServerStateRow* row : rows->state) {
    ActualServer s = std::move(row->server);
    if (auto it = stat_of.find(s.name); it != stat_of.end()) {
      s.sessions = it->second->scur;
      s.backup = it->second->bck != 0;
    }
    be.servers.push_back(std::move(s));
  }
  return be;
}

}  // namespace

namespace {
// Digests every backend, skips none.
const UnchangedRows kDigestOnly = [](std::string_view, std::size_t) { return false; };
}  // namespace

Result<std::vector<ActualBackend>> RuntimeInstance::observe(
    const std::vector<std::string>& backends) {
  std::vector<std::size_t> unsettled;  // HAProxy has the backend, the stat read missed it
  auto out = observe_targeted(backends, true, &unsettled);
  if (!out || unsettled.empty()) return out;
  std::vector<std::string> names;
  for (std::size_t i : unsettled) names.push_back(backends[i]);
  auto settled = observe_all(names);
  if (!settled) return settled.error();
  for (std::size_t k = 0; k < unsettled.size(); ++k)
    (*out)[unsettled[k]] = std::move((*settled)[k]);
  return out;
}

Result<std::vector<ActualBackend>> RuntimeInstance::observe_for_change(
    const std::vector<std::string>& backends) {
  std::vector<std::size_t> recheck;  // a draining server, or the BACKEND row was missed
  auto out = observe_targeted(backends, false, &recheck);
  if (!out || recheck.empty()) return out;
  std::vector<std::string> names;
  for (std::size_t i : recheck) names.push_back(backends[i]);
  auto detailed = observe(names);
  if (!detailed) return detailed.error();
  for (std::size_t k = 0; k < recheck.size(); ++k) (*out)[recheck[k]] = std::move((*detailed)[k]);
  return out;
}

Result<std::vector<ActualBackend>> RuntimeInstance::observe_targeted(
    const std::vector<std::string>& backends, bool server_rows, std::vector<std::size_t>* recheck) {
  // Without server rows, the BACKEND row of `show stat` only confirms the proxy and gives its
  // algorithm. Once this process's row is known (its id and algorithm), the `show servers state`
  // rows confirm the proxy by their be_id and `show stat` is left out: HAProxy answers it by
  // walking every proxy, so it costs more the more backends HAProxy has, in a change's path.
  // (seen_pid_ is the pass's own info(), just before. A reload in between that keeps the proxy
  // ids and changes a backend's balance would show the old algorithm for that one pass; the
  // next pass's info() sees the new pid and reads everything again.)
  const bool rows_known = !server_rows && seen_pid_ != 0 && algorithms_pid_ == seen_pid_;
  std::vector<std::string> lines;
  std::vector<int> known_id(backends.size(), 0);  // > 0: no `show stat` sent for this backend
  std::vector<std::size_t> first_reply(backends.size());
  for (std::size_t i = 0; i < backends.size(); ++i) {
    const std::string& b = backends[i];
    auto state = cmd::show_servers_state(b);
    if (!state) return state.error();
    auto id = proxy_ids_.find(b);
    const bool known = id != proxy_ids_.end();
    first_reply[i] = lines.size();
    lines.push_back(std::move(*state));
    if (rows_known && known && algorithms_.count(b) != 0) {
      known_id[i] = id->second;
      continue;
    }
    auto stat = server_rows ? (known ? cmd::show_stat_proxy(id->second) : cmd::show_stat(b))
                            : (known ? cmd::show_stat_proxy_backend_row(id->second)
                                     : cmd::show_stat_backend_row(b));
    if (!stat) return stat.error();
    lines.push_back(std::move(*stat));
  }
  std::vector<ActualBackend> out;
  if (lines.empty()) return out;
  auto replies = run(lines);
  if (!replies) return replies.error();
  out.resize(backends.size());
  for (std::size_t i = 0; i < backends.size(); ++i) {
    const std::string& name = backends[i];
    auto state = parse_servers_state((*replies)[first_reply[i]], kDigestOnly);
    if (!state) {
      return Error::invalid(
          fmt::format("haproxy {}: backend '{}': {}", admin_.path(), name, state.error().message));
    }
    if (!state->backend_found) {
      proxy_ids_.erase(name);
      out[i].backend = name;  // exists = false
      continue;
    }
    StatTable stat;
    if (known_id[i] > 0) {
      // Confirmed only if every row names the known proxy (no row, or a row of another id: an
      // empty backend, a proxy replaced): observe_for_change reads it again with `show stat`.
      const bool confirmed =
          !state->rows.empty() && std::all_of(state->rows.begin(), state->rows.end(),
                                              [&](const ServerStateRow& r) {
                                                return r.be_id == known_id[i];
                                              });
      if (!confirmed) {
        // Left as "absent" here: only reached with server_rows false, whose caller
        // (observe_for_change) replaces every rechecked entry with observe()'s read.
        out[i].backend = name;
        recheck->push_back(i);
        continue;
      }
      StatRow row;
      row.proxy = name;
      row.name = "BACKEND";
      row.algo = algorithms_.find(name)->second;
      row.iid = known_id[i];
      stat.rows.push_back(std::move(row));
    } else {
      auto parsed = parse_show_stat((*replies)[first_reply[i] + 1]);
      if (!parsed) {
        return Error::invalid(fmt::format("haproxy {}: backend '{}': {}", admin_.path(), name,
                                          parsed.error().message));
      }
      stat = std::move(*parsed);
    }
    std::map<std::string_view, Rows> by_name;
    index_state(*state, by_name);
    index_stat(stat, by_name);
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second.backend_row == nullptr) {
      // A stale id (HAProxy reloaded) or a frontend of the same name answered the lookup by
      // name: settled by the caller (one read of every backend).
      proxy_ids_.erase(name);
      recheck->push_back(i);
      continue;
    }
    if (it->second.backend_row->iid > 0) proxy_ids_[name] = it->second.backend_row->iid;
    out[i] = assemble(name, &it->second);
    for (const auto& d : state->digests) {
      if (d.backend == name) out[i].rows_digest = d.digest;
    }
    if (!server_rows) {
      out[i].server_stats = false;
      if (std::any_of(out[i].servers.begin(), out[i].servers.end(),
                      [](const ActualServer& s) { return s.draining(); })) {
        recheck->push_back(i);
      }
    }
  }
  return out;
}

Result<std::vector<ActualBackend>> RuntimeInstance::read_whole(
    const std::vector<std::string>& backends, const std::string& stat_command,
    const std::vector<std::size_t>* held) {
  // No stat command: the BACKEND rows come from algorithms_ (observe_states checked they are
  // all there and of this process).
  const bool cached_rows = stat_command.empty();
  auto replies = cached_rows ? run({cmd::show_servers_state_all()})
                             : run({cmd::show_servers_state_all(), stat_command});
  if (!replies) return replies.error();
  // Every backend gets its digest (so the reconciler settles on digests from its first read);
  // only the held ones may skip their rows.
  std::map<std::string_view, std::size_t> held_by_name;
  if (held != nullptr) {
    for (std::size_t i = 0; i < backends.size() && i < held->size(); ++i) {
      if ((*held)[i] != 0) held_by_name.emplace(backends[i], (*held)[i]);
    }
  }
  const UnchangedRows unchanged = [&held_by_name](std::string_view backend, std::size_t digest) {
    auto it = held_by_name.find(backend);
    return it != held_by_name.end() && it->second == digest;
  };
  auto state = parse_servers_state((*replies)[0], unchanged);
  if (!state) {
    return Error::invalid(fmt::format("haproxy {}: {}", admin_.path(), state.error().message));
  }
  StatTable stat;
  if (cached_rows) {
    stat.rows.reserve(backends.size());
    for (const auto& name : backends) {
      auto a = algorithms_.find(name);
      if (a == algorithms_.end()) continue;  // not seen: reads as absent, as with no row
      StatRow row;
      row.proxy = name;
      row.name = "BACKEND";
      row.algo = a->second;
      stat.rows.push_back(std::move(row));
    }
  } else {
    auto parsed = parse_show_stat((*replies)[1]);
    if (!parsed) {
      return Error::invalid(fmt::format("haproxy {}: {}", admin_.path(), parsed.error().message));
    }
    stat = std::move(*parsed);
  }
  std::map<std::string_view, Rows> by_name;
  index_state(*state, by_name);
  index_stat(stat, by_name);
  if (!cached_rows) {
    proxy_ids_.clear();
    algorithms_.clear();
    algorithms_pid_ = seen_pid_;
    for (const auto& [name, rows] : by_name) {
      if (rows.backend_row == nullptr) continue;
      if (rows.backend_row->iid > 0) proxy_ids_.emplace(std::string(name), rows.backend_row->iid);
      algorithms_.emplace(std::string(name), rows.backend_row->algo);
    }
  }
  std::map<std::string_view, const ServersState::Digest*> digest_of;
  for (const auto& d : state->digests) digest_of.emplace(d.backend, &d);
  std::vector<ActualBackend> out;
  out.reserve(backends.size());
  for (const auto& name : backends) {
    auto it = by_name.find(name);
    out.push_back(assemble(name, it == by_name.end() ? nullptr : &it->second));
    if (auto d = digest_of.find(name); d != digest_of.end() && out.back().exists) {
      out.back().rows_digest = d->second->digest;
      out.back().unchanged = d->second->skipped;
    }
  }
  return out;
}

Result<std::vector<ActualBackend>> RuntimeInstance::observe_all(
    const std::vector<std::string>& backends) {
  return read_whole(backends, cmd::show_stat_backends());
}

Result<std::vector<ActualBackend>> RuntimeInstance::observe_states(
    const std::vector<std::string>& backends, const std::vector<std::size_t>& held) {
  // Every backend's BACKEND row already read from this process: `show servers state` alone.
  const bool cached = seen_pid_ != 0 && algorithms_pid_ == seen_pid_ &&
                      std::all_of(backends.begin(), backends.end(), [this](const std::string& b) {
                        return algorithms_.count(b) != 0;
                      });
  auto out = read_whole(backends, cached ? std::string() : cmd::show_stat_backend_rows(), &held);
  if (!out) return out;
  // Sessions decide when a draining server is removed: read them where a server drains.
  std::vector<std::size_t> draining;
  for (std::size_t i = 0; i < out->size(); ++i) {
    ActualBackend& be = (*out)[i];
    if (!be.exists) continue;
    be.server_stats = false;
    if (std::any_of(be.servers.begin(), be.servers.end(),
                    [](const ActualServer& s) { return s.draining(); })) {
      draining.push_back(i);
    }
  }
  if (draining.empty()) return out;
  std::vector<std::string> names;
  names.reserve(draining.size());
  for (std::size_t i : draining) names.push_back(backends[i]);
  auto detailed = observe(names);
  if (!detailed) return detailed.error();
  for (std::size_t k = 0; k < draining.size(); ++k) {
    (*out)[draining[k]] = std::move((*detailed)[k]);
  }
  return out;
}

std::vector<ActionResult> RuntimeInstance::apply(const reconcile::Plan& plan,
                                                 const reconcile::BackendPolicy& policy) {
  std::vector<Job> jobs;
  if (plan.actions.empty()) return {};
  for (int attempt = 0; attempt < 2; ++attempt) {
    // A job's commands are built when it starts, so building the later ones (tens of ms for
    // 10,000 servers) overlaps HAProxy's work on the first ones instead of delaying them.
    jobs.assign(plan.actions.size(), Job{});
    std::vector<char> built(plan.actions.size(), 0);
    auto build_job = [&](std::size_t i) {
      if (!built[i]) jobs[i] = build(plan.actions[i], plan, policy);
      built[i] = 1;
      return !jobs[i].finished;  // false: nothing to send (it could not be built)
    };

    bool disabled = false;
    auto fail_pending = [&](const std::string& why) {
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (!build_job(i)) continue;  // finished, or not built: its own reason
        Job& j = jobs[i];
        j.finished = true;
        std::string msg = why;
        if (j.next > 0) {
          msg += fmt::format(" (after {} of {} steps succeeded)", j.next, j.steps.size());
        }
        j.result = {Outcome::kFailed, msg};
      }
    };
    ++io_.connections;
    auto session = admin_.open();
    if (!session) {
      fail_pending(session.error().message);
      break;
    }
    // The jobs stream on the session: a job's next step goes out as soon as its last reply is
    // judged, so HAProxy's input never waits for a round to be answered (a round of 2,500
    // commands left HAProxy idle between rounds; 10,000 slot additions took 1.5× a bare client).
    // At most `window` jobs run at once, and a job that finishes starts the next: on HAProxy
    // 2.6 a server's state change costs more the more servers its backend has (10,000 `state
    // maint` then 10,000 `del server` took ~0.7 s, the same commands 1,250 servers at a time
    // ~0.13 s, as the deletions shrink the backend for the next maintenance). A slot backend
    // never shrinks, so in slot mode the removals and drains all start first (every server
    // leaves rotation first); the rest start in the window. A plan of at most kMinGroup
    // actions starts at once, in plan order. In a larger plan, actions that bring servers in
    // start before those that take servers out.
    const bool slots = plan.mode == reconcile::BackendMode::kSlots;
    auto taking_out = [&](std::size_t i) {
      const ActionKind k = plan.actions[i].kind;
      return k == ActionKind::kRemove || k == ActionKind::kDrain;
    };
    std::vector<std::size_t> at_once, windowed;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      (slots && taking_out(i) ? at_once : windowed).push_back(i);
    }
    const std::size_t window = std::max(kMinGroup, (windowed.size() + kGroups - 1) / kGroups);
    if (windowed.size() > window) {
      std::stable_partition(windowed.begin(), windowed.end(),
                            [&](std::size_t i) { return !taking_out(i); });
    }
    // Jobs with a step to send, in order; a job is built when its first step is taken.
    std::deque<std::size_t> ready(at_once.begin(), at_once.end());
    std::size_t started = std::min(window, windowed.size());  // windowed jobs started
    ready.insert(ready.end(), windowed.begin(), windowed.begin() + static_cast<long>(started));
    auto start_next = [&]() {
      if (started < windowed.size()) ready.push_back(windowed[started++]);
    };
    std::vector<char> in_window(jobs.size(), 0);
    for (std::size_t i : windowed) in_window[i] = 1;
    std::deque<std::size_t> sent;  // the job of each line sent and not yet answered
    auto replied = [&](std::string_view r) {
      const std::size_t i = sent.front();
      sent.pop_front();
      Job& job = jobs[i];
      ++io_.commands;
      io_.bytes_read += r.size();
      if (reply::proxy_disabled(r)) {
        disabled = true;
        job.finished = true;
        job.result = {Outcome::kFailed,
                      fmt::format("{}: {} (connection attached to an old worker)",
                                  job.steps[job.next].what, r)};
      } else {
        judge(job, r, plan.actions[i].kind);
      }
      if (!job.finished) {
        ready.push_back(i);
      } else if (in_window[i]) {
        start_next();  // one leaves the window, the next enters
      }
    };
    auto next_line = [&]() -> std::optional<std::string_view> {
      while (!disabled && !ready.empty()) {  // disabled: nothing more is sent
        const std::size_t i = ready.front();
        ready.pop_front();
        if (!build_job(i)) {  // could not be built: finished with its reason, nothing to send
          if (in_window[i]) start_next();
          continue;
        }
        sent.push_back(i);
        return jobs[i].steps[jobs[i].next].line;
      }
      return std::nullopt;
    };
    auto st = session->stream(next_line, replied, /*gather=*/true);
    if (!st) {
      fail_pending(st.error().message);
      break;
    }
    if (disabled) {
      fail_pending("Proxy is disabled. (connection attached to an old worker; not sent)");
    } else {
      // Every job started and finished; one that did not would be a bug, reported as such.
      fail_pending("not sent: the plan's stream ended before this action started");
    }
    if (!disabled) break;
    // Reconnect (a new connection reaches the current worker) and run the plan once more.
  }
  std::vector<ActionResult> results;
  results.reserve(jobs.size());
  for (auto& j : jobs) results.push_back(std::move(j.result));
  return results;
}

}  // namespace ep::haproxy
