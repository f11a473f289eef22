#include "discovery/dns/dns_source.h"

#include <ares.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "core/log.h"
#include "runtime/backoff.h"

namespace ep::discovery::dns {
namespace {

constexpr const char* kComponent = "source.dns";
constexpr int kTypeA = 1;
constexpr int kTypeAaaa = 28;
constexpr int kTypeSrv = 33;
constexpr int kClassIn = 1;
using SteadyClock = std::chrono::steady_clock;

struct QueryResult {
  std::string name;
  int type = 0;
  bool done = false;
  Outcome outcome = Outcome::kOther;
  std::string detail;
  DnsReply reply;
};

Outcome outcome_of(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return Outcome::kData;
    case ARES_ENODATA:
      return Outcome::kNoData;
    case ARES_ENOTFOUND:
      return Outcome::kNxDomain;
    case ARES_ESERVFAIL:
      return Outcome::kServFail;
    case ARES_EREFUSED:
      return Outcome::kRefused;
    case ARES_ETIMEOUT:
      return Outcome::kTimeout;
    default:
      return Outcome::kOther;
  }
}

void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  auto* q = static_cast<QueryResult*>(arg);
  q->done = true;
  q->outcome = outcome_of(status);
  q->detail = ares_strerror(status);
  if (status == ARES_SUCCESS && abuf != nullptr) {
    auto reply = parse_reply(
        std::string_view(reinterpret_cast<const char*>(abuf), static_cast<size_t>(alen)));
    if (!reply) {
      q->outcome = Outcome::kOther;
      q->detail = reply.error().message;
      return;
    }
    q->reply = std::move(*reply);
    const bool wanted = q->type == kTypeSrv ? !q->reply.srv.empty() : !q->reply.addresses.empty();
    if (!wanted) {
      // NOERROR with only other records (e.g. a CNAME chain without the final type).
      q->outcome = Outcome::kNoData;
      q->detail = "no records of the requested type in the answer";
    }
  }
}

