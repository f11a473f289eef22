#pragma once
// What the process holds right now, from /proc/self: threads and inotify instances.

#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

namespace ep::test {

// The process's threads. Sanitizer runtimes (TSan) start a background thread of their own at the
// first pthread_create; one short-lived thread is created and joined before the first count so
// that thread is already there and every count compares like with like.
inline size_t thread_count() {
  static const bool kWarmedUp = [] {
    std::thread([] {}).join();
    return true;
  }();
  (void)kWarmedUp;
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

inline size_t inotify_instances() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    char target[256];
    const ssize_t len = ::readlink(e.path().c_str(), target, sizeof target - 1);
    if (len <= 0) continue;
    if (std::string(target, static_cast<size_t>(len)) == "anon_inode:inotify") ++n;
  }
  return n;
}

}  // namespace ep::test
