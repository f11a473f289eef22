#include "haproxy/runtime/parsers.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ep::haproxy {
namespace {

std::string load(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/haproxy/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const ActualServer* find(const ServersState& s, const std::string& name) {
  for (const auto& r : s.rows) {
    if (r.server.name == name) return &r.server;
  }
  return nullptr;
}

TEST(ShowInfo, Parses2612) {
  auto info = parse_show_info(load("show_info_2.6.12.txt"));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->version, "2.6.12-1+deb12u4");
  EXPECT_EQ(info->major, 2);
  EXPECT_EQ(info->minor, 6);
  EXPECT_GT(info->pid, 0);
  EXPECT_GT(info->start_time_sec, 1700000000);
}

TEST(ShowInfo, RejectsGarbageAndMissingFields) {
  EXPECT_FALSE(parse_show_info("").ok());
  EXPECT_FALSE(parse_show_info("Name: HAProxy\nPid: 12\n").ok());  // no Version
  EXPECT_FALSE(parse_show_info("Version: 2.6.12\n").ok());         // no Pid
  EXPECT_FALSE(parse_show_info("Version: 2.6.12\nPid: abc\n").ok());
  EXPECT_FALSE(parse_show_info("Version: banana\nPid: 1\n").ok());
  auto r = parse_show_info("<html>\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line 1"), std::string::npos) << r.error().message;
  auto old = parse_show_info("Version: 1.8.19\nPid: 7\nUptime_sec: 3\n");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->minor, 8);
  EXPECT_EQ(old->start_time_sec, 0);
}

TEST(ServersState, Parses25ColumnHeader) {
  auto s = parse_servers_state(load("servers_state_be_rr_2.6.12.txt"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->backend_found);
  ASSERT_EQ(s->rows.size(), 4u);
  const ActualServer* s1 = find(*s, "s1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->address, "127.0.0.1");
  EXPECT_EQ(s1->port, 18779);
  EXPECT_EQ(s1->op_state, 2);
  EXPECT_TRUE(s1->draining());
  EXPECT_FALSE(s1->in_maint());
  EXPECT_EQ(s1->weight, 7);
  const ActualServer* s3 = find(*s, "s3");  // config `disabled`: FMAINT|CMAINT
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->admin_state, 5);
  EXPECT_TRUE(s3->in_maint());
  const ActualServer* d = find(*s, "ep-10.0.0.5:8080");  // fresh dynamic server
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->address, "10.0.0.5");
  EXPECT_EQ(d->port, 8080);
  EXPECT_TRUE(d->in_maint());
  EXPECT_TRUE(d->check_configured());
  EXPECT_EQ(d->weight, 3);
  EXPECT_EQ(s->rows[0].backend, "be_rr");
}