// A c-ares channel driven by poll(2), interruptible through an eventfd.
class Channel {
 public:
  // With `sock_state`, c-ares reports the sockets it wants watched (the loop-driven rounds).
  explicit Channel(const Options& o, ares_sock_state_cb sock_state = nullptr,
                   void* sock_state_data = nullptr) {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options opts{};
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    // c-ares retries over TCP by itself when an answer is truncated (ARES_FLAG_IGNTC unset).
    opts.flags = ARES_FLAG_NOSEARCH;
    if (o.edns_payload > 512) {
      opts.flags |= ARES_FLAG_EDNS;
      opts.ednspsz = static_cast<int>(o.edns_payload);
      mask |= ARES_OPT_EDNSPSZ;
    }
    opts.timeout = static_cast<int>(o.timeout.count());
    opts.tries = static_cast<int>(o.tries);
    if (sock_state != nullptr) {
      opts.sock_state_cb = sock_state;
      opts.sock_state_cb_data = sock_state_data;
      mask |= ARES_OPT_SOCK_STATE_CB;
    }
    status_ = ares_init_options(&channel_, &opts, mask);
    if (status_ == ARES_SUCCESS && !o.servers.empty()) {
      std::string csv;
      for (const auto& s : o.servers) csv += (csv.empty() ? "" : ",") + s;
      status_ = ares_set_servers_ports_csv(channel_, csv.c_str());
    }
  }
  ~Channel() {
    if (channel_ != nullptr) ares_destroy(channel_);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  Status ok() const {
    if (status_ == ARES_SUCCESS) return {};
    return Error::internal(std::string("c-ares init: ") + ares_strerror(status_));
  }

  void query(QueryResult& q) {
    ares_query(channel_, q.name.c_str(), kClassIn, q.type, on_answer, &q);
  }
  // Loop-driven use: one readiness report / a timeout tick (both fds ARES_SOCKET_BAD).
  void process(ares_socket_t read_fd, ares_socket_t write_fd) {
    ares_process_fd(channel_, read_fd, write_fd);
  }
  // How long until c-ares wants process() called for its timeouts (at most `max`).
  std::chrono::milliseconds timeout(std::chrono::milliseconds max) {
    timeval mx{static_cast<time_t>(max.count() / 1000),
               static_cast<suseconds_t>(max.count() % 1000 * 1000)};
    timeval tv{};
    ares_timeout(channel_, &mx, &tv);
    return std::chrono::milliseconds(tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1);
  }
  void cancel() { ares_cancel(channel_); }

  // Processes until every query is done. false when stopped or past the deadline (the queries
  // are then cancelled and marked done).
  bool run(const std::vector<QueryResult*>& queries, int stop_fd,
           SteadyClock::time_point deadline) {
    auto all_done = [&] {
      return std::all_of(queries.begin(), queries.end(), [](auto* q) { return q->done; });
    };
    while (!all_done()) {
      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      const int bits = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
      std::vector<pollfd> fds;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
        if (events != 0) fds.push_back({socks[i], events, 0});
      }
      const size_t ares_fds = fds.size();
      if (stop_fd >= 0) fds.push_back({stop_fd, POLLIN, 0});
      timeval tv{};
      timeval max{1, 0};
      ares_timeout(channel_, &max, &tv);
      long ms = tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1;
      const auto now = SteadyClock::now();
      if (now >= deadline) {
        ares_cancel(channel_);
        return false;
      }
      ms = std::min<long>(
          ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
      const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(ms));
      if (rc < 0 && errno != EINTR) {
        ares_cancel(channel_);
        return false;
      }
      if (stop_fd >= 0 && rc > 0 && (fds.back().revents & POLLIN)) {
        ares_cancel(channel_);
        return false;
      }
      bool any = false;
      for (size_t i = 0; i < ares_fds && rc > 0; ++i) {
        if (fds[i].revents == 0) continue;
        any = true;
        const bool r = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
        const bool w = (fds[i].revents & POLLOUT) != 0;
        ares_process_fd(channel_, r ? fds[i].fd : ARES_SOCKET_BAD, w ? fds[i].fd : ARES_SOCKET_BAD);
      }
      if (!any) ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    }
    return true;
  }

 private:
  ares_channel channel_ = nullptr;
  int status_ = ARES_SUCCESS;
};

bool family_ok(const std::string& address, Family family) {
  const bool v6 = address.find(':') != std::string::npos;
  return family == Family::kAny || (family == Family::kIpv6) == v6;
}

std::chrono::milliseconds clamp_ttl(std::uint32_t ttl, const Options& o) {
  const std::chrono::milliseconds t = std::chrono::seconds(ttl);
  return std::clamp(t, o.ttl_floor, o.ttl_ceiling);
}

// One round's queries and what they found so far; shared by the blocking round (fetch_once) and
// the loop-driven one (the running source).
struct RoundState {
  QueryResult srv;
  std::map<std::string, std::vector<AddressRecord>> addresses;
  std::vector<std::unique_ptr<QueryResult>> lookups;  // A/AAAA for targets missing in Additional
};

// After the SRV answer: the finished round when it carried no data, otherwise fills the addresses
// from the Additional section and the lookups still needed, and returns nullopt.
std::optional<Round> after_srv(const Options& options, RoundState& st) {
  if (st.srv.outcome != Outcome::kData) {
    Round round;
    round.outcome = st.srv.outcome;
    round.detail =
        fmt::format("SRV {}: {} ({})", options.name, to_string(st.srv.outcome), st.srv.detail);
    return round;
  }
  for (const auto& a : st.srv.reply.addresses) {
    if (family_ok(a.address, options.family)) st.addresses[a.name].push_back(a);
  }
  std::set<std::string> missing;
  for (const auto& rec : st.srv.reply.srv) {
    if (!rec.target.empty() && st.addresses.find(rec.target) == st.addresses.end())
      missing.insert(rec.target);
  }
  for (const auto& target : missing) {
    for (int type : {kTypeA, kTypeAaaa}) {
      if (type == kTypeA && options.family == Family::kIpv6) continue;
      if (type == kTypeAaaa && options.family == Family::kIpv4) continue;
      auto q = std::make_unique<QueryResult>();
      q->name = target;
      q->type = type;
      st.lookups.push_back(std::move(q));
    }
  }
  return std::nullopt;
}

