// RuntimeInstance against a scripted admin socket: replies HAProxy gives only in situations that
// are hard to produce on demand (a connection attached to an old worker, unknown texts).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "haproxy/runtime/runtime_instance.h"
#include "support/haproxy/fake_admin_server.h"

namespace ep::haproxy {
namespace {

using reconcile::ActionKind;
using Outcome = reconcile::ActionResult::Outcome;
using std::chrono::milliseconds;
using test::FakeAdminServer;

std::string temp_socket() {
  static std::atomic<int> n{0};
  return "/tmp/epfri." + std::to_string(::getpid()) + "." + std::to_string(n++) + ".sock";
}

reconcile::Plan add_plan(int n) {
  reconcile::Plan plan;
  plan.backend = "web";
  plan.mode = reconcile::BackendMode::kDynamic;
  plan.checks = true;
  for (int i = 0; i < n; ++i) {
    ServerSpec s{"ep-10.0.0." + std::to_string(i + 1) + ":80", "10.0.0." + std::to_string(i + 1),
                 80, 1, false};
    plan.actions.push_back({ActionKind::kAdd, s.name, s, reconcile::Reason::kNewInDiscovery, {}});
  }
  return plan;
}

reconcile::BackendPolicy policy() {
  reconcile::BackendPolicy p;
  p.name = "web";
  p.server_options = "check inter 1s";
  return p;
}

TEST(RuntimeInstanceFake, ProxyDisabledReconnectsAndRetriesOnce) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([](const std::string& c, int conn) {
                           if (conn == 0) return std::string("Proxy is disabled.");
                           if (c.rfind("add server", 0) == 0)
                             return std::string("New server registered.");
                           return std::string();
                         }));
  RuntimeInstance inst(path, milliseconds(1000));
  auto results = inst.apply(add_plan(2), policy());
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.outcome, Outcome::kDone) << r.message;
  EXPECT_EQ(server.connections(), 2);
}

TEST(RuntimeInstanceFake, ProxyDisabledTwiceIsAFailureWithTheText) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([](const std::string&, int) {
                           return std::string("Proxy is disabled.");
                         }));
  RuntimeInstance inst(path, milliseconds(1000));
  auto results = inst.apply(add_plan(1), policy());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kFailed);
  EXPECT_NE(results[0].message.find("Proxy is disabled."), std::string::npos);
  EXPECT_EQ(server.connections(), 2);
}

TEST(RuntimeInstanceFake, UnknownReplyIsAFailureCarryingTheText) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([](const std::string& c, int) {
                           if (c.rfind("add server", 0) == 0)
                             return std::string("New server registered.");
                           if (c.rfind("enable health", 0) == 0)
                             return std::string("Something unexpected happened.");
                           return std::string();
                         }));
  RuntimeInstance inst(path, milliseconds(1000));
  auto results = inst.apply(add_plan(1), policy());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kFailed);
  EXPECT_NE(results[0].message.find("Something unexpected happened."), std::string::npos)
      << results[0].message;
  // The failed step stops the action: the server is never made ready.
  for (const auto& l : server.lines()) EXPECT_EQ(l.find("state ready"), std::string::npos) << l;
}

TEST(RuntimeInstanceFake, FailedAddReportsItsOwnTextAndSendsNothingElse) {
  std::string path = temp_socket();
  FakeAdminServer server(
      path, FakeAdminServer::prompt_mode([](const std::string& c, int) {
        if (c.rfind("add server", 0) == 0) {
          return std::string("Already exists a server with the same name in backend.");
        }
        return std::string("No such server.");
      }));
  RuntimeInstance inst(path, milliseconds(1000));
  auto results = inst.apply(add_plan(1), policy());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kFailed);
  EXPECT_NE(results[0].message.find("Already exists a server with the same name in backend."),
            std::string::npos)
      << results[0].message;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto lines = server.lines();
  while ((lines.empty() || lines.back() != "quit") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    lines = server.lines();
  }
  ASSERT_EQ(lines.size(), 3u);  // prompt, add server, quit
  EXPECT_EQ(lines[1].rfind("add server web/", 0), 0u) << lines[1];
}

