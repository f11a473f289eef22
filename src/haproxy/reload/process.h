#pragma once
// Runs a program without a shell, for reloads and for starting HAProxy.

#include <chrono>
#include <string>
#include <vector>

#include "core/result.h"

namespace ep::haproxy::reload {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or on timeout
  bool timed_out = false;
  std::string output;  // stdout + stderr (first 1 MiB)
};

// Runs argv (argv[0] searched in PATH; arguments passed as they are, never through a shell) with
// stdin on /dev/null, stdout+stderr captured in an unlinked temp file, a clean signal mask and no
// inherited descriptors beyond 0-2. Waits for the direct child only (killed after `timeout`): a
// child that daemonizes (haproxy -D) and keeps the output file open does not delay the return.
// kUnavailable when the program cannot be started.
Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout);

// "a b c" for logs (arguments with blanks quoted).
std::string describe(const std::vector<std::string>& argv);

}  // namespace ep::haproxy::reload
