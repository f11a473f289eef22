#pragma once
// The `dns` source: the servers named by a DNS SRV record set, resolved with c-ares.
//
// One round = SRV query (EDNS0, TCP retry when the UDP answer is truncated, done by c-ares) →
// target addresses from the Additional section, A/AAAA queries for the targets missing there →
// map_srv() (lowest priority active, others dropped or backup; weights scaled to 0..256). The
// next round runs after the smallest TTL seen, clamped to [ttl_floor, ttl_ceiling].
// Outcomes: data → the whole set is published (when it differs from the last one, and always
// the first time); SERVFAIL, REFUSED, timeouts, unreachable servers, garbage, or a target whose
// lookup fails → an error is published (the guard keeps the last good set) and the round is
// retried after retry_interval (doubling up to ttl_ceiling); NXDOMAIN / NODATA → an error
// ("NXDOMAIN, 1 of 3 confirmations") until it was seen `empty_confirmations` times in a row
// (rounds retried at retry_interval), then the empty set is published (the guard's allow_empty
// decides what happens to the backend).

#include <atomic>
#include <thread>

#include "discovery/dns/options.h"
#include "discovery/dns/parse.h"
#include "discovery/source.h"

namespace ep::discovery::dns {

// The result of one resolution round.
struct Round {
  Outcome outcome =
      Outcome::kOther;              // of the SRV query (kData also when targets failed: see error)
  std::vector<Endpoint> endpoints;  // valid when ok
  std::chrono::milliseconds next{0};  // when to query again (TTL clamped), for kData
  std::string detail;                 // for errors and logs
  bool ok = false;                    // endpoints are the answer
};

// Runs one round against options.servers (or the system resolvers). `stop_fd` (an eventfd, or -1)
// aborts it when readable; `timeout` bounds it.
Round resolve_round(const Options& options, int stop_fd, std::chrono::milliseconds timeout);

class DnsSource final : public Source {
 public:
  explicit DnsSource(Options options);
  ~DnsSource() override;

  std::string describe() const override;  // "dns SRV _http._tcp.web @ 127.0.0.1:5353"
  Status start(Sink& sink) override;      // fails when the stop eventfd cannot be created
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }
  std::uint64_t rounds() const { return rounds_.load(); }

 private:
  void run(Sink& sink);

  Options options_;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<std::uint64_t> rounds_{0};
};

// {"dns", factory}.
SourceKind source_kind();

}  // namespace ep::discovery::dns