// After every lookup answered: the round's result.
Round after_lookups(const Options& options, RoundState& st) {
  Round round;
  round.outcome = st.srv.outcome;
  for (const auto& q : st.lookups) {
    if (q->outcome == Outcome::kData) {
      for (const auto& a : q->reply.addresses) {
        if (family_ok(a.address, options.family)) st.addresses[q->name].push_back(a);
      }
    } else if (q->outcome != Outcome::kNoData && q->outcome != Outcome::kNxDomain) {
      // A failing target lookup would silently shrink the set: fail the round (fail static).
      round.detail = fmt::format("{} {}: {} ({})", q->type == kTypeA ? "A" : "AAAA", q->name,
                                 to_string(q->outcome), q->detail);
      return round;
    }
  }
  Mapped mapped = map_srv(st.srv.reply.srv, st.addresses,
                          MapOptions{.backup_other_priorities = options.backup_other_priorities});
  for (const auto& t : mapped.unresolved)
    log::warn(kComponent, "SRV {}: target {} has no address; skipped", options.name, t);
  if (mapped.endpoints.empty()) {
    // Records exist but none is usable (all targets "." or unresolvable): treated like NODATA.
    round.outcome = Outcome::kNoData;
    round.detail =
        fmt::format("SRV {}: no usable target ({} records)", options.name, st.srv.reply.srv.size());
    return round;
  }
  round.ok = true;
  round.endpoints = std::move(mapped.endpoints);
  round.next = clamp_ttl(mapped.min_ttl, options);
  round.detail =
      fmt::format("{} endpoints, next query in {}ms", round.endpoints.size(), round.next.count());
  return round;
}

Round timed_out(std::string detail) {
  Round round;
  round.outcome = Outcome::kTimeout;
  round.detail = std::move(detail);
  return round;
}

// A round can take every server × tries × timeout, plus target lookups.
std::chrono::milliseconds round_timeout(const Options& o) {
  return o.timeout * o.tries * static_cast<long>(std::max<size_t>(1, o.servers.size())) * 2 +
         std::chrono::seconds(1);
}

}  // namespace

Round resolve_round(const Options& options, int stop_fd, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  Channel channel(options);
  if (auto s = channel.ok(); !s) {
    Round round;
    round.detail = s.error().message;
    return round;
  }
  RoundState st;
  st.srv.name = options.name;
  st.srv.type = kTypeSrv;
  channel.query(st.srv);
  if (!channel.run({&st.srv}, stop_fd, deadline))
    return timed_out("cancelled or no answer in time");
  if (auto done = after_srv(options, st)) return std::move(*done);
  if (!st.lookups.empty()) {
    std::vector<QueryResult*> ptrs;
    for (auto& q : st.lookups) {
      channel.query(*q);
      ptrs.push_back(q.get());
    }
    if (!channel.run(ptrs, stop_fd, deadline))
      return timed_out("target lookups: cancelled or no answer in time");
  }
  return after_lookups(options, st);
}

// The running source: rounds as a state machine on one loop of the runtime. c-ares reports the
// sockets it wants watched through its socket-state callback (→ watch_fd / modify_fd /
// unwatch_fd), its retransmission timeouts are a loop timer, and a round deadline cancels a round
// that takes too long. Every member is touched on the loop thread only.
class DnsSource::Machine {
 public:
  Machine(DnsSource& source, runtime::Loop& loop, Sink& sink)
      : source_(source),
        options_(source.options_),
        loop_(loop),
        sink_(sink),
        backoff_({.initial = options_.retry_interval,
                  // Capped low (1 s by default), not at ttl_ceiling: the retry is also the
                  // liveness probe, so a resolver that answers again after a long outage or
                  // freeze is re-asked within the cap (#16.1). A frozen resolver costs one
                  // timed-out round (timeout x tries) plus this per retry.
                  .max = std::max(options_.max_retry_interval, options_.retry_interval),
                  .multiplier = 2.0,
                  .jitter = 0.2}) {}
  ~Machine() {
    end_round();
    cancel(next_timer_);
  }

