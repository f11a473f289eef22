#include "runtime/runtime.h"

namespace ep::runtime {

Runtime::Runtime(RuntimeOptions options) : options_(options), manual_(options.threads == 0) {
  if (options_.clock == nullptr) options_.clock = &SystemClock::instance();
  const size_t n = manual_ ? 1 : options_.threads;
  for (size_t i = 0; i < n; ++i) {
    loops_.push_back(std::make_unique<Loop>(*options_.clock, !manual_, static_cast<int>(i)));
  }
  files_ = std::make_unique<FileWatcher>(*loops_[0]);
  for (auto& l : loops_) l->start_thread();
}

Runtime::~Runtime() {
  stop();
  files_.reset();
}

Loop& Runtime::loop() { return *loops_[next_.fetch_add(1) % loops_.size()]; }

void Runtime::stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& l : loops_) l->stop();
}

size_t Runtime::run_until_idle() { return loops_[0]->run_until_idle(); }

bool Runtime::run_until(const std::function<bool()>& done, Duration real_deadline) {
  return loops_[0]->run_until(done, real_deadline);
}

}  // namespace ep::runtime
