#pragma once
// Running a program without blocking a loop (an `exec` credential plugin on the source runtime):
// os::start_process starts it, its pidfd is watched on the loop (without pidfd_open: waitpid is
// polled every 10 ms by a timer), and after `options.timeout` it is killed (SIGKILL). `done` runs
// on the loop, once, with what os::run_process would have returned. Destroying the handle (on
// the loop thread) before then kills and reaps the child, and `done` never runs.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "os/process.h"
#include "runtime/loop.h"

namespace ep::runtime {

class AsyncProcess {
 public:
  using Done = std::function<void(Result<os::ProcessResult>)>;
  // On the loop thread. An error when the program cannot be started (`done` is not called).
  static Result<std::unique_ptr<AsyncProcess>> start(Loop& loop,
                                                     const std::vector<std::string>& argv,
                                                     const os::ProcessOptions& options, Done done);
  ~AsyncProcess();  // on the loop thread
  AsyncProcess(const AsyncProcess&) = delete;
  AsyncProcess& operator=(const AsyncProcess&) = delete;

  int pid() const { return process_.pid; }

 private:
  AsyncProcess(Loop& loop, os::StartedProcess process, Done done);
  void check(bool deadline);  // reaps the child if it exited (or kills it at the deadline)
  void clear();

  Loop& loop_;
  os::StartedProcess process_;
  os::UniqueFd pidfd_;  // invalid without pidfd_open
  Done done_;
  bool reaped_ = false;
  WatchId watch_ = 0;
  TimerId deadline_ = 0, poll_ = 0;
};

}  // namespace ep::runtime
