#include "support/haproxy/loopback.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_set>

namespace ep::test {

namespace {
int bound_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}
}  // namespace

int free_port() {
  // The kernel may hand the same port out again once it is closed, and a test often reserves a
  // port for one component before another (etcd, a double) asks for its own: never return a port
  // this process returned before (CI saw the ops listener and etcd given the same port).
  static std::mutex mu;
  static std::unordered_set<int> handed_out;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int port = bound_port();
    if (port == 0) return 0;
    if (handed_out.insert(port).second) return port;
  }
  return 0;
}

TcpClient::~TcpClient() { close(); }

void TcpClient::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Status TcpClient::connect(int port, std::chrono::milliseconds timeout) {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Error::unavailable(fmt::format("socket: {}", std::strerror(errno)));
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    int err = errno;
    close();
    return Error::unavailable(fmt::format("connect 127.0.0.1:{}: {}", port, std::strerror(err)));
  }
  return {};
}

Status TcpClient::send(const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::unavailable(fmt::format("send: {}", std::strerror(errno)));
    }
    off += static_cast<std::size_t>(n);
  }
  return {};
}

Result<std::string> TcpClient::read_to_eof(std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error::unavailable(fmt::format("timed out after {} bytes", out.size()));
    }
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return out;
      return Error::unavailable(fmt::format("recv: {}", std::strerror(errno)));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

Result<HttpReply> http_get(int port, const std::string& path, std::chrono::milliseconds timeout) {
  TcpClient c;
  if (auto st = c.connect(port, timeout); !st) return st.error();
  if (auto st = c.send(
          fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path));
      !st) {
    return st.error();
  }
  auto raw = c.read_to_eof(timeout);
  if (!raw) return raw.error();
  HttpReply reply;
  if (raw->rfind("HTTP/1.", 0) != 0 || raw->size() < 12) {
    return Error::invalid(fmt::format("not an HTTP reply: '{}'", raw->substr(0, 80)));
  }
  reply.status = std::atoi(raw->c_str() + 9);
  auto body = raw->find("\r\n\r\n");
  if (body != std::string::npos) reply.body = raw->substr(body + 4);
  return reply;
}

}  // namespace ep::test
