#pragma once
// Shared change detection for many Consul services on one agent (`watch: shared`).
//
// One hub per agent identity (Options::agent_key()) serves every shared source of that agent
// with three connections, whatever the number of services:
//  - a blocking query on /v1/catalog/services: its index moves on any service (de)registration
//    or definition change → every subscriber is refreshed;
//  - a blocking query on /v1/health/state/any, filtered to the subscribed service names plus
//    node-level checks: the per-service check statuses are compared → only services whose checks
//    changed are refreshed (a node-level change refreshes all);
//  - one worker that performs the refreshes (non-blocking /v1/health/service/<name> reads, each
//    subscriber at most once per min_interval + jitter) over one kept-alive connection.
// A detector error refreshes every subscriber (each then reports its own error or success, so
// fail-static and recovery work per source exactly as in `service` mode) and the detector retries
// with capped, jittered backoff (runtime::Backoff). Adding subscribers restarts the checks query
// with the new filter (one reconnect per burst: it waits until subscriptions settle for 50 ms, at
// most 1 s).
// Threading: the hub owns no thread. It is a handler on one loop of a source runtime (the one
// handed to acquire(), or a one-thread runtime shared by every hub acquired without one): its two
// blocking queries and the refreshes are requests on AsyncHttpClients of that loop, its waits are
// loop timers, and all its state is touched on that loop only. subscribe/unsubscribe are
// thread-safe (run_sync onto the loop: never call them from another loop's thread); once
// unsubscribe returns, the subscriber's refresh() is not running and never called again (a read
// in progress for it is aborted).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "discovery/consul/liveness.h"
#include "discovery/consul/options.h"
#include "discovery/consul/token.h"
#include "net/async_http_client.h"
#include "net/http_client.h"
#include "runtime/backoff.h"
#include "runtime/runtime.h"
#include "discovery/consul/stats.h"

namespace ep::discovery::consul {

class AgentHub : private AgentLiveness::Watcher {
 public:
  class Subscriber {
   public:
    // Called when the refresh is handled: a delay after which the hub must refresh again on its
    // own (error backoff, empty-answer confirmation), or nullopt to wait for the next change.
    using Done = std::function<void(std::optional<std::chrono::milliseconds>)>;
    virtual ~Subscriber() = default;
    virtual const std::string& service_name() const = 0;
    // Starts one non-blocking read on `client` and its handling (publishing), on the hub's loop
    // thread; `done` runs there once it is handled (possibly inside this call, e.g. when the
    // request cannot be built). Returns the request's id, for the hub to abort it (0 = none in
    // flight).
    virtual net::AsyncHttpClient::RequestId refresh(net::AsyncHttpClient& client, Done done) = 0;
  };

  // The hub for these options' agent on `runtime` (nullptr: on a one-thread runtime shared by
  // every hub acquired without one), created on first use; shared while anyone holds it. The
  // runtime must outlive the hub. Any thread but a loop thread.
  static std::shared_ptr<AgentHub> acquire(const Options& options, runtime::Runtime* runtime);

  // `own_runtime` (may be null) is kept alive by the hub; `loop` belongs to it or to a runtime
  // that outlives the hub.
  AgentHub(const Options& options, runtime::Loop& loop,
           std::shared_ptr<runtime::Runtime> own_runtime);
  // Aborts the requests and timers on the loop. Any thread but the hub's loop thread.
  ~AgentHub();
  AgentHub(const AgentHub&) = delete;
  AgentHub& operator=(const AgentHub&) = delete;

  void subscribe(Subscriber* subscriber);    // refreshed at once, then on changes
  void unsubscribe(Subscriber* subscriber);  // aborts a refresh in progress for it
  size_t subscribers() const { return subscriber_count_.load(); }
  // Connections opened by the hub's three clients so far. Any thread but a loop thread.
  std::uint64_t connections_opened() const;

 private:
  enum class Detector { kCatalog = 0, kChecks = 1 };
  struct Sub {
    Subscriber* subscriber = nullptr;
    bool dirty = true;
    std::chrono::steady_clock::time_point due{};
    std::chrono::steady_clock::time_point last_refresh{};
  };
  // One change-detection query's state (on the loop).
  struct DetectorState {
    Detector which = Detector::kCatalog;
    std::unique_ptr<net::AsyncHttpClient> client;
    std::unique_ptr<log::FailureReporter> reporter;
    std::uint64_t index = 0;
    std::uint64_t last_seen = 0;
    bool have_seen = false;
    std::optional<std::map<std::string, std::string>> last_states;
    runtime::Backoff backoff;
    std::optional<std::chrono::steady_clock::time_point> last_request;
    net::AsyncHttpClient::RequestId request = 0;
    runtime::TimerId timer = 0;
  };
  // AgentLiveness::Watcher (liveness.h): a frozen agent aborts both detector queries; when it
  // answers again they are re-armed and every subscriber re-read at once.
  void agent_frozen(const std::string& why) override;
  void agent_alive() override;

  // All on the loop thread.
  DetectorState& detector(Detector which) { return detectors_[static_cast<int>(which)]; }
  // Arms the next query of `d` (rate-limited), unless one is in flight or armed, or no one
  // subscribed.
  void schedule(DetectorState& d);
  void arm(DetectorState& d, std::chrono::milliseconds delay);
  void send(DetectorState& d);
  void on_answer(DetectorState& d, const std::string& url, Result<net::HttpResponse> resp);
  // Starts the next due refresh, or arms the worker timer for it.
  void kick_worker();
  void refresh_done(Subscriber* sub, std::uint64_t seq,
                    std::optional<std::chrono::milliseconds> again);
  void mark_dirty(Sub& sub);
  void mark_all_dirty();
  void mark_services_dirty(const std::vector<std::string>& names);
  // The URL of a detector query (the checks one filtered on the subscribed names).
  std::string detector_url(Detector which, std::uint64_t index) const;

  Options options_;  // agent-level fields of the first subscriber (all share agent_key())
  // Declared first: destroyed last, after the hub's teardown on its loop.
  std::shared_ptr<runtime::Runtime> own_runtime_;
  runtime::Loop& loop_;
  TokenReader token_;
  std::string describe_;
  HubStats stats_{Metrics::global()};
  std::atomic<size_t> subscriber_count_{0};

  // Loop state.
  bool stopping_ = false;
  std::vector<Sub> subs_;
  DetectorState detectors_[2];
  // The checks filter changed: a restart is pending since then (settle window).
  std::optional<std::chrono::steady_clock::time_point> restart_since_;
  std::unique_ptr<net::AsyncHttpClient> worker_client_;
  std::shared_ptr<net::AsyncHttpClient> liveness_client_;
  std::shared_ptr<AgentLiveness> liveness_;
  bool frozen_ = false;
  runtime::TimerId worker_timer_ = 0;
  Subscriber* busy_ = nullptr;  // whose refresh is in progress
  net::AsyncHttpClient::RequestId busy_request_ = 0;
  std::uint64_t refresh_seq_ = 0;  // identifies the refresh in progress
};

// Per-service fingerprints of /v1/health/state/any (pure): service name → sorted
// "node/check:status" list; node-level checks (empty ServiceName) under the key "".
Result<std::map<std::string, std::string>> parse_check_states(std::string_view json);

}  // namespace ep::discovery::consul
