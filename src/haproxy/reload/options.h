#pragma once
// Reload options (`haproxy.reload` in the YAML config, also filled by the EP2 loader) and where
// HAProxy lives (binary, config file, pidfile, sockets). Pure: parsing only, no I/O.
//
//   haproxy:
//     reload:
//       method: master-cli      # master-cli | signal | binary | systemctl | command
//       unit: haproxy           # systemctl reload <unit>
//       command: [/usr/local/bin/reload-haproxy, --fast]   # method command: argv, no shell
//       timeout: 10s            # how long a reload may take to be confirmed
//       quiet: 500ms            # debounce: wait for this long without changes ...
//       max_wait: 5s            # ... but never longer than this after the first change
//       min_interval: 2s        # at most one reload per this interval
//       bulk_threshold: auto    # update: auto, dynamic mode: a pass adding more servers than
//                               # this to one backend reloads once instead (0: never; auto:
//                               # over 1000 and only when predicted faster than `add server`)

#include <chrono>
#include <string>
#include <vector>

#include "core/config_node.h"

namespace ep::haproxy::reload {

enum class Method { kNone, kMasterCli, kSignal, kBinary, kSystemctl, kCommand };
const char* to_string(Method method);

struct Options {
  Method method = Method::kNone;  // kNone: no way to reload configured
  std::string unit = "haproxy";
  std::vector<std::string> command;
  std::chrono::milliseconds timeout{10'000};
  std::chrono::milliseconds quiet{500};
  std::chrono::milliseconds max_wait{5'000};
  std::chrono::milliseconds min_interval{2'000};
  // update: auto with config management: a pass that adds more than this many servers to one
  // dynamic backend is applied by one rendered, validated, confirmed reload instead of as many
  // `add server` (reconcile/bulk.h); 0 disables. kAuto (the default, `auto`): more than
  // kAutoFloor additions, and only when the reload is predicted faster (predict_bulk_cost;
  // docs/haproxy-runtime.md, "Bulk additions by reload").
  static constexpr long kAuto = -1;
  static constexpr long kAutoFloor = 1000;
  long bulk_threshold = kAuto;
};

// Where HAProxy is. Filled from haproxy.{binary,config,pidfile,master_socket,sockets[0]}.
struct Target {
  std::string binary = "haproxy";
  std::string config;         // the live config file
  std::string pidfile;        // master pid (master-worker) or process pids (daemon)
  std::string master_socket;  // master CLI
  std::string admin_socket;   // first admin socket
};

// Parses `haproxy.reload` (null = all defaults). The default method is master-cli when a master
// socket is configured, else binary when a pidfile is, else none. A method whose requirements are
// missing (master-cli without master_socket, signal/binary without pidfile, binary without config,
// command without command) is an error at the method's position. Errors go to `diag` with
// file:line:col.
Options parse_options(const ConfigNode& node, const Target& target, Diagnostics& diag);

}  // namespace ep::haproxy::reload
