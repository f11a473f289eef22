#include "ops/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

std::filesystem::path default_lock_dir() {
  if (const char* rd = std::getenv("RUNTIME_DIRECTORY"); rd != nullptr && *rd != '\0') {
    // systemd may pass several (colon-separated); the first is ours.
    std::string first(rd);
    first = first.substr(0, first.find(':'));
    return first;
  }
  std::error_code ec;
  if (std::filesystem::is_directory("/run/elasticproxy", ec)) return "/run/elasticproxy";
  return "/tmp";
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
    // Open an existing file first without O_CREAT: in sticky directories (/tmp) another user's
    // file cannot be opened with O_CREAT (fs.protected_regular), but can be read and flocked.
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EACCES) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
      fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (fd < 0) {
      return Error::unavailable("cannot open lock file " + path + guards + ": " +
                                std::strerror(errno));
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
