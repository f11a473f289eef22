#pragma once
// A discovery source reports the WHOLE current set of endpoints for the backend it serves
// (level-triggered), or a failure. Events only make it report sooner.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config_node.h"
#include "core/metrics.h"
#include "core/model.h"
#include "core/result.h"

namespace ep {
class ServerStateView;
}
namespace ep::runtime {
class Runtime;
}

namespace ep::discovery {

using Snapshot = Result<std::vector<Endpoint>>;

// Receives snapshots. Implementations are thread-safe and never block for long.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void publish(Snapshot snapshot) = 0;
};

// A lifecycle action a source is holding for (AWS lifecycle hooks), for the dashboard.
struct HookInFlight {
  std::string instance;    // "i-0abc..."
  std::string hook;        // the lifecycle hook's name
  std::string transition;  // "autoscaling:EC2_INSTANCE_TERMINATING" / "..._LAUNCHING"
  SteadyTime started{};
  SteadyTime deadline{};  // drain_timeout / launch_timeout
  SteadyTime next_heartbeat{};
  std::string progress;  // "3 session(s), active on 1 of 2 HAProxy", "UP on 1 of 2 HAProxy"
};

class Source {
 public:
  virtual ~Source() = default;

  // "file /etc/elasticproxy/web.json": for logs, metrics and /status.
  virtual std::string describe() const = 0;

  // Starts the source on the shared source runtime (what the Pipeline calls). It publishes a
  // first snapshot as soon as it can and then one per change (and failures), from a thread of
  // the runtime. Sources on the runtime (file, dns, etcd, consul, aws_asg) run as handlers on
  // its loops and own no thread; static publishes once, synchronously; the default, for a source
  // kind that has no runtime version, is start(sink). Returns at once; an error means the source
  // cannot run at all. `runtime` must outlive the running source (stop() it first).
  virtual Status start_on(runtime::Runtime& runtime, Sink& sink) { return start(sink); }

  // Starts the source without a shared runtime (tools and tests): it then runs on a private
  // one-thread runtime of its own (consul `watch: shared` hubs: on one shared by such sources).
  virtual Status start(Sink& sink) = 0;

  // Stops: when it returns none of the source's callbacks runs any more (threads joined) and the
  // sink is never called again. Idempotent. Call it from the thread that started the source.
  virtual void stop() = 0;

  // What `elasticproxy check` prints about this source beyond "valid" (e.g. where aws_asg will
  // take its region from), without network. Default: nothing.
  virtual std::vector<std::string> check_notes() const { return {}; }

  // One synchronous fetch (for `once` and `plan`), bounded by `timeout`.
  virtual Snapshot fetch_once(std::chrono::milliseconds timeout) = 0;

  // Lifecycle actions this source is waiting on (thread-safe). Most sources have none.
  virtual std::vector<HookInFlight> hooks_in_flight() const { return {}; }
};

// What a source factory gets besides its own options.
struct SourceContext {
  std::string backend;             // the HAProxy backend this source serves
  std::filesystem::path base_dir;  // directory of the config file (relative paths resolve here)
  const Clock* clock = &SystemClock::instance();
  // HAProxy's server states, for sources that wait on them (AWS lifecycle hooks) or hold drains
  // (AWS lifecycle hooks, Kubernetes serving+terminating endpoints). Null outside
  // the daemon. Thread-safe; outlives the source (the daemon hands its reconciler).
  const ServerStateView* server_states = nullptr;
  // The registry the source declares its stats on (a typed struct per source, e.g.
  // discovery/consul/stats.h); null: Metrics::global(). Outlives the source.
  Metrics* metrics = nullptr;
  // Whether the backend's servers are health checked (`check` in its server_options: new servers
  // wait in DRAIN until their first check passes). nullopt: unknown (tools, tests).
  std::optional<bool> health_checks;
  // The runtime is handed to Source::start_on() by the Pipeline, not through the context.
};

// Builds a source from its options node (`file: {...}`). Reports option errors with positions
// into `diag` and returns nullptr when the options are invalid.
using SourceFactory = std::function<std::unique_ptr<Source>(
    const ConfigNode& options, Diagnostics& diag, const SourceContext& context)>;

struct SourceKind {
  std::string_view name;  // the key in `sources: [- <name>: {...}]`
  SourceFactory create;
};

}  // namespace ep::discovery
