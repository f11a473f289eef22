#include "discovery/dns/dns_source.h"

#include <ares.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "core/log.h"

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
  explicit Channel(const Options& o) {
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

}  // namespace

Round resolve_round(const Options& options, int stop_fd, std::chrono::milliseconds timeout) {
  Round round;
  const auto deadline = SteadyClock::now() + timeout;
  Channel channel(options);
  if (auto s = channel.ok(); !s) {
    round.detail = s.error().message;
    return round;
  }
  QueryResult srv;
  srv.name = options.name;
  srv.type = kTypeSrv;
  channel.query(srv);
  if (!channel.run({&srv}, stop_fd, deadline)) {
    round.outcome = Outcome::kTimeout;
    round.detail = "cancelled or no answer in time";
    return round;
  }
  round.outcome = srv.outcome;
  if (srv.outcome != Outcome::kData) {
    round.detail = fmt::format("SRV {}: {} ({})", options.name, to_string(srv.outcome), srv.detail);
    return round;
  }

  // Addresses: the Additional section first, queries for the rest.
  std::map<std::string, std::vector<AddressRecord>> addresses;
  for (const auto& a : srv.reply.addresses) {
    if (family_ok(a.address, options.family)) addresses[a.name].push_back(a);
  }
  std::set<std::string> missing;
  for (const auto& rec : srv.reply.srv) {
    if (!rec.target.empty() && addresses.find(rec.target) == addresses.end())
      missing.insert(rec.target);
  }
  std::vector<std::unique_ptr<QueryResult>> lookups;
  for (const auto& target : missing) {
    for (int type : {kTypeA, kTypeAaaa}) {
      if (type == kTypeA && options.family == Family::kIpv6) continue;
      if (type == kTypeAaaa && options.family == Family::kIpv4) continue;
      auto q = std::make_unique<QueryResult>();
      q->name = target;
      q->type = type;
      lookups.push_back(std::move(q));
    }
  }
  if (!lookups.empty()) {
    std::vector<QueryResult*> ptrs;
    for (auto& q : lookups) {
      channel.query(*q);
      ptrs.push_back(q.get());
    }
    if (!channel.run(ptrs, stop_fd, deadline)) {
      round.outcome = Outcome::kTimeout;
      round.detail = "target lookups: cancelled or no answer in time";
      return round;
    }
    for (const auto& q : lookups) {
      if (q->outcome == Outcome::kData) {
        for (const auto& a : q->reply.addresses) {
          if (family_ok(a.address, options.family)) addresses[q->name].push_back(a);
        }
      } else if (q->outcome != Outcome::kNoData && q->outcome != Outcome::kNxDomain) {
        // A failing target lookup would silently shrink the set: fail the round (fail static).
        round.detail = fmt::format("{} {}: {} ({})", q->type == kTypeA ? "A" : "AAAA", q->name,
                                   to_string(q->outcome), q->detail);
        return round;
      }
    }
  }
  Mapped mapped = map_srv(srv.reply.srv, addresses,
                          MapOptions{.backup_other_priorities = options.backup_other_priorities});
  for (const auto& t : mapped.unresolved)
    log::warn(kComponent, "SRV {}: target {} has no address; skipped", options.name, t);
  if (mapped.endpoints.empty()) {
    // Records exist but none is usable (all targets "." or unresolvable): treated like NODATA.
    round.outcome = Outcome::kNoData;
    round.detail =
        fmt::format("SRV {}: no usable target ({} records)", options.name, srv.reply.srv.size());
    return round;
  }
  round.ok = true;
  round.endpoints = std::move(mapped.endpoints);
  round.next = clamp_ttl(mapped.min_ttl, options);
  round.detail =
      fmt::format("{} endpoints, next query in {}ms", round.endpoints.size(), round.next.count());
  return round;
}

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
  if (thread_.joinable()) return Error::internal(describe() + ": already started");
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return Error::unavailable(describe() + ": eventfd: " + std::strerror(errno));
  Channel probe(options_);
  if (auto s = probe.ok(); !s) {
    ::close(stop_fd_);
    stop_fd_ = -1;
    return Error::invalid(describe() + ": " + s.error().message);
  }
  thread_ = std::thread([this, &sink] { run(sink); });
  return {};
}

void DnsSource::stop() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(stop_fd_, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    thread_.join();
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
  stop_fd_ = -1;
}

void DnsSource::run(Sink& sink) {
  std::optional<Snapshot> last;
  auto publish = [&](Snapshot snap) {
    if (last && last->ok() && snap.ok() && **last == *snap) return;
    sink.publish(snap);
    last = std::move(snap);
  };
  // Sleeps; false when stopping.
  auto wait = [&](std::chrono::milliseconds d) {
    pollfd p{stop_fd_, POLLIN, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, static_cast<int>(std::min<long>(d.count(), 1 << 30)));
    } while (rc < 0 && errno == EINTR);
    return rc == 0;
  };
  // A round can take every server × tries × timeout, plus target lookups.
  const auto round_timeout =
      options_.timeout * options_.tries * std::max<size_t>(1, options_.servers.size()) * 2 +
      std::chrono::seconds(1);
  long empties = 0;
  auto backoff = options_.retry_interval;
  for (;;) {
    Round round = resolve_round(options_, stop_fd_, round_timeout);
    ++rounds_;
    pollfd p{stop_fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) return;
    std::chrono::milliseconds next;
    if (round.ok) {
      empties = 0;
      backoff = options_.retry_interval;
      log::debug(kComponent, "{}: {}", describe(), round.detail);
      publish(std::move(round.endpoints));
      next = round.next;
    } else if (round.outcome == Outcome::kNxDomain || round.outcome == Outcome::kNoData) {
      ++empties;
      backoff = options_.retry_interval;
      if (empties >= options_.empty_confirmations) {
        if (empties == options_.empty_confirmations)
          log::info(kComponent, "{}: {} confirmed {} times: publishing an empty set", describe(),
                    to_string(round.outcome), empties);
        publish(std::vector<Endpoint>{});
        next = options_.ttl_floor;
      } else {
        publish(Error::not_yet(
            fmt::format("{}: {}; {} of {} confirmations before it counts as "
                        "empty",
                        describe(), round.detail, empties, options_.empty_confirmations)));
        next = options_.retry_interval;
      }
    } else {
      empties = 0;
      publish(Error::unavailable(describe() + ": " + round.detail));
      next = backoff;
      backoff = std::min(backoff * 2, options_.ttl_ceiling);
    }
    if (!wait(next)) return;
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
