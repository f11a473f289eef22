#pragma once
// ElasticProxy's configuration, loaded from YAML (or an EP2 ep2.conf). Errors carry
// `file:line:col`. Source options stay as ConfigNode trees: each source parses its own (the app's
// source table knows the kinds), so a new source needs no change here.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config_node.h"
#include "core/result.h"
#include "reconcile/policy.h"

namespace ep::config {

enum class UpdateMode { kAuto, kRuntime, kConfig };
const char* to_string(UpdateMode mode);

struct HaproxySettings {
  std::vector<std::string> sockets;  // admin sockets, one per HAProxy instance (required)
  std::string master_socket;         // optional master CLI socket
  std::string config;                // the haproxy.cfg HAProxy runs from (optional)
  std::string template_path;         // YAML key `template` (optional)
  std::string pidfile;               // HAProxy's pidfile (reload by signal/binary, bootstrap)
  bool bootstrap = false;            // start HAProxy from the template when it is not running
  UpdateMode update = UpdateMode::kAuto;
  std::string binary = "haproxy";
  std::chrono::milliseconds timeout{2000};           // per admin-socket operation
  std::chrono::milliseconds resync_interval{10000};  // full re-read of HAProxy's state
  ConfigNode reload;                                 // reload options, parsed by haproxy/reload
};

struct SourceSpec {
  std::string kind;    // "file", "static", "consul", ...
  ConfigNode options;  // the value under the kind key
  Mark mark;           // where the source item starts
};

struct BackendSettings {
  reconcile::BackendPolicy policy;
  std::vector<SourceSpec> sources;
  Mark mark;
};

struct MetricsSettings {
  bool enabled = true;
  std::string listen = "127.0.0.1:9108";
  // Host names (besides IP literals and localhost) the ops endpoints answer to; "*" = any. Other
  // Host headers get 421, so a web page in a browser cannot read /status by DNS rebinding.
  std::vector<std::string> allowed_hosts;
  // The dashboard/status/action token: read from this file (relative to the config file's
  // folder; trailing newline dropped) or from this environment variable. Required when `listen`
  // is not on loopback (without one those endpoints answer 403); optional on loopback.
  std::string token_file;
  std::string token_env;
  // /metrics and /readyz need the token too (default: they stay open for scrapers and probes).
  bool token_for_metrics = false;
};

struct LogSettings {
  std::string level = "info";   // debug | info | warn | error
  std::string format = "text";  // text | json
};

// `state:` — the state file (discovery/state_file.h, docs/operations.md "State file").
struct StateSettings {
  bool enabled = true;
  std::string file;  // "" = default_state_path() ($STATE_DIRECTORY or /var/lib/elasticproxy)
  std::chrono::milliseconds max_age{std::chrono::hours(24)};
  std::chrono::milliseconds restore_after{std::chrono::seconds(2)};
};

struct Settings {
  std::filesystem::path file;  // where it was loaded from
  StateSettings state;
  HaproxySettings haproxy;
  std::vector<BackendSettings> backends;
  MetricsSettings metrics;
  LogSettings log;
  // Things worth telling the user about how the file was read (an EP2 ep2.conf: keys ignored,
  // behaviour that differs from EP2). The daemon logs them once at start.
  std::vector<std::string> notes;
};

// Parses YAML text into a ConfigNode tree with positions. Syntax errors are reported as
// `file:line:col: message`.
Result<ConfigNode> parse_yaml(std::string_view text, const std::string& filename);

// Validates the tree and builds Settings. Every unknown key, wrong type, out-of-range value and
// missing required key is reported in `diag` (all of them, not just the first).
Settings settings_from_node(const ConfigNode& root, const std::string& filename, Diagnostics& diag);

// Reads and parses a config file into a tree: YAML, or an EP2 ep2.conf (INI) mapped onto the same
// shape. I/O, syntax and EP2 mapping errors are returned; `notes` (optional) receives the EP2
// mapping notes.
Result<ConfigNode> load_tree(const std::filesystem::path& path, std::vector<std::string>* notes);

// Reads, parses and validates a config file: YAML, or an EP2 ep2.conf (INI, detected by its first
// `[section]` line; see config/ep2.h). On failure the error message holds every
// diagnostic, one per line.
Result<Settings> load_file(const std::filesystem::path& path);

}  // namespace ep::config
