#pragma once
// Options of the Consul source (`- consul: {...}` in a backend's sources), with Consul's standard
// environment variables as defaults. See docs/consul.md for the user-facing reference.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config_node.h"
#include "discovery/source.h"

namespace ep::discovery::consul {

// Which instances are kept, by aggregated check status (api/health.go AggregatedStatus).
enum class HealthPolicy {
  kPassing,  // all checks passing (server-side ?passing); the default
  kWarning,  // passing or warning
  kAny,      // every instance except maintenance (HAProxy's own checks decide)
};
const char* to_string(HealthPolicy policy);

// What the parser needs (a pure function of the payload and these).
struct ParseOptions {
  HealthPolicy health = HealthPolicy::kPassing;
  std::vector<std::string> tags;   // all must be present (case-insensitive, as Consul)
  std::vector<std::string> kinds;  // Service.Kind values accepted besides "" (typical)
  // "" = Service.Address, else Node.Address. Otherwise a tagged address name (lan, lan_ipv4,
  // wan, wan_ipv4, ...): Service.TaggedAddresses[name].Address (+ its Port when non-zero), then
  // Node.TaggedAddresses[name], then the default rule.
  std::string address_from;
  bool use_weights = true;      // map Service.Weights to HAProxy weights
  long weight_max = 256;        // a Consul weight of weight_max maps to HAProxy 256
  std::string weight_meta_key;  // Service.Meta[key] (integer 0..256) overrides weight
  std::string backup_meta_key;  // Service.Meta[key] true/1/yes marks a backup server
};

using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup process_env();  // std::getenv

struct Options {
  // Agent address, normalised.
  std::string base_url = "http://127.0.0.1:8500";  // scheme://host:port (http://localhost for unix)
  std::string unix_socket;                         // set for unix:// addresses
  std::string address_text;                        // as configured, for describe()

  std::string service;
  std::string datacenter;
  std::string ns;
  std::string partition;
  std::string filter;
  std::vector<std::pair<std::string, std::string>> node_meta;
  ParseOptions parse;

  std::string token;       // literal token (config or CONSUL_HTTP_TOKEN); never logged
  std::string token_file;  // re-read when it changes and after a 403
  std::string ca_file, cert_file, key_file;
  bool tls_verify = true;
  // A token over plain http (or https without verification) to an agent other than loopback or
  // a unix socket is refused unless this is set (and then a warning is logged).
  bool allow_insecure = false;
  // The largest reply accepted (`max_response_size`); a larger one is an error (fail static).
  std::size_t max_response_bytes = 8u << 20;

  // How changes are detected:
  //  service: one blocking query per source on /v1/health/service/<name> (one kept-alive
  //           connection per source; lowest latency). The default.
  //  shared:  all `shared` sources of one agent (same address, token, TLS, dc, namespace,
  //           partition) share one AgentHub: two blocking queries (/v1/catalog/services and
  //           /v1/health/state/any filtered to the watched names) detect changes, and targeted
  //           non-blocking reads of /v1/health/service/<name> go over one reused connection:
  //           3 connections for any number of services.
  enum class WatchMode { kService, kShared };
  WatchMode watch = WatchMode::kService;

  bool blocking = true;
  std::chrono::milliseconds wait{std::chrono::minutes(5)};  // blocking wait, max 10m
  bool cached = false;
  bool stale = false;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // non-blocking requests; margin
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  // Rate limit per watch: at least min_interval (+0..jitter) between requests, and a token bucket
  // of `burst` requests refilled one per `refill` (a flapping service costs at most that). The
  // defaults follow a service changing 10 times a second without lag (docs/consul.md, "Rate
  // limiting") and bound a watch to 20 requests per second sustained (bursts of 20).
  std::chrono::milliseconds min_interval{20};
  std::chrono::milliseconds jitter{10};
  long burst = 20;
  std::chrono::milliseconds refill{50};
  std::chrono::milliseconds backoff_min{250};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(1)};  // recovery within 1 s
  // An empty answer right after a non-empty one is re-read after this delay before it is
  // published (agent restart / leader change, consul.md §6). 0 = publish at once.
  std::chrono::milliseconds empty_confirm{std::chrono::seconds(5)};
  // Frozen-agent detection (liveness.h): GET /v1/status/leader every liveness_interval while
  // watches run (0 = off); no answer within liveness_timeout aborts the watches until it answers.
  std::chrono::milliseconds liveness_interval{std::chrono::seconds(2)};
  std::chrono::milliseconds liveness_timeout{std::chrono::seconds(1)};

  // Identity of the agent connection for sharing (address, token source, TLS, dc, ns,
  // partition, consistency). Contains no secret: the token is hashed.
  std::string agent_key() const;

  // The read timeout for a blocking request: wait + wait/16 + timeout.
  std::chrono::milliseconds blocking_timeout() const { return wait + wait / 16 + timeout; }
};

// Reads `consul: {...}`. Errors go to diag with positions; returns nullopt when invalid.
std::optional<Options> parse_options(const ConfigNode& node, Diagnostics& diag,
                                     const SourceContext& context,
                                     const EnvLookup& env = process_env());

// Normalises an agent address: "host:port", "http://…", "https://…", "unix:///path".
// `default_https` is CONSUL_HTTP_SSL. Errors are messages without position.
struct Address {
  std::string base_url;
  std::string unix_socket;
};
Result<Address> parse_address(std::string_view text, bool default_https);

}  // namespace ep::discovery::consul
