#pragma once
// Local HTTP backends for `elasticproxy demo`: each answers 200 with "backend-<index>" on
// 127.0.0.1, served by the project's HTTP server (ops/http_server.h).

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace ep::ops {
class HttpServer;
}

namespace ep::demo {

// A loopback TCP port free at the time of the call (0 when none could be bound).
int free_port();

// One backend. Its port is chosen on the first start() and kept, so a restarted backend keeps its
// address. start()/stop() from one thread; running() from any.
class LocalBackend {
 public:
  explicit LocalBackend(int index);
  ~LocalBackend();
  LocalBackend(const LocalBackend&) = delete;
  LocalBackend& operator=(const LocalBackend&) = delete;

  // False (and a line on stderr) when the server could not start. Idempotent.
  bool start();
  void stop();

  int port() const { return port_; }
  bool running() const { return running_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int index_;
  int port_ = 0;
  std::atomic<bool> running_{false};
  std::unique_ptr<ops::HttpServer> server_;
};

// The Prometheus file_sd document listing `live` (label env=demo).
std::string file_sd(const std::vector<const LocalBackend*>& live);

// Writes `text` to `path` through a temporary file and a rename (the file source sees one change).
void write_atomically(const std::string& path, const std::string& text);

}  // namespace ep::demo
