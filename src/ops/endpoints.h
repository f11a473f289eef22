#pragma once
// The operations endpoints, independent of how the daemon is wired:
//   GET /metrics  Prometheus text exposition (EndpointOptions::metrics, refreshed per scrape)
//   GET /healthz  200 while the reconciler loop is not stuck (last loop within `stuck_after`)
//   GET /readyz   200 once every source delivered a first snapshot and every HAProxy instance is
//                 converged; 503 with the reasons otherwise
//   GET /status   JSON: each backend's desired vs actual servers per HAProxy instance and each
//                 source's health; every string passes through ops::redact()
//   GET /         the dashboard (ops/dashboard.h): index.html, /dashboard.js, /dashboard.css;
//                 /login.js and, when a token is needed and missing, a token form (401)
//   POST /api/guard/confirm?backend=NAME, POST /api/guard/reject?backend=NAME
//                 the one action: confirm or reject the backend's held snapshot now (through
//                 the pipeline's loop). Needs the header `X-ElasticProxy-Action` (a cross-site
//                 form cannot send it) and, when Origin is sent, an Origin matching Host.
// HEAD is accepted wherever GET is; other methods get 405 with `Allow`; unknown paths 404.
// Access: when a token is configured, or the listener is not on loopback (`exposed`), the page,
// /status and the action need it (`Authorization: Bearer TOKEN` or the cookie `ep_token`, set by
// the token form); exposed without a token they answer 403. /healthz, /readyz, /metrics and the
// static assets stay open unless `token_for_metrics` (then /readyz and /metrics need it too).
// Every response carries a strict Content-Security-Policy (default-src 'self', no framing),
// X-Frame-Options: DENY and Referrer-Policy: no-referrer. Every path but /healthz answers only
// requests whose Host is an IP literal, `localhost` or a name in EndpointOptions::allowed_hosts
// (any port; a request without Host is accepted); others get 421, so a page in a browser cannot
// read the topology by DNS rebinding.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "discovery/pipeline.h"
#include "ops/http_server.h"
#include "ops/stats.h"
#include "reconcile/reconciler.h"

namespace ep::ops {

// Config file management (haproxy.template + haproxy.config): the file, the HAProxy it reloads
// and the last reload with its result. Shown on that instance in /status.
struct ConfigStatus {
  std::string instance;      // the admin socket of the HAProxy it reloads (an instance's name)
  std::string path;          // the config file
  bool config_mode = false;  // update: config (every change is a reload); else the file follows
  size_t reloads = 0;        // confirmed reloads since start
  struct Reload {
    SteadyTime at{};
    std::string result;   // "ok", "rejected", "rolled_back", "failed"
    std::string message;  // what confirmed it, or why not
    double seconds = 0;   // write + reload + confirm
  };
  std::optional<Reload> last_reload;
};

// What the endpoints need, copied from the running daemon at request time.
struct OpsSnapshot {
  std::vector<reconcile::InstanceStatus> instances;
  std::vector<discovery::GuardStatus> guards;
  SteadyTime now{};                    // steady clock at snapshot time
  SteadyTime last_loop{};              // Reconciler::last_loop()
  bool sources_ready = false;          // Pipeline::ready()
  bool converged = false;              // Reconciler::converged()
  reconcile::JournalView journal;      // Reconciler::journal(): the timeline and convergence chart
  std::optional<ConfigStatus> config;  // when ElasticProxy manages the config file
};

// Returns the current snapshot, or nullopt while no daemon is attached (starting, reloading).
using SnapshotFn = std::function<std::optional<OpsSnapshot>()>;

struct EndpointOptions {
  std::string version;  // shown in /status and elasticproxy_build_info
  // /healthz fails when the reconciler loop has not completed an iteration for this long. The
  // loop wakes at least every second; a pass is bounded by the admin-socket timeouts.
  std::chrono::milliseconds stuck_after{30'000};
  // Host names accepted besides IP literals and localhost (metrics.allowed_hosts); "*" = any.
  std::vector<std::string> allowed_hosts{};
  // The registry /metrics renders and the scrape-time gauges (ops/stats.h) record into; null:
  // Metrics::global(). Must outlive the handler.
  Metrics* metrics = nullptr;
  // The dashboard/status/action token ("" = none; registered with core/secrets by the caller).
  std::string token;
  // The listener is not on loopback: the dashboard, /status and the action need the token (and
  // are refused with 403 when none is configured).
  bool exposed = false;
  // /metrics and /readyz need the token as well (metrics.token_for_metrics).
  bool token_for_metrics = false;
  // Called (on the HTTP thread) each time /status is served, after the access check: the
  // daemon re-reads HAProxy soon, so a page that polls sees HAProxy's own changes (a health
  // check, sessions, an operator's disable) at its next poll rather than at the next resync.
  std::function<void()> on_status{};
};

// The dashboard's action: confirm (true) or reject (false) backend `name`'s held snapshot.
// Returns a sentence saying what was done; errors are shown to the operator.
using GuardActionFn = std::function<Result<std::string>(const std::string& name, bool confirm)>;

// True when `address` (a metrics.listen value, "host:port") is on loopback: 127.0.0.0/8, ::1 or
// localhost. Anything else (":9108", "0.0.0.0:9108", a LAN address, a name) is exposed.
bool listen_is_loopback(std::string_view address);

// True when `host` (a Host header value: name or IP literal, optional ":port") is an IPv4 or
// bracketed IPv6 literal, `localhost`, or one of `allowed` (case-insensitive; "*" allows any).
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

struct Health {
  bool ok = false;
  std::string reason;  // why not (or "ok")
};
Health check_health(const std::optional<OpsSnapshot>& snap, const EndpointOptions& options);
Health check_ready(const std::optional<OpsSnapshot>& snap);

// The /status document (pretty-printed JSON; on one line when `compact`, for /status?compact).
// Never contains a registered or secret-looking value.
std::string status_json(const std::optional<OpsSnapshot>& snap, const EndpointOptions& options,
                        bool compact = false);

// Sets the gauges derived from the snapshot right before a scrape: per-source up / last success
// timestamp / endpoints, HAProxy instances reachable, build info.
void update_scrape_metrics(const OpsSnapshot& snap, const EndpointOptions& options,
                           const OpsStats& stats);

HttpServer::Handler make_ops_handler(SnapshotFn snapshot, EndpointOptions options,
                                     GuardActionFn action = {});

}  // namespace ep::ops
