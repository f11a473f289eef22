#include "reconcile/diff.h"

#include <gtest/gtest.h>

#include "reconcile/applier.h"

namespace ep::reconcile {
namespace {

ServerSpec spec(const std::string& addr, int port, int weight = 1) {
  ServerSpec s;
  s.address = addr;
  s.port = static_cast<uint16_t>(port);
  s.weight = weight;
  s.name = "ep-" + addr + ":" + std::to_string(port);
  return s;
}

ActualServer server(const std::string& name, const std::string& addr, int port, int admin = 0,
                    int weight = 1, int sessions = 0) {
  ActualServer s;
  s.name = name;
  s.address = addr;
  s.port = static_cast<uint16_t>(port);
  s.admin_state = admin;
  s.weight = weight;
  s.sessions = sessions;
  s.op_state = 2;
  return s;
}

std::vector<std::string> describe(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& a : p.actions) out.push_back(std::string(to_string(a.kind)) + " " + a.server);
  return out;
}

class DiffTest : public ::testing::Test {
 protected:
  BackendPolicy policy_ = [] {
    BackendPolicy p;
    p.name = "web";
    return p;
  }();
  ActualBackend actual_{"web", true, "roundrobin", {}};
  DesiredBackend desired_{"web", {}};
  DrainBook drains_;
  SteadyTime now_{std::chrono::hours(5)};

  Plan run(BackendMode mode = BackendMode::kDynamic) {
    return diff(desired_, actual_, policy_, mode, drains_, now_);
  }
};

TEST_F(DiffTest, AddsMissingServersInNameOrder) {
  desired_.servers = {spec("10.0.0.2", 80), spec("10.0.0.1", 80)};
  std::sort(desired_.servers.begin(), desired_.servers.end(),
            [](auto& a, auto& b) { return a.name < b.name; });
  Plan p = run();
  EXPECT_EQ(describe(p), (std::vector<std::string>{"add ep-10.0.0.1:80", "add ep-10.0.0.2:80"}));
  EXPECT_EQ(p.actions[0].spec.address, "10.0.0.1");
}

TEST_F(DiffTest, NothingToDoWhenEqual) {
  desired_.servers = {spec("10.0.0.1", 80)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80)};
  EXPECT_TRUE(run().empty());
}

TEST_F(DiffTest, HandWrittenServersAreLeftAlone) {
  actual_.servers = {server("web1", "10.0.0.9", 80), server("ep-10.0.0.1:80", "10.0.0.1", 80)};
  desired_.servers = {};
  Plan p = run();
  EXPECT_EQ(describe(p), (std::vector<std::string>{"drain ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, RemovalDrainsFirstThenRemovesWhenSessionsAreGone) {
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"drain ep-10.0.0.1:80"}));

  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedDrain, 1, 3)};
  drains_["ep-10.0.0.1:80"] = now_;
  Plan waiting = run();
  EXPECT_TRUE(waiting.empty());
  EXPECT_EQ(waiting.waiting, (std::vector<std::string>{"ep-10.0.0.1:80"}));

  actual_.servers[0].sessions = 0;
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"remove ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, AHeldDrainOutlivesDrainTimeoutButEndsWithItsSessions) {
  policy_.drain_timeout = std::chrono::seconds(30);
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedDrain, 1, 3)};
  drains_["ep-10.0.0.1:80"] = now_ - std::chrono::seconds(300);
  DrainOrigins held;
  held.held = {"ep-10.0.0.1:80"};
  Plan p = diff(desired_, actual_, policy_, BackendMode::kDynamic, drains_, now_, held);
  EXPECT_TRUE(p.empty()) << "a pending terminate hook holds the drain";
  EXPECT_EQ(p.waiting, (std::vector<std::string>{"ep-10.0.0.1:80"}));
  // Not held any more: the backend's drain_timeout applies at once.
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"remove ep-10.0.0.1:80"}));
  // Held, sessions gone: removed as drained.
  actual_.servers[0].sessions = 0;
  p = diff(desired_, actual_, policy_, BackendMode::kDynamic, drains_, now_, held);
  ASSERT_EQ(describe(p), (std::vector<std::string>{"remove ep-10.0.0.1:80"}));
  EXPECT_EQ(p.actions[0].reason, Reason::kDrained);
  // drain_timeout 0 (remove at once) still drains a held server first.
  policy_.drain_timeout = std::chrono::seconds(0);
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80)};
  p = diff(desired_, actual_, policy_, BackendMode::kDynamic, drains_, now_, held);
  EXPECT_EQ(describe(p), (std::vector<std::string>{"drain ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, DrainTimeoutForcesRemoval) {
  policy_.drain_timeout = std::chrono::seconds(30);
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedDrain, 1, 3)};
  drains_["ep-10.0.0.1:80"] = now_ - std::chrono::seconds(29);
  EXPECT_TRUE(run().empty());
  drains_["ep-10.0.0.1:80"] = now_ - std::chrono::seconds(30);
  Plan p = run();
  ASSERT_EQ(describe(p), (std::vector<std::string>{"remove ep-10.0.0.1:80"}));
  EXPECT_EQ(p.actions[0].reason, Reason::kDrainTimeout);
  EXPECT_EQ(reason_text(p.actions[0]), "drain timeout reached with 3 session(s) left");
}

