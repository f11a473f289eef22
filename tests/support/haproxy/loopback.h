#pragma once
// Loopback helpers for tests: free ports, a minimal HTTP/1.1 GET, and a raw TCP client for
// holding connections open. Only 127.0.0.1 is ever used.

#include <chrono>
#include <string>

#include "core/result.h"

namespace ep::test {

// A port free for TCP and UDP on 127.0.0.1, taken from below the kernel's ephemeral range so no
// outgoing connection can take it before the component it is meant for binds it; never one this
// process was given before, nor one another running test process holds (a lock file per port in
// the temp directory, held until the process ends). 0 if none is left.
int free_port();

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:<port><path> with Connection: close; reads to EOF.
Result<HttpReply> http_get(int port, const std::string& path,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A raw loopback TCP connection (RAII). Used to hold a request open through HAProxy.
class TcpClient {
 public:
  TcpClient() = default;
  ~TcpClient();
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  Status connect(int port, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Status send(const std::string& data);
  // Reads until the peer closes or the timeout; returns what arrived.
  Result<std::string> read_to_eof(std::chrono::milliseconds timeout);
  void close();
  bool is_open() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace ep::test
