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
// with capped, jittered backoff. Adding a subscriber restarts the checks query with the new
// filter (one reconnect).
// Threading: the hub owns its three threads; subscribe/unsubscribe are thread-safe, and
// unsubscribe returns only when the worker is not inside that subscriber's refresh() (a read in
// progress for it is aborted).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "discovery/consul/options.h"
#include "discovery/consul/token.h"
#include "net/http_client.h"

namespace ep::discovery::consul {

class AgentHub {
 public:
  using ClientFactory = std::function<std::unique_ptr<net::HttpClient>()>;

  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    virtual const std::string& service_name() const = 0;
    // One non-blocking read and its handling (publishing). Returns a delay after which the hub
    // must refresh again on its own (error backoff, empty-answer confirmation), or nullopt to
    // wait for the next detected change.
    virtual std::optional<std::chrono::milliseconds> refresh(net::HttpClient& client) = 0;
  };

  // The hub for these options' agent, created on first use; shared while anyone holds it.
  static std::shared_ptr<AgentHub> acquire(const Options& options, ClientFactory factory);

  AgentHub(const Options& options, ClientFactory factory);
  ~AgentHub();
  AgentHub(const AgentHub&) = delete;
  AgentHub& operator=(const AgentHub&) = delete;

  void subscribe(Subscriber* subscriber);    // refreshed at once, then on changes
  void unsubscribe(Subscriber* subscriber);  // waits for a refresh in progress
  size_t subscribers() const;
  // Connections opened by the hub's three clients so far.
  std::uint64_t connections_opened() const;

 private:
  enum class Detector { kCatalog, kChecks };
  struct Sub {
    Subscriber* subscriber = nullptr;
    bool dirty = true;
    std::chrono::steady_clock::time_point due{};
    std::chrono::steady_clock::time_point last_refresh{};
  };
  void detect_loop(Detector which);
  void worker_loop();
  void mark_dirty_locked(Sub& sub);
  void mark_all_dirty();
  void mark_services_dirty(const std::vector<std::string>& names);
  // The URL of a detector query; `names` receives the service names the checks filter covers
  // (empty = no filter, every service).
  std::string detector_url(Detector which, std::uint64_t index, std::set<std::string>* names) const;
  bool sleep_for(std::chrono::milliseconds d);

  Options options_;  // agent-level fields of the first subscriber (all share agent_key())
  ClientFactory factory_;
  TokenReader token_;
  std::string describe_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<Sub> subs_;
  Subscriber* busy_ = nullptr;
  std::uint64_t subs_version_ = 0;  // bumps on (un)subscribe
  bool checks_restart_ = false;     // subscribe() cancelled the checks query to change its filter
  bool worker_restart_ = false;     // unsubscribe() cancelled the worker's read in progress
  std::unique_ptr<net::HttpClient> catalog_client_;
  std::unique_ptr<net::HttpClient> checks_client_;
  std::unique_ptr<net::HttpClient> worker_client_;
  std::uint64_t retired_connections_ = 0;  // from checks clients replaced after a filter change
  std::thread catalog_thread_;
  std::thread checks_thread_;
  std::thread worker_thread_;
};

// Per-service fingerprints of /v1/health/state/any (pure): service name → sorted
// "node/check:status" list; node-level checks (empty ServiceName) under the key "".
Result<std::map<std::string, std::string>> parse_check_states(std::string_view json);

}  // namespace ep::discovery::consul