TEST_F(DiffTest, ZeroDrainTimeoutRemovesAtOnce) {
  policy_.drain_timeout = std::chrono::milliseconds(0);
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, 0, 1, 5)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"remove ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, ServerInMaintenanceThatIsDesiredIsEnabled) {
  desired_.servers = {spec("10.0.0.1", 80)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedMaint)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"enable ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, OperatorsMaintenanceIsLeftInPlace) {
  desired_.servers = {spec("10.0.0.1", 80), spec("10.0.0.2", 80, 5)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedMaint),
                     server("ep-10.0.0.2:80", "10.0.0.2", 80)};
  DrainOrigins origins;
  origins.operator_maint = {"ep-10.0.0.1:80"};
  Plan p = diff(desired_, actual_, policy_, BackendMode::kDynamic, drains_, now_, origins);
  EXPECT_EQ(describe(p), (std::vector<std::string>{"set-weight ep-10.0.0.2:80"}));
  // Gone from discovery: removed as usual (already in maintenance).
  desired_.servers = {spec("10.0.0.2", 80, 5)};
  actual_.servers[1].weight = 5;
  p = diff(desired_, actual_, policy_, BackendMode::kDynamic, drains_, now_, origins);
  EXPECT_EQ(describe(p), (std::vector<std::string>{"remove ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, DrainingServerBackInDiscoveryIsUndrained) {
  desired_.servers = {spec("10.0.0.1", 80)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedDrain, 1, 2)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"undrain ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, WeightChange) {
  desired_.servers = {spec("10.0.0.1", 80, 7)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, 0, 1)};
  Plan p = run();
  ASSERT_EQ(describe(p), (std::vector<std::string>{"set-weight ep-10.0.0.1:80"}));
  EXPECT_EQ(p.actions[0].spec.weight, 7);
}

TEST_F(DiffTest, IdNamedServerWithNewAddressIsReaddressed) {
  ServerSpec s = spec("10.0.0.2", 81);
  s.name = "ep-web-1";
  desired_.servers = {s};
  actual_.servers = {server("ep-web-1", "10.0.0.1", 80)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"set-address ep-web-1"}));
}

TEST_F(DiffTest, OrderIsRemovalsThenAdditionsThenUpdates) {
  desired_.servers = {spec("10.0.0.1", 80, 5), spec("10.0.0.3", 80)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80),
                     server("ep-10.0.0.2:80", "10.0.0.2", 80)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"drain ep-10.0.0.2:80", "add ep-10.0.0.3:80",
                                                       "set-weight ep-10.0.0.1:80"}));
}

// ---- slot mode

class SlotDiffTest : public DiffTest {
 protected:
  void SetUp() override {
    policy_.slots = 3;
    actual_.algorithm = "static-rr";
    for (int i = 1; i <= 3; ++i) {
      actual_.servers.push_back(server("ep-" + std::to_string(i), "127.0.0.1", 1,
                                       admin::kForcedMaint | admin::kConfigMaint));
    }
  }
};

TEST_F(SlotDiffTest, AssignsLowestFreeSlots) {
  desired_.servers = {spec("10.0.0.1", 80), spec("10.0.0.2", 80)};
  Plan p = run(BackendMode::kSlots);
  EXPECT_EQ(p.mode, BackendMode::kSlots);
  ASSERT_EQ(describe(p), (std::vector<std::string>{"assign-slot ep-1", "assign-slot ep-2"}));
  EXPECT_EQ(p.actions[0].spec.address, "10.0.0.1");
  EXPECT_EQ(p.missing_slots, 0);
}

