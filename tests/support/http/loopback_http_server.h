#pragma once
// A small HTTP/1.1 server on 127.0.0.1 (free port) or a unix socket, for tests: keep-alive,
// Content-Length bodies, one thread per connection so a handler may block (long polls), and
// fault actions (hang, close mid-body, close without reply). Test-only: not hardened.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ep::test {

struct HttpServerRequest {
  std::string method;
  std::string target;  // as sent: /v1/health/service/web?index=3
  std::string path;    // percent-decoded path
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::map<std::string, std::string> headers;              // names lower-cased
  std::string body;

  bool has_param(const std::string& name) const;
  std::string param(const std::string& name) const;  // first value or ""
  std::vector<std::string> params(const std::string& name) const;
  std::string header(const std::string& lower_name) const;
};

struct HttpServerReply {
  enum class Action {
    kNormal,
    kHang,          // read the request, never answer (until the client leaves or the server stops)
    kCloseMidBody,  // send headers and half of the body, then close
    kCloseNoReply,  // close the connection without a byte
  };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Action action = Action::kNormal;
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<HttpServerReply(const HttpServerRequest&)>;

  explicit LoopbackHttpServer(Handler handler);
  ~LoopbackHttpServer();

  // Binds 127.0.0.1:0 (or the unix socket path) and starts accepting. Throws std::runtime_error
  // on failure (tests only).
  void start();
  void start_unix(const std::string& path);
  void stop();  // closes every connection and joins every thread; idempotent

  std::uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::uint64_t connections_accepted() const { return accepted_.load(); }
  std::uint64_t requests_served() const { return requests_.load(); }
  bool stopping() const { return stopping_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::string unix_path_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
};

}  // namespace ep::test
