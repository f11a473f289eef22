#include "net/unix_socket.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "support/haproxy/fake_admin_server.h"

namespace ep::net {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string temp_path(const char* tag) {
  return std::string("/tmp/epus.") + tag + "." + std::to_string(::getpid()) + ".sock";
}

TEST(UnixSocket, MissingPathIsUnavailableWithPathAndReason) {
  auto s = UnixSocket::connect("/tmp/epus.nothing-here.sock", Clock::now() + milliseconds(200));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(s.error().message.find("/tmp/epus.nothing-here.sock"), std::string::npos);
  EXPECT_NE(s.error().message.find("No such file or directory"), std::string::npos);
}

TEST(UnixSocket, NotASocketIsRefused) {
  std::string path = temp_path("file");
  { std::ofstream(path) << "x"; }
  auto s = UnixSocket::connect(path, Clock::now() + milliseconds(200));
  ::unlink(path.c_str());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(s.error().message.find("Connection refused"), std::string::npos) << s.error().message;
}

TEST(UnixSocket, WriteReadUntilDelimiterKeepsTheRest) {
  std::string path = temp_path("echo");
  test::FakeAdminServer server(path, [](const std::string& line, int) {
    return std::optional<std::string>(line + "|" + line + "|");
  });
  ASSERT_TRUE(server.ok());
  auto s = UnixSocket::connect(path, Clock::now() + milliseconds(500));
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(s->write_all("ab\n", Clock::now() + milliseconds(500)).ok());
  auto first = s->read_until_delimiter("|", Clock::now() + milliseconds(500));
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, "ab|");
  auto second = s->read_until_delimiter("|", Clock::now() + milliseconds(500));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "ab|");
  auto none = s->read_until_delimiter("|", Clock::now() + milliseconds(100));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("timed out"), std::string::npos);
}

TEST(UnixSocket, EofBeforeDelimiterSaysHowMuchArrived) {
  std::string path = temp_path("eof");
  test::FakeAdminServer server(
      path, [](const std::string&, int) -> std::optional<std::string> { return std::nullopt; });
  auto s = UnixSocket::connect(path, Clock::now() + milliseconds(500));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->write_all("x\n", Clock::now() + milliseconds(500)).ok());
  auto r = s->read_until_delimiter("> ", Clock::now() + milliseconds(1000));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("closed by peer after 0 bytes"), std::string::npos)
      << r.error().message;
}

TEST(UnixSocket, MovedFromSocketIsClosedAndSafe) {
  std::string path = temp_path("move");
  test::FakeAdminServer server(path, test::FakeAdminServer::silent());
  auto s = UnixSocket::connect(path, Clock::now() + milliseconds(500));
  ASSERT_TRUE(s.ok());
  UnixSocket moved = std::move(*s);
  EXPECT_TRUE(moved.is_open());
  EXPECT_FALSE(s->is_open());
  EXPECT_FALSE(s->write_all("x", Clock::now() + milliseconds(100)).ok());
}

}  // namespace
}  // namespace ep::net