// A slot that already has the desired weight is assigned without a weight command.
TEST_F(SlotDiffTest, AssignmentSkipsTheWeightWhereTheSlotHasIt) {
  actual_.algorithm = "roundrobin";
  desired_.servers = {spec("10.0.0.1", 80), spec("10.0.0.2", 80, 5)};
  Plan p = run(BackendMode::kSlots);
  ASSERT_EQ(describe(p), (std::vector<std::string>{"assign-slot ep-1", "assign-slot ep-2"}));
  EXPECT_TRUE(p.actions[0].slot_weight_ok);   // slot weight 1, wanted 1
  EXPECT_FALSE(p.actions[1].slot_weight_ok);  // slot weight 1, wanted 5
  // static-rr: only zero / non-zero counts (absolute weights are refused there).
  actual_.algorithm = "static-rr";
  p = run(BackendMode::kSlots);
  EXPECT_TRUE(p.actions[0].slot_weight_ok);
  EXPECT_TRUE(p.actions[1].slot_weight_ok);
  desired_.servers = {spec("10.0.0.1", 80, 0)};
  p = run(BackendMode::kSlots);
  ASSERT_EQ(p.actions.size(), 1u);
  EXPECT_FALSE(p.actions[0].slot_weight_ok);  // weight 0 must be sent
}

TEST_F(SlotDiffTest, LiveServersKeepTheirSlot) {
  actual_.servers[1] = server("ep-2", "10.0.0.2", 80, admin::kConfigMaint);  // live in slot 2
  desired_.servers = {spec("10.0.0.1", 80), spec("10.0.0.2", 80)};
  EXPECT_EQ(describe(run(BackendMode::kSlots)), (std::vector<std::string>{"assign-slot ep-1"}));
}

TEST_F(SlotDiffTest, ExhaustionIsCounted) {
  desired_.servers = {spec("10.0.0.1", 80), spec("10.0.0.2", 80), spec("10.0.0.3", 80),
                      spec("10.0.0.4", 80), spec("10.0.0.5", 80)};
  Plan p = run(BackendMode::kSlots);
  EXPECT_EQ(p.actions.size(), 3u);
  EXPECT_EQ(p.missing_slots, 2);
}

TEST_F(SlotDiffTest, RemovedServerDrainsThenFreesItsSlot) {
  actual_.servers[0] = server("ep-1", "10.0.0.1", 80);
  EXPECT_EQ(describe(run(BackendMode::kSlots)), (std::vector<std::string>{"drain ep-1"}));
  actual_.servers[0].admin_state = admin::kForcedDrain;
  EXPECT_EQ(describe(run(BackendMode::kSlots)), (std::vector<std::string>{"remove ep-1"}));
}

TEST_F(SlotDiffTest, MaintSlotStillHoldingADesiredAddressIsReusedInPlace) {
  actual_.servers[2] = server("ep-3", "10.0.0.7", 80, admin::kForcedMaint);
  desired_.servers = {spec("10.0.0.7", 80)};
  EXPECT_EQ(describe(run(BackendMode::kSlots)), (std::vector<std::string>{"assign-slot ep-3"}));
}

TEST_F(SlotDiffTest, OperatorsMaintenanceOnASlotKeepsItOffAndItsAddress) {
  actual_.servers[2] = server("ep-3", "10.0.0.7", 80, admin::kForcedMaint);
  desired_.servers = {spec("10.0.0.7", 80)};
  DrainOrigins origins;
  origins.operator_maint = {"ep-3"};
  Plan p = diff(desired_, actual_, policy_, BackendMode::kSlots, drains_, now_, origins);
  EXPECT_TRUE(p.empty()) << describe(p).size();
  EXPECT_EQ(p.missing_slots, 0);  // not placed again in another slot either
}

TEST_F(SlotDiffTest, StaleAddressInFreeSlotIsReset) {
  actual_.servers[2] = server("ep-3", "10.0.0.7", 80, admin::kForcedMaint);
  EXPECT_EQ(describe(run(BackendMode::kSlots)), (std::vector<std::string>{"remove ep-3"}));
}

TEST_F(SlotDiffTest, NonSlotServersAreNotManaged) {
  actual_.servers.push_back(server("ep-web", "10.0.0.9", 80));
  actual_.servers.push_back(server("static1", "10.0.0.8", 80));
  EXPECT_TRUE(run(BackendMode::kSlots).empty());
}

