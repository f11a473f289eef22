#include "support/haproxy/http_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>

namespace ep::test {

namespace {

struct Conn {
  std::string in;
  std::string out;
  bool held = false;
  bool close_after = false;
};

}  // namespace

HttpBackend::HttpBackend(std::string name) : HttpBackend(std::move(name), 0) {}

HttpBackend::HttpBackend(std::string name, int port) : name_(std::move(name)) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 128) != 0) {
    ::close(fd);
    return;
  }
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = fd;
  thread_ = std::thread([this] { loop(); });
}

HttpBackend::~HttpBackend() {
  stop_ = true;
  if (wake_[1] >= 0) (void)::write(wake_[1], "s", 1);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void HttpBackend::release_held() {
  release_ = true;
  (void)::write(wake_[1], "r", 1);
}

void HttpBackend::loop() {
  std::map<int, Conn> conns;
  auto respond = [this](Conn& c) {
    c.out +=
        fmt::format("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{}",
                    name_.size(), c.close_after ? "Connection: close\r\n" : "", name_);
  };
  // Answers every complete request in the buffer unless one is held.
  auto process = [&](Conn& c) {
    while (!c.held) {
      auto end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      std::string head = c.in.substr(0, end);
      c.in.erase(0, end + 4);
      ++requests_;
      auto sp1 = head.find(' ');
      auto sp2 = head.find(' ', sp1 + 1);
      std::string path = sp1 == std::string::npos ? "" : head.substr(sp1 + 1, sp2 - sp1 - 1);
      for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      c.close_after = head.find("connection: close") != std::string::npos;
      if (path == "/hold") {
        c.held = true;
        ++held_;
        return;
      }
      respond(c);
    }
  };
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& [fd, c] : conns) {
      fds.push_back({fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof(buf)) > 0) {
      }
    }
    if (release_.exchange(false)) {
      for (auto& [fd, c] : conns) {
        if (c.held) {
          c.held = false;
          --held_;
          respond(c);
          process(c);
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        conns.emplace(fd, Conn{});
      }
    }
    std::vector<int> dead;
    for (std::size_t i = 2; i < fds.size(); ++i) {
      int fd = fds[i].fd;
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      bool closed = false;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[8192];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
          c.in.append(buf, static_cast<std::size_t>(n));
          process(c);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          closed = true;
        }
      }
      if (!closed && !c.out.empty()) {
        ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
        if (n < 0 && errno != EAGAIN && errno != EINTR) closed = true;
        if (c.out.empty() && c.close_after && !c.held) closed = true;
      }
      if (closed) dead.push_back(fd);
    }
    for (int fd : dead) {
      if (conns[fd].held) --held_;
      ::close(fd);
      conns.erase(fd);
    }
  }
  for (auto& [fd, c] : conns) ::close(fd);
}

}  // namespace ep::test
