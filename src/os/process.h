#pragma once
// Running another program: the one helper every spawn goes through (haproxy -c, reloads,
// credential_process, kubernetes exec plugins through runtime/async_process.h).

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

// The same in two steps, for a caller that waits without blocking (runtime/async_process.h):
// spawn_process() starts the child as run_process() does and returns at once; the caller waits
// for `pid` to exit (`pidfd` is readable then; invalid on kernels without pidfd_open), reaps it
// with waitpid, and hands its wait status to finish_process(), which reads the captured output.
struct SpawnedProcess {
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd out, err;  // unlinked temp files (err: merge_stderr = false only)
  ProcessOptions options;
};
Result<SpawnedProcess> spawn_process(const std::vector<std::string>& argv,
                                     const ProcessOptions& options = {});
ProcessResult finish_process(SpawnedProcess& process, int wait_status, bool timed_out);

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
