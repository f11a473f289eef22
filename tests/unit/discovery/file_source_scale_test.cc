// Many file sources on one Pipeline: one inotify instance and a thread count that does not
// depend on the number of sources (the kernel default fs.inotify.max_user_instances is 128).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "discovery/file/file_source.h"
#include "discovery/pipeline.h"
#include "support/proc_counts.h"
#include "support/time_scale.h"

namespace ep::discovery::file {
namespace {

namespace fs = std::filesystem;

class Desired {
 public:
  void set(size_t backend, const std::vector<ServerSpec>& servers, bool ready) {
    std::lock_guard lock(mu_);
    last_[backend] = servers;
    if (ready) ready_.insert(backend);
    cv_.notify_all();
  }
  bool wait_ready(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, test::scaled(std::chrono::seconds(20)),
                        [&] { return ready_.size() == n; });
  }
  bool wait_address(size_t backend, const std::string& address) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, test::scaled(std::chrono::seconds(10)), [&] {
      auto it = last_.find(backend);
      return it != last_.end() && it->second.size() == 1 && it->second[0].address == address;
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<size_t, std::vector<ServerSpec>> last_;
  std::set<size_t> ready_;
};

class FileSourceScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ep-scale-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static void write(const fs::path& p, const std::string& address) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << R"([{"targets": [")" << address << R"(:80"]}])";
  }
  fs::path file(size_t i) const {
    return dir_ / ("d" + std::to_string(i % 10)) / ("web" + std::to_string(i) + ".json");
  }
  // `n` backends, each with one file source; several files per directory.
  std::unique_ptr<Pipeline> make(size_t n, Desired& desired) {
    std::vector<BackendSources> backends;
    for (size_t i = 0; i < n; ++i) {
      fs::create_directories(file(i).parent_path());
      write(file(i), "10.0.0.1");
      BackendSources bs;
      bs.policy.name = "be" + std::to_string(i);
      Options o;
      o.path = file(i);
      o.format = Format::kJson;
      bs.sources.push_back(std::make_unique<FileSource>(o));
      backends.push_back(std::move(bs));
    }
    return std::make_unique<Pipeline>(
        std::move(backends), SystemClock::instance(),
        [&desired](size_t b, const std::vector<ServerSpec>& servers, bool ready, SteadyTime) {
          desired.set(b, servers, ready);
        });
  }
  fs::path dir_;
};

TEST_F(FileSourceScaleTest, ThousandSourcesOneInotifyAndAFixedThreadCount) {
  const size_t inotify_before = test::inotify_instances();
  const size_t threads_before = test::thread_count();

  Desired small_desired;
  auto small = make(10, small_desired);
  ASSERT_TRUE(small->start().ok());
  ASSERT_TRUE(small_desired.wait_ready(10));
  EXPECT_TRUE(small->ready());
  const size_t threads_small = test::thread_count() - threads_before;
  EXPECT_EQ(test::inotify_instances(), inotify_before + 1);
  small.reset();
  EXPECT_EQ(test::inotify_instances(), inotify_before);

  Desired desired;
  auto big = make(1000, desired);  // far above the default limit of 128 inotify instances
  ASSERT_TRUE(big->start().ok());
  ASSERT_TRUE(desired.wait_ready(1000));
  EXPECT_TRUE(big->ready());
  EXPECT_EQ(test::inotify_instances(), inotify_before + 1);
  EXPECT_EQ(test::thread_count() - threads_before, threads_small);
  EXPECT_EQ(big->source_runtime().files().subscriptions(), 1000u);
  EXPECT_EQ(big->source_runtime().files().watched_directories(), 10u);

  // Events still reach the right source: rename-over one file among its directory's hundred.
  write(dir_ / "d7" / ".tmp", "10.0.0.77");
  fs::rename(dir_ / "d7" / ".tmp", file(777));
  EXPECT_TRUE(desired.wait_address(777, "10.0.0.77"));
  write(file(3), "10.0.0.3");
  EXPECT_TRUE(desired.wait_address(3, "10.0.0.3"));
  EXPECT_TRUE(desired.wait_address(777, "10.0.0.77"));

  big->stop();
  EXPECT_EQ(big->source_runtime().files().subscriptions(), 0u);
  EXPECT_EQ(big->source_runtime().files().watched_directories(), 0u);
}

}  // namespace
}  // namespace ep::discovery::file
