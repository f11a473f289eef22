#include "runtime/loop.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/log.h"

namespace ep::runtime {
namespace {

constexpr std::uint64_t kWakeKey = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kTimerKey = kWakeKey - 1;
constexpr int kMaxEvents = 64;
constexpr const char* kComponent = "runtime";

void drain(int fd) {
  std::uint64_t v;
  while (::read(fd, &v, sizeof v) > 0) {
  }
}

[[noreturn]] void fatal(const char* what) {
  const int err = errno;
  log::error(kComponent, "{}: {}", what, std::strerror(err));
  std::abort();  // no descriptors left for the loop itself: nothing can run
}

}  // namespace

Loop::Loop(const Clock& clock, bool threaded, int index)
    : clock_(clock), threaded_(threaded), index_(index) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) fatal("epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) fatal("eventfd");
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (timer_fd_ < 0) fatal("timerfd_create");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) fatal("epoll_ctl(eventfd)");
  ev.data.u64 = kTimerKey;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0) fatal("epoll_ctl(timerfd)");
}

Loop::~Loop() {
  stop();
  ::close(timer_fd_);
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void Loop::start_thread() {
  if (!threaded_ || thread_.joinable()) return;
  thread_ = std::thread([this] { run_thread(); });
}

void Loop::stop() {
  quit_.store(true);
  wake();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  drop_all();
}

void Loop::drop_all() {
  std::deque<Task> tasks;
  std::map<std::pair<SteadyTime, TimerId>, Task> timers;
  std::unordered_map<WatchId, Watch> watches;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
    timers.swap(timers_);
    timer_at_.clear();
    watches.swap(watches_);
    stopped_ = true;
  }
  for (auto& [id, w] : watches) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
  stopped_cv_.notify_all();
  // The callbacks are destroyed here, unrun, outside the lock (their captures may post).
}

void Loop::wake() {
  const std::uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(wake_fd_, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

bool Loop::on_loop_thread() const { return runner_.load() == std::this_thread::get_id(); }

bool Loop::post(Task fn) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return false;
    tasks_.push_back(std::move(fn));
  }
  if (!on_loop_thread()) wake();
  return true;
}

void Loop::run_sync(const Task& fn) {
  if (on_loop_thread() || !threaded_) {
    fn();
    return;
  }
  auto done = std::make_shared<bool>(false);
  const bool posted = post([this, &fn, done] {
    fn();
    std::lock_guard lock(mu_);
    *done = true;
    stopped_cv_.notify_all();
  });
  if (posted) {
    std::unique_lock lock(mu_);
    stopped_cv_.wait(lock, [&] { return *done || stopped_; });
    if (*done) return;
  }
  // The loop stopped before running it (its thread has exited): nothing else runs now.
  fn();
}

TimerId Loop::after(Duration delay, Task fn) {
  std::lock_guard lock(mu_);
  if (stopped_) return 0;
  const TimerId id = next_id_++;
  const SteadyTime at = clock_.now() + std::max(delay, Duration::zero());
  const bool earliest = timers_.empty() || at < timers_.begin()->first.first;
  timers_.emplace(std::make_pair(at, id), std::move(fn));
  timer_at_.emplace(id, at);
  if (earliest) arm_timerfd();
  return id;
}

bool Loop::cancel(TimerId id) {
  Task dead;
  {
    std::lock_guard lock(mu_);
    auto it = timer_at_.find(id);
    if (it == timer_at_.end()) return false;
    auto t = timers_.find({it->second, id});
    dead = std::move(t->second);
    timers_.erase(t);
    timer_at_.erase(it);
  }
  return true;  // `dead` is destroyed outside the lock
}

void Loop::arm_timerfd() {
  itimerspec spec{};
  if (!timers_.empty()) {
    auto left = timers_.begin()->first.first - clock_.now();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    if (ns < 1) ns = 1;  // due: fire at once (0 would disarm)
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
}

Result<WatchId> Loop::watch_fd(int fd, std::uint32_t events, FdCallback cb) {
  std::lock_guard lock(mu_);
  if (stopped_) return Error::unavailable("event loop stopped");
  const WatchId id = next_id_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    return Error::unavailable(std::string("epoll_ctl(ADD): ") + std::strerror(err));
  }
  watches_.emplace(id, Watch{fd, std::make_shared<FdCallback>(std::move(cb))});
  return id;
}