// The version differences the reconciler relies on, one place (docs/haproxy-runtime.md).
TEST(Features, DerivedFromTheVersion) {
  const Features f24 = features_of(2, 4), f26 = features_of(2, 6), f30 = features_of(3, 0),
                 f32 = features_of(3, 2), none = features_of(0, 0);
  EXPECT_FALSE(f24.dynamic_servers);
  EXPECT_TRUE(f26.dynamic_servers);
  EXPECT_FALSE(f26.add_server_cookie);
  EXPECT_TRUE(f30.dynamic_servers);
  EXPECT_TRUE(f30.add_server_cookie);
  EXPECT_TRUE(f32.dynamic_servers && f32.add_server_cookie);
  EXPECT_FALSE(none.dynamic_servers ||
               none.add_server_cookie);  // unreadable version: the safe path
  EXPECT_EQ(f26.describe(), "dynamic servers yes, add server cookie no");
  EXPECT_EQ(f30.describe(), "dynamic servers yes, add server cookie yes");
  BackendPolicy p;
  EXPECT_EQ(resolve_mode(p, f30, "roundrobin"), BackendMode::kDynamic);
  EXPECT_EQ(resolve_mode(p, f24, "roundrobin"), BackendMode::kSlots);
}

TEST(ResolveMode, AutoPicksDynamicOn26WithDynamicAlgorithm) {
  BackendPolicy p;
  EXPECT_EQ(resolve_mode(p, 2, 6, "roundrobin"), BackendMode::kDynamic);
  EXPECT_EQ(resolve_mode(p, 2, 6, "static-rr"), BackendMode::kSlots);
  EXPECT_EQ(resolve_mode(p, 2, 4, "roundrobin"), BackendMode::kSlots);
  EXPECT_EQ(resolve_mode(p, 3, 0, "leastconn"), BackendMode::kDynamic);
  p.slots = 10;
  EXPECT_EQ(resolve_mode(p, 2, 6, "roundrobin"), BackendMode::kSlots);
  p.mode = BackendMode::kDynamic;
  EXPECT_EQ(resolve_mode(p, 2, 6, "static-rr"), BackendMode::kDynamic);
}

// A server with health checks leaves maintenance in DRAIN (see haproxy/runtime warm_line) and is
// set ready only once HAProxy reports it UP with a passed check: never traffic before a check.
TEST_F(DiffTest, WarmingServerIsSetReadyOnlyAfterAPassedCheck) {
  desired_.servers = {spec("10.0.0.1", 80)};
  ActualServer s = server("ep-10.0.0.1:80", "10.0.0.1", 80, /*admin=*/0x08);
  s.check_state = 0x02 | 0x04;  // configured, enabled
  s.check_result = 0;           // no check has run yet
  actual_.servers = {s};
  Plan p = run();
  EXPECT_TRUE(p.empty()) << describe(p)[0];
  EXPECT_EQ(p.warming, (std::vector<std::string>{"ep-10.0.0.1:80"}));

  actual_.servers[0].op_state = 0;  // DOWN: the check failed
  actual_.servers[0].check_result = 2;
  EXPECT_TRUE(run().empty());

  actual_.servers[0].op_state = 2;  // UP after rise checks
  actual_.servers[0].check_result = 3;
  p = run();
  EXPECT_EQ(describe(p), (std::vector<std::string>{"undrain ep-10.0.0.1:80"}));
  EXPECT_TRUE(p.warming.empty());
}

// The reason says why the server was in DRAIN: a new server leaving its health gate is not "back
// in discovery while draining" (the same undrain action, three different truths).
TEST_F(DiffTest, UndrainReasonSaysWhyTheServerWasInDrain) {
  desired_.servers = {spec("10.0.0.1", 80)};
  ActualServer s = server("ep-10.0.0.1:80", "10.0.0.1", 80, admin::kForcedDrain);
  s.check_state = 0x02 | 0x04;
  s.check_result = 3;  // passed
  actual_.servers = {s};
  DrainOrigins warming;
  warming.warming = {"ep-10.0.0.1:80"};
  DrainOrigins removing;
  removing.removing = {"ep-10.0.0.1:80"};
  for (BackendMode mode : {BackendMode::kDynamic, BackendMode::kSlots}) {
    if (mode == BackendMode::kSlots) {
      actual_.servers[0].name = "ep-1";
      warming.warming = {"ep-1"};
      removing.removing = {"ep-1"};
    }
    Plan gate = diff(desired_, actual_, policy_, mode, drains_, now_, warming);
    ASSERT_EQ(gate.actions.size(), 1u);
    EXPECT_EQ(gate.actions[0].kind, ActionKind::kUndrain);
    EXPECT_EQ(gate.actions[0].reason, Reason::kHealthCheckPassed);
    EXPECT_EQ(reason_text(gate.actions[0]), "new server passed its health check");
    Plan back = diff(desired_, actual_, policy_, mode, drains_, now_, removing);
    ASSERT_EQ(back.actions.size(), 1u);
    EXPECT_EQ(back.actions[0].reason, Reason::kBackInDiscovery);
    EXPECT_EQ(reason_text(back.actions[0]), "back in discovery while draining");
    Plan unknown = diff(desired_, actual_, policy_, mode, drains_, now_);
    ASSERT_EQ(unknown.actions.size(), 1u);
    EXPECT_EQ(unknown.actions[0].reason, Reason::kFoundDraining);
  }
}

