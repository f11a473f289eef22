#include "haproxy/runtime/admin_socket.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <chrono>
#include <cstdio>
#include <thread>

#include "support/haproxy/fake_admin_server.h"

namespace ep::haproxy {
namespace {

using std::chrono::milliseconds;
using test::FakeAdminServer;

std::string temp_socket() {
  static std::atomic<int> n{0};
  return "/tmp/epfake." + std::to_string(::getpid()) + "." + std::to_string(n++) + ".sock";
}

std::string echo_reply(const std::string& cmd, int) {
  if (cmd.rfind("set server", 0) == 0) return "";
  return "R[" + cmd + "]";
}

TEST(CountCommands, HonoursEscapes) {
  EXPECT_EQ(count_commands("show info"), 1u);
  EXPECT_EQ(count_commands("a;b;c"), 3u);
  EXPECT_EQ(count_commands("set server be/a\\;b state ready"), 1u);
  EXPECT_EQ(count_commands("x\\\\;y"), 2u);
}

TEST(AdminSocket, OneReplyPerLineInPromptMode) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode(echo_reply));
  ASSERT_TRUE(server.ok());
  AdminSocket admin(path, milliseconds(1000));
  auto r = admin.run({"show info", "set server be/s weight 1", "show version",
                      "set server be/s state ready;show x"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], "R[show info]");
  EXPECT_EQ((*r)[1], "");
  EXPECT_EQ((*r)[2], "R[show version]");
  EXPECT_EQ((*r)[3], "R[show x]");
  // `quit` is sent as the session closes; the fake server sees it a moment later.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto lines = server.lines();
  while ((lines.empty() || lines.back() != "quit") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    lines = server.lines();
  }
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines.front(), "prompt");
  EXPECT_EQ(lines.back(), "quit");
}

TEST(AdminSocket, ManyLinesAreChunkedAndAllAnswered) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode(echo_reply));
  ASSERT_TRUE(server.ok());
  AdminSocket admin(path, milliseconds(2000));
  std::vector<std::string> lines;
  for (int i = 0; i < 3000; ++i) lines.push_back("show item " + std::to_string(i));
  auto start = std::chrono::steady_clock::now();
  auto r = admin.run(lines);
  std::printf(
      "[ note ] 3000 pipelined commands against the fake socket: %.1f ms (client-side "
      "cost; informational)\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3000u);
  EXPECT_EQ((*r)[2999], "R[show item 2999]");
  EXPECT_EQ(server.connections(), 1);
}

// A reply of megabytes (a `show stat` of 10,000 servers) arrives in many reads: each is searched
// for the prompt once (not from its start after every read), lines that look almost like a
// prompt ("\n>x", "\n>") stay in the text, and the empty replies around it pair up exactly.
TEST(AdminSocket, MegabyteReplyAmongEmptyRepliesIsReadWhole) {
  std::string path = temp_socket();
  std::string big;
  for (int i = 0; i < 40000; ++i) {
    big += "row," + std::to_string(i) + ",>x,\n>" + std::string(60, 'a') + "\n";
  }
  big.pop_back();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([&](const std::string& cmd, int) {
                           return cmd == "show big" ? big : std::string();
                         }));
  ASSERT_TRUE(server.ok());
  AdminSocket admin(path, milliseconds(5000));
  std::vector<std::string> lines;
  for (int i = 0; i < 2000; ++i)
    lines.push_back("set server be/s" + std::to_string(i) + " state ready");
  lines.push_back("show big");
  for (int i = 0; i < 2000; ++i)
    lines.push_back("set server be/t" + std::to_string(i) + " state ready");
  const auto start = std::chrono::steady_clock::now();
  auto r = admin.run(lines);
  std::printf(
      "[ note ] a %zu-byte reply between 4000 empty ones: %.1f ms (informational)\n", big.size(),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4001u);
  EXPECT_EQ((*r)[1999], "");
  EXPECT_EQ((*r)[2000].size(), big.size());
  EXPECT_TRUE((*r)[2000] == big);
  EXPECT_EQ((*r)[2001], "");
  EXPECT_EQ((*r)[4000], "");
}

