#include "runtime/async_process.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace ep::runtime {

Result<std::unique_ptr<AsyncProcess>> AsyncProcess::start(Loop& loop,
                                                          const std::vector<std::string>& argv,
                                                          const os::ProcessOptions& options,
                                                          Done done) {
  auto started = os::start_process(argv, options);
  if (!started) return started.error();
  std::unique_ptr<AsyncProcess> p(new AsyncProcess(loop, std::move(*started), std::move(done)));
  AsyncProcess* self = p.get();
  self->pidfd_ = os::UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, self->pid(), 0)));
  if (self->pidfd_) {
    auto w =
        loop.watch_fd(self->pidfd_.get(), EPOLLIN, [self](std::uint32_t) { self->check(false); });
    if (w) self->watch_ = *w;
  }
  if (self->watch_ == 0) {  // no pidfd (old kernel): waitpid polled
    self->poll_ = loop.after(std::chrono::milliseconds(10), [self] {
      self->poll_ = 0;
      self->check(false);
    });
  }
  self->deadline_ = loop.after(options.timeout, [self] {
    self->deadline_ = 0;
    self->check(true);
  });
  return p;
}

AsyncProcess::AsyncProcess(Loop& loop, os::StartedProcess process, Done done)
    : loop_(loop), process_(std::move(process)), done_(std::move(done)) {}

void AsyncProcess::clear() {
  if (watch_ != 0) loop_.unwatch_fd(watch_);
  if (deadline_ != 0) loop_.cancel(deadline_);
  if (poll_ != 0) loop_.cancel(poll_);
  watch_ = deadline_ = poll_ = 0;
}

AsyncProcess::~AsyncProcess() {
  clear();
  if (!reaped_ && process_.pid > 0) {
    ::kill(process_.pid, SIGKILL);
    int status = 0;
    while (::waitpid(process_.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void AsyncProcess::check(bool deadline) {
  if (reaped_) return;
  int status = 0;
  pid_t w = ::waitpid(process_.pid, &status, WNOHANG);
  while (w < 0 && errno == EINTR) w = ::waitpid(process_.pid, &status, WNOHANG);
  bool timed_out = false;
  if (w < 0) status = 0xffff;  // not our child any more (reaped elsewhere): neither exit nor signal
  if (w == 0) {
    if (!deadline) {
      // Still running (a spurious wake-up, or the 10 ms poll): keep waiting.
      if (watch_ == 0 && poll_ == 0)
        poll_ = loop_.after(std::chrono::milliseconds(10), [this] {
          poll_ = 0;
          check(false);
        });
      return;
    }
    timed_out = true;
    ::kill(process_.pid, SIGKILL);
    while (::waitpid(process_.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  reaped_ = true;
  clear();
  Done done = std::move(done_);
  done_ = nullptr;
  os::ProcessResult result = os::finish_process(process_, status, timed_out);
  if (done) done(std::move(result));  // may destroy this object: nothing after
}

}  // namespace ep::runtime