TEST_F(DiffTest, EveryReasonHasATextAndAnIdentifier) {
  for (int r = 0; r <= static_cast<int>(Reason::kDuplicateSlot); ++r) {
    Action a{ActionKind::kRemove, "s", {}, static_cast<Reason>(r), "x"};
    EXPECT_NE(reason_text(a), "?") << r;
    EXPECT_STRNE(to_string(a.reason), "?") << r;
  }
}

TEST_F(DiffTest, DrainingServerWithoutChecksIsUndrainedAtOnce) {
  desired_.servers = {spec("10.0.0.1", 80)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, /*admin=*/0x08)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"undrain ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, StaticRrOnlyComparesZeroOrNotForWeights) {
  // HAProxy refuses absolute weights on static-rr; the applier sends 0%/100%, so the weight read
  // back stays the configured one: that must not look like a change every pass.
  actual_.algorithm = "static-rr";
  desired_.servers = {spec("10.0.0.1", 80, 7)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80, 0, /*weight=*/1)};
  EXPECT_TRUE(run().empty());
  desired_.servers = {spec("10.0.0.1", 80, 0)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"set-weight ep-10.0.0.1:80"}));
}

// Make before break: replacing every server in one change keeps the old ones in rotation until a
// new one serves (passed its check), instead of answering 503 meanwhile.
TEST_F(DiffTest, LastServingServersAreHeldUntilANewOneServes) {
  desired_.servers = {spec("10.0.0.2", 80)};
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80)};  // old, UP
  Plan p = run();
  EXPECT_EQ(describe(p), (std::vector<std::string>{"add ep-10.0.0.2:80"}));
  EXPECT_EQ(p.waiting, (std::vector<std::string>{"ep-10.0.0.1:80"}));

  // The new one exists but is still warming up (DRAIN, no passed check): still held.
  ActualServer fresh = server("ep-10.0.0.2:80", "10.0.0.2", 80, /*admin=*/0x08);
  fresh.check_state = 0x06;
  fresh.op_state = 0;
  actual_.servers.push_back(fresh);
  p = run();
  EXPECT_TRUE(p.empty()) << describe(p)[0];

  // It serves: now the old one is drained.
  actual_.servers[1] = server("ep-10.0.0.2:80", "10.0.0.2", 80);
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"drain ep-10.0.0.1:80"}));
}

TEST_F(DiffTest, DownServersAndIntendedEmptySetsAreNotHeld) {
  desired_.servers = {spec("10.0.0.2", 80)};
  ActualServer down = server("ep-10.0.0.1:80", "10.0.0.1", 80);
  down.op_state = 0;  // not serving anyway
  actual_.servers = {down};
  EXPECT_EQ(describe(run()),
            (std::vector<std::string>{"drain ep-10.0.0.1:80", "add ep-10.0.0.2:80"}));
  desired_.servers = {};  // allow_empty let an empty set through: that is what was asked
  actual_.servers = {server("ep-10.0.0.1:80", "10.0.0.1", 80)};
  EXPECT_EQ(describe(run()), (std::vector<std::string>{"drain ep-10.0.0.1:80"}));
}

}  // namespace
}  // namespace ep::reconcile

namespace ep::reconcile {
namespace {

TEST(BackendPolicyTest, ChecksAreWholeWordsOfTheServerOptions) {
  BackendPolicy p;
  p.server_options = "check inter 1s";
  EXPECT_TRUE(p.checks());
  EXPECT_FALSE(p.agent_checks());
  p.server_options = "\tinter 1s  agent-check\nagent-port 9000";
  EXPECT_FALSE(p.checks());  // "agent-check" is not "check"
  EXPECT_TRUE(p.agent_checks());
  p.server_options = "checks check-ssl";
  EXPECT_FALSE(p.checks());
  p.server_options = "";
  EXPECT_FALSE(p.checks());
  p.server_options = "  check";
  EXPECT_TRUE(p.checks());
}

}  // namespace
}  // namespace ep::reconcile
