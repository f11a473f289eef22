// Targeted reads against the real HAProxy 2.6: a pass reads only the backends it must, so a
// one-server change costs the same with 1 and with 200 backends; the whole of HAProxy is read on
// resync; a frontend of the same name does not hide its backend.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "haproxy/runtime/runtime_instance.h"
#include "reconcile/reconciler.h"
#include "support/haproxy/haproxy_config.h"
#include "support/haproxy/haproxy_fixture.h"

namespace ep::haproxy {
namespace {

using std::chrono::milliseconds;
using test::HaproxyConfig;
using test::HaproxyFixture;

ServerSpec spec_for(const std::string& address, int port) {
  ServerSpec s;
  s.address = address;
  s.port = static_cast<std::uint16_t>(port);
  s.weight = 1;
  s.name = "ep-" + address + ":" + std::to_string(port);
  return s;
}

// `backends` roundrobin backends be0..beN-1, each with 5 hand-written servers (not managed).
std::string config_with(int backends) {
  HaproxyConfig cfg;
  for (int b = 0; b < backends; ++b) {
    std::vector<std::string> servers;
    for (int s = 1; s <= 5; ++s) {
      servers.push_back("server s" + std::to_string(s) + " 127.0.0.1:" + std::to_string(s));
    }
    cfg.backend("be" + std::to_string(b), "roundrobin", std::move(servers));
  }
  return cfg.str();
}

struct Cost {
  std::uint64_t commands = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t whole_state_bytes = 0;  // one `show servers state` of that HAProxy
};

// Converges every backend on one server, then adds a second server to one backend and returns
// what that pass sent and read.
Cost one_server_change(int backends) {
  HaproxyFixture hp(config_with(backends));
  auto st = hp.start();
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  if (!st.ok()) return {};
  auto inst = std::make_unique<RuntimeInstance>(hp.socket_path(), milliseconds(5000));
  RuntimeInstance* raw = inst.get();
  std::vector<std::unique_ptr<reconcile::Instance>> instances;
  instances.push_back(std::move(inst));
  std::vector<reconcile::BackendPolicy> policies;
  for (int b = 0; b < backends; ++b) {
    reconcile::BackendPolicy p;
    p.name = "be" + std::to_string(b);
    policies.push_back(p);
  }
  FakeClock clock;
  reconcile::Reconciler rec(policies, std::move(instances), clock);
  for (int b = 0; b < backends; ++b) {
    rec.publish(static_cast<size_t>(b), {spec_for("127.0.1.1", 10000 + b)}, true, clock.now());
  }
  EXPECT_TRUE(rec.run_pass(false).converged);
  clock.advance(std::chrono::seconds(1));
  EXPECT_TRUE(rec.run_pass(false).converged);  // the follow-up poll of every backend
  clock.advance(std::chrono::seconds(1));
  (void)rec.run_pass(false);

  const size_t changed = static_cast<size_t>(backends / 2);
  rec.publish(changed,
              {spec_for("127.0.1.1", 10000 + static_cast<int>(changed)), spec_for("127.0.1.2", 80)},
              true, clock.now());
  const RuntimeInstance::IoCounters before = raw->io();
  reconcile::PassReport r = rec.run_pass(false);
  const RuntimeInstance::IoCounters after = raw->io();
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.actions_done, 1u);
  Cost cost;
  cost.commands = after.commands - before.commands;
  cost.bytes_read = after.bytes_read - before.bytes_read;
  cost.whole_state_bytes = hp.admin("show servers state").size();
  const std::string state = hp.admin("show servers state be" + std::to_string(changed));
  EXPECT_NE(state.find(" ep-127.0.1.2:80 "), std::string::npos) << state;
  return cost;
}

TEST(TargetedReads, OneServerChangeCostsTheSameWith1And200Backends) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  const Cost one = one_server_change(1);
  const Cost many = one_server_change(200);
  // show info, show servers state <be>, add server, set server state: the BACKEND row (`show
  // stat <iid> 1 -1`, which HAProxy answers by walking every proxy) is known from the first read.
  EXPECT_EQ(one.commands, 4u);
  EXPECT_EQ(many.commands, one.commands);
  // Same replies but for a few digits (ids, names, uptime).
  EXPECT_LE(many.bytes_read, one.bytes_read + 256)
      << "1 backend: " << one.bytes_read << " B, 200 backends: " << many.bytes_read;
  EXPECT_GT(many.whole_state_bytes, 10 * many.bytes_read);  // reading everything would show
  std::printf(
      "one-server change: %llu commands; %llu B read with 1 backend, %llu B with 200 "
      "(whole show servers state: %llu B)\n",
      static_cast<unsigned long long>(many.commands),
      static_cast<unsigned long long>(one.bytes_read),
      static_cast<unsigned long long>(many.bytes_read),
      static_cast<unsigned long long>(many.whole_state_bytes));
}