  void schedule(std::chrono::milliseconds delay) {
    cancel(next_timer_);
    next_timer_ = loop_.after(delay, [this] {
      next_timer_ = 0;
      begin_round();
    });
  }

 private:
  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Machine*>(data)->sock_state(fd, readable != 0, writable != 0);
  }

  void sock_state(int fd, bool readable, bool writable) {
    const std::uint32_t events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    auto it = watches_.find(fd);
    if (events == 0) {
      if (it != watches_.end()) {
        loop_.unwatch_fd(it->second);
        watches_.erase(it);
      }
      return;
    }
    if (it != watches_.end()) {
      (void)loop_.modify_fd(it->second, events);
      return;
    }
    auto id = loop_.watch_fd(fd, events, [this, fd](std::uint32_t ev) { on_socket(fd, ev); });
    if (id) {
      watches_.emplace(fd, *id);
    } else {
      log::warn(kComponent, "{}: {}", source_.describe(), id.error().message);
    }
  }

  void begin_round() {
    channel_ = std::make_unique<Channel>(options_, &Machine::on_sock_state, this);
    if (auto s = channel_->ok(); !s) {
      Round round;
      round.detail = s.error().message;
      finish(std::move(round));
      return;
    }
    state_ = std::make_unique<RoundState>();
    state_->srv.name = options_.name;
    state_->srv.type = kTypeSrv;
    channel_->query(state_->srv);
    deadline_timer_ = loop_.after(round_timeout(options_), [this] {
      deadline_timer_ = 0;
      const bool targets = lookups_sent_;
      channel_->cancel();  // every query is answered "cancelled" (done)
      finish(timed_out(targets ? "target lookups: cancelled or no answer in time"
                               : "cancelled or no answer in time"));
    });
    progress();
  }

  void on_socket(int fd, std::uint32_t ev) {
    const bool r = (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    const bool w = (ev & EPOLLOUT) != 0;
    channel_->process(r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
    progress();
  }

  // Called after every call into c-ares (never from inside one): moves the round on.
  void progress() {
    if (!state_) return;
    if (!lookups_sent_) {
      if (!state_->srv.done) return arm_ares_timer();
      if (auto done = after_srv(options_, *state_)) return finish(std::move(*done));
      lookups_sent_ = true;
      for (auto& q : state_->lookups) channel_->query(*q);
    }
    for (const auto& q : state_->lookups) {
      if (!q->done) return arm_ares_timer();
    }
    finish(after_lookups(options_, *state_));
  }

  void arm_ares_timer() {
    cancel(ares_timer_);
    ares_timer_ = loop_.after(channel_->timeout(std::chrono::seconds(1)), [this] {
      ares_timer_ = 0;
      channel_->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      progress();
    });
  }

  void cancel(runtime::TimerId& id) {
    if (id != 0) loop_.cancel(id);
    id = 0;
  }

  // Destroys the round's channel (closing its sockets: the callback unwatches them) and state.
  void end_round() {
    cancel(ares_timer_);
    cancel(deadline_timer_);
    channel_.reset();
    for (const auto& [fd, id] : watches_) loop_.unwatch_fd(id);
    watches_.clear();
    state_.reset();
    lookups_sent_ = false;
  }

  void publish(Snapshot snap) {
    if (last_ && last_->ok() && snap.ok() && **last_ == *snap) return;
    sink_.publish(snap);
    last_ = std::move(snap);
  }

  void finish(Round round) {
    // Not from inside c-ares: the channel can go.
    end_round();
    source_.rounds_.fetch_add(1);
    std::chrono::milliseconds next;
    if (round.ok) {
      empties_ = 0;
      backoff_.reset();
      log::debug(kComponent, "{}: {}", source_.describe(), round.detail);
      publish(std::move(round.endpoints));
      next = round.next;
    } else if (round.outcome == Outcome::kNxDomain || round.outcome == Outcome::kNoData) {
      ++empties_;
      backoff_.reset();
      if (empties_ >= options_.empty_confirmations) {
        if (empties_ == options_.empty_confirmations)
          log::info(kComponent, "{}: {} confirmed {} times: publishing an empty set",
                    source_.describe(), to_string(round.outcome), empties_);
        publish(std::vector<Endpoint>{});
        next = options_.ttl_floor;
      } else {
        publish(Error::not_yet(
            fmt::format("{}: {}; {} of {} confirmations before it counts as empty",
                        source_.describe(), round.detail, empties_, options_.empty_confirmations)));
        next = options_.retry_interval;
      }
    } else {
      empties_ = 0;
      publish(Error::unavailable(source_.describe() + ": " + round.detail));
      next = std::chrono::duration_cast<std::chrono::milliseconds>(backoff_.next());
    }
    schedule(next);
  }

  DnsSource& source_;
  const Options& options_;
  runtime::Loop& loop_;
  Sink& sink_;
  runtime::Backoff backoff_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<RoundState> state_;
  bool lookups_sent_ = false;
  std::map<int, runtime::WatchId> watches_;
  runtime::TimerId next_timer_ = 0, ares_timer_ = 0, deadline_timer_ = 0;
  long empties_ = 0;
  std::optional<Snapshot> last_;
};

DnsSource::DnsSource(Options options) : options_(std::move(options)) {}

DnsSource::~DnsSource() { stop(); }

std::string DnsSource::describe() const {
  return fmt::format("dns SRV {} @ {}", options_.name,
                     options_.servers.empty()
                         ? std::string("system resolvers")
                         : fmt::format("{}", fmt::join(options_.servers, ",")));
}

Snapshot DnsSource::fetch_once(std::chrono::milliseconds timeout) {
  Round round = resolve_round(options_, -1, timeout);
  if (round.ok) return round.endpoints;
  if (round.outcome == Outcome::kNxDomain || round.outcome == Outcome::kNoData) {
    // One-shot use cannot wait for confirmations: report it, do not claim an empty set.
    return Error::not_yet(describe() + ": " + round.detail);
  }
  return Error::unavailable(describe() + ": " + round.detail);
}

Status DnsSource::start(Sink& sink) {
  if (loop_ != nullptr) return Error::internal(describe() + ": already started");
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status DnsSource::start_on(runtime::Runtime& runtime, Sink& sink) {
  if (loop_ != nullptr) return Error::internal(describe() + ": already started");
  Channel probe(options_);
  if (auto s = probe.ok(); !s) return Error::invalid(describe() + ": " + s.error().message);
  loop_ = &runtime.loop();
  loop_->run_sync([&] {
    machine_ = std::make_unique<Machine>(*this, *loop_, sink);
    machine_->schedule(std::chrono::milliseconds(0));
  });
  return {};
}

void DnsSource::stop() {
  if (loop_ == nullptr) return;
  // On the loop thread: the channel, its sockets and every timer go; nothing of ours runs after.
  loop_->run_sync([this] { machine_.reset(); });
  loop_ = nullptr;
  if (own_runtime_) {
    own_runtime_->stop();
    own_runtime_.reset();
  }
}

SourceKind source_kind() {
  return SourceKind{"dns",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& /*context*/) -> std::unique_ptr<Source> {
                      auto options = options_from_node(node, diag);
                      if (!options) return nullptr;
                      return std::make_unique<DnsSource>(std::move(*options));
                    }};
}

}  // namespace ep::discovery::dns
