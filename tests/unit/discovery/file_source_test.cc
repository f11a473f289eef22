#include "discovery/file/file_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "support/recording_sink.h"

namespace ep::discovery::file {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using test::RecordingSink;

bool has_addresses(const Snapshot& s, std::vector<std::string> want) {
  if (!s.ok()) return false;
  std::vector<std::string> got;
  for (const auto& e : *s) got.push_back(e.address);
  return got == want;
}

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ep-file-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "web.json";
    options_.path = path_;
    options_.format = Format::kJson;
    options_.debounce = std::chrono::milliseconds(10);
  }
  void TearDown() override {
    if (source_) source_->stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }
  void start() {
    source_ = std::make_unique<FileSource>(options_);
    ASSERT_TRUE(source_->start(sink_).ok());
  }
  // Every published set differs from the one before it (no duplicate publishes).
  void expect_no_duplicate_sets() {
    auto all = sink_.all();
    for (size_t i = 1; i < all.size(); ++i) {
      if (all[i].ok() && all[i - 1].ok()) {
        EXPECT_NE(*all[i], *all[i - 1]) << "snapshot " << i;
      }
    }
  }

  fs::path dir_, path_;
  Options options_;
  RecordingSink sink_;
  std::unique_ptr<FileSource> source_;
};

TEST_F(FileSourceTest, EndToEnd) {
  write(path_, R"([{"targets": ["10.0.0.1:80", "10.0.0.2:80"]}])");
  start();
  auto first = sink_.wait_count(0);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(has_addresses(*first, {"10.0.0.1", "10.0.0.2"}));

  // In-place write.
  size_t mark = sink_.size();
  write(path_, R"([{"targets": ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]}])");
  ASSERT_TRUE(sink_.wait_next(mark, [](const Snapshot& s) {
    return has_addresses(s, {"10.0.0.1", "10.0.0.2", "10.0.0.3"});
  }));

  // Atomic rename-over.
  mark = sink_.size();
  write(dir_ / ".web.json.tmp", R"([{"targets": ["10.0.0.4:80"]}])");
  fs::rename(dir_ / ".web.json.tmp", path_);
  auto renamed = sink_.wait_next(mark, [](const Snapshot& s) { return s.ok(); });
  ASSERT_TRUE(renamed);
  EXPECT_TRUE(has_addresses(sink_.all()[*renamed], {"10.0.0.4"}));

  // Invalid file: an error is published and no set.
  mark = sink_.size();
  write(dir_ / ".web.json.tmp", R"([{"targets": ["10.0.0.5:80"]},)");
  fs::rename(dir_ / ".web.json.tmp", path_);
  auto bad = sink_.wait_next(mark, [](const Snapshot& s) { return !s.ok(); });
  ASSERT_TRUE(bad);
  EXPECT_THAT(sink_.all()[*bad].error().message, HasSubstr(path_.string() + ":1:"));
  EXPECT_THAT(sink_.all()[*bad].error().message, HasSubstr("invalid JSON"));

  // Fixed again: the new set.
  mark = sink_.size();
  write(path_, R"([{"targets": ["10.0.0.6:80"]}])");
  auto fixed = sink_.wait_next(mark, [](const Snapshot& s) { return s.ok(); });
  ASSERT_TRUE(fixed);
  EXPECT_TRUE(has_addresses(sink_.all()[*fixed], {"10.0.0.6"}));
  for (size_t i = mark; i < *fixed; ++i) EXPECT_FALSE(sink_.all()[i].ok());
  // Nothing from the invalid file was ever published as a set.
  for (const auto& s : sink_.all()) {
    if (s.ok()) {
      EXPECT_FALSE(has_addresses(s, {"10.0.0.5"}));
    }
  }

  // Delete: an error naming the file.
  mark = sink_.size();
  fs::remove(path_);
  auto gone = sink_.wait_next(mark, [](const Snapshot& s) { return !s.ok(); });
  ASSERT_TRUE(gone);
  EXPECT_EQ(sink_.all()[*gone].error().message,
            "cannot read " + path_.string() + ": No such file or directory");
  for (size_t i = mark; i < sink_.size(); ++i) EXPECT_FALSE(sink_.all()[i].ok());

  // Back after delete.
  mark = sink_.size();
  write(path_, R"([])");
  auto back = sink_.wait_next(mark, [](const Snapshot& s) { return s.ok(); });
  ASSERT_TRUE(back);
  EXPECT_TRUE(sink_.all()[*back]->empty());
  expect_no_duplicate_sets();
}

TEST_F(FileSourceTest, SameContentIsNotPublishedTwice) {
  const std::string a = R"([{"targets": ["10.0.0.1:80"]}])";
  write(path_, a);
  start();
  ASSERT_TRUE(sink_.wait_count(0));
  for (int i = 0; i < 3; ++i) {
    write(dir_ / "t", a);
    fs::rename(dir_ / "t", path_);
  }
  write(dir_ / "t", R"([{"targets": ["10.0.0.2:80"]}])");
  fs::rename(dir_ / "t", path_);
  ASSERT_TRUE(sink_.wait_next(1, [](const Snapshot& s) { return has_addresses(s, {"10.0.0.2"}); }));
  EXPECT_EQ(sink_.size(), 2u);  // the three identical rewrites published nothing
  expect_no_duplicate_sets();
  for (const auto& s : sink_.all()) EXPECT_TRUE(s.ok());
}

TEST_F(FileSourceTest, OtherFilesInTheDirectoryAreIgnored) {
  write(path_, R"([{"targets": ["10.0.0.1:80"]}])");
  start();
  ASSERT_TRUE(sink_.wait_count(0));
  write(dir_ / "other.json", "garbage");
  write(path_, R"([{"targets": ["10.0.0.2:80"]}])");
  ASSERT_TRUE(sink_.wait_next(1, [](const Snapshot& s) { return has_addresses(s, {"10.0.0.2"}); }));
  for (const auto& s : sink_.all()) EXPECT_TRUE(s.ok());
}

