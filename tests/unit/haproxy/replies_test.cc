#include "haproxy/runtime/replies.h"

#include <gtest/gtest.h>

namespace ep::haproxy::reply {
namespace {

TEST(Replies, AddrAcceptsHaproxyChangeTexts) {
  EXPECT_TRUE(addr_accepted(
      "no need to change the addr, port changed from '19004' to '19003' by 'stats socket "
      "command'"));
  EXPECT_TRUE(addr_accepted(
      "no need to change the addr, no need to change the port by 'stats socket command'"));
  EXPECT_TRUE(
      addr_accepted("IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'"));
  EXPECT_TRUE(addr_accepted("[4]: IP changed from '127.0.0.1' to '127.0.0.2' by 'x'"));
  EXPECT_TRUE(addr_accepted("nothing changed"));
  EXPECT_FALSE(addr_accepted("No such server."));
  EXPECT_FALSE(addr_accepted("Invalid addr 'notanip' by 'stats socket command'"));
  EXPECT_FALSE(addr_accepted(""));
  EXPECT_FALSE(addr_accepted("IP changed from 'a' to 'b'\nNo such server."));
}

TEST(Replies, EmptyMeansSuccess) {
  EXPECT_TRUE(empty_accepted(""));
  EXPECT_FALSE(empty_accepted("Absolute weight can only be between 0 and 256 inclusive."));
  EXPECT_FALSE(empty_accepted("No such server."));
}

TEST(Replies, AddServer) {
  EXPECT_TRUE(add_accepted("New server registered."));
  EXPECT_FALSE(
      add_accepted("Backend must use a dynamic load balancing to support dynamic servers."));
  EXPECT_FALSE(add_accepted("Already exists a server with the same name in backend."));
  EXPECT_FALSE(add_accepted(""));
}

TEST(Replies, DelServerHasThreeOutcomes) {
  EXPECT_EQ(del_outcome("Server deleted."), DelOutcome::kDeleted);
  EXPECT_EQ(del_outcome("Server still has connections attached to it, cannot remove it."),
            DelOutcome::kHasConnections);
  EXPECT_EQ(del_outcome("Only servers in maintenance mode can be deleted."), DelOutcome::kFailed);
  EXPECT_EQ(del_outcome("No such server."), DelOutcome::kFailed);
  EXPECT_EQ(del_outcome(""), DelOutcome::kFailed);
}

TEST(Replies, SpecialTexts) {
  EXPECT_TRUE(proxy_disabled("Proxy is disabled."));
  EXPECT_FALSE(proxy_disabled(""));
  EXPECT_TRUE(static_weight_refused(
      "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."));
  EXPECT_TRUE(backend_missing("Can't find backend."));
  EXPECT_TRUE(backend_missing("No such proxy."));
  EXPECT_TRUE(backend_missing("No such backend."));
  EXPECT_FALSE(backend_missing("No such server."));
}

}  // namespace
}  // namespace ep::haproxy::reply
