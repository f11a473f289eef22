#include "ops/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

namespace ep::ops {
namespace {

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Status ensure_private_dir(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error::unavailable("cannot create lock directory " + d + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(d.c_str(), &st) != 0) {
    return Error::unavailable("cannot use lock directory " + d + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error::refused("refusing lock directory " + d + ": not a directory (a symlink?)");
  }
  if (st.st_uid != ::geteuid()) {
    return Error::refused("refusing lock directory " + d + ": owned by uid " +
                          std::to_string(st.st_uid) + ", not by this user (uid " +
                          std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & 022) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error::refused("refusing lock directory " + d + ": mode " + mode +
                          " lets other users write into it");
  }
  return {};
}

Result<std::filesystem::path> default_lock_dir() {
  std::filesystem::path dir;
  if (const char* rd = std::getenv("RUNTIME_DIRECTORY"); rd != nullptr && *rd != '\0') {
    // systemd may pass several (colon-separated); the first is ours.
    std::string first(rd);
    dir = first.substr(0, first.find(':'));
  } else if (std::error_code ec; std::filesystem::is_directory("/run/elasticproxy", ec) ||
                                 ::access("/run", W_OK) == 0) {
    dir = "/run/elasticproxy";
  } else if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    dir = std::filesystem::path(xdg) / "elasticproxy";
  } else {
    dir = "/tmp/elasticproxy-" + std::to_string(::geteuid());
  }
  if (Status s = ensure_private_dir(dir); !s.ok()) return s.error();
  return dir;
}

std::filesystem::path lock_path_for_socket(const std::filesystem::path& dir,
                                           const std::string& socket_path) {
  std::error_code ec;
  std::filesystem::path p =
      std::filesystem::weakly_canonical(std::filesystem::absolute(socket_path, ec), ec);
  if (ec) p = std::filesystem::path(socket_path).lexically_normal();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(p.string())));
  return dir / ("elasticproxy-" + std::string(hex) + ".lock");
}

InstanceLock::~InstanceLock() { release(); }

InstanceLock::InstanceLock(InstanceLock&& other) noexcept
    : fds_(std::move(other.fds_)), paths_(std::move(other.paths_)) {
  other.fds_.clear();
  other.paths_.clear();
}

InstanceLock& InstanceLock::operator=(InstanceLock&& other) noexcept {
  if (this != &other) {
    release();
    fds_ = std::move(other.fds_);
    paths_ = std::move(other.paths_);
    other.fds_.clear();
    other.paths_.clear();
  }
  return *this;
}

void InstanceLock::release() {
  for (int fd : fds_) ::close(fd);  // closing drops the flock; the file stays (no unlink race)
  fds_.clear();
  paths_.clear();
}

Result<InstanceLock> InstanceLock::acquire(const std::vector<std::filesystem::path>& paths,
                                           const std::vector<std::string>& what) {
  std::vector<size_t> order(paths.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return paths[a] < paths[b]; });
  InstanceLock lock;
  for (size_t i : order) {
    const std::string path = paths[i].string();
    const std::string guards = i < what.size() ? " (guards " + what[i] + ")" : "";
    if (std::find(lock.paths_.begin(), lock.paths_.end(), paths[i]) != lock.paths_.end()) continue;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      return Error::unavailable("cannot open lock file " + path + guards + ": " +
                                std::strerror(errno));
    }
    // A lock file someone else made (e.g. --lock-file in a shared directory) could be held by
    // them forever: only our own is used.
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_uid != ::geteuid() || !S_ISREG(st.st_mode)) {
      const unsigned owner = st.st_uid;
      ::close(fd);
      return Error::refused("refusing lock file " + path + guards + ": owned by uid " +
                            std::to_string(owner) + ", not by this user (uid " +
                            std::to_string(::geteuid()) + ")");
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string pid = read_pid(fd);
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Error::refused("another elasticproxy" + (pid.empty() ? "" : " (pid " + pid + ")") +
                              " already manages this HAProxy" + guards + ": lock " + path +
                              " is held");
      }
      return Error::unavailable("cannot lock " + path + guards + ": " + std::strerror(err));
    }
    // Record our pid for the message a second instance prints (best effort: read-only opens
    // cannot, which only loses the pid in that message).
    const std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) == 0) {
      [[maybe_unused]] auto n = ::pwrite(fd, me.data(), me.size(), 0);
    }
    lock.fds_.push_back(fd);
    lock.paths_.push_back(paths[i]);
  }
  return lock;
}

}  // namespace ep::ops