TEST_F(FileSourceTest, MissingFileAtStartThenCreated) {
  start();
  auto first = sink_.wait_count(0);
  ASSERT_TRUE(first);
  ASSERT_FALSE(first->ok());
  EXPECT_THAT(first->error().message, HasSubstr("No such file or directory"));
  write(path_, R"([{"targets": ["10.0.0.7:80"]}])");
  ASSERT_TRUE(sink_.wait_next(1, [](const Snapshot& s) { return has_addresses(s, {"10.0.0.7"}); }));
}

TEST_F(FileSourceTest, DirectoryCreatedLater) {
  options_.path = dir_ / "sub" / "web.json";
  start();
  auto first = sink_.wait_count(0);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->ok());
  fs::create_directory(dir_ / "sub");
  write(dir_ / "sub" / "web.json", R"([{"targets": ["10.0.0.8:80"]}])");
  ASSERT_TRUE(sink_.wait_next(1, [](const Snapshot& s) { return has_addresses(s, {"10.0.0.8"}); }));
}

TEST_F(FileSourceTest, RefreshIntervalRereads) {
  // A change inotify cannot see (a bind mount, NFS) is caught by the periodic re-read. Simulate
  // by writing through a path the watch does not cover: a hard link in another directory.
  write(path_, R"([{"targets": ["10.0.0.1:80"]}])");
  options_.refresh_interval = std::chrono::milliseconds(100);
  fs::create_directory(dir_ / "elsewhere");
  fs::create_hard_link(path_, dir_ / "elsewhere" / "link.json");
  start();
  ASSERT_TRUE(sink_.wait_count(0));
  {
    std::fstream f(dir_ / "elsewhere" / "link.json", std::ios::in | std::ios::out);
    f.seekp(22);
    f << "9";  // 10.0.0.1 → 10.0.0.9, same inode, no event in web.json's directory for it
  }
  ASSERT_TRUE(sink_.wait_next(1, [](const Snapshot& s) { return has_addresses(s, {"10.0.0.9"}); }));
}

TEST_F(FileSourceTest, RefreshIsDrivenByTheRuntimeClockInManualMode) {
  // The step hook: on a manual runtime with a fake clock, the safety-net re-read happens when the
  // test advances the clock, not after real time passes. The change is made through a hard link
  // in another directory, so no inotify event announces it.
  write(path_, R"([{"targets": ["10.0.0.1:80"]}])");
  fs::create_directory(dir_ / "elsewhere");
  fs::create_hard_link(path_, dir_ / "elsewhere" / "link.json");
  FakeClock clock;
  runtime::Runtime rt({.threads = 0, .clock = &clock});
  options_.refresh_interval = std::chrono::minutes(5);
  FileSource source(options_);
  ASSERT_TRUE(source.start_on(rt, sink_).ok());
  rt.run_until_idle();
  ASSERT_EQ(sink_.size(), 1u);
  {
    std::fstream f(dir_ / "elsewhere" / "link.json", std::ios::in | std::ios::out);
    f.seekp(22);
    f << "9";
  }
  clock.advance(std::chrono::minutes(4));
  rt.run_until_idle();
  EXPECT_EQ(sink_.size(), 1u);  // not due yet
  clock.advance(std::chrono::minutes(1));
  rt.run_until_idle();
  ASSERT_EQ(sink_.size(), 2u);
  EXPECT_TRUE(has_addresses(sink_.all()[1], {"10.0.0.9"}));
  source.stop();
  EXPECT_EQ(rt.loop().timer_count(), 0u);
  EXPECT_EQ(rt.files().subscriptions(), 0u);
}

TEST_F(FileSourceTest, StopIsPromptAndIdempotent) {
  options_.refresh_interval = std::chrono::hours(1);
  write(path_, "[]");
  start();
  ASSERT_TRUE(sink_.wait_count(0));
  const auto t0 = std::chrono::steady_clock::now();
  source_->stop();
  source_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  const size_t n = sink_.size();
  write(path_, R"([{"targets": ["10.0.0.1:80"]}])");
  EXPECT_EQ(sink_.size(), n);  // stopped: never called again
}

TEST_F(FileSourceTest, FetchOnce) {
  FileSource s(options_);
  auto missing = s.fetch_once(std::chrono::seconds(1));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kUnavailable);
  write(path_, R"([{"targets": ["10.0.0.1:80"]}])");
  auto ok = s.fetch_once(std::chrono::seconds(1));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(has_addresses(ok, {"10.0.0.1"}));
  EXPECT_EQ(s.describe(), "file " + path_.string());
}

TEST_F(FileSourceTest, FactoryResolvesAgainstBaseDir) {
  auto kind = source_kind();
  EXPECT_EQ(kind.name, "file");
  ConfigNode n = ConfigNode::make_map({"ep.yaml", 1, 1});
  n.add("path", ConfigNode::make_scalar("web.json"));
  SourceContext ctx;
  ctx.backend = "web";
  ctx.base_dir = dir_;
  Diagnostics diag;
  auto src = kind.create(n, diag, ctx);
  ASSERT_NE(src, nullptr) << diag.joined();
  EXPECT_EQ(src->describe(), "file " + path_.string());

  ConfigNode bad = ConfigNode::make_map({"ep.yaml", 1, 1});
  Diagnostics diag2;
  EXPECT_EQ(kind.create(bad, diag2, ctx), nullptr);
  EXPECT_FALSE(diag2.ok());
}

}  // namespace
}  // namespace ep::discovery::file
