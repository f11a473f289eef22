#pragma once
// The one inotify instance of a Runtime, shared by every file source.
//
// Watches are put on the DIRECTORY of each subscribed file (so an atomic rename-over is seen) and
// events are dispatched by file name: several files per directory and several subscribers per
// file share one kernel watch. A subscriber is told "look at the file again" (its callback) when
// an event names its file, when its directory is removed, moved or (re)appears, and when the
// kernel queue overflowed. A directory that cannot be watched (it does not exist yet) is retried
// every second; the subscribers are told when the watch is back. The watcher never reads files.
//
// Threading: subscribe()/unsubscribe() may be called from any thread; the inotify fd is read on
// the Runtime's first loop and each callback runs on the loop given at subscribe(). unsubscribe()
// called on that loop's thread (or once the runtime stopped) is final: the callback does not run
// after it returns.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "runtime/loop.h"

namespace ep::runtime {

using SubscriptionId = std::uint64_t;  // 0 is never valid

class FileWatcher {
 public:
  // `home` reads the inotify fd and runs the directory retry timer.
  explicit FileWatcher(Loop& home);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Watches `file` (through its directory). Fails only when the inotify instance cannot be created
  // (or watched); a missing directory is not an error (it is retried).
  Result<SubscriptionId> subscribe(const std::filesystem::path& file, Loop& loop,
                                   std::function<void()> on_change);
  void unsubscribe(SubscriptionId id);

  // For tests and /status: the inotify descriptor (-1 before the first subscription), how many
  // directories have a kernel watch, how many subscriptions exist.
  int fd() const;
  size_t watched_directories() const;
  size_t subscriptions() const;

  static constexpr std::chrono::milliseconds kWatchRetry{1000};

 private:
  struct Dir {
    int wd = -1;
    bool warned = false;
    std::unordered_map<std::string, std::vector<SubscriptionId>> by_name;
  };
  struct Sub {
    std::string dir;
    std::string name;
    Loop* loop;
    std::shared_ptr<std::function<void()>> cb;
  };

  Status ensure_fd();                                // requires mu_
  bool add_watch(const std::string& key, Dir& dir);  // requires mu_
  void release_wd(int wd);                           // requires mu_
  void arm_retry();                                  // requires mu_
  void on_readable();
  void on_retry();
  // Posts a call of each subscription's callback to its loop. Requires mu_.
  void notify(const std::vector<SubscriptionId>& ids);
  void notify_dir(const Dir& dir);

  Loop& home_;
  mutable std::mutex mu_;
  int fd_ = -1;
  WatchId fd_watch_ = 0;
  TimerId retry_timer_ = 0;
  std::map<std::string, Dir> dirs_;
  std::unordered_map<SubscriptionId, Sub> subs_;
  SubscriptionId next_id_ = 1;
};

}  // namespace ep::runtime
