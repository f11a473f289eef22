#pragma once
// Reloads HAProxy with one of the configured methods and confirms that the new configuration runs
// (haproxy-runtime.md 7.2). Every wait is bounded by Options::timeout.
//
// Confirmation:
//   - with a master socket (any method but binary): `show proc` before and after; success = the
//     master's reload counter increased, `[failed: 0]`, and a current worker that was not there
//     before with reloads 0. `[failed: N>0]` = HAProxy refused the new config (the old worker keeps
//     serving).
//   - binary: the command's exit status (its stderr is HAProxy's reason), then a new pid in the
//     pidfile and a new worker pid behind the admin socket.
//   - otherwise: the pid behind the admin socket (`show info`) changes.
//   - systemctl / command with nothing to confirm through: the exit status alone.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "haproxy/reload/options.h"
#include "haproxy/reload/show_proc.h"

namespace ep::haproxy::reload {

class Reloader {
 public:
  virtual ~Reloader() = default;
  virtual Method method() const = 0;
  // Reloads and waits for confirmation. Returns a one-line description of what confirmed it.
  // Errors: kRefused = HAProxy refused the reload (message with HAProxy's reason when it can be
  // had); kUnavailable = could not trigger it, or no confirmation within the timeout.
  // Blocking (up to about Options::timeout); call it off the reconciler thread.
  virtual Result<std::string> reload() = 0;
};

// Null for Method::kNone.
std::unique_ptr<Reloader> make_reloader(const Options& options, const Target& target);

// `show proc` on the master CLI (retries while the master re-executes, until `deadline`).
Result<ProcTable> show_proc(const std::string& master_socket,
                            std::chrono::steady_clock::time_point deadline);

// Pid of the worker answering on the admin socket (`show info`), one attempt.
Result<long> worker_pid(const std::string& admin_socket, std::chrono::milliseconds timeout);

// Pids listed in a pidfile (one per line). Empty when the file is missing.
std::vector<long> read_pidfile(const std::string& path);

// Bootstrap: starts HAProxy in master-worker mode,
//   <binary> -W -D -f <config> [-p <pidfile>] [-S <master_socket>]
// and waits (bounded by `timeout`) until the admin socket answers. kRefused with HAProxy's own
// output when it does not start.
Result<std::string> start_master_worker(const Target& target, std::chrono::milliseconds timeout);

// Bootstrap with the configured method: `systemctl start <unit>` for Method::kSystemctl (HAProxy
// must belong to its unit), else start_master_worker(). Then waits for the admin socket (and the
// master CLI when configured), bounded by options.timeout.
Result<std::string> start_haproxy(const Options& options, const Target& target);

}  // namespace ep::haproxy::reload