TEST(ServersState, ParsesAllBackends) {
  auto s = parse_servers_state(load("servers_state_2.6.12.txt"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  int be_static = 0;
  for (const auto& r : s->rows) be_static += r.backend == "be_static";
  EXPECT_EQ(be_static, 4);
  const ActualServer* ep2 = nullptr;
  for (const auto& r : s->rows) {
    if (r.backend == "be_static" && r.server.name == "ep-2") ep2 = &r.server;
  }
  ASSERT_NE(ep2, nullptr);
  EXPECT_EQ(ep2->port, 18779);
  EXPECT_FALSE(ep2->in_maint());  // CMAINT (4) stays set on a ready config-disabled slot
  EXPECT_EQ(ep2->admin_state & 0x04, 0x04);
}

TEST(ServersState, ParsesOlderHeaders) {
  auto s17 = parse_servers_state(load("servers_state_1.6_17col.txt"));
  ASSERT_TRUE(s17.ok()) << s17.error().message;
  ASSERT_EQ(s17->rows.size(), 2u);
  EXPECT_EQ(s17->rows[1].server.port, 0);  // no srv_port before 1.8
  EXPECT_EQ(s17->rows[1].server.weight, 5);
  EXPECT_TRUE(s17->rows[1].server.in_maint());

  auto s19 = parse_servers_state(load("servers_state_1.8_19col.txt"));
  ASSERT_TRUE(s19.ok()) << s19.error().message;
  ASSERT_EQ(s19->rows.size(), 2u);
  EXPECT_EQ(s19->rows[1].server.name, "ep-2001:db8::7:8080");
  EXPECT_EQ(s19->rows[1].server.address, "2001:db8::7");
  EXPECT_EQ(s19->rows[1].server.port, 8080);
  EXPECT_TRUE(s19->rows[1].server.draining());
}

TEST(ServersState, MissingBackend) {
  auto s = parse_servers_state(load("servers_state_missing_2.6.12.txt"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(s->backend_found);
  EXPECT_TRUE(s->rows.empty());
}

TEST(ServersState, RejectsMalformed) {
  EXPECT_FALSE(parse_servers_state("").ok());
  EXPECT_FALSE(parse_servers_state("No such server.\n").ok());
  EXPECT_FALSE(parse_servers_state("2\n# be_id be_name\n").ok());
  EXPECT_FALSE(parse_servers_state("1\n3 be 1 s1\n").ok());                       // no header
  EXPECT_FALSE(parse_servers_state("1\n# be_id be_name srv_id\n3 be 1\n").ok());  // columns
  std::string text = load("servers_state_be_rr_2.6.12.txt");
  auto short_row = text + "3 be_rr 9 s9 127.0.0.1 2\n";
  auto r = parse_servers_state(short_row);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line"), std::string::npos);
  std::string bad = text;
  bad.replace(bad.find(" 2 8 7 "), 7, " x 8 7 ");
  auto r2 = parse_servers_state(bad);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("srv_op_state"), std::string::npos) << r2.error().message;
}

TEST(ShowStat, Parses2612Csv) {
  auto t = parse_show_stat(load("show_stat_be_rr_2.6.12.csv"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->rows.size(), 5u);
  EXPECT_EQ(t->rows[0].name, "s1");
  EXPECT_EQ(t->rows[0].status, "DRAIN");
  EXPECT_EQ(t->rows[0].weight, 7);
  EXPECT_EQ(t->rows[0].bck, 0);
  EXPECT_EQ(t->rows[1].bck, 1);  // s2 is `backup`
  EXPECT_EQ(t->rows[3].addr, "10.0.0.5:8080");
  const StatRow& be = t->rows[4];
  EXPECT_TRUE(be.is_backend());
  EXPECT_EQ(be.algo, "roundrobin");
  auto st = parse_show_stat(load("show_stat_be_static_2.6.12.csv"));
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->rows.back().algo, "static-rr");
}

TEST(ShowStat, ParsesOlderHeaderWithoutAlgo) {
  auto t = parse_show_stat(load("show_stat_be_rr_old_header.csv"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->rows.size(), 5u);
  EXPECT_EQ(t->rows[1].bck, 1);
  EXPECT_EQ(t->rows[4].algo, "");
}

TEST(ShowStat, AllProxiesIncludesFrontend) {
  auto t = parse_show_stat(load("show_stat_all_2.6.12.csv"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  bool frontend = false;
  for (const auto& r : t->rows) frontend |= r.is_frontend();
  EXPECT_TRUE(frontend);
}

TEST(ShowStat, MissingProxy) {
  auto t = parse_show_stat(load("show_stat_missing_2.6.12.txt"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->proxy_found);
}

TEST(ShowStat, RejectsMalformed) {
  EXPECT_FALSE(parse_show_stat("").ok());
  EXPECT_FALSE(parse_show_stat("pxname,svname\n").ok());
  auto no_status = parse_show_stat("# pxname,svname,scur\nbe,s1,0\n");  // no status/bck
  ASSERT_FALSE(no_status.ok());
  EXPECT_NE(no_status.error().message.find("header has no 'status' column"), std::string::npos)
      << no_status.error().message;
  auto r = parse_show_stat("# pxname,svname,scur,status,bck\nbe,s1,many,UP,0\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("scur"), std::string::npos);
  auto q = parse_show_stat("# pxname,svname,scur,status,bck,check_desc\nbe,s1,2,UP,1,\"a,b\"\n");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->rows[0].scur, 2);
}

}  // namespace
}  // namespace ep::haproxy
