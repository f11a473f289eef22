#pragma once
// The Consul discovery source: a blocking-query watch of /v1/health/service/<name>.
//
// Behaviour (consul.md §3, §6, §9):
//  - First request without an index; then ?index=<X-Consul-Index>&wait=<wait>. An index that goes
//    backwards resets to a full non-blocking re-read; an index of 0 or a missing header is never
//    sent back (1 is the minimum).
//  - Every answer is parsed, sorted and compared with the last published set: a return without a
//    real change publishes nothing.
//  - Requests of one watch are at least min_interval (+ random 0..jitter) apart and limited by a
//    token bucket (burst, one token per refill), so a flapping service cannot hammer Consul.
//  - Fail static: a transport error, timeout, non-200 status, garbage or non-array body, "no known
//    leader" with an empty list, or an empty list filtered by ACLs is published as an ep::Error
//    (the guard keeps the last good set), logged once through a FailureReporter, counted, and
//    retried after a capped exponential backoff with jitter (never exits). The first success
//    after errors re-reads without blocking, so recovery converges at once.
//  - An empty list right after a non-empty one is confirmed by a second read empty_confirm later
//    before it is published (a restarted agent answers [] until it re-syncs).
//  - The token (X-Consul-Token header, never in a URL or a log) is re-read from token_file when
//    the file changes and after every 403.
// Threading: in `watch: service` mode the watch is a state machine on one loop of the source
// runtime (start_on; start() uses a private one-thread runtime): its blocking queries go through
// an AsyncHttpClient on that loop (one kept-alive connection), its waits are loop timers, and no
// thread is its own; stop() aborts the request in flight on the loop. In `watch: shared` mode the
// source subscribes to its agent's AgentHub (agent_hub.h), a handler on one loop of the same
// runtime, which calls refresh() there; the same handling (dedup, empty confirmation, errors,
// backoff) applies.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/log.h"
#include "discovery/consul/agent_hub.h"
#include "discovery/consul/liveness.h"
#include "discovery/consul/options.h"
#include "discovery/consul/stats.h"
#include "discovery/consul/token.h"
#include "discovery/source.h"
#include "net/async_http_client.h"
#include "net/http_client.h"
#include "runtime/backoff.h"
#include "runtime/runtime.h"

namespace ep::discovery::consul {

using HttpClientFactory = std::function<std::unique_ptr<net::HttpClient>()>;
// libcurl clients that accept replies up to `max_body_bytes`.
HttpClientFactory curl_client_factory(std::size_t max_body_bytes = 8u << 20);

// The health URL for one request (pure). index 0 = a non-blocking read.
std::string health_url(const Options& options, std::uint64_t index);
// Same with an explicit blocking wait (the empty-answer confirmation uses a shorter one).
std::string health_url(const Options& options, std::uint64_t index, std::chrono::milliseconds wait);

class ConsulSource final : public Source,
                           private AgentHub::Subscriber,
                           private AgentLiveness::Watcher {
 public:
  ConsulSource(Options options, SourceContext context,
               HttpClientFactory client_factory = nullptr);  // null: curl, max_response_size
  ~ConsulSource() override;

  std::string describe() const override;
  Status start_on(runtime::Runtime& runtime, Sink& sink) override;
  Status start(Sink& sink) override;
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }
  // The index the next blocking request will send (0 = non-blocking). For tests and /status.
  std::uint64_t current_index() const { return index_.load(); }

 private:
  struct Fetch;
  // Loop state; touched only on the loop driving this source (its own, or its hub's).
  struct WatchState {
    std::uint64_t index = 0;
    bool published = false;      // a good set was published at least once (`last` is it)
    bool republish = false;      // publish the next good set even if unchanged (after an error)
    bool empty_pending = false;  // an empty answer after a non-empty set awaits confirmation
    std::chrono::steady_clock::time_point empty_since{};  // when that first empty answer came
    std::vector<Endpoint> last;
    runtime::Backoff backoff;  // error retries: backoff_min doubling to backoff_max, in [d/2, d]
    std::set<std::string> warned;
  };
  // Shared mode: subscribes to the agent's hub on `runtime` (nullptr: the hubs' shared one).
  Status start_on_hub(runtime::Runtime* runtime, Sink& sink);
  // Service mode, on loop_'s thread: wait for the rate limit, send, handle the answer.
  double refill();  // refills the token bucket; returns seconds per token
  void schedule_next();
  void send();
  void on_fetch(Fetch f);
  // One blocking read (fetch_once, the hub): build_request → perform → interpret.
  Fetch fetch(net::HttpClient& client, std::uint64_t index, std::chrono::milliseconds timeout,
              std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // The request for one read (fails only when the token file cannot be read).
  Result<net::HttpRequest> build_request(std::uint64_t index, std::chrono::milliseconds timeout,
                                         std::chrono::milliseconds wait);
  // What an answer (or transport error) means.
  Fetch interpret(Result<net::HttpResponse> resp);
  // Handles one answer: publishes what must be published and updates state_. Returns a delay
  // before the next read when one is required (error backoff, empty confirmation).
  std::optional<std::chrono::milliseconds> process(Fetch f);

  // AgentLiveness::Watcher (service mode, on loop_'s thread)
  void agent_frozen(const std::string& why) override;
  void agent_alive() override;

  // AgentHub::Subscriber
  const std::string& service_name() const override { return options_.service; }
  net::AsyncHttpClient::RequestId refresh(net::AsyncHttpClient& client,
                                          AgentHub::Subscriber::Done done) override;

  Options options_;
  SourceContext context_;
  HttpClientFactory client_factory_;
  std::string describe_;
  LabelValues labels_;  // {backend, service}
  const ConsulStats& stats_;  // the registry's one ConsulStats (Metrics::shared)
  TokenReader token_;
  std::unique_ptr<log::FailureReporter> reporter_;  // from the first failure on (loop thread)

  std::mutex mu_;
  bool stopping_ = false;
  bool started_ = false;
  Sink* sink_ = nullptr;
  std::shared_ptr<AgentHub> hub_;  // shared mode
  // Service mode. loop_ is set by start_on and cleared by stop (the starting thread's); the rest
  // is touched on loop_'s thread only.
  std::unique_ptr<runtime::Runtime> own_runtime_;  // only when started without one
  runtime::Loop* loop_ = nullptr;
  // Shared by every `watch: service` source on the same loop (one curl multi per loop, not per
  // watch); each watch still parks its own connection. request_ is this source's query in flight.
  std::shared_ptr<net::AsyncHttpClient> async_;
  net::AsyncHttpClient::RequestId request_ = 0;
  std::shared_ptr<AgentLiveness> liveness_;
  bool frozen_ = false;  // the agent does not answer: no request until it does
  runtime::TimerId timer_ = 0;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point last_refill_{};
  std::optional<std::chrono::steady_clock::time_point> last_request_;
  std::atomic<std::uint64_t> index_{0};
  WatchState state_;
};

// The factory for the sources table: SourceKind{"consul", ...}.
SourceKind source_kind();

}  // namespace ep::discovery::consul
