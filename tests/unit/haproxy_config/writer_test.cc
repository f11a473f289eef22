#include "haproxy/config/writer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "haproxy/config/render.h"
#include "haproxy/config/template.h"
#include "os/file.h"
#include "os/process.h"

namespace ep::haproxy::config {
namespace {

Result<os::ProcessResult> run(const std::vector<std::string>& argv, int seconds) {
  os::ProcessOptions o;
  o.timeout = std::chrono::seconds(seconds);
  return os::run_process(argv, o);
}

namespace fs = std::filesystem;

bool have_haproxy() {
  auto r = run({"haproxy", "-v"}, 5);
  return r.ok() && r->exit_code == 0;
}

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ep-cfgw-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/haproxy.cfg";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void put(const std::string& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }
  std::string get(const std::string& p) {
    auto r = os::read_file(p);
    return r.ok() ? *r : "<missing>";
  }
  size_t entries() { return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {})); }

  std::string dir_;
  std::string path_;
};

const char* kGood =
    "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"
    "frontend fe\n  bind 127.0.0.1:18080\n  default_backend be\n"
    "backend be\n  server a 127.0.0.1:8080 weight 3\n";

TEST_F(WriterTest, WritesNewFileThenKeepsPreviousAsBackup) {
  WriteOptions o;
  o.validate = false;
  auto r = write_config(path_, "one\n", o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, WriteOutcome::kWritten);
  EXPECT_EQ(get(path_), "one\n");
  EXPECT_FALSE(fs::exists(path_ + ".bak"));

  ::chmod(path_.c_str(), 0640);
  r = write_config(path_, "two\n", o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(get(path_), "two\n");
  EXPECT_EQ(get(path_ + ".bak"), "one\n");
  EXPECT_EQ(fs::status(path_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(entries(), 2u);  // no temp file left behind
}

// Issue #14 point 6: a new config is not world-readable; a replaced one keeps its mode, owner and
// group.
TEST_F(WriterTest, NewFileIs0640AndAReplacedOneKeepsModeOwnerAndGroup) {
  WriteOptions o;
  o.validate = false;
  ASSERT_TRUE(write_config(path_, "one\n", o).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  ::chmod(path_.c_str(), 0604);
  if (::geteuid() == 0) ASSERT_EQ(::chown(path_.c_str(), 65534, 65534), 0);
  ASSERT_TRUE(write_config(path_, "two\n", o).ok());
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(get(path_), "two\n");
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_gid, 65534u);
  }
}

TEST_F(WriterTest, SameContentIsNotRewritten) {
  WriteOptions o;
  o.validate = false;
  ASSERT_TRUE(write_config(path_, "same\n", o).ok());
  const auto ino = fs::status(path_).type();
  struct stat before {};
  ::stat(path_.c_str(), &before);
  auto r = write_config(path_, "same\n", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, WriteOutcome::kUnchanged);
  struct stat after {};
  ::stat(path_.c_str(), &after);
  EXPECT_EQ(before.st_ino, after.st_ino);
  (void)ino;
}

TEST_F(WriterTest, ValidConfigPassesHaproxyCheck) {
  if (!have_haproxy()) GTEST_SKIP() << "haproxy not installed";
  auto r = write_config(path_, kGood);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(get(path_), kGood);
}

TEST_F(WriterTest, RejectedConfigLeavesLiveFileAndReportsHaproxysMessage) {
  if (!have_haproxy()) GTEST_SKIP() << "haproxy not installed";
  put(path_, kGood);
  auto r = write_config(path_, std::string(kGood) + "  server b 127.0.0.1:8081 bogus-keyword\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  // HAProxy's own ALERT names the unknown keyword (no -q).
  EXPECT_NE(r.error().message.find("bogus-keyword"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("live file is unchanged"), std::string::npos);
  // Positions name the live path (line 11 holds the bad server line), not the temp file.
  EXPECT_NE(r.error().message.find("[" + path_ + ":11]"), std::string::npos) << r.error().message;
  EXPECT_EQ(get(path_), kGood);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriterTest, MissingBinaryIsUnavailableAndLeavesLiveFile) {
  put(path_, "old\n");
  WriteOptions o;
  o.binary = "/nonexistent/haproxy";
  auto r = write_config(path_, "new\n", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("/nonexistent/haproxy"), std::string::npos) << r.error().message;
  EXPECT_EQ(get(path_), "old\n");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriterTest, MissingDirectoryIsAClearError) {
  WriteOptions o;
  o.validate = false;
  auto r = write_config(dir_ + "/nope/haproxy.cfg", "x\n", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot create a temp file in " + dir_ + "/nope"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos);
}

// A small tmpfs gives a real full disk and a real read-only filesystem (needs root; skipped
// otherwise). Unmounted by the fixture whatever happens.
class SmallFsTest : public WriterTest {
 protected:
  void SetUp() override {
    WriterTest::SetUp();
    mnt_ = dir_ + "/m";
    fs::create_directory(mnt_);
    auto r = run({"mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt_}, 10);
    mounted_ = r.ok() && r->exit_code == 0;
    live_ = mnt_ + "/haproxy.cfg";
    if (mounted_) put(live_, "old\n");
  }
  void TearDown() override {
    if (mounted_) (void)run({"umount", mnt_}, 10);
    WriterTest::TearDown();
  }
  std::string mnt_, live_;
  bool mounted_ = false;
};

TEST_F(SmallFsTest, ReadOnlyFilesystemIsAClearErrorAndKeepsLiveFile) {
  if (!mounted_) GTEST_SKIP() << "cannot mount a tmpfs (not root?)";
  auto r = run({"mount", "-o", "remount,ro", mnt_}, 10);
  ASSERT_TRUE(r.ok() && r->exit_code == 0);
  WriteOptions o;
  o.validate = false;
  auto w = write_config(live_, "new\n", o);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(
      w.error().message.find("cannot create a temp file in " + mnt_ + ": Read-only file system"),
      std::string::npos)
      << w.error().message;
  EXPECT_NE(w.error().message.find("live file is unchanged"), std::string::npos);
  EXPECT_EQ(get(live_), "old\n");
}

TEST_F(SmallFsTest, FullDiskIsAClearErrorAndKeepsLiveFileWithoutTemp) {
  if (!mounted_) GTEST_SKIP() << "cannot mount a tmpfs (not root?)";
  WriteOptions o;
  o.validate = false;
  auto w = write_config(live_, std::string(256 * 1024, 'x'), o);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("No space left on device"), std::string::npos)
      << w.error().message;
  EXPECT_EQ(get(live_), "old\n");
  EXPECT_EQ(static_cast<size_t>(std::distance(fs::directory_iterator(mnt_), {})), 1u);
}

TEST_F(WriterTest, WriteFailureMidwayLeavesLiveFileAndNoTemp) {
  // A file-size limit makes write() fail like a full disk would (EFBIG instead of ENOSPC).
  put(path_, "old\n");
  struct rlimit old {};
  ::getrlimit(RLIMIT_FSIZE, &old);
  auto prev = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  WriteOptions o;
  o.validate = false;
  auto r = write_config(path_, std::string(4096, 'x'), o);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, prev);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot write " + path_), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("File too large"), std::string::npos) << r.error().message;
  EXPECT_EQ(get(path_), "old\n");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriterTest, ThousandServersRenderValidateWriteTiming) {
  if (!have_haproxy()) GTEST_SKIP() << "haproxy not installed";
  auto tpl = parse_template(
      "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"
      "frontend fe\n  bind 127.0.0.1:18080\n  default_backend be\n"
      "backend be\n  balance roundrobin\n  {{ servers \"be\" }}\n",
      "t");
  ASSERT_TRUE(tpl.ok());
  RenderBackend be{"be", "check inter 2s", {}};
  for (int i = 0; i < 1000; ++i) {
    ActualServer s;
    s.name = "ep-" + std::to_string(i);
    s.address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    s.port = 8080;
    s.weight = 1 + i % 100;
    s.admin_state = i % 10 == 0 ? admin::kForcedMaint : 0;
    be.servers.push_back(s);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto out = render(*tpl, {be});
  ASSERT_TRUE(out.ok());
  const auto t1 = std::chrono::steady_clock::now();
  auto r = write_config(path_, *out);
  const auto t2 = std::chrono::steady_clock::now();
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::printf("1000 servers: render %.2f ms, validate+write %.1f ms, %zu bytes\n", ms(t1 - t0),
              ms(t2 - t1), out->size());
  EXPECT_EQ(get(path_), *out);
}

}  // namespace
}  // namespace ep::haproxy::config
