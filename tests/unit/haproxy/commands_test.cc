#include "haproxy/runtime/commands.h"

#include <gtest/gtest.h>

namespace ep::haproxy::cmd {
namespace {

TEST(Escape, EscapesSeparatorsAndBackslash) {
  EXPECT_EQ(*escape("10.0.0.1;shutdown", "v"), "10.0.0.1\\;shutdown");
  EXPECT_EQ(*escape("a b\tc", "v"), "a\\ b\\\tc");
  EXPECT_EQ(*escape("back\\slash", "v"), "back\\\\slash");
  EXPECT_EQ(*escape("ep-2001:db8::7:8080", "v"), "ep-2001:db8::7:8080");
}

TEST(Escape, RefusesLineBreaksNulAndEmpty) {
  auto r = escape("x\ny", "server name");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("server name 'x\\ny'"), std::string::npos) << r.error().message;
  EXPECT_FALSE(escape("x\ry", "v").ok());
  EXPECT_FALSE(escape(std::string_view("x\0y", 3), "v").ok());
  EXPECT_FALSE(escape("", "v").ok());
}

TEST(Builders, HostileServerNameIsEscapedNotInterpreted) {
  auto c = set_state("be", "s;del server be", State::kMaint);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, "set server be/s\\;del\\ server\\ be state maint");
  EXPECT_FALSE(set_state("be", "s;shutdown sessions server be/x", State::kMaint).ok());
}

TEST(Builders, SlashInNamesIsRefused) {
  EXPECT_FALSE(set_weight("be/x", "s", 1).ok());
  EXPECT_FALSE(set_weight("be", "s/x", 1).ok());
}

TEST(Builders, AddressMustBeAnIpLiteral) {
  EXPECT_EQ(*set_addr("be", "s1", "10.0.0.1", 8080), "set server be/s1 addr 10.0.0.1 port 8080");
  EXPECT_EQ(*set_addr("be", "s1", "2001:DB8:0::7", 80),
            "set server be/s1 addr 2001:db8::7 port 80");
  for (const char* bad :
       {"10.0.0.1;shutdown", "localhost", "10.0.0.1 port 1", "", "x\ny", "10.0.0.256"}) {
    auto r = set_addr("be", "s1", bad, 80);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_FALSE(set_addr("be", "s1", "10.0.0.1", 0).ok());
  EXPECT_FALSE(set_addr("be", "s1", "10.0.0.1", 65536).ok());
}

TEST(Builders, WeightRange) {
  EXPECT_EQ(*set_weight("be", "s", 0), "set server be/s weight 0");
  EXPECT_EQ(*set_weight("be", "s", 256), "set server be/s weight 256");
  EXPECT_FALSE(set_weight("be", "s", 257).ok());
  EXPECT_FALSE(set_weight("be", "s", -1).ok());
  EXPECT_EQ(*set_weight_percent("be", "s", 100), "set server be/s weight 100%");
  EXPECT_FALSE(set_weight_percent("be", "s", 50).ok());
}

TEST(Builders, StateHealthAndReadyLine) {
  EXPECT_EQ(*set_state("be", "s", State::kDrain), "set server be/s state drain");
  EXPECT_EQ(*set_health("be", "s", Health::kDown), "set server be/s health down");
  // Leaving maintenance with checks: DRAIN (no traffic even if the second command is lost) and
  // health down (rise checks needed before UP); the reconciler sets it ready after a passed check.
  EXPECT_EQ(*warm_line("be", "s", true),
            "set server be/s state drain;set server be/s health down");
  EXPECT_EQ(*warm_line("be", "s", false), "set server be/s state ready");
}

TEST(Builders, AddServer) {
  EXPECT_EQ(*add_server("web", "ep-10.0.0.5:8080", "10.0.0.5", 8080, 3, false,
                        "check inter 2s  pool-purge-delay 5s"),
            "add server web/ep-10.0.0.5:8080 10.0.0.5:8080 weight 3 check inter 2s "
            "pool-purge-delay 5s pool-max-conn -1");
  // Without pool options a runtime server reuses no backend connection: a config server's
  // defaults are added.
  EXPECT_EQ(*add_server("web", "ep-2001:db8::7:8080", "2001:db8::7", 8080, 1, true, ""),
            "add server web/ep-2001:db8::7:8080 [2001:db8::7]:8080 weight 1 backup "
            "pool-purge-delay 5s pool-max-conn -1");
}

TEST(Builders, AddServerOptionsAreValidatedWords) {
  auto r = add_server("web", "s", "10.0.0.5", 80, 1, false, "check;shutdown agent-send a\\b");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            "add server web/s 10.0.0.5:80 weight 1 check\\;shutdown agent-send a\\\\b "
            "pool-purge-delay 5s pool-max-conn -1");
  EXPECT_FALSE(add_server("web", "s", "10.0.0.5", 80, 1, false, "check\ninter 1s").ok());
}

TEST(Builders, AddServerRefusesMoreThan64Words) {
  std::string options;
  for (int i = 0; i < 58; ++i) options += "check ";  // 6 fixed words + 58 = 64
  EXPECT_TRUE(add_server("web", "s", "10.0.0.5", 80, 1, false, options).ok());
  auto r = add_server("web", "s", "10.0.0.5", 80, 1, true, options);  // + backup = 65
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("64"), std::string::npos) << r.error().message;
}

TEST(Builders, OtherCommands) {
  EXPECT_EQ(*del_server("be", "s"), "del server be/s");
  EXPECT_EQ(*enable_health("be", "s"), "enable health be/s");
  EXPECT_EQ(*enable_agent("be", "s"), "enable agent be/s");
  EXPECT_EQ(*shutdown_sessions("be", "s"), "shutdown sessions server be/s");
  EXPECT_EQ(*show_servers_state("be x"), "show servers state be\\ x");
  EXPECT_EQ(*show_stat("be"), "show stat be -1 -1");
  EXPECT_FALSE(show_stat("be\n").ok());
}

}  // namespace
}  // namespace ep::haproxy::cmd
