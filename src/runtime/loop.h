#pragma once
// One event loop: epoll for fd readiness, a timerfd for timers, an eventfd for wake-ups. Either
// one thread of its own (started by the Runtime) runs every callback, or — in manual mode, for
// tests — the thread that calls run_until_idle()/run_until() does. Callbacks of one loop never
// run concurrently with each other, so a handler whose callbacks all run on one loop needs no
// lock for its own state.
//
// Cancellation rules (the one place they are decided):
// - cancel()/unwatch_fd() called ON the loop thread (from a callback) are final: the cancelled
//   callback does not run afterwards, even if its timer is due or its fd ready in the same batch.
// - called from another thread they only prevent runs that have not started yet. A handler that
//   must be sure uses run_sync() to do its teardown on the loop thread.
// - stop() (through Runtime::stop) returns only when the loop thread has exited; after that no
//   callback of this loop runs again, and queued work is destroyed without running.

#include <sys/epoll.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/clock.h"
#include "core/result.h"

namespace ep::runtime {

using TimerId = std::uint64_t;  // 0 is never a valid id
using WatchId = std::uint64_t;  // 0 is never a valid id
using Task = std::function<void()>;
// Gets the ready events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...).
using FdCallback = std::function<void(std::uint32_t events)>;

class Loop {
 public:
  // `clock` gives timer deadlines; it must outlive the loop. `threaded` false = manual mode.
  Loop(const Clock& clock, bool threaded, int index);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs fn on the loop thread, soon, after the tasks already posted. Any thread. Returns false
  // (and destroys fn unrun) once the loop is stopped.
  bool post(Task fn);

  // Runs fn on the loop thread and waits for it to finish; runs it inline when called on the loop
  // thread, in manual mode outside run_until_idle(), or once the loop is stopped (then nothing
  // else of this loop runs any more). Must not be called from another loop's thread while that
  // loop could run_sync() back onto this one.
  void run_sync(const Task& fn);

  // Runs fn once, `delay` after now (by the clock). Any thread. Returns 0 once stopped.
  TimerId after(Duration delay, Task fn);
  // Cancels a timer; false if it already ran, was cancelled, or never existed. Any thread (see
  // the cancellation rules above).
  bool cancel(TimerId id);

  // Calls cb on the loop thread whenever `fd` is ready for `events` (EPOLLIN/EPOLLOUT;
  // level-triggered). The fd stays the caller's: unwatch it before closing it. Any thread.
  Result<WatchId> watch_fd(int fd, std::uint32_t events, FdCallback cb);
  // Changes the events watched for. Any thread.
  Status modify_fd(WatchId id, std::uint32_t events);
  // Stops watching; false if unknown. Any thread (see the cancellation rules above).
  bool unwatch_fd(WatchId id);

  // True on the thread that runs this loop's callbacks right now.
  bool on_loop_thread() const;
  // True once stop() has begun.
  bool stopping() const { return quit_.load(); }
  int index() const { return index_; }
  const Clock& clock() const { return clock_; }

  // Manual mode: runs every posted task, due timer and ready fd (polled without waiting) until
  // none is left; returns how many callbacks ran. Must not be called in threaded mode. (An fd
  // that stays ready and is never unwatched keeps it running: use run_until() for those.)
  size_t run_until_idle();
  // Manual mode: runs turns (waiting for fds and timers) until `done` is true, checked before
  // each turn, or `real_deadline` of real time has passed. Returns done().
  bool run_until(const std::function<bool()>& done, Duration real_deadline);

  // Runtime use: start the thread (threaded mode) / stop and join it.
  void start_thread();
  void stop();

  // How many timers and fd watches are registered (for tests and /status).
  size_t timer_count() const;
  size_t watch_count() const;

 private:
  struct Watch {
    int fd;
    std::shared_ptr<FdCallback> cb;
  };

  void run_thread();
  // One turn: waits up to timeout_ms for epoll events, then runs ready fds, posted tasks and due
  // timers. Returns the number of callbacks run.
  size_t turn(int timeout_ms);
  size_t run_tasks();
  size_t run_due_timers();
  void arm_timerfd();  // requires mu_
  void wake();
  void drop_all();

  const Clock& clock_;
  const bool threaded_;
  const int index_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int timer_fd_ = -1;

  mutable std::mutex mu_;
  std::deque<Task> tasks_;
  std::map<std::pair<SteadyTime, TimerId>, Task> timers_;
  std::unordered_map<TimerId, SteadyTime> timer_at_;
  std::unordered_map<WatchId, Watch> watches_;
  std::uint64_t next_id_ = 1;
  bool stopped_ = false;
  std::condition_variable stopped_cv_;

  std::atomic<bool> quit_{false};
  std::thread thread_;
  std::atomic<std::thread::id> runner_{};
};

}  // namespace ep::runtime
