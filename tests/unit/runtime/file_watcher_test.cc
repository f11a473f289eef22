#include "runtime/file_watcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "runtime/runtime.h"
#include "support/proc_counts.h"
#include "support/time_scale.h"

namespace ep::runtime {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ep-watch-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    rt_.stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }
  SubscriptionId subscribe(const fs::path& p, int& counter) {
    auto id = rt_.files().subscribe(p, rt_.loop(), [&counter] { ++counter; });
    EXPECT_TRUE(id.ok());
    return id.ok() ? *id : 0;
  }
  bool wait(const std::function<bool()>& done) {
    return rt_.run_until(done, test::scaled(seconds(5)));
  }

  fs::path dir_;
  FakeClock clock_;
  Runtime rt_{{.threads = 0, .clock = &clock_}};
};

TEST_F(FileWatcherTest, OneInstanceOneWatchPerDirectoryDispatchByName) {
  const size_t before = test::inotify_instances();
  int a1 = 0, a2 = 0, b = 0;
  subscribe(dir_ / "a.json", a1);
  subscribe(dir_ / "a.json", a2);
  subscribe(dir_ / "b.json", b);
  fs::create_directory(dir_ / "other");
  int c = 0;
  subscribe(dir_ / "other" / "c.json", c);
  EXPECT_EQ(test::inotify_instances(), before + 1);
  EXPECT_EQ(rt_.files().watched_directories(), 2u);
  EXPECT_EQ(rt_.files().subscriptions(), 4u);

  write(dir_ / "a.json", "[]");
  ASSERT_TRUE(wait([&] { return a1 > 0 && a2 > 0; }));
  write(dir_ / "unrelated.json", "[]");
  write(dir_ / "b.json", "[]");
  ASSERT_TRUE(wait([&] { return b > 0; }));
  rt_.run_until_idle();
  EXPECT_EQ(c, 0);  // nothing happened in its directory
}

TEST_F(FileWatcherTest, RenameOverAndDeleteAndRecreateAreSeen) {
  int n = 0;
  subscribe(dir_ / "web.json", n);
  write(dir_ / ".web.json.tmp", "[]");
  rt_.run_until_idle();
  EXPECT_EQ(n, 0);  // the temp file is not ours
  fs::rename(dir_ / ".web.json.tmp", dir_ / "web.json");
  ASSERT_TRUE(wait([&] { return n >= 1; }));
  const int after_rename = n;
  fs::remove(dir_ / "web.json");
  ASSERT_TRUE(wait([&] { return n > after_rename; }));
  const int after_delete = n;
  write(dir_ / "web.json", "[]");
  ASSERT_TRUE(wait([&] { return n > after_delete; }));
}

TEST_F(FileWatcherTest, RemovedDirectoryIsWatchedAgainWhenItComesBack) {
  fs::create_directory(dir_ / "sub");
  int n = 0;
  subscribe(dir_ / "sub" / "web.json", n);
  EXPECT_EQ(rt_.files().watched_directories(), 1u);
  fs::remove_all(dir_ / "sub");
  ASSERT_TRUE(wait([&] { return n >= 1 && rt_.files().watched_directories() == 0; }));
  const int gone = n;
  // Not back yet: the retry (driven by the fake clock) finds nothing.
  clock_.advance(FileWatcher::kWatchRetry);
  rt_.run_until_idle();
  EXPECT_EQ(rt_.files().watched_directories(), 0u);
  fs::create_directory(dir_ / "sub");
  write(dir_ / "sub" / "web.json", "[]");
  clock_.advance(FileWatcher::kWatchRetry);
  rt_.run_until_idle();
  EXPECT_EQ(rt_.files().watched_directories(), 1u);
  EXPECT_GT(n, gone);  // told to read the file that came with the directory
  const int back = n;
  write(dir_ / "sub" / "web.json", "[1]");
  ASSERT_TRUE(wait([&] { return n > back; }));
}

TEST_F(FileWatcherTest, MissingDirectoryAtSubscribeIsRetried) {
  int n = 0;
  subscribe(dir_ / "later" / "web.json", n);
  EXPECT_EQ(rt_.files().watched_directories(), 0u);
  fs::create_directory(dir_ / "later");
  clock_.advance(FileWatcher::kWatchRetry);
  rt_.run_until_idle();
  EXPECT_EQ(rt_.files().watched_directories(), 1u);
  EXPECT_EQ(n, 1);
}

TEST_F(FileWatcherTest, UnsubscribeOnTheLoopIsFinal) {
  int first = 0, second = 0;
  SubscriptionId second_id = 0;
  // Both are told about the same event; the first one (subscribed first, told first) removes
  // the second before its queued call runs.
  ASSERT_TRUE(rt_.files()
                  .subscribe(dir_ / "web.json", rt_.loop(),
                             [&] {
                               ++first;
                               rt_.files().unsubscribe(second_id);
                             })
                  .ok());
  second_id = subscribe(dir_ / "web.json", second);
  write(dir_ / "web.json", "[]");
  ASSERT_TRUE(wait([&] { return first > 0; }));
  rt_.run_until_idle();
  EXPECT_EQ(second, 0);
}

TEST_F(FileWatcherTest, LastUnsubscribeRemovesTheKernelWatch) {
  int a = 0, b = 0;
  auto ia = subscribe(dir_ / "a.json", a);
  auto ib = subscribe(dir_ / "b.json", b);
  rt_.files().unsubscribe(ia);
  EXPECT_EQ(rt_.files().watched_directories(), 1u);
  rt_.files().unsubscribe(ib);
  EXPECT_EQ(rt_.files().watched_directories(), 0u);
  EXPECT_EQ(rt_.files().subscriptions(), 0u);
  write(dir_ / "a.json", "[]");
  rt_.run_until_idle();
  EXPECT_EQ(a + b, 0);
}

}  // namespace
}  // namespace ep::runtime
