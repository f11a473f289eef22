#include "haproxy/reload/process.h"

#include <gtest/gtest.h>

namespace ep::haproxy::reload {
namespace {

TEST(RunProcess, CapturesOutputAndExitStatusWithoutAShell) {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(5));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
  // Arguments are passed as they are: `;` is not a command separator.
  auto e = run_process({"echo", "a;", "reboot"}, std::chrono::seconds(5));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->output, "a; reboot");
}

TEST(RunProcess, TimesOutAndKills) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({"sleep", "10"}, std::chrono::milliseconds(200));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(RunProcess, DaemonizingChildDoesNotDelayTheReturn) {
  // The grandchild keeps stdout/stderr open for 5 s; only the direct child is waited for.
  const auto t0 = std::chrono::steady_clock::now();
  auto r =
      run_process({"sh", "-c", "(sleep 5; echo late) & echo started"}, std::chrono::seconds(4));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "started");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(RunProcess, MissingProgramIsAClearError) {
  auto r = run_process({"/nonexistent/haproxy", "-v"}, std::chrono::seconds(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot run /nonexistent/haproxy"), std::string::npos);
}

}  // namespace
}  // namespace ep::haproxy::reload