// A change's read leaves `show stat` out once the backend's row is known, and the `show servers
// state` rows confirm the proxy by their be_id. A backend with no server row cannot be confirmed
// that way: it is read again with `show stat`, and still found with its algorithm.
TEST(TargetedReads, AChangesReadConfirmsTheProxyByItsRowsAndAnEmptyBackendByShowStat) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyConfig cfg;
  cfg.backend("full", "leastconn", {"server s1 127.0.0.1:1", "server s2 127.0.0.1:2"});
  cfg.backend("empty", "source", {});
  HaproxyFixture hp(cfg.str());
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  ASSERT_TRUE(inst.info().ok());
  ASSERT_TRUE(inst.observe_all({"full", "empty"}).ok());
  const auto before = inst.io().commands;
  auto full = inst.observe_for_change({"full"});
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(inst.io().commands - before, 1u);  // show servers state full
  ASSERT_TRUE(full->at(0).exists);
  EXPECT_EQ(full->at(0).algorithm, "leastconn");
  EXPECT_EQ(full->at(0).servers.size(), 2u);
  auto empty = inst.observe_for_change({"empty"});
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(inst.io().commands - before, 4u);  // + show servers state, then state and stat
  ASSERT_TRUE(empty->at(0).exists);
  EXPECT_EQ(empty->at(0).algorithm, "source");
  EXPECT_TRUE(empty->at(0).servers.empty());
  auto gone = inst.observe_for_change({"nosuch"});
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_FALSE(gone->at(0).exists);
}

TEST(TargetedReads, ResyncReadsTheWholeStateInTwoCommands) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyFixture hp(config_with(50));
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  std::vector<std::string> names;
  for (int b = 0; b < 50; ++b) names.push_back("be" + std::to_string(b));
  names.push_back("nosuch");
  auto all = inst.observe_all(names);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(inst.io().commands, 2u);
  ASSERT_EQ(all->size(), 51u);
  EXPECT_TRUE(all->at(7).exists);
  EXPECT_EQ(all->at(7).backend, "be7");
  EXPECT_EQ(all->at(7).algorithm, "roundrobin");
  EXPECT_EQ(all->at(7).servers.size(), 5u);
  EXPECT_FALSE(all->at(50).exists);
  // The targeted read gives the same answer.
  auto one = inst.observe({"be7"});
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->at(0).servers.size(), 5u);
  EXPECT_EQ(one->at(0).algorithm, "roundrobin");
  EXPECT_EQ(inst.io().commands, 4u);
}

// The periodic resync's read: every server's state in two commands, one stat row per backend;
// server statistics only for a backend with a draining server (one more connection, two commands).
TEST(TargetedReads, ResyncReadsServerStatsOnlyWhereAServerDrains) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyFixture hp(config_with(50));
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  std::vector<std::string> names;
  for (int b = 0; b < 50; ++b) names.push_back("be" + std::to_string(b));
  names.push_back("nosuch");
  auto lean = inst.observe_states(names, {});
  ASSERT_TRUE(lean.ok()) << lean.error().message;
  EXPECT_EQ(inst.io().commands, 2u);
  ASSERT_EQ(lean->size(), 51u);
  EXPECT_TRUE(lean->at(7).exists);
  EXPECT_EQ(lean->at(7).algorithm, "roundrobin");
  EXPECT_EQ(lean->at(7).servers.size(), 5u);
  EXPECT_FALSE(lean->at(7).server_stats);
  EXPECT_FALSE(lean->at(50).exists);
  const std::uint64_t lean_bytes = inst.io().bytes_read;
  auto all = inst.observe_all(names);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_TRUE(all->at(7).server_stats);
  EXPECT_LT(lean_bytes, inst.io().bytes_read - lean_bytes);  // less to print and parse

  (void)hp.admin("set server be7/s2 state drain");
  const std::uint64_t before = inst.io().commands;
  auto drained = inst.observe_states(names, {});
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(inst.io().commands, before + 4);  // + show servers state be7, show stat <iid> 6 -1
  EXPECT_TRUE(drained->at(7).server_stats);
  ASSERT_EQ(drained->at(7).servers.size(), 5u);
  EXPECT_TRUE(drained->at(7).servers[1].draining());
  EXPECT_FALSE(drained->at(8).server_stats);
}

