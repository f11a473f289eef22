#include "demo/local_backend.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "ops/http_server.h"

namespace ep::demo {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 512) == 0) {
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

LocalBackend::LocalBackend(int index) : index_(index) {}

LocalBackend::~LocalBackend() { stop(); }

bool LocalBackend::start() {
  if (server_) return true;
  if (port_ == 0) port_ = free_port();
  ops::HttpLimits limits;
  // HAProxy is one peer holding many connections (health checks, load): no per-peer cap.
  limits.max_connections = 1024;
  limits.max_connections_per_peer = 1024;
  const std::string body = fmt::format("backend-{}\n", index_);
  auto server = std::make_unique<ops::HttpServer>(
      [body](const ops::HttpRequest&) {
        ops::HttpResponse r;
        r.body = body;
        return r;
      },
      limits);
  if (Status st = server->start(target()); !st) {
    std::fprintf(stderr, "demo: backend %d: %s\n", index_, st.error().message.c_str());
    return false;
  }
  server_ = std::move(server);
  running_ = true;
  return true;
}

void LocalBackend::stop() {
  running_ = false;
  if (server_) server_->stop();
  server_.reset();
}

std::string file_sd(const std::vector<const LocalBackend*>& live) {
  std::string targets;
  for (const auto* b : live) targets += (targets.empty() ? "\"" : ", \"") + b->target() + "\"";
  return "[{\"targets\": [" + targets + "], \"labels\": {\"env\": \"demo\"}}]\n";
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace ep::demo