Status Loop::modify_fd(WatchId id, std::uint32_t events) {
  std::lock_guard lock(mu_);
  auto it = watches_.find(id);
  if (it == watches_.end()) return Error::internal("unknown fd watch");
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, it->second.fd, &ev) != 0) {
    const int err = errno;
    return Error::unavailable(std::string("epoll_ctl(MOD): ") + std::strerror(err));
  }
  return {};
}

bool Loop::unwatch_fd(WatchId id) {
  std::shared_ptr<FdCallback> dead;
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return false;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
    dead = std::move(it->second.cb);
    watches_.erase(it);
  }
  return true;
}

size_t Loop::timer_count() const {
  std::lock_guard lock(mu_);
  return timers_.size();
}

size_t Loop::watch_count() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

size_t Loop::run_tasks() {
  // Only the tasks queued before this batch: a task that posts again runs next turn.
  std::deque<Task> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(tasks_);
  }
  size_t ran = 0;
  for (auto& t : batch) {
    if (quit_.load()) break;
    t();
    ++ran;
  }
  return ran;
}

size_t Loop::run_due_timers() {
  std::vector<TimerId> due;
  {
    std::lock_guard lock(mu_);
    const SteadyTime now = clock_.now();
    for (auto it = timers_.begin(); it != timers_.end() && it->first.first <= now; ++it) {
      due.push_back(it->first.second);
    }
  }
  size_t ran = 0;
  for (TimerId id : due) {
    if (quit_.load()) break;
    Task fn;
    {
      std::lock_guard lock(mu_);
      auto it = timer_at_.find(id);
      if (it == timer_at_.end()) continue;  // cancelled by an earlier callback of this batch
      auto t = timers_.find({it->second, id});
      fn = std::move(t->second);
      timers_.erase(t);
      timer_at_.erase(it);
    }
    fn();
    ++ran;
  }
  std::lock_guard lock(mu_);
  if (!stopped_) arm_timerfd();
  return ran;
}

size_t Loop::turn(int timeout_ms) {
  {
    // Tasks posted from the loop thread itself did not wake the loop: do not sleep on them.
    std::lock_guard lock(mu_);
    if (!tasks_.empty()) timeout_ms = 0;
  }
  epoll_event events[kMaxEvents];
  int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) log::warn(kComponent, "epoll_wait: {}", std::strerror(errno));
    n = 0;
  }
  size_t ran = 0;
  for (int i = 0; i < n && !quit_.load(); ++i) {
    const std::uint64_t key = events[i].data.u64;
    if (key == kWakeKey) {
      drain(wake_fd_);
      continue;
    }
    if (key == kTimerKey) {
      drain(timer_fd_);
      continue;
    }
    std::shared_ptr<FdCallback> cb;
    {
      std::lock_guard lock(mu_);
      auto it = watches_.find(key);
      if (it == watches_.end()) continue;  // unwatched by an earlier callback of this batch
      cb = it->second.cb;
    }
    (*cb)(events[i].events);
    ++ran;
  }
  if (!quit_.load()) ran += run_tasks();
  if (!quit_.load()) ran += run_due_timers();
  return ran;
}

void Loop::run_thread() {
  // "ep-runtime-0"...: how the loops show up in top -H, gdb and /proc/<pid>/task/*/comm.
  const std::string name = "ep-runtime-" + std::to_string(index_);
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
  runner_.store(std::this_thread::get_id());
  while (!quit_.load()) turn(-1);
  runner_.store(std::thread::id{});
}

size_t Loop::run_until_idle() {
  runner_.store(std::this_thread::get_id());
  size_t total = 0;
  for (;;) {
    const size_t ran = turn(0);
    total += ran;
    if (ran == 0 || quit_.load()) break;
  }
  runner_.store(std::thread::id{});
  return total;
}

bool Loop::run_until(const std::function<bool()>& done, Duration real_deadline) {
  const auto end = std::chrono::steady_clock::now() + real_deadline;
  for (;;) {
    if (done()) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return done();
    runner_.store(std::this_thread::get_id());
    turn(static_cast<int>(std::min<long long>(left.count(), 50)));
    runner_.store(std::thread::id{});
  }
}

}  // namespace ep::runtime
