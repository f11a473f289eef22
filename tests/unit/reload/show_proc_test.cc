#include "haproxy/reload/show_proc.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ep::haproxy::reload {
namespace {

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/reload/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ShowProc, ParsesAConfirmedReload) {
  auto t = parse_show_proc(testdata("show_proc_ok_2.6.12.txt"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->master_pid, 25975);
  EXPECT_EQ(t->master_reloads, 1);
  EXPECT_EQ(t->failed, 0);
  ASSERT_EQ(t->workers.size(), 1u);
  EXPECT_EQ(t->workers[0].pid, 26124);
  EXPECT_EQ(t->workers[0].reloads, 0);
  EXPECT_TRUE(t->old_workers.empty());
}

TEST(ShowProc, ParsesAFailedReload) {
  auto t = parse_show_proc(testdata("show_proc_failed_2.6.12.txt"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->master_reloads, 2);
  EXPECT_EQ(t->failed, 1);
  ASSERT_EQ(t->workers.size(), 1u);
  EXPECT_EQ(t->workers[0].reloads, 1);  // the old worker survived the failed reload
}

TEST(ShowProc, OldWorkersAndNoFailedField) {
  auto t = parse_show_proc(
      "#<PID> <type> <reloads> <uptime> <version>\n"
      "100 master 3 0d00h00m10s 2.4.0\n"
      "# workers\n"
      "130 worker 0 0d00h00m01s 2.4.0\n"
      "# old workers\n"
      "120 worker 1 0d00h00m05s 2.4.0\n"
      "110 worker 2 0d00h00m09s 2.4.0\n"
      "# programs\n"
      "140 dataplane 0 0d00h00m10s -\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->failed, -1);
  EXPECT_EQ(t->workers.size(), 1u);
  ASSERT_EQ(t->old_workers.size(), 2u);
  EXPECT_EQ(t->old_workers[1].pid, 110);
}

TEST(ShowProc, RejectsGarbage) {
  EXPECT_FALSE(parse_show_proc("").ok());
  EXPECT_FALSE(parse_show_proc("Unknown command.\n").ok());
  auto t = parse_show_proc("# workers\n12 worker 0 x y\n");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("no master row"), std::string::npos);
  auto u = parse_show_proc("abc master 1\n");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("unexpected line 'abc master 1'"), std::string::npos);
}

}  // namespace
}  // namespace ep::haproxy::reload
