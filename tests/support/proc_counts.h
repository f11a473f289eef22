#pragma once
// What the process holds right now, from /proc/self: threads and inotify instances.

#include <unistd.h>

#include <filesystem>
#include <string>

namespace ep::test {

inline size_t thread_count() {
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
