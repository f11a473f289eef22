#pragma once
// Single instance: two ElasticProxy daemons must never manage the same HAProxy. The daemon takes
// an exclusive flock() on one lock file per admin socket before it touches anything; a second
// daemon for any of the same sockets fails with a clear message (and the pid of the holder).
// The kernel drops the lock when the process dies, so a crash never leaves a stale lock.

#include <filesystem>
#include <string>
#include <vector>

#include "core/result.h"

namespace ep::ops {

// The lock directory used when none is given, always a private one (never a shared /tmp, where
// another user could pre-create our lock file and block the daemon):
//  1. $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), its first entry;
//  2. /run/elasticproxy (created 0700 when it is missing and /run is writable, i.e. as root);
//  3. $XDG_RUNTIME_DIR/elasticproxy, created 0700;
//  4. /tmp/elasticproxy-<euid>, created 0700.
// The directory must be ours: a real directory (not a symlink), owned by the effective user, not
// writable by group or others; otherwise kRefused naming it, its owner and its mode.
Result<std::filesystem::path> default_lock_dir();

// Creates `dir` (mode 0700) if it is missing, then checks it is private as above.
Status ensure_private_dir(const std::filesystem::path& dir);

// The lock file for one admin socket: <dir>/elasticproxy-<16 hex digits of a hash of the
// socket's absolute, normalised path>.lock. Same socket, same file, whatever the spelling.
std::filesystem::path lock_path_for_socket(const std::filesystem::path& dir,
                                           const std::string& socket_path);

class InstanceLock {
 public:
  InstanceLock() = default;
  ~InstanceLock();
  InstanceLock(InstanceLock&& other) noexcept;
  InstanceLock& operator=(InstanceLock&& other) noexcept;
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // Locks every path (non-blocking), in sorted order. On conflict: an Error of kind kRefused
  // naming the file, what it guards and the holder's pid; nothing stays locked. Other failures
  // (directory missing, permission) are kUnavailable. `what[i]` describes paths[i] in messages.
  static Result<InstanceLock> acquire(const std::vector<std::filesystem::path>& paths,
                                      const std::vector<std::string>& what);

  const std::vector<std::filesystem::path>& paths() const { return paths_; }
  void release();

 private:
  std::vector<int> fds_;
  std::vector<std::filesystem::path> paths_;
};

}  // namespace ep::ops
