#include "haproxy/config/servers.h"

#include <gtest/gtest.h>

#include "haproxy/config/render.h"

namespace ep::haproxy::config {
namespace {

reconcile::BackendPolicy slots_policy(int slots) {
  reconcile::BackendPolicy p;
  p.name = "web";
  p.mode = reconcile::BackendMode::kSlots;
  p.slots = slots;
  return p;
}

ServerSpec spec(const std::string& addr, int port, int weight = 1) {
  return ServerSpec{"ep-" + addr + "-" + std::to_string(port), addr,
                    static_cast<std::uint16_t>(port), weight, false};
}

std::vector<std::string> lines(const std::vector<ActualServer>& servers) {
  std::vector<std::string> out;
  for (const auto& s : servers) out.push_back(server_line(s, "check"));
  return out;
}

TEST(GrowthRule, HalfAgainAndAtLeastTenMore) {
  EXPECT_EQ(grown_slot_count(4, 5), 14);    // +10 minimum
  EXPECT_EQ(grown_slot_count(40, 60), 90);  // desired + 50%
  EXPECT_EQ(grown_slot_count(0, 1), 10);
  EXPECT_EQ(grown_slot_count(99990, 99999), 100000);
}

TEST(FreeSlots, AppendsPlaceholdersAfterTheHighestSlot) {
  auto p = slots_policy(2);
  ActualServer a;
  a.name = "ep-1";
  a.address = "10.0.0.1";
  a.port = 80;
  a.weight = 5;
  ActualServer b;
  b.name = "ep-3";
  b.address = "10.0.0.3";
  b.port = 80;
  b.weight = 1;
  auto out = with_free_slots({a, b}, p, 4);
  EXPECT_EQ(lines(out), (std::vector<std::string>{
                            "server ep-1 10.0.0.1:80 weight 5 check",
                            "server ep-3 10.0.0.3:80 weight 1 check",
                            "server ep-4 127.0.0.1:1 weight 1 check disabled",
                            "server ep-5 127.0.0.1:1 weight 1 check disabled",
                        }));
}

TEST(ConfigModeServers, SlotsKeepTheirAddressesAndNewOnesTakeFreeSlots) {
  auto p = slots_policy(4);
  ActualServer s1;  // holds 10.0.0.2, still desired: stays in slot 2
  s1.name = "ep-2";
  s1.address = "10.0.0.2";
  s1.port = 80;
  s1.weight = 1;
  ActualServer s3;  // holds 10.0.0.9, gone: freed
  s3.name = "ep-3";
  s3.address = "10.0.0.9";
  s3.port = 80;
  bool grew = true;
  auto out = config_mode_servers({spec("10.0.0.1", 80, 3), spec("10.0.0.2", 80, 7)}, {s1, s3}, p,
                                 reconcile::BackendMode::kSlots, &grew);
  EXPECT_FALSE(grew);
  EXPECT_EQ(lines(out), (std::vector<std::string>{
                            "server ep-1 10.0.0.1:80 weight 3 check",
                            "server ep-2 10.0.0.2:80 weight 7 check",
                            "server ep-3 127.0.0.1:1 weight 1 check disabled",
                            "server ep-4 127.0.0.1:1 weight 1 check disabled",
                        }));
}

TEST(ConfigModeServers, SlotsGrowWhenTooFew) {
  auto p = slots_policy(2);
  std::vector<ServerSpec> want;
  for (int i = 1; i <= 3; ++i) want.push_back(spec("10.0.0." + std::to_string(i), 80));
  bool grew = false;
  auto out = config_mode_servers(want, {}, p, reconcile::BackendMode::kSlots, &grew);
  EXPECT_TRUE(grew);
  EXPECT_EQ(out.size(), 12u);  // max(3 + 2, 2 + 10)
  EXPECT_EQ(out[2].address, "10.0.0.3");
  EXPECT_TRUE(out[3].in_maint());
}

TEST(ConfigModeServers, DynamicKeepsExistingOrderAndAppendsNewOnes) {
  reconcile::BackendPolicy p;
  p.name = "web";
  ActualServer old;
  old.name = spec("10.0.0.2", 80).name;
  old.address = "10.0.0.2";
  old.port = 80;
  ActualServer gone;
  gone.name = spec("10.0.0.9", 80).name;
  auto out = config_mode_servers({spec("10.0.0.1", 80), spec("10.0.0.2", 80, 9)}, {gone, old}, p,
                                 reconcile::BackendMode::kDynamic);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, old.name);
  EXPECT_EQ(out[0].weight, 9);
  EXPECT_EQ(out[1].address, "10.0.0.1");
  EXPECT_FALSE(out[1].in_maint());
}

}  // namespace
}  // namespace ep::haproxy::config
