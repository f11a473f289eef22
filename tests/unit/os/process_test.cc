#include "os/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "os/fd.h"
#include "os/file.h"

namespace ep::os {
namespace {

using namespace std::chrono_literals;

TEST(RunProcess, ExitCodeAndMergedOutput) {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->succeeded());
  EXPECT_EQ(r->output, "out\nerr");
}

TEST(RunProcess, SeparateStreams) {
  ProcessOptions o;
  o.merge_stderr = false;
  auto r = run_process({"sh", "-c", "echo '{\"a\":1}'; echo warning >&2"}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(r->output, "{\"a\":1}");
  EXPECT_EQ(r->error_output, "warning");
}

TEST(RunProcess, ArgumentsAreNeverInterpretedByAShell) {
  auto r = run_process({"echo", "$(id)", "a;b", "'q'"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "$(id) a;b 'q'");
  EXPECT_EQ(describe_command({"echo", "a b", ""}), "echo 'a b' ''");
}

TEST(RunProcess, TimeoutKillsTheChild) {
  ProcessOptions o;
  o.timeout = 200ms;
  const auto start = std::chrono::steady_clock::now();
  auto r = run_process({"sleep", "30"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
}

// `haproxy -W -D` daemonizes and its master keeps stdout/stderr open: only the direct child is
// waited for.
TEST(RunProcess, DaemonizingChildDoesNotDelayTheReturn) {
  ProcessOptions o;
  o.timeout = 4s;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({"sh", "-c", "(sleep 5; echo late) & echo started"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "started");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(RunProcess, OutputIsBounded) {
  ProcessOptions o;
  o.max_output = 100;
  auto r = run_process({"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->output_truncated);
  EXPECT_EQ(r->output, std::string(100, 'x'));
}

TEST(RunProcess, MissingProgramIsUnavailable) {
  auto r = run_process({"/nonexistent/elasticproxy-test-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("/nonexistent/elasticproxy-test-program"), std::string::npos);
  EXPECT_FALSE(run_process({}).ok());
}

// Issue #14 point 7: a child inherits no descriptor of the daemon (libcurl opens sockets without
// close-on-exec) and none of the credentials the daemon read from its environment.
TEST(RunProcess, ChildGetsNoDescriptorBeyondStdio) {
  UniqueFd leaky(::socket(AF_INET, SOCK_STREAM, 0));  // deliberately without SOCK_CLOEXEC
  ASSERT_TRUE(leaky.valid());
  auto r = run_process({"sh", "-c", "ls /proc/$$/fd"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "0\n1\n2") << "fd " << leaky.get() << " leaked";
}

TEST(RunProcess, ChildEnvironmentWithholdsSecrets) {
  ::setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-secret", 1);
  ::setenv("AWS_SESSION_TOKEN", "canary-aws-token", 1);
  ::setenv("CONSUL_HTTP_TOKEN", "canary-consul", 1);
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  ::setenv("EP_TEST_PLAIN_VARIABLE", "kept", 1);
  auto r = run_process({"env"});
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_SESSION_TOKEN");
  ::unsetenv("CONSUL_HTTP_TOKEN");
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("EP_TEST_PLAIN_VARIABLE");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output.find("canary"), std::string::npos) << r->output;
  EXPECT_EQ(r->output.find("NOTIFY_SOCKET"), std::string::npos);
  EXPECT_NE(r->output.find("EP_TEST_PLAIN_VARIABLE=kept"), std::string::npos)
      << "other variables stay: haproxy.cfg may use them";
  EXPECT_TRUE(is_withheld_variable("AWS_ACCESS_KEY_ID"));
  EXPECT_FALSE(is_withheld_variable("PATH"));
}

TEST(RunProcess, ChildStartsWithACleanSignalMask) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  auto r = run_process({"grep", "SigBlk", "/proc/self/status"});
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "SigBlk:\t0000000000000000");
}

TEST(ReadFile, WholeFileBoundedAndErrorsNameThePath) {
  char path[] = "/tmp/ep-sys-read-XXXXXX";
  UniqueFd fd(::mkstemp(path));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::write(fd.get(), "hello\nworld", 11), 11);
  auto r = read_file(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "hello\nworld");
  auto big = read_file(path, 5);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(big.error().message.find(path), std::string::npos);
  ::unlink(path);
  auto missing = read_file(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(missing.error().message.find(path), std::string::npos);
}

TEST(UniqueFd, ClosesOnceAndMoves) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1) << "closed when the owner went away";
}

}  // namespace
}  // namespace ep::os