// A resync of settled backends: given the digests it already holds, the read does not parse
// those backends' rows while HAProxy still shows them; any change to a server (here its weight,
// then its maintenance) brings that backend back, parsed, with a new digest.
TEST(TargetedReads, AStatesOnlyResyncOfTheSameProcessReadsNoStat) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyConfig cfg;
  cfg.backend("rr", "roundrobin", {"server s1 127.0.0.1:1"});
  cfg.backend("lc", "leastconn", {"server s1 127.0.0.1:2", "server s2 127.0.0.1:3"});
  cfg.backend("empty", "roundrobin", {});
  HaproxyFixture hp(cfg.str());
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  const std::vector<std::string> names = {"rr", "lc", "empty"};
  ASSERT_TRUE(inst.info().ok());
  auto sent = [&inst](const auto& read) {
    const std::uint64_t before = inst.io().commands;
    auto r = read();
    EXPECT_TRUE(r.ok()) << r.error().message;
    return std::make_pair(inst.io().commands - before, std::move(r));
  };
  // First resync of this process: `show servers state` and the BACKEND rows of `show stat`.
  auto [first_cmds, first] = sent([&] { return inst.observe_states(names, {}); });
  EXPECT_EQ(first_cmds, 2u);
  // Again, same process: the BACKEND rows are known, only `show servers state` is sent, and the
  // backends read the same (an empty backend exists too; the algorithms are kept).
  ASSERT_TRUE(inst.info().ok());
  auto [again_cmds, again] = sent([&] { return inst.observe_states(names, {}); });
  EXPECT_EQ(again_cmds, 1u);
  ASSERT_TRUE(first.ok() && again.ok());
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_TRUE(again->at(i).exists) << names[i];
    EXPECT_EQ(again->at(i).algorithm, first->at(i).algorithm) << names[i];
    EXPECT_EQ(again->at(i).servers.size(), first->at(i).servers.size()) << names[i];
    EXPECT_EQ(again->at(i).rows_digest, first->at(i).rows_digest) << names[i];
  }
  EXPECT_EQ(again->at(1).algorithm, "leastconn");
  EXPECT_TRUE(again->at(2).servers.empty());
  // A backend never read (here: HAProxy has none by that name) sends the stat read again.
  auto [unknown_cmds, unknown] = sent([&] { return inst.observe_states({"rr", "nope"}, {}); });
  EXPECT_EQ(unknown_cmds, 2u);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->at(1).exists);
}

TEST(TargetedReads, ResyncSkipsTheRowsOfBackendsWhoseDigestIsHeld) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyFixture hp(config_with(20));
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  std::vector<std::string> names;
  for (int b = 0; b < 20; ++b) names.push_back("be" + std::to_string(b));
  auto first = inst.observe_states(names, {});
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::vector<std::size_t> held;
  for (const auto& be : *first) {
    EXPECT_NE(be.rows_digest, 0u) << be.backend;
    EXPECT_FALSE(be.unchanged) << be.backend;
    held.push_back(be.rows_digest);
  }
  // Every read gives the same digest for the same rows: targeted, whole, and states-only.
  auto one = inst.observe({"be7"});
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->at(0).rows_digest, first->at(7).rows_digest);
  auto whole = inst.observe_all({"be7"});
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(whole->at(0).rows_digest, first->at(7).rows_digest);
  held[5] = 0;  // not held: parsed whatever its digest

  auto again = inst.observe_states(names, held);
  ASSERT_TRUE(again.ok()) << again.error().message;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const ActualBackend& be = again->at(i);
    EXPECT_TRUE(be.exists) << be.backend;
    EXPECT_EQ(be.rows_digest, held[i] != 0 ? held[i] : first->at(i).rows_digest) << be.backend;
    EXPECT_EQ(be.unchanged, i != 5) << be.backend;
    EXPECT_EQ(be.servers.size(), i != 5 ? 0u : 5u) << be.backend;
    EXPECT_EQ(be.algorithm, "roundrobin") << be.backend;  // from the stat rows, always read
  }

  (void)hp.admin("set server be7/s2 weight 7");
  auto weighed = inst.observe_states(names, held);
  ASSERT_TRUE(weighed.ok()) << weighed.error().message;
  EXPECT_FALSE(weighed->at(7).unchanged);
  EXPECT_NE(weighed->at(7).rows_digest, held[7]);
  ASSERT_EQ(weighed->at(7).servers.size(), 5u);
  EXPECT_EQ(weighed->at(7).servers[1].weight, 7);
  EXPECT_TRUE(weighed->at(8).unchanged);

  held[7] = weighed->at(7).rows_digest;
  (void)hp.admin("disable server be7/s3");
  auto maint = inst.observe_states(names, held);
  ASSERT_TRUE(maint.ok()) << maint.error().message;
  EXPECT_FALSE(maint->at(7).unchanged);
  ASSERT_EQ(maint->at(7).servers.size(), 5u);
  EXPECT_TRUE(maint->at(7).servers[2].in_maint());
}

