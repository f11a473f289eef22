#include "support/haproxy/loopback.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <cstring>
#include <mutex>
#include <random>
#include <string>

namespace ep::test {

namespace {
// Test ports come from below the kernel's ephemeral range (32768-60999 by default). A port taken
// from that range with bind(0) and closed again can be handed to any process's next outgoing
// connection before the component it was reserved for binds it (CI saw HAProxy fail with "cannot
// bind socket (Address already in use)" for such a port). Below the range only another test can
// take it, and test processes reserve ports from each other (reserve_across_processes).
constexpr int kFirstPort = 20000;
constexpr int kLastPort = 32000;

// True if nothing holds `port` on 127.0.0.1 for TCP or UDP (no SO_REUSEADDR, so a port with
// connections still in TIME_WAIT counts as taken too).
bool port_is_free(int port) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    if (!ok) return false;
  }
  return true;
}

// An exclusive flock on <tmp>/elasticproxy-test-ports/<port>, kept (its fd left open) until the
// process ends; the kernel drops it then, even after a crash. False if another process holds
// it: two tests running at once (ctest -j) never get the same port, even one reserved and not
// yet bound. Without the directory, only the bind check is left.
bool reserve_across_processes(int port) {
  static const std::string dir = [] {
    std::error_code ec;
    const auto d = std::filesystem::temp_directory_path(ec) / "elasticproxy-test-ports";
    std::filesystem::create_directories(d, ec);
    ::chmod(d.c_str(), 01777);
    return d.string();
  }();
  const std::string path = dir + "/" + std::to_string(port);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return true;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  return true;
}
}  // namespace

int free_port() {
  // Never the same port twice in one process: a test often reserves a port for one component
  // before another (etcd, a double) asks for its own.
  static std::mutex mu;
  static int next = 0;
  static int handed_out = 0;
  std::lock_guard lock(mu);
  constexpr int kSpan = kLastPort - kFirstPort;
  if (next == 0) next = kFirstPort + static_cast<int>(std::random_device{}() % kSpan);
  while (handed_out < kSpan) {
    const int port = next;
    next = next + 1 > kLastPort ? kFirstPort : next + 1;
    ++handed_out;
    if (reserve_across_processes(port) && port_is_free(port)) return port;
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
