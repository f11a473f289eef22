#include "support/haproxy/fake_admin_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ep::test {

FakeAdminServer::FakeAdminServer(std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return;
  ::unlink(path_.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (fd < 0 || path_.size() >= sizeof(a.sun_path)) {
    if (fd >= 0) ::close(fd);
    return;
  }
  std::memcpy(a.sun_path, path_.data(), path_.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return;
  }
  listen_fd_ = fd;
  thread_ = std::thread([this] { loop(); });
}

FakeAdminServer::~FakeAdminServer() {
  stop_ = true;
  if (wake_[1] >= 0) (void)::write(wake_[1], "s", 1);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

std::vector<std::string> FakeAdminServer::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

void FakeAdminServer::loop() {
  while (!stop_) {
    pollfd p[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(p, 2, 1000) <= 0) continue;
    if (p[0].revents) break;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int conn = connections_++;
    std::string in;
    bool open = true;
    while (open && !stop_) {
      pollfd q[2] = {{wake_[0], POLLIN, 0}, {fd, POLLIN, 0}};
      if (::poll(q, 2, 1000) <= 0) continue;
      if (q[0].revents) break;
      char buf[16384];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      std::size_t nl;
      while (open && (nl = in.find('\n')) != std::string::npos) {
        std::string line = in.substr(0, nl);
        in.erase(0, nl + 1);
        {
          std::lock_guard<std::mutex> lock(mu_);
          lines_.push_back(line);
        }
        auto out = handler_(line, conn);
        if (!out) {
          open = false;
          break;
        }
        std::size_t off = 0;
        while (off < out->size()) {
          ssize_t w = ::send(fd, out->data() + off, out->size() - off, MSG_NOSIGNAL);
          if (w <= 0) {
            open = false;
            break;
          }
          off += static_cast<std::size_t>(w);
        }
      }
    }
    ::close(fd);
  }
}

FakeAdminServer::Handler FakeAdminServer::silent() {
  return [](const std::string&, int) -> std::optional<std::string> { return std::string(); };
}

FakeAdminServer::Handler FakeAdminServer::garbage(std::string bytes) {
  return [bytes](const std::string&, int) -> std::optional<std::string> {
    return bytes.empty() ? std::nullopt : std::optional<std::string>(bytes);
  };
}

FakeAdminServer::Handler FakeAdminServer::prompt_mode(
    std::function<std::string(const std::string&, int)> reply) {
  return [reply](const std::string& line, int conn) -> std::optional<std::string> {
    if (line == "prompt") return std::string("\n> ");
    if (line == "quit") return std::nullopt;
    std::string out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= line.size(); ++i) {
      if (i < line.size() && line[i] == '\\') {
        ++i;
        continue;
      }
      if (i == line.size() || line[i] == ';') {
        std::string text = reply(line.substr(start, i - start), conn);
        if (!text.empty()) out += text + "\n";
        out += "\n> ";
        start = i + 1;
      }
    }
    return out;
  };
}

}  // namespace ep::test
