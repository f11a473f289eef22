#pragma once
// Running another program: the one helper every spawn goes through (haproxy -c, reloads,
// credential_process).

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/result.h"
#include "os/fd.h"

namespace ep::os {

struct ProcessOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  // Bytes kept of each captured stream; the rest is dropped and `output_truncated` set.
  std::size_t max_output = 1u << 20;
  // true: stderr goes into `output` with stdout (what a user reads of `haproxy -c`); false:
  // stdout alone in `output` (a machine-readable answer), stderr apart in `error_output`.
  bool merge_stderr = true;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or on timeout
  int signal = 0;      // the signal that ended it, if any
  bool timed_out = false;
  bool output_truncated = false;
  std::string output;        // trailing blanks and newlines removed
  std::string error_output;  // merge_stderr = false only

  bool succeeded() const { return exit_code == 0 && !timed_out; }
};

// Runs argv (argv[0] searched in PATH; arguments passed as they are, never through a shell) and
// waits for it, at most `timeout` (then SIGKILL). The child gets:
//  - stdin on /dev/null; stdout/stderr captured in unlinked temp files (not pipes: `haproxy -W -D`
//    keeps its stderr open in the daemonized master, so a pipe would not reach EOF until HAProxy
//    exits). Only the direct child is waited for.
//  - no descriptor but 0-2 (libcurl's sockets and every other fd stay in the daemon);
//  - child_environment(): the daemon's environment without the credentials it reads;
//  - a clean signal mask and default dispositions (the daemon blocks signals for its sigwait
//    loop; HAProxy must not inherit that).
// kUnavailable when the program cannot be started. Thread-safe.
Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const ProcessOptions& options = {});

// run_process in two halves, for a caller that waits on an event loop instead of blocking (the
// AWS sources' credential_process; runtime::AsyncProcess, for kubernetes exec plugins):
// start_process spawns the child exactly as run_process does; the caller reaps it itself
// (waitpid with WNOHANG on its own timers or a pidfd; on timeout kill(SIGKILL) and reap), then
// finish_process reads its output. `status` is waitpid's.
struct StartedProcess {
  int pid = -1;
  UniqueFd out;  // stdout (with stderr when merged), an unlinked temp file
  UniqueFd err;  // stderr, when not merged
  ProcessOptions options;
};
Result<StartedProcess> start_process(const std::vector<std::string>& argv,
                                     const ProcessOptions& options);
ProcessResult finish_process(StartedProcess& process, int status, bool timed_out);

// The environment for children: the daemon's own, less every variable that carries a secret the
// daemon uses (AWS keys and tokens, Consul and etcd credentials) and systemd's per-service
// variables (NOTIFY_SOCKET, LISTEN_FDS, ...: a child must not speak for the daemon). Other
// variables stay, since haproxy.cfg may reference them ("${VAR}").
std::vector<std::string> child_environment();

// True for a NAME that child_environment() leaves out.
bool is_withheld_variable(const std::string& name);

// "a b 'c d'" for logs (arguments with blanks or quotes quoted).
std::string describe_command(const std::vector<std::string>& argv);

}  // namespace ep::os
