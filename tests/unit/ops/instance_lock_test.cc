// Single instance: the second lock on the same HAProxy socket is refused with the holder's pid.

#include "ops/instance_lock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
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

TEST_F(LockTest, RuntimeDirectoryWins) {
  const std::string mine = (dir_ / "rt").string();
  setenv("RUNTIME_DIRECTORY", (mine + ":/other").c_str(), 1);
  auto d = default_lock_dir();
  unsetenv("RUNTIME_DIRECTORY");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, mine);
  struct stat st {};
  ASSERT_EQ(::stat(mine.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "created private";
}

// Issue #14 point 6: a lock directory another user could write into (or a symlink to one) is
// refused, never used.
TEST_F(LockTest, SharedOrForeignLockDirectoryIsRefused) {
  const std::string open_dir = (dir_ / "open").string();
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 01777), 0);
  auto s = ensure_private_dir(open_dir);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kRefused);
  EXPECT_NE(s.error().message.find("mode 1777"), std::string::npos) << s.error().message;

  const std::string link = (dir_ / "link").string();
  ASSERT_EQ(::symlink(open_dir.c_str(), link.c_str()), 0);
  EXPECT_FALSE(ensure_private_dir(link).ok());

  setenv("RUNTIME_DIRECTORY", open_dir.c_str(), 1);
  auto d = default_lock_dir();
  unsetenv("RUNTIME_DIRECTORY");
  EXPECT_FALSE(d.ok());
}

// A lock file pre-created by another user is refused (it could be held forever by them).
TEST_F(LockTest, ForeignLockFileIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const auto path = dir_ / "foreign.lock";
  ASSERT_TRUE(InstanceLock::acquire({path}, {"socket"}).ok());  // creates it, ours
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto l = InstanceLock::acquire({path}, {"socket"});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().kind, ErrorKind::kRefused);
  EXPECT_NE(l.error().message.find("owned by uid 65534"), std::string::npos) << l.error().message;
}

}  // namespace
}  // namespace ep::ops