// Slot assignment: set addr, then the weight only where the slot's weight differs
// (Action::slot_weight_ok), then the health gate.
TEST(RuntimeInstanceFake, SlotAssignmentSendsTheWeightOnlyWhereItDiffers) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([](const std::string& c, int) {
                           if (c.find(" addr ") != std::string::npos) {
                             return std::string("IP changed from '127.0.0.1' to '10.0.0.1'");
                           }
                           return std::string();
                         }));
  reconcile::Plan plan;
  plan.backend = "web";
  plan.mode = reconcile::BackendMode::kSlots;
  plan.checks = true;
  ServerSpec a{"ep-1", "10.0.0.1", 80, 1, false};
  ServerSpec b{"ep-2", "10.0.0.2", 80, 5, false};
  plan.actions.push_back(
      {ActionKind::kAssignSlot, "ep-1", a, reconcile::Reason::kNewInDiscovery, {}, true});
  plan.actions.push_back(
      {ActionKind::kAssignSlot, "ep-2", b, reconcile::Reason::kNewInDiscovery, {}, false});
  RuntimeInstance inst(path, milliseconds(1000));
  auto results = inst.apply(plan, policy());
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.outcome, Outcome::kDone) << r.message;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto lines = server.lines();
  while ((lines.empty() || lines.back() != "quit") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    lines = server.lines();
  }
  auto sent = [&](const std::string& l) {
    return std::find(lines.begin(), lines.end(), l) != lines.end();
  };
  EXPECT_TRUE(sent("set server web/ep-1 addr 10.0.0.1 port 80"));
  EXPECT_FALSE(sent("set server web/ep-1 weight 1"));
  EXPECT_TRUE(sent("set server web/ep-1 state drain;set server web/ep-1 health down"));
  EXPECT_TRUE(sent("set server web/ep-2 addr 10.0.0.2 port 80"));
  EXPECT_TRUE(sent("set server web/ep-2 weight 5"));
  EXPECT_TRUE(sent("set server web/ep-2 state drain;set server web/ep-2 health down"));
}

TEST(RuntimeInstanceFake, DelWithConnectionsIsNotYetAndOtherDelRepliesFail) {
  std::string path = temp_socket();
  FakeAdminServer server(
      path, FakeAdminServer::prompt_mode([](const std::string& c, int) {
        if (c == "del server web/a") {
          return std::string("Server still has connections attached to it, cannot remove it.");
        }
        if (c == "del server web/b") return std::string("Server deleted.");
        if (c == "del server web/c")
          return std::string("Only servers in maintenance mode can be deleted.");
        return std::string();
      }));
  RuntimeInstance inst(path, milliseconds(1000));
  reconcile::Plan plan;
  plan.backend = "web";
  plan.mode = reconcile::BackendMode::kDynamic;
  for (const char* n : {"a", "b", "c"})
    plan.actions.push_back({ActionKind::kRemove, n, {}, reconcile::Reason::kGoneInMaintenance, {}});
  auto results = inst.apply(plan, policy());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, Outcome::kNotYet) << results[0].message;
  EXPECT_NE(results[0].message.find("still has connections"), std::string::npos);
  EXPECT_EQ(results[1].outcome, Outcome::kDone) << results[1].message;
  EXPECT_EQ(results[2].outcome, Outcome::kFailed);
  EXPECT_NE(results[2].message.find("Only servers in maintenance mode can be deleted."),
            std::string::npos);
  // maint then del for each; sessions are cut only where del said the server has connections
  // (a), and a is deleted once more after that.
  auto lines = server.lines();
  std::vector<std::string> a_lines, b_lines;
  for (const auto& l : lines) {
    if (l.find("web/a") != std::string::npos) a_lines.push_back(l);
    if (l.find("web/b") != std::string::npos) b_lines.push_back(l);
  }
  EXPECT_EQ(a_lines,
            (std::vector<std::string>{"set server web/a state maint", "del server web/a",
                                      "shutdown sessions server web/a", "del server web/a"}));
  EXPECT_EQ(b_lines,
            (std::vector<std::string>{"set server web/b state maint", "del server web/b"}));
}

