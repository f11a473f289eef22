#pragma once
// Frozen-agent detection for `watch: service` (docs/consul.md, "A frozen agent").
//
// A blocking query to an agent that keeps its TCP connections open but stops answering (a
// stopped process, a stuck VM) would otherwise pin the watch for wait + wait/16 + timeout
// (minutes with the default wait: 5m). One AgentLiveness per (loop, agent) probes the agent with a
// short request that needs no ACL, GET /v1/status/leader, every `liveness_interval` while any
// watch of that agent runs; any HTTP answer (even an error status) means "the agent answers".
// A probe that gets no answer within `liveness_timeout` makes every watcher abort its request
// (agent_frozen: the watch reports an error, the guard keeps the last good set, servers stay);
// probes then follow each other back to back (one in flight, each bounded by liveness_timeout)
// and the first answer calls agent_alive on every watcher, which re-reads at once (non-blocking).
// So a resumed agent is noticed within liveness_timeout (+ one request), whatever `wait` is.
// Cost: one small request per liveness_interval per agent and loop (not per watch).
// Threading: everything on the loop's thread (acquire, watch/unwatch, callbacks).

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "discovery/consul/options.h"
#include "net/async_http_client.h"
#include "runtime/loop.h"

namespace ep::discovery::consul {

class AgentLiveness {
 public:
  class Watcher {
   public:
    virtual ~Watcher() = default;
    virtual void agent_frozen(const std::string& why) = 0;
    virtual void agent_alive() = 0;
  };

  // The prober of this agent on `loop` (created on first use, shared while anyone holds it).
  // On the loop's thread.
  static std::shared_ptr<AgentLiveness> acquire(runtime::Loop& loop, const Options& options,
                                                std::shared_ptr<net::AsyncHttpClient> client);

  AgentLiveness(runtime::Loop& loop, const Options& options,
                std::shared_ptr<net::AsyncHttpClient> client);
  ~AgentLiveness();  // on the loop's thread
  AgentLiveness(const AgentLiveness&) = delete;
  AgentLiveness& operator=(const AgentLiveness&) = delete;

  void watch(Watcher* watcher);    // starts probing with the first watcher
  void unwatch(Watcher* watcher);  // stops with the last
  bool frozen() const { return frozen_; }
  std::uint64_t probes() const { return probes_; }

 private:
  void arm(std::chrono::milliseconds delay);
  void probe();
  void on_probe(bool answered, const std::string& why);

  runtime::Loop& loop_;
  Options options_;
  std::shared_ptr<net::AsyncHttpClient> client_;
  std::set<Watcher*> watchers_;
  bool frozen_ = false;
  runtime::TimerId timer_ = 0;
  net::AsyncHttpClient::RequestId request_ = 0;
  std::uint64_t probes_ = 0;
  std::chrono::steady_clock::time_point probe_started_{};
};

}  // namespace ep::discovery::consul