// HAProxy 2.6 resolves `show stat <name>` to the first proxy of that name: with `frontend web`
// and `backend web` it answers the frontend, and the backend looked absent.
TEST(TargetedReads, AFrontendOfTheSameNameDoesNotHideTheBackend) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyFixture hp(HaproxyConfig()
                        .frontend("web", 0, "web")
                        .backend("web", "leastconn", {"server s1 127.0.0.1:1"})
                        .str());
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  for (int i = 0; i < 2; ++i) {  // by name (no id known yet), then by id
    auto obs = inst.observe({"web"});
    ASSERT_TRUE(obs.ok()) << obs.error().message;
    EXPECT_TRUE(obs->at(0).exists) << "pass " << i;
    EXPECT_EQ(obs->at(0).algorithm, "leastconn");
    ASSERT_EQ(obs->at(0).servers.size(), 1u);
    EXPECT_EQ(obs->at(0).servers[0].name, "s1");
    auto light = inst.observe_for_change({"web"});
    ASSERT_TRUE(light.ok()) << light.error().message;
    EXPECT_TRUE(light->at(0).exists) << "pass " << i;
    EXPECT_EQ(light->at(0).algorithm, "leastconn");
    ASSERT_EQ(light->at(0).servers.size(), 1u);
  }
}

// The read of a pass that applies a new desired set: every server's state and the BACKEND row
// (two commands per backend), server statistics only for a backend with a draining server (its
// sessions decide a removal): a bulk change to a backend of 10,000 servers does not wait for the
// megabytes of their stat rows.
TEST(TargetedReads, AChangeReadsServerStatsOnlyWhereAServerDrains) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy binary not found";
  HaproxyFixture hp(config_with(5));
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  RuntimeInstance inst(hp.socket_path(), milliseconds(5000));
  auto full = inst.observe({"be1", "be2"});
  ASSERT_TRUE(full.ok()) << full.error().message;
  const RuntimeInstance::IoCounters f = inst.io();
  auto light = inst.observe_for_change({"be1", "be2", "nosuch"});
  ASSERT_TRUE(light.ok()) << light.error().message;
  EXPECT_EQ(inst.io().commands - f.commands, 6u);  // show servers state + show stat <iid> 2 -1
  EXPECT_LT(inst.io().bytes_read - f.bytes_read, f.bytes_read);
  ASSERT_EQ(light->size(), 3u);
  EXPECT_TRUE(light->at(0).exists);
  EXPECT_EQ(light->at(0).algorithm, "roundrobin");
  EXPECT_EQ(light->at(0).servers.size(), 5u);
  EXPECT_FALSE(light->at(0).server_stats);
  EXPECT_FALSE(light->at(1).server_stats);
  EXPECT_FALSE(light->at(2).exists);

  // A draining server: its backend is read in full (sessions), the other stays light.
  (void)hp.admin("set server be2/s3 state drain");
  const std::uint64_t before = inst.io().commands;
  auto drained = inst.observe_for_change({"be1", "be2"});
  ASSERT_TRUE(drained.ok()) << drained.error().message;
  EXPECT_EQ(inst.io().commands, before + 6);  // + show servers state be2, show stat <iid> 6 -1
  EXPECT_FALSE(drained->at(0).server_stats);
  EXPECT_TRUE(drained->at(1).server_stats);
  ASSERT_EQ(drained->at(1).servers.size(), 5u);
  EXPECT_TRUE(drained->at(1).servers[2].draining());
}

}  // namespace
}  // namespace ep::haproxy
