#include "net/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace ep::net {

namespace {

int remaining_ms(UnixSocket::Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  // Round up so a sub-millisecond remainder still polls once.
  return static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30));
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

UnixSocket::~UnixSocket() { close(); }

UnixSocket::UnixSocket(UnixSocket&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

UnixSocket& UnixSocket::operator=(UnixSocket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    buffer_ = std::move(other.buffer_);
    other.fd_ = -1;
  }
  return *this;
}

void UnixSocket::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Result<UnixSocket> UnixSocket::connect(const std::string& path, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error::invalid(fmt::format("unix socket path '{}' is empty or longer than {} bytes",
                                      path, sizeof(addr.sun_path) - 1));
  }
  if (path.find('\0') != std::string::npos) {
    return Error::invalid(fmt::format("unix socket path contains a NUL byte"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Error::unavailable(fmt::format("{}: socket(): {}", path, errno_text(errno)));
  }
  UnixSocket sock(fd, path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    // A Unix socket whose backlog is full answers EAGAIN rather than blocking; HAProxy's
    // listener is effectively "busy": treat like a refused connection.
    if (err != EINPROGRESS) {
      return Error::unavailable(fmt::format("{}: connect: {}", path, errno_text(err)));
    }
    if (auto st = sock.wait(POLLOUT, deadline, "connect"); !st) return st.error();
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      return Error::unavailable(fmt::format("{}: connect: {}", path, errno_text(so_error)));
    }
  }
  return sock;
}

Status UnixSocket::wait(short events, Deadline deadline, const char* what) {
  for (;;) {
    int timeout = remaining_ms(deadline);
    if (timeout == 0) {
      return Error::unavailable(fmt::format("{}: timed out waiting to {}", path_, what));
    }
    pollfd p{fd_, events, 0};
    int n = ::poll(&p, 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::unavailable(fmt::format("{}: poll: {}", path_, errno_text(errno)));
    }
    if (n == 0) continue;  // re-check the deadline
    return {};             // readable/writable or error/hangup: the next syscall says which
  }
}

Status UnixSocket::write_all(std::string_view data, Deadline deadline) {
  if (fd_ < 0) return Error::unavailable(fmt::format("{}: socket is closed", path_));
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto st = wait(POLLOUT, deadline, "write"); !st) return st;
      continue;
    }
    return Error::unavailable(fmt::format("{}: write: {}", path_, errno_text(errno)));
  }
  return {};
}

Result<std::size_t> UnixSocket::fill(Deadline deadline) {
  char chunk[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n >= 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto st = wait(POLLIN, deadline, "read"); !st) return st.error();
      continue;
    }
    return Error::unavailable(fmt::format("{}: read: {}", path_, errno_text(errno)));
  }
}

Result<std::string> UnixSocket::read_until(const Complete& complete, Deadline deadline,
                                           std::size_t max_bytes) {
  if (fd_ < 0) return Error::unavailable(fmt::format("{}: socket is closed", path_));
  for (;;) {
    if (!buffer_.empty()) {
      std::size_t len = complete(buffer_);
      if (len > 0) {
        std::string out = buffer_.substr(0, len);
        buffer_.erase(0, len);
        return out;
      }
    }
    if (buffer_.size() > max_bytes) {
      return Error::invalid(
          fmt::format("{}: reply exceeds {} bytes without completing", path_, max_bytes));
    }
    auto n = fill(deadline);
    if (!n) return n.error();
    if (*n == 0) {
      return Error::unavailable(
          fmt::format("{}: connection closed by peer after {} bytes", path_, buffer_.size()));
    }
  }
}

Result<std::string> UnixSocket::read_until_delimiter(std::string_view delimiter,
                                                     Deadline deadline) {
  return read_until(
      [delimiter](std::string_view buf) -> std::size_t {
        auto pos = buf.find(delimiter);
        return pos == std::string_view::npos ? 0 : pos + delimiter.size();
      },
      deadline);
}

Result<std::size_t> UnixSocket::exchange(std::string_view& out, Deadline deadline) {
  if (fd_ < 0) return Error::unavailable(fmt::format("{}: socket is closed", path_));
  short events = POLLIN | (out.empty() ? 0 : POLLOUT);
  if (auto st = wait(events, deadline, out.empty() ? "read" : "read or write"); !st) {
    return st.error();
  }
  if (!out.empty()) {
    ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return Error::unavailable(fmt::format("{}: write: {}", path_, errno_text(errno)));
    }
  }
  char chunk[65536];
  ssize_t n = ::recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
  if (n > 0) {
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }
  if (n == 0) {
    return Error::unavailable(
        fmt::format("{}: connection closed by peer after {} bytes", path_, buffer_.size()));
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return std::size_t{0};
  return Error::unavailable(fmt::format("{}: read: {}", path_, errno_text(errno)));
}

std::string UnixSocket::consume(std::size_t n) {
  n = std::min(n, buffer_.size());
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

void UnixSocket::discard(std::size_t n) { buffer_.erase(0, std::min(n, buffer_.size())); }

Result<std::string> UnixSocket::read_to_eof(Deadline deadline, std::size_t max_bytes) {
  if (fd_ < 0) return Error::unavailable(fmt::format("{}: socket is closed", path_));
  for (;;) {
    if (buffer_.size() > max_bytes) {
      return Error::invalid(fmt::format("{}: reply exceeds {} bytes", path_, max_bytes));
    }
    auto n = fill(deadline);
    if (!n) return n.error();
    if (*n == 0) {
      std::string out = std::move(buffer_);
      buffer_.clear();
      return out;
    }
  }
}

}  // namespace ep::net
