#pragma once
// The source runtime: a small FIXED set of event-loop threads that run every source's timers,
// waits, retries and I/O, plus the one inotify instance (FileWatcher) every file source shares.
// The thread count depends on RuntimeOptions::threads only, never on the number of sources.
//
// A handler (a source) picks one loop with loop() at start and runs all its callbacks there, so
// its own state needs no lock. It starts and stops through Loop::run_sync() so that, once its
// stop() returns, none of its callbacks runs again.
//
// Manual mode (threads = 0), for tests: one loop and no thread; the test drives it with
// run_until_idle() (after advancing a FakeClock) or run_until(condition, deadline).

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "runtime/file_watcher.h"
#include "runtime/loop.h"

namespace ep::runtime {

struct RuntimeOptions {
  size_t threads = 2;                             // 0 = manual mode
  const Clock* clock = &SystemClock::instance();  // must outlive the runtime
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  // Stops (see stop()).
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The loop for a new handler (round robin). Any thread.
  Loop& loop();
  Loop& loop(size_t i) { return *loops_[i]; }
  size_t loop_count() const { return loops_.size(); }
  bool manual() const { return manual_; }
  const Clock& clock() const { return *options_.clock; }

  // The shared inotify watcher (its fd is created at the first subscription).
  FileWatcher& files() { return *files_; }

  // Stops every loop and joins their threads: when it returns no callback runs any more and
  // queued work was destroyed unrun. Idempotent; any thread except a loop thread.
  void stop();

  // Manual mode: see Loop::run_until_idle() / Loop::run_until().
  size_t run_until_idle();
  bool run_until(const std::function<bool()>& done, Duration real_deadline);

 private:
  RuntimeOptions options_;
  bool manual_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::unique_ptr<FileWatcher> files_;
  std::atomic<size_t> next_{0};
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace ep::runtime
