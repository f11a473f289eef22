#pragma once
// Runs the real `haproxy -db -f <cfg>` for integration tests (and the daemon's end-to-end tests).
// The binary is haproxy_binary() ($EP_HAPROXY, else `haproxy` from PATH) unless one is given.
//
//   ep::test::HaproxyFixture hp(R"(
//     global
//       stats socket @SOCKET@ level admin
//     defaults
//       mode http
//       timeout connect 1s
//       timeout client 5s
//       timeout server 5s
//     frontend fe
//       bind 127.0.0.1:@PORT0@
//       default_backend be
//     backend be
//       balance roundrobin
//   )");
//   ASSERT_TRUE(hp.start().ok()) << hp.log();
//   std::string reply = hp.admin("show servers state be");   // raw reply, non-prompt mode
//   ep::test::http_get(hp.port(0), "/");
//
// Placeholders in the config text: @SOCKET@ (admin socket path, short, under a private /tmp
// directory), @DIR@ (that directory), @PORT0@ .. @PORT9@ (free loopback ports chosen at
// construction; port(i) returns them). start() writes the config, spawns haproxy with its
// stdout/stderr in <dir>/haproxy.log (log()), and returns once the socket answers `show info`
// (or an error with the log when haproxy exits or the timeout passes). stop() = SIGTERM +
// waitpid (SIGKILL after 5 s); kill9() = SIGKILL + waitpid; restart() = stop() + start() with the
// same config, socket and ports. The destructor kills a running haproxy, reaps it and removes the
// directory: no stray processes or files. Not thread-safe.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/result.h"
#include "support/haproxy/haproxy_binary.h"

namespace ep::test {

class HaproxyFixture {
 public:
  static constexpr int kPorts = 10;

  explicit HaproxyFixture(std::string config_template, std::string binary = haproxy_binary());
  ~HaproxyFixture();
  HaproxyFixture(const HaproxyFixture&) = delete;
  HaproxyFixture& operator=(const HaproxyFixture&) = delete;

  // True when the haproxy binary can be executed (tests may GTEST_SKIP otherwise).
  static bool available(const std::string& binary = haproxy_binary());

  Status start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Status stop();
  void kill9();
  Status restart(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_; }
  const std::string& dir() const { return dir_; }
  int port(int i) const { return ports_.at(static_cast<std::size_t>(i)); }
  const std::string& config() const { return config_; }  // with placeholders replaced
  std::string log() const;                               // haproxy's stdout+stderr so far

  // Sends one line on a fresh connection in HAProxy's default (non-prompt) mode and returns the
  // raw reply up to the close, or the connection error text prefixed with "ERROR: ".
  std::string admin(const std::string& line) const;

 private:
  std::string binary_;
  std::string dir_;
  std::string socket_;
  std::string cfg_path_;
  std::string config_;
  std::vector<int> ports_;
  pid_t pid_ = -1;
};

// The same one-shot query on any admin socket (an HAProxy the test did not start itself).
std::string admin_query(const std::string& socket, const std::string& line);

}  // namespace ep::test