// A server whose connections end once its sessions are cut is deleted in the same apply.
TEST(RuntimeInstanceFake, DelRefusedForConnectionsCutsSessionsAndDeletesInTheSameApply) {
  std::string path = temp_socket();
  std::atomic<bool> cut{false};
  FakeAdminServer server(
      path, FakeAdminServer::prompt_mode([&](const std::string& c, int) {
        if (c == "shutdown sessions server web/a") cut = true;
        if (c == "del server web/a") {
          return std::string(
              cut ? "Server deleted."
                  : "Server still has connections attached to it, cannot remove it.");
        }
        return std::string();
      }));
  RuntimeInstance inst(path, milliseconds(1000));
  reconcile::Plan plan;
  plan.backend = "web";
  plan.mode = reconcile::BackendMode::kDynamic;
  plan.actions.push_back({ActionKind::kRemove, "a", {}, reconcile::Reason::kGoneDrainDisabled, {}});
  auto results = inst.apply(plan, policy());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kDone) << results[0].message;
  auto lines = server.lines();  // `quit` may arrive after apply() returned: not compared
  lines.resize(std::min<std::size_t>(lines.size(), 5));
  EXPECT_EQ(lines,
            (std::vector<std::string>{"prompt", "set server web/a state maint", "del server web/a",
                                      "shutdown sessions server web/a", "del server web/a"}));
}

TEST(RuntimeInstanceFake, UnsafeSpecIsNotSent) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([](const std::string&, int) {
                           return std::string("New server registered.");
                         }));
  RuntimeInstance inst(path, milliseconds(1000));
  auto plan = add_plan(1);
  plan.actions[0].spec.address = "10.0.0.1;shutdown";
  auto results = inst.apply(plan, policy());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kFailed);
  EXPECT_NE(results[0].message.find("not sent"), std::string::npos) << results[0].message;
  for (const auto& l : server.lines()) EXPECT_EQ(l.find("shutdown"), std::string::npos) << l;
}

TEST(RuntimeInstanceFake, HangingSocketFailsEveryActionWithinTimeout) {
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::silent());
  RuntimeInstance inst(path, milliseconds(200));
  auto results = inst.apply(add_plan(3), policy());
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    EXPECT_EQ(r.outcome, Outcome::kFailed);
    EXPECT_NE(r.message.find(path), std::string::npos) << r.message;
  }
  EXPECT_FALSE(inst.info().ok());
  EXPECT_FALSE(inst.observe({"web"}).ok());
}

}  // namespace
}  // namespace ep::haproxy

