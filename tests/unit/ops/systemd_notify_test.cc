// sd_notify messages arrive on a NOTIFY_SOCKET the test listens on, like systemd's.

#include "ops/systemd_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace ep::ops {
namespace {

class NotifySocket {
 public:
  NotifySocket() {
    path_ = "/tmp/ep-notify-" + std::to_string(getpid()) + ".sock";
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }
  std::string receive(int timeout_ms = 2000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
};

TEST(SystemdNotify, NothingWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(notify_enabled());
  EXPECT_FALSE(notify_ready("x"));
}

TEST(SystemdNotify, SendsReadyStatusWatchdogStopping) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok());
  setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  EXPECT_TRUE(notify_enabled());
  EXPECT_TRUE(notify_ready("converged: 1 backend(s)\nsecond line"));
  EXPECT_EQ(sock.receive(), "READY=1\nSTATUS=converged: 1 backend(s) second line");
  EXPECT_TRUE(notify_status("waiting"));
  EXPECT_EQ(sock.receive(), "STATUS=waiting");
  EXPECT_TRUE(notify_watchdog());
  EXPECT_EQ(sock.receive(), "WATCHDOG=1");
  EXPECT_TRUE(notify_stopping());
  EXPECT_EQ(sock.receive().rfind("STOPPING=1", 0), 0u);
  unsetenv("NOTIFY_SOCKET");
}

TEST(SystemdNotify, WatchdogIntervalFromTheEnvironment) {
  setenv("WATCHDOG_USEC", "3000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  auto i = watchdog_interval();
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->count(), 3'000'000);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);  // for another process
  EXPECT_FALSE(watchdog_interval().has_value());
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  EXPECT_FALSE(watchdog_interval().has_value());
}

}  // namespace
}  // namespace ep::ops