// stream(): a reply may make the next line ready (a job's next step); it goes out on the same
// connection at once, replies come back in the order sent, and a `;` line's replies are joined.
TEST(AdminSocket, StreamSendsWhatEachReplyMakesReadyOnTheSameConnection) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode(echo_reply));
  ASSERT_TRUE(server.ok());
  AdminSocket admin(path, milliseconds(2000));
  auto session = admin.open();
  ASSERT_TRUE(session.ok()) << session.error().message;
  constexpr int kJobs = 1500;  // more than one write's worth in flight
  std::deque<std::string> ready;
  for (int i = 0; i < kJobs; ++i) ready.push_back("show first " + std::to_string(i));
  std::string current;
  std::vector<std::string> replies;
  auto st = session->stream(
      [&]() -> std::optional<std::string_view> {
        if (ready.empty()) return std::nullopt;
        current = std::move(ready.front());
        ready.pop_front();
        return current;
      },
      [&](std::string_view reply) {
        replies.emplace_back(reply);
        if (reply.rfind("R[show first ", 0) == 0) {
          const std::string n(reply.substr(13, reply.size() - 14));
          ready.push_back("show second " + n + ";show third " + n);
        }
      });
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(replies.size(), 2u * kJobs);
  EXPECT_EQ(replies.front(), "R[show first 0]");
  EXPECT_EQ(replies.back(), "R[show second 1499]\nR[show third 1499]");
  // Each job's second line went out after its first was answered, on the one connection.
  EXPECT_EQ(server.connections(), 1);
  const auto seen = server.lines();
  auto at = [&](const std::string& line) {
    return std::find(seen.begin(), seen.end(), line) - seen.begin();
  };
  for (int i : {0, 700, 1499}) {
    const std::string n = std::to_string(i);
    EXPECT_LT(at("show first " + n), at("show second " + n + ";show third " + n)) << n;
  }
}

// A line stream() refuses (CR/LF/NUL, empty, too long) fails the stream naming it, and nothing
// after it is asked for or sent.
TEST(AdminSocket, StreamStopsAtARefusedLineNamingIt) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode(echo_reply));
  ASSERT_TRUE(server.ok());
  AdminSocket admin(path, milliseconds(1000));
  auto session = admin.open();
  ASSERT_TRUE(session.ok());
  const std::vector<std::string> lines = {"show a", "show b\nshow c", "show d"};
  std::size_t next = 0;
  int answered = 0;
  auto st = session->stream(
      [&]() -> std::optional<std::string_view> {
        if (next == lines.size()) return std::nullopt;
        return lines[next++];
      },
      [&](std::string_view) { ++answered; });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("refusing command 'show b"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(next, 2u);  // "show d" was never asked for
  const auto seen = server.lines();
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "show d"), 0);
}

TEST(AdminSocket, NewConnectionPerCall) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode(echo_reply));
  AdminSocket admin(path, milliseconds(1000));
  ASSERT_TRUE(admin.run({"show info"}).ok());
  ASSERT_TRUE(admin.run({"show info"}).ok());
  EXPECT_EQ(server.connections(), 2);
}

TEST(AdminSocket, SilentServerTimesOutNamingSocket) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::silent());
  ASSERT_TRUE(server.ok());
  AdminSocket admin(path, milliseconds(200));
  auto start = std::chrono::steady_clock::now();
  auto r = admin.run({"show info"});
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(AdminSocket, SilentAfterPromptTimesOutNamingCommand) {
  std::string path = temp_socket();
  FakeAdminServer server(path, [](const std::string& line, int) -> std::optional<std::string> {
    if (line == "prompt") return std::string("\n> ");
    return std::string();  // never answers commands
  });
  AdminSocket admin(path, milliseconds(200));
  auto r = admin.run({"show servers state web"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("show servers state web"), std::string::npos)
      << r.error().message;
}

TEST(AdminSocket, GarbageIsAnErrorNotAHang) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::garbage("HTTP/1.0 400 Bad Request\r\n\r\n"));
  AdminSocket admin(path, milliseconds(300));
  auto r = admin.run({"show info"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
}

TEST(AdminSocket, EarlyCloseIsAnError) {
  std::string path = temp_socket();
  FakeAdminServer server(path, [](const std::string& line, int) -> std::optional<std::string> {
    if (line == "prompt") return std::string("\n> ");
    return std::nullopt;  // closes without a reply
  });
  AdminSocket admin(path, milliseconds(1000));
  auto r = admin.run({"show info", "show stat"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("closed"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("show info"), std::string::npos) << r.error().message;
}

TEST(AdminSocket, MissingSocketIsUnavailable) {
  AdminSocket admin("/tmp/epfake.does-not-exist.sock", milliseconds(200));
  auto r = admin.run({"show info"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("/tmp/epfake.does-not-exist.sock"), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
}

TEST(AdminSocket, RefusesUnsafeLinesBeforeSending) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode(echo_reply));
  AdminSocket admin(path, milliseconds(500));
  EXPECT_EQ(admin.run({"show info\nshutdown"}).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(admin.run({""}).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(admin.run({std::string(17000, 'x')}).error().kind, ErrorKind::kInvalid);
  for (const auto& l : server.lines()) EXPECT_EQ(l.find("shutdown"), std::string::npos);
}

TEST(AdminSocket, TooLongPathIsInvalid) {
  AdminSocket admin("/tmp/" + std::string(200, 'a'), milliseconds(200));
  auto r = admin.run({"show info"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
}

}  // namespace
}  // namespace ep::haproxy