namespace ep::haproxy {
namespace {

// A targeted read uses the proxy id learned before; when HAProxy renumbered its proxies (the id
// answers nothing), one whole `show stat -1 6 -1` settles it and the new id is used afterwards.
TEST(RuntimeInstanceFake, StaleProxyIdIsSettledByOneWholeRead) {
  std::atomic<int> iid{3};
  const std::string state =
      "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
      "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
      "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n";
  auto stat = [&](bool rows) {
    const std::string id = std::to_string(iid.load());
    std::string out = "# pxname,svname,scur,status,weight,bck,iid,algo,\n";
    if (rows) {
      out += "web,ep-a,2,UP,1,0," + id + ",,\nweb,BACKEND,2,UP,1,0," + id + ",roundrobin,\n";
    }
    return out;
  };
  std::string path = temp_socket();
  FakeAdminServer server(path, FakeAdminServer::prompt_mode([&](const std::string& c, int) {
                           const std::string id = std::to_string(iid.load());
                           if (c.rfind("show servers state", 0) == 0) {
                             return state + id +
                                    " web 1 ep-a 10.0.0.1 2 0 1 1 3 6 3 4 6 0 0 0 - 80";
                           }
                           if (c == "show stat -1 6 -1") return stat(true);
                           if (c == "show stat " + id + " 6 -1") return stat(true);
                           if (c.rfind("show stat ", 0) == 0) return stat(false);
                           return std::string();
                         }));
  RuntimeInstance inst(path, milliseconds(1000));
  auto all = inst.observe_all({"web"});
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_TRUE(all->at(0).exists);
  iid = 7;  // HAProxy renumbered (a reload we did not see yet)
  auto one = inst.observe({"web"});
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_TRUE(one->at(0).exists);
  EXPECT_EQ(one->at(0).algorithm, "roundrobin");
  ASSERT_EQ(one->at(0).servers.size(), 1u);
  EXPECT_EQ(one->at(0).servers[0].sessions, 2);
  auto again = inst.observe({"web"});
  ASSERT_TRUE(again.ok()) << again.error().message;
  std::vector<std::string> stats;
  for (const auto& l : server.lines()) {
    if (l.rfind("show stat", 0) == 0) stats.push_back(l);
  }
  EXPECT_EQ(stats, (std::vector<std::string>{"show stat -1 6 -1", "show stat 3 6 -1",
                                             "show stat -1 6 -1", "show stat 7 6 -1"}));
}

}  // namespace
}  // namespace ep::haproxy

