// Admin-socket reply framing (prompt mode): a peer on a real Unix socket answers `prompt` with
// "\n> " and then sends the fuzz input as the reply stream, and closes. AdminSocket::run must
// return one reply per command line or a clean error, never crash or hang (bounded timeout).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>

#include "fuzz/fuzz_support.h"
#include "haproxy/runtime/admin_socket.h"

namespace {

std::string g_path;
int g_listener = -1;

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Accepts one connection, sends the prompt and `input`, half-closes and drains until the client
// hangs up.
void serve_one(std::string input) {
  int fd = ::accept(g_listener, nullptr, nullptr);
  if (fd < 0) return;
  write_all(fd, "\n> ", 3);
  write_all(fd, input.data(), input.size());
  ::shutdown(fd, SHUT_WR);
  char buf[4096];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN);
  g_path = "/tmp/ep-fuzz-admin-" + std::to_string(::getpid()) + ".sock";
  ::unlink(g_path.c_str());
  g_listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, g_path.c_str(), sizeof addr.sun_path - 1);
  EP_FUZZ_CHECK(::bind(g_listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  EP_FUZZ_CHECK(::listen(g_listener, 4) == 0);
  std::atexit([] { ::unlink(g_path.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::thread peer(serve_one, std::string(ep::fuzz::as_text(data, size)));
  ep::haproxy::AdminSocket socket(g_path, std::chrono::milliseconds(500));
  const std::vector<std::string> lines = {"show info", "set server be/a state ready;show stat",
                                          "help"};
  auto replies = socket.run(lines);
  if (replies) {
    EP_FUZZ_CHECK(replies->size() == lines.size());
  } else {
    EP_FUZZ_CHECK(!replies.error().message.empty());
  }
  peer.join();
  return 0;
}
