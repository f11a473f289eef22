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
// retried after the shared runtime::Backoff (retry_interval, doubling up to ttl_ceiling, 20 %
// jitter down; reset by any answer); NXDOMAIN / NODATA → an error
// ("NXDOMAIN, 1 of 3 confirmations") until it was seen `empty_confirmations` times in a row
// (rounds retried at retry_interval), then the empty set is published (the guard's allow_empty
// decides what happens to the backend).
//
// The running source is a handler on the source runtime: rounds are a state machine on one loop,
// c-ares driven by the loop's fd watches and timers (no thread of its own). fetch_once() runs a
// blocking round on the calling thread.

#include <atomic>
#include <memory>

#include "discovery/dns/options.h"
#include "discovery/dns/parse.h"
#include "discovery/source.h"
#include "runtime/runtime.h"

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
  // Fails when the c-ares channel cannot be set up (bad resolver configuration).
  Status start_on(runtime::Runtime& runtime, Sink& sink) override;
  Status start(Sink& sink) override;  // the same on a private one-thread runtime
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }
  std::uint64_t rounds() const { return rounds_.load(); }

 private:
  class Machine;

  Options options_;
  std::unique_ptr<runtime::Runtime> own_runtime_;  // only when started without one
  runtime::Loop* loop_ = nullptr;                  // set while started (starting thread's)
  std::unique_ptr<Machine> machine_;               // created and destroyed on *loop_
  std::atomic<std::uint64_t> rounds_{0};
};

// {"dns", factory}.
SourceKind source_kind();

}  // namespace ep::discovery::dns