namespace ep::haproxy {
namespace {

// Where each line was received (first time), for ordering checks.
std::map<std::string, std::size_t> positions(const std::vector<std::string>& lines) {
  std::map<std::string, std::size_t> pos;
  for (std::size_t i = 0; i < lines.size(); ++i) pos.emplace(lines[i], i);
  return pos;
}

reconcile::Plan removals(reconcile::BackendMode mode, int n, const std::string& prefix) {
  reconcile::Plan plan;
  plan.backend = "web";
  plan.mode = mode;
  for (int i = 0; i < n; ++i) {
    plan.actions.push_back({ActionKind::kRemove,
                            prefix + std::to_string(i),
                            {},
                            reconcile::Reason::kGoneDrainDisabled,
                            {}});
  }
  return plan;
}

FakeAdminServer::Handler haproxy_like() {
  return FakeAdminServer::prompt_mode([](const std::string& c, int) {
    if (c.rfind("del server", 0) == 0) return std::string("Server deleted.");
    if (c.rfind("add server", 0) == 0) return std::string("New server registered.");
    if (c.find(" addr ") != std::string::npos)
      return std::string(
          "IP changed from '10.0.0.1' to '127.0.0.1', port changed from '80' to '1' by 'stats "
          "socket command'");
    return std::string();
  });
}

// A plan of more than 500 actions runs at most 500 at once, a finished one starting the next: the
// first servers' `del server` goes out before the last servers' `state maint` (HAProxy 2.6
// changes a server's state faster in a smaller backend), still each after its own server's
// previous step.
TEST(RuntimeInstanceFake, LargeDynamicPlanInterleavesGroups) {
  std::string path = temp_socket();
  FakeAdminServer server(path, haproxy_like());
  RuntimeInstance inst(path, milliseconds(5000));
  auto results = inst.apply(removals(reconcile::BackendMode::kDynamic, 1200, "s"), policy());
  ASSERT_EQ(results.size(), 1200u);
  for (const auto& r : results) ASSERT_EQ(r.outcome, Outcome::kDone) << r.message;
  auto pos = positions(server.lines());
  ASSERT_GE(pos.size(), 2u * 1200 + 1);  // + prompt (each line once; quit may come later)
  EXPECT_LT(pos["del server web/s0"], pos["set server web/s1199 state maint"]);
  EXPECT_LT(pos["set server web/s599 state maint"], pos["del server web/s599"]);
  EXPECT_LT(pos["set server web/s1199 state maint"], pos["del server web/s1199"]);
  EXPECT_GT(pos["set server web/s1000 state maint"], pos["set server web/s499 state maint"] + 400)
      << "the 1001st job starts once 500 have finished";
  // 500 actions or fewer: all start at once, so every first step goes out before any second.
  FakeAdminServer small_server(path + "2", haproxy_like());
  RuntimeInstance small(path + "2", milliseconds(5000));
  (void)small.apply(removals(reconcile::BackendMode::kDynamic, 500, "t"), policy());
  auto small_pos = positions(small_server.lines());
  EXPECT_LT(small_pos["set server web/t499 state maint"], small_pos["del server web/t0"]);
}

// A large plan builds each job's commands when it starts: one that cannot be built (an unsafe
// address) fails with its own reason, is never sent, and the window moves on to the rest.
TEST(RuntimeInstanceFake, UnbuildableJobsInALargePlanFailAloneAndTheWindowMovesOn) {
  std::string path = temp_socket();
  FakeAdminServer server(path, haproxy_like());
  RuntimeInstance inst(path, milliseconds(5000));
  auto plan = add_plan(1200);
  for (int i = 0; i < 1200; ++i) {  // add_plan's 10.0.0.<i+1> runs out at 255
    auto& a = plan.actions[i];
    a.spec.address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    a.server = a.spec.name = "ep-" + a.spec.address + ":80";
  }
  for (int i : {0, 499, 500, 1199}) plan.actions[i].spec.address = "10.9.9.9;shutdown";
  auto results = inst.apply(plan, policy());
  ASSERT_EQ(results.size(), 1200u);
  for (int i = 0; i < 1200; ++i) {
    const bool bad = i == 0 || i == 499 || i == 500 || i == 1199;
    EXPECT_EQ(results[i].outcome, bad ? Outcome::kFailed : Outcome::kDone)
        << i << ": " << results[i].message;
    if (bad) EXPECT_NE(results[i].message.find("not sent"), std::string::npos) << i;
  }
  for (const auto& l : server.lines()) EXPECT_EQ(l.find("shutdown"), std::string::npos) << l;
}

// Slot mode: every removal leaves rotation first (a slot backend never shrinks, nothing to gain
// from a window); additions run in the window, and before removals in a dynamic plan.
TEST(RuntimeInstanceFake, LargeSlotRemovalsStartAtOnceAndAdditionsGoFirst) {
  std::string path = temp_socket();
  FakeAdminServer server(path, haproxy_like());
  RuntimeInstance inst(path, milliseconds(5000));
  auto results = inst.apply(removals(reconcile::BackendMode::kSlots, 1200, "ep-"), policy());
  ASSERT_EQ(results.size(), 1200u);
  for (const auto& r : results) ASSERT_EQ(r.outcome, Outcome::kDone) << r.message;
  auto pos = positions(server.lines());
  EXPECT_LT(pos["set server web/ep-1199 state maint"], pos["shutdown sessions server web/ep-0"]);

  FakeAdminServer mixed_server(path + "2", haproxy_like());
  RuntimeInstance mixed(path + "2", milliseconds(5000));
  auto plan = removals(reconcile::BackendMode::kDynamic, 600, "old");
  for (auto& a : add_plan(200).actions) plan.actions.push_back(a);
  auto mixed_results = mixed.apply(plan, policy());
  ASSERT_EQ(mixed_results.size(), 800u);
  for (const auto& r : mixed_results) ASSERT_EQ(r.outcome, Outcome::kDone) << r.message;
  auto mpos = positions(mixed_server.lines());
  EXPECT_LT(mpos["add server web/ep-10.0.0.200:80 10.0.0.200:80 weight 1 check inter 1s"],
            mpos["set server web/old0 state maint"]);
}

}  // namespace
}  // namespace ep::haproxy
