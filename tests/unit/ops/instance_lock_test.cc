// Single instance: the second lock on the same HAProxy socket is refused with the holder's pid.

#include "ops/instance_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

namespace ep::ops {
namespace {

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ep-lock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LockTest, SameSocketSameFileWhateverTheSpelling) {
  EXPECT_EQ(lock_path_for_socket(dir_, "/run/haproxy/admin.sock"),
            lock_path_for_socket(dir_, "/run/haproxy/../haproxy/./admin.sock"));
  EXPECT_NE(lock_path_for_socket(dir_, "/run/haproxy/admin.sock"),
            lock_path_for_socket(dir_, "/run/haproxy/admin2.sock"));
  EXPECT_EQ(lock_path_for_socket(dir_, "/x").parent_path(), dir_);
}

TEST_F(LockTest, SecondAcquireIsRefusedUntilReleased) {
  const auto a = lock_path_for_socket(dir_, "/run/haproxy/a.sock");
  const auto b = lock_path_for_socket(dir_, "/run/haproxy/b.sock");
  auto first = InstanceLock::acquire({a, b}, {"socket a", "socket b"});
  ASSERT_TRUE(first.ok()) << first.error().message;
  // Another daemon sharing only socket b is refused too, and names it and our pid.
  auto second = InstanceLock::acquire({b}, {"socket b"});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kRefused);
  EXPECT_NE(second.error().message.find("socket b"), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find("pid " + std::to_string(getpid())), std::string::npos)
      << second.error().message;
  first->release();
  EXPECT_TRUE(InstanceLock::acquire({b}, {"socket b"}).ok());
}

TEST_F(LockTest, AnotherProcessIsRefusedAndACrashFreesTheLock) {
  const auto path = lock_path_for_socket(dir_, "/run/haproxy/admin.sock");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    auto l = InstanceLock::acquire({path}, {"x"});
    char c = l.ok() ? '1' : '0';
    [[maybe_unused]] auto n = write(ready[1], &c, 1);
    pause();  // killed below: no clean release
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, '1');
  auto refused = InstanceLock::acquire({path}, {"x"});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("pid " + std::to_string(child)), std::string::npos)
      << refused.error().message;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(InstanceLock::acquire({path}, {"x"}).ok());
  close(ready[0]);
  close(ready[1]);
}

TEST_F(LockTest, MissingDirectoryIsAClearError) {
  auto l = InstanceLock::acquire({dir_ / "nope" / "x.lock"}, {"socket"});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(l.error().message.find("nope/x.lock"), std::string::npos);
}

TEST(LockDir, RuntimeDirectoryWins) {
  setenv("RUNTIME_DIRECTORY", "/run/elasticproxy-test:/other", 1);
  EXPECT_EQ(default_lock_dir(), "/run/elasticproxy-test");
  unsetenv("RUNTIME_DIRECTORY");
  EXPECT_FALSE(default_lock_dir().empty());
}

}  // namespace
}  // namespace ep::ops
