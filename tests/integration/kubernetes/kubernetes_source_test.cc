// The kubernetes source against the Kubernetes API double (tests/support/kubernetes) on loopback,
// over TLS with the double's test CA.
#include "discovery/kubernetes/kubernetes_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "core/log.h"
#include "discovery/kubernetes/namespace_watch.h"
#include "os/base64.h"
#include "runtime/runtime.h"
#include "support/eventually.h"
#include "support/kubernetes/k8s_double.h"
#include "support/recording_sink.h"

// Ep{.address = ...} leaves the other fields at their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ep::discovery::kubernetes {
namespace {

using namespace std::chrono_literals;
using test::K8sApiDouble;
using test::RecordingSink;
using Ep = K8sApiDouble::Ep;

std::vector<std::string> addrs(const Snapshot& s) {
  std::vector<std::string> out;
  if (!s.ok()) return out;
  for (const auto& e : *s) out.push_back(e.address + ":" + std::to_string(e.port));
  std::sort(out.begin(), out.end());
  return out;
}

auto has_exactly(std::vector<std::string> want) {
  std::sort(want.begin(), want.end());
  return [want](const Snapshot& s) { return s.ok() && addrs(s) == want; };
}

auto error_containing(std::string text) {
  return [text](const Snapshot& s) {
    return !s.ok() && s.error().message.find(text) != std::string::npos;
  };
}

// Captures log lines (to check what is logged and what never is).
class LogCapture {
 public:
  LogCapture() {
    log::set_sink([this](log::Level, std::string_view c, std::string_view m) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(c) + ": " + std::string(m));
    });
  }
  ~LogCapture() { log::set_sink(nullptr); }
  bool contains(const std::string& text) const {
    std::lock_guard lock(mu_);
    return std::any_of(lines_.begin(), lines_.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

class KubernetesSourceTest : public ::testing::Test {
 protected:
  void SetUp() override { api_.start(); }

  Options options(const std::string& service = "web", const std::string& token = "test-token") {
    Options o;
    o.service = service;
    o.namespace_ = "shop";
    o.port_name = "http";
    // One file per token (sources with the same kubeconfig and context share a watch); names
    // that do not contain the token (it must never show up in logs).
    auto& path = kubeconfigs_[token];
    if (path.empty())
      path = api_.write_kubeconfig("kubeconfig-" + std::to_string(kubeconfigs_.size()), token);
    o.kubeconfig = path;
    o.retry_interval = 100ms;
    o.max_retry_interval = 500ms;
    o.timeout = 5s;
    o.connect_timeout = 2s;
    o.watch_timeout = 30s;
    o.idle_timeout = 60s;
    return o;
  }

  K8sApiDouble api_;
  std::map<std::string, std::string> kubeconfigs_;
};

TEST_F(KubernetesSourceTest, ListThenWatchMapsConditionsAndFollowsChanges) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web",
                                 {{.address = "10.0.0.1"}, {.address = "10.0.0.2"}}));
  api_.apply(K8sApiDouble::slice("shop", "other-a", "other", {{.address = "10.9.9.9"}}));
  api_.apply(K8sApiDouble::slice("prod", "web-x", "web", {{.address = "10.8.8.8"}}));
  KubernetesSource source(options(), "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080", "10.0.0.2:8080"})));
  const auto first = sink.last();
  EXPECT_EQ((*first)[0].id, "web-10.0.0.1");
  EXPECT_EQ((*first)[0].labels.at("k8s_node"), "node-1");

  // A second slice of the same service (and the same address in both: merged).
  api_.apply(K8sApiDouble::slice("shop", "web-b", "web",
                                 {{.address = "10.0.0.3"}, {.address = "10.0.0.2"}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"})));
  // Rolling update: 10.0.0.1 terminating but still serving → out of the set (drained by the
  // reconciler); 10.0.0.4 not ready yet → not in the set.
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.1", .ready = false, .serving = true, .terminating = true},
       {.address = "10.0.0.2"},
       {.address = "10.0.0.4", .ready = false, .serving = false}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8080", "10.0.0.3:8080"})));
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web",
                                 {{.address = "10.0.0.2"}, {.address = "10.0.0.4"}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"})));
  api_.remove("EndpointSlice", "shop", "web-b");
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8080", "10.0.0.4:8080"})));
  // Changes to other services or namespaces publish nothing new.
  const size_t n = sink.size();
  api_.apply(K8sApiDouble::slice("shop", "other-a", "other", {{.address = "10.9.9.8"}}));
  EXPECT_TRUE(test::consistently([&] { return sink.size() == n; }, 300ms));
  EXPECT_EQ(source.watch()->lists(), 1u);
  source.stop();
}

// The reconciler's drain holds, recorded (backend address:port -> until).
class HoldRecorder final : public ServerStateView {
 public:
  std::vector<InstanceServers> servers_at(std::string_view, std::string_view,
                                          std::uint16_t) const override {
    return {};
  }
  void hold_drain(std::string_view backend, std::string_view address, std::uint16_t port,
                  SteadyTime until) const override {
    std::lock_guard lock(mu_);
    holds_[key(backend, address, port)] = until;
  }
  void release_drain(std::string_view backend, std::string_view address,
                     std::uint16_t port) const override {
    std::lock_guard lock(mu_);
    holds_.erase(key(backend, address, port));
    ++releases_;
  }
  std::map<std::string, SteadyTime> holds() const {
    std::lock_guard lock(mu_);
    return holds_;
  }
  int releases() const {
    std::lock_guard lock(mu_);
    return releases_;
  }

 private:
  static std::string key(std::string_view b, std::string_view a, std::uint16_t p) {
    return std::string(b) + " " + std::string(a) + ":" + std::to_string(p);
  }
  mutable std::mutex mu_;
  mutable std::map<std::string, SteadyTime> holds_;
  mutable int releases_ = 0;
};

// Records, with each snapshot, the holds in place when it was published.
class HoldCheckingSink final : public Sink {
 public:
  explicit HoldCheckingSink(const HoldRecorder& view) : view_(view) {}
  void publish(Snapshot snap) override {
    {
      std::lock_guard lock(mu_);
      holds_at_publish_.push_back(view_.holds());
    }
    inner.publish(std::move(snap));
  }
  std::map<std::string, SteadyTime> holds_at(size_t i) {
    std::lock_guard lock(mu_);
    return holds_at_publish_.at(i);
  }
  RecordingSink inner;

 private:
  const HoldRecorder& view_;
  std::mutex mu_;
  std::vector<std::map<std::string, SteadyTime>> holds_at_publish_;
};

TEST_F(KubernetesSourceTest, ServingTerminatingEndpointsAreHeldInDrainUntilTheyGo) {
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.1"}, {.address = "10.0.0.2"}, {.address = "10.0.0.3"}}));
  HoldRecorder view;
  Options o = options();
  o.terminating_drain_timeout = 10min;
  KubernetesSource source(o, "be_web", nullptr, &view);
  HoldCheckingSink sink(view);
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(
      sink.inner.wait_last(has_exactly({"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"})));
  EXPECT_TRUE(view.holds().empty());

  // 10.0.0.1 and 10.0.0.2 serving && terminating: out of the set and held, the hold in place
  // before the set without them was published; bounded by terminating_drain_timeout.
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.1", .ready = false, .serving = true, .terminating = true},
       {.address = "10.0.0.2", .ready = false, .serving = true, .terminating = true},
       {.address = "10.0.0.3"}}));
  ASSERT_TRUE(sink.inner.wait_last(has_exactly({"10.0.0.3:8080"})));
  const auto at_publish = sink.holds_at(sink.inner.size() - 1);
  ASSERT_EQ(at_publish.size(), 2u);
  const SteadyTime until = at_publish.at("be_web 10.0.0.1:8080");
  EXPECT_GT(until, std::chrono::steady_clock::now() + 9min);
  EXPECT_LE(until, std::chrono::steady_clock::now() + 10min);
  EXPECT_EQ(at_publish.count("be_web 10.0.0.2:8080"), 1u);

  // Still serving && terminating at a later event: the hold stays, its bound unchanged.
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.1", .ready = false, .serving = true, .terminating = true},
       {.address = "10.0.0.2", .ready = false, .serving = false, .terminating = true},
       {.address = "10.0.0.3"},
       {.address = "10.0.0.4"}}));
  ASSERT_TRUE(sink.inner.wait_last(has_exactly({"10.0.0.3:8080", "10.0.0.4:8080"})));
  // 10.0.0.2 neither ready nor serving: released (the usual drain/remove path applies).
  auto holds = view.holds();
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds.at("be_web 10.0.0.1:8080"), until);
  EXPECT_EQ(view.releases(), 1);

  // The API server down: fail static, the hold kept.
  api_.stop();
  ASSERT_TRUE(sink.inner.wait_last([](const Snapshot& s) { return !s.ok(); }, 20s));
  EXPECT_EQ(view.holds().size(), 1u);
  api_.start();
  // The endpoint gone (the pod deleted): released.
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web",
                                 {{.address = "10.0.0.3"}, {.address = "10.0.0.4"}}));
  ASSERT_TRUE(test::eventually([&] { return view.holds().empty(); }, 20s));
  EXPECT_EQ(view.releases(), 2);

  // A hold is released when the source stops.
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.3", .ready = false, .serving = true, .terminating = true},
       {.address = "10.0.0.4"}}));
  ASSERT_TRUE(sink.inner.wait_last(has_exactly({"10.0.0.4:8080"})));
  EXPECT_EQ(view.holds().size(), 1u);
  source.stop();
  EXPECT_TRUE(view.holds().empty());
}

TEST_F(KubernetesSourceTest, PagesTheListWithLimitAndContinue) {
  nlohmann::json all = nlohmann::json::array();
  std::vector<std::string> want;
  for (int i = 0; i < 7; ++i) {
    const std::string ip = "10.0.1." + std::to_string(i + 1);
    all.push_back(
        K8sApiDouble::slice("shop", "web-" + std::to_string(i), "web", {{.address = ip}}));
    want.push_back(ip + ":8080");
  }
  api_.apply(all);
  Options o = options();
  o.page_size = 2;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly(want)));
  EXPECT_EQ(sink.size(), 1u) << "one complete set, no partial page published";
  EXPECT_GE(api_.stats()["lists"].get<int>(), 4);  // 7 slices by 2
  // fetch_once pages too.
  EXPECT_TRUE(has_exactly(want)(source.fetch_once(5s)));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, ExpiredContinueTokenRestartsTheListWithoutAPartialSet) {
  nlohmann::json all = nlohmann::json::array();
  std::vector<std::string> want;
  for (int i = 0; i < 5; ++i) {
    const std::string ip = "10.0.2." + std::to_string(i + 1);
    all.push_back(
        K8sApiDouble::slice("shop", "web-" + std::to_string(i), "web", {{.address = ip}}));
    want.push_back(ip + ":8080");
  }
  api_.apply(all);
  api_.configure({{"expire_continue", 1}});
  Options o = options();
  o.page_size = 2;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly(want)));
  EXPECT_EQ(sink.size(), 1u) << "only the complete listing is published";
  EXPECT_EQ(api_.stats()["gone"].get<int>(), 1);
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, ExpiredResourceVersionRelistsAndPublishesOnlyCompleteSets) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  api_.apply(K8sApiDouble::slice("shop", "web-b", "web", {{.address = "10.0.0.2"}}));
  Options o = options();
  o.page_size = 1;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080", "10.0.0.2:8080"})));
  // The watch stops delivering (as when the source is cut off), changes happen and history is
  // compacted; the watch is then closed: resuming from its resourceVersion gets an ERROR 410
  // event and the source must list again.
  api_.configure({{"hold", true}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.3"}}));
  api_.apply(K8sApiDouble::slice("shop", "web-c", "web", {{.address = "10.0.0.4"}}));
  api_.compact();
  api_.close_watches();
  api_.configure({{"hold", false}});
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"})));
  for (const auto& s : sink.all()) {
    if (!s.ok()) continue;
    const auto a = addrs(s);
    EXPECT_TRUE(a == std::vector<std::string>({"10.0.0.1:8080", "10.0.0.2:8080"}) ||
                a == std::vector<std::string>({"10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"}))
        << "a partial set was published: " << a.size();
  }
  EXPECT_GE(api_.stats()["gone"].get<int>(), 1);
  EXPECT_GE(source.watch()->lists(), 2u);
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, WatchClosedByTheServerResumesFromTheLastBookmarkWithoutRelisting) {
  api_.configure({{"bookmark_interval", 0.2}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  Options o = options();
  o.watch_timeout = 1s;  // timeoutSeconds=1: the server ends each watch after a second
  o.idle_timeout = 20s;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  ASSERT_TRUE(test::eventually([&] { return source.watch()->watches() >= 3; }, 20s));
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.5"}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.5:8080"})));
  EXPECT_EQ(source.watch()->lists(), 1u) << "resumed watches, never a re-list";
  // Resumed from the BOOKMARK's resourceVersion, not the last event's: other services' changes
  // move the server's version (only bookmarks tell this watch), then history is compacted up to
  // now. A watch resumed from an older version would get 410 and re-list.
  for (int i = 0; i < 3; ++i)
    api_.apply(K8sApiDouble::slice("shop", "other-" + std::to_string(i), "other",
                                   {{.address = "10.9.0.1"}}));
  const auto seen = source.watch()->watches();
  ASSERT_TRUE(test::eventually([&] { return source.watch()->watches() >= seen + 1; }, 20s));
  api_.compact();
  const auto compacted = source.watch()->watches();
  ASSERT_TRUE(test::eventually([&] { return source.watch()->watches() >= compacted + 2; }, 20s));
  EXPECT_EQ(source.watch()->lists(), 1u) << "resumed from the bookmark: nothing expired";
  EXPECT_EQ(api_.stats()["gone"].get<int>(), 0);
  for (const auto& s : sink.all()) EXPECT_TRUE(s.ok());
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, ApiServerDownKeepsTheSetAsErrorsAndRecoversAtOnce) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  KubernetesSource source(options(), "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  api_.kill();
  ASSERT_TRUE(sink.wait_last([](const Snapshot& s) { return !s.ok(); }));
  // Nothing but errors while down: never an empty set.
  for (const auto& s : sink.all()) EXPECT_TRUE(!s.ok() || !s->empty());
  api_.start();  // same port; its state starts empty: the new truth is published
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.7"}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.7:8080"})));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, ServerErrorsAndGarbageAreErrorsAndTheWatchRecovers) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  KubernetesSource source(options(), "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  api_.configure({{"fail_status", 500}});
  api_.close_watches();
  ASSERT_TRUE(sink.wait_last(error_containing("HTTP 500")));
  ASSERT_TRUE(sink.wait_last(error_containing("leader changed")));
  api_.configure({{"fail_status", 0}, {"garbage", true}});
  ASSERT_TRUE(sink.wait_last(error_containing("EndpointSliceList")));
  api_.configure({{"garbage", false}});
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, ThrottledListWaitsForRetryAfter) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  api_.configure({{"fail_status", 429}});                 // answers carry Retry-After: 2
  KubernetesSource source(options(), "be_web", nullptr);  // backoff capped at 500 ms
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(error_containing("HTTP 429")));
  const int after_first = api_.stats()["requests"].get<int>();
  // Without Retry-After the 100-500 ms backoff would have retried several times by now. The
  // window must stay inside Retry-After (2 s) under sanitizers too, where consistently() would
  // scale it: so it is divided by the scale here.
  EXPECT_TRUE(test::consistently(
      [&] { return api_.stats()["requests"].get<int>() <= after_first + 1; },
      std::chrono::duration_cast<std::chrono::milliseconds>(1500ms / test::time_scale())));
  api_.configure({{"fail_status", 0}});
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, HungWatchIsDetectedAndRelisted) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  Options o = options();
  o.watch_timeout = 1s;
  o.idle_timeout = 2s;  // bookmarks off by default in the double: 1 s timeouts keep it talking
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  api_.configure({{"hang", true}});  // requests are read and never answered
  ASSERT_TRUE(test::eventually([&] { return sink.size() >= 2; }, 30s));
  ASSERT_TRUE(sink.wait_last([](const Snapshot& s) { return !s.ok(); }, 30s));
  for (const auto& s : sink.all()) EXPECT_TRUE(!s.ok() || !s->empty());
  api_.configure({{"hang", false}});
  api_.close_watches();
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"}), 30s));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, UnauthorizedAndForbiddenAreErrorsThatNameThePermission) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  {
    KubernetesSource source(options("web", "wrong-token"), "be_web", nullptr);
    RecordingSink sink;
    LogCapture logs;
    ASSERT_TRUE(source.start(sink).ok());
    ASSERT_TRUE(sink.wait_last(error_containing("HTTP 401 Unauthorized")));
    source.stop();
    EXPECT_FALSE(logs.contains("wrong-token")) << "a token was logged";
    EXPECT_TRUE(logs.contains("401"));
  }
  api_.configure({{"forbid", {"watch endpointslices"}}});
  KubernetesSource source(options(), "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_any(has_exactly({"10.0.0.1:8080"})));  // list is allowed
  ASSERT_TRUE(sink.wait_last(error_containing(
      "needs \"watch\" on \"endpointslices\" (API group \"discovery.k8s.io\") in namespace "
      "\"shop\"")));
  api_.configure({{"forbid", {"list endpointslices"}}});
  ASSERT_TRUE(sink.wait_last(error_containing("needs \"list\" on \"endpointslices\"")));
  api_.configure({{"forbid", nlohmann::json::array()}});
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
}

TEST_F(KubernetesSourceTest, ServicesOfOneNamespaceShareOneWatch) {
  nlohmann::json all = nlohmann::json::array();
  std::vector<std::unique_ptr<KubernetesSource>> sources;
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  runtime::Runtime rt(runtime::RuntimeOptions{.threads = 1});
  constexpr int kServices = 200;
  for (int i = 0; i < kServices; ++i) {
    const std::string svc = "svc" + std::to_string(i);
    all.push_back(K8sApiDouble::slice(
        "shop", svc + "-a", svc,
        {{.address = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)}}));
  }
  api_.apply(all);
  for (int i = 0; i < kServices; ++i) {
    sources.push_back(std::make_unique<KubernetesSource>(options("svc" + std::to_string(i)),
                                                         "be" + std::to_string(i), nullptr));
    sinks.push_back(std::make_unique<RecordingSink>());
    ASSERT_TRUE(sources.back()->start_on(rt, *sinks.back()).ok());
  }
  for (int i = 0; i < kServices; ++i)
    ASSERT_TRUE(sinks[i]->wait_last(has_exactly(
        {"10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8080"})));
  ASSERT_TRUE(test::eventually([&] { return api_.stats()["active_watches"].get<int>() == 1; }));
  EXPECT_EQ(sources[0]->watch().get(), sources[kServices - 1]->watch().get());
  EXPECT_TRUE(
      test::consistently([&] { return api_.stats()["active_watches"].get<int>() == 1; }, 500ms));
  // The figure in docs/kubernetes.md ("Figures"), printed by this test.
  const auto st = api_.stats();
  const auto opened = sources[0]->watch()->connections_opened();
  std::printf(
      "FIGURE: %d services in one namespace: %d watch open on the API server, %llu TCP "
      "connection(s) opened by ElasticProxy, %d list request(s), %d watch request(s)\n",
      kServices, st["active_watches"].get<int>(), static_cast<unsigned long long>(opened),
      st["lists"].get<int>(), st["watches"].get<int>());
  EXPECT_LE(opened, 2u);
  // A change to one service reaches only its source.
  const size_t before = sinks[1]->size();
  api_.apply(K8sApiDouble::slice("shop", "svc3-a", "svc3", {{.address = "10.2.1.3"}}));
  ASSERT_TRUE(sinks[3]->wait_last(has_exactly({"10.2.1.3:8080"})));
  EXPECT_EQ(sinks[1]->size(), before);
  for (auto& s : sources) s->stop();
  ASSERT_TRUE(test::eventually([&] { return api_.stats()["active_watches"].get<int>() == 0; }));
}

TEST_F(KubernetesSourceTest, FqdnSlicesAndHostileAddressesNeverReachTheSet) {
  LogCapture logs;
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web",
                                 {{.address = "10.0.0.1"},
                                  {.address = "10.0.0.2;rm -rf /"},
                                  {.address = "10.0.0.3\nserver x 1.2.3.4"}}));
  api_.apply(K8sApiDouble::slice("shop", "web-f", "web", {{.address = "web.example.com"}}, 8080,
                                 "http", "FQDN"));
  api_.apply(K8sApiDouble::slice("shop", "web-z", "web", {{.address = "10.0.0.9"}}, 0));
  api_.apply(
      K8sApiDouble::slice("shop", "web-6", "web", {{.address = "fd00::5"}}, 8080, "http", "IPv6"));
  KubernetesSource source(options(), "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080", "fd00::5:8080"})));
  EXPECT_TRUE(
      test::eventually([&] { return logs.contains("addressType 'FQDN' is not supported"); }));
  EXPECT_TRUE(logs.contains("is not an IPv4 address"));
  EXPECT_TRUE(logs.contains("port 0 is out of range"));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, ExecCredentialPluginIsRunOncePerClusterAndItsTokenNeverLogged) {
  api_.configure({{"tokens", {"exec-secret-1"}}});
  const std::string plugin = api_.dir() + "/plugin.sh";
  const std::string count = api_.dir() + "/runs";
  std::ofstream(plugin)
      << "#!/bin/sh\n"
         "echo run >> "
      << count
      << "\n"
         "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3;; esac\n"
         "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
         "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\","
         "\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}' \"$TOKEN\"\n";
  std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
  Options o = options("web", "");
  o.kubeconfig =
      api_.write_kubeconfig("kubeconfig-exec", "",
                            {{"exec",
                              {{"apiVersion", "client.authentication.k8s.io/v1"},
                               {"command", plugin},
                               {"args", nlohmann::json::array()},
                               {"env", {{{"name", "TOKEN"}, {"value", "exec-secret-1"}}}},
                               {"interactiveMode", "Never"},
                               {"provideClusterInfo", true}}}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  // Node mode: three watches of the cluster (EndpointSlices, Services, Nodes) share one
  // credential, so the plugin runs once for all of them.
  api_.apply(K8sApiDouble::service("shop", "web", "10.96.0.10", 80, 30080));
  api_.apply(K8sApiDouble::node("node-1", "172.16.0.1"));
  o.address = AddressMode::kNode;
  LogCapture logs;
  o.watch_timeout = 1s;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"172.16.0.1:30080"})));
  ASSERT_EQ(source.watches().size(), 3u);
  ASSERT_TRUE(test::eventually([&] { return source.watch()->watches() >= 3; }, 20s));
  EXPECT_EQ(test::read_text(count), "run\n")
      << "one run for the cluster's three watches, cached until it expires";
  EXPECT_FALSE(logs.contains("exec-secret-1"));
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

// The plugin runs without blocking the source runtime's loop: a source of another cluster on the
// same single loop keeps working while a slow plugin runs; a plugin that hangs is killed at
// `timeout`, reported, and run again (the next run answers).
TEST_F(KubernetesSourceTest, ExecPluginRunsWithoutBlockingTheLoopAndIsBoundedByTimeout) {
  api_.configure({{"tokens", {"test-token", "exec-secret-2"}}});
  const std::string plugin = api_.dir() + "/slow-plugin.sh";
  const std::string runs = api_.dir() + "/slow-runs";
  const std::string gate = api_.dir() + "/gate";
  // The first run hangs (killed at `timeout`); later runs wait for the gate file, then answer.
  std::ofstream(plugin)
      << "#!/bin/sh\n"
         "echo run >> "
      << runs << "\nif [ \"$(wc -l < " << runs
      << ")\" -eq 1 ]; then exec sleep 60; fi\n"
         "while [ ! -e "
      << gate
      << " ]; do sleep 0.05; done\n"
         "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
         "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-secret-2\"}}'\n";
  std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  api_.apply(K8sApiDouble::slice("shop", "api-a", "api", {{.address = "10.0.0.2"}}));

  runtime::Runtime rt(runtime::RuntimeOptions{.threads = 1});  // one loop for both
  Options x = options("web", "");
  x.kubeconfig = api_.write_kubeconfig(
      "kubeconfig-slow-exec", "",
      {{"exec", {{"apiVersion", "client.authentication.k8s.io/v1"}, {"command", plugin}}}});
  x.timeout = 1s;
  KubernetesSource exec_source(x, "be_web", nullptr);
  RecordingSink exec_sink;
  ASSERT_TRUE(exec_source.start_on(rt, exec_sink).ok());
  ASSERT_TRUE(test::eventually([&] { return test::read_text(runs) == "run\n"; }, 10s));

  // While the first run hangs, a token source on the same loop lists and follows a change.
  KubernetesSource other(options("api"), "be_api", nullptr);
  RecordingSink other_sink;
  ASSERT_TRUE(other.start_on(rt, other_sink).ok());
  ASSERT_TRUE(other_sink.wait_last(has_exactly({"10.0.0.2:8080"})));
  api_.apply(K8sApiDouble::slice("shop", "api-a", "api", {{.address = "10.0.0.3"}}));
  ASSERT_TRUE(other_sink.wait_last(has_exactly({"10.0.0.3:8080"})));
  EXPECT_EQ(exec_sink.size(), 0u) << "nothing published before the plugin answered";

  // The hung run is killed at `timeout` (1 s) and reported; the retry runs the plugin again.
  ASSERT_TRUE(exec_sink.wait_last(error_containing("timed out"), 10s));
  ASSERT_TRUE(test::eventually([&] { return test::read_text(runs) == "run\nrun\n"; }, 10s));
  // The second run waits for the gate: the other source still follows changes meanwhile.
  api_.apply(K8sApiDouble::slice("shop", "api-a", "api", {{.address = "10.0.0.4"}}));
  ASSERT_TRUE(other_sink.wait_last(has_exactly({"10.0.0.4:8080"})));
  std::ofstream(gate) << "open";
  ASSERT_TRUE(exec_sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  other.stop();
  exec_source.stop();
}

TEST_F(KubernetesSourceTest, InClusterReadsTheRotatedServiceAccountToken) {
  const std::string sa = api_.dir() + "/sa";
  std::filesystem::create_directories(sa);
  std::ofstream(sa + "/token") << "sa-token-1\n";
  std::filesystem::copy_file(api_.ca_file(), sa + "/ca.crt");
  std::ofstream(sa + "/namespace") << "shop";
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", std::to_string(api_.port()).c_str(), 1);
  api_.configure({{"tokens", {"sa-token-1"}}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  Options o = options();
  o.kubeconfig.clear();
  o.namespace_.clear();  // from the service account's namespace file
  o.in_cluster = InCluster::kYes;
  o.service_account_dir = sa;
  o.watch_timeout = 1s;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  // The kubelet rotates the bound token: the old one stops working, the file has the new one.
  std::ofstream(sa + "/token.new") << "sa-token-2-longer\n";
  std::filesystem::rename(sa + "/token.new", sa + "/token");
  api_.configure({{"tokens", {"sa-token-2-longer"}}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.2"}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8080"})));
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

// A kubeconfig user's tokenFile is re-read when it changes (a rotated token), like in cluster.
TEST_F(KubernetesSourceTest, KubeconfigTokenFileIsReReadWhenRotated) {
  const std::string token_file = api_.dir() + "/kc-token";
  std::ofstream(token_file) << "file-token-1\n";
  api_.configure({{"tokens", {"file-token-1"}}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  Options o = options("web", "");
  o.kubeconfig = api_.write_kubeconfig("kubeconfig-tokenfile", "", {{"tokenFile", token_file}});
  o.watch_timeout = 1s;
  LogCapture logs;
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  std::ofstream(token_file + ".new") << "file-token-2-longer\n";
  std::filesystem::rename(token_file + ".new", token_file);
  api_.configure({{"tokens", {"file-token-2-longer"}}});
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.2"}}));
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.2:8080"})));
  EXPECT_FALSE(logs.contains("file-token-"));
  source.stop();
}

TEST_F(KubernetesSourceTest, ClientCertificateAndCaFromInlineDataAuthenticate) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  Options o = options("web", "");
  // certificate-authority-data replaces the file: write the kubeconfig by hand.
  nlohmann::json kc = {
      {"apiVersion", "v1"},
      {"kind", "Config"},
      {"clusters",
       {{{"name", "c"},
         {"cluster",
          {{"server", api_.url()},
           {"certificate-authority-data", os::base64_encode(api_.ca_pem())}}}}}},
      {"users",
       {{{"name", "u"},
         {"user",
          {{"client-certificate-data", os::base64_encode(test::read_text(api_.client_cert_file()))},
           {"client-key-data", os::base64_encode(test::read_text(api_.client_key_file()))}}}}}},
      {"contexts", {{{"name", "x"}, {"context", {{"cluster", "c"}, {"user", "u"}}}}}},
      {"current-context", "x"}};
  o.kubeconfig = api_.dir() + "/kubeconfig-data";
  std::ofstream(o.kubeconfig) << kc.dump();
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080"})));
  EXPECT_EQ(api_.stats()["unauthorized"].get<int>(), 0);
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, TlsVerificationIsOnByDefault) {
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  Options o = options();
  nlohmann::json kc = {
      {"apiVersion", "v1"},
      {"clusters", {{{"name", "c"}, {"cluster", {{"server", api_.url()}}}}}},  // no CA
      {"users", {{{"name", "u"}, {"user", {{"token", "test-token"}}}}}},
      {"contexts", {{{"name", "x"}, {"context", {{"cluster", "c"}, {"user", "u"}}}}}},
      {"current-context", "x"}};
  o.kubeconfig = api_.dir() + "/kubeconfig-noca";
  std::ofstream(o.kubeconfig) << kc.dump();
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last([](const Snapshot& s) { return !s.ok(); }));
  EXPECT_TRUE(test::consistently([&] { return !sink.last().ok(); }, 300ms));
  EXPECT_EQ(api_.stats()["lists"].get<int>(), 0) << "no request got through an unverified TLS";
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

TEST_F(KubernetesSourceTest, AddressModesNodeClusterIpAndLoadBalancer) {
  api_.apply(K8sApiDouble::service("shop", "web", "10.96.0.10", 80, 30080, {"192.0.2.10"}));
  api_.apply(K8sApiDouble::node("node-1", "172.16.0.1"));
  api_.apply(K8sApiDouble::node("node-2", "172.16.0.2"));
  api_.apply(K8sApiDouble::node("node-3", "172.16.0.3"));
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.1", .node = "node-1"},
       {.address = "10.0.0.2", .node = "node-1"},
       {.address = "10.0.0.3", .node = "node-2"},
       {.address = "10.0.0.4", .ready = false, .serving = false, .node = "node-3"}}));
  Options o = options();
  o.address = AddressMode::kNode;
  KubernetesSource node(o, "be_node", nullptr);
  RecordingSink node_sink;
  ASSERT_TRUE(node.start(node_sink).ok());
  ASSERT_TRUE(node_sink.wait_last(has_exactly({"172.16.0.1:30080", "172.16.0.2:30080"})));
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.3", .node = "node-2"}, {.address = "10.0.0.4", .node = "node-3"}}));
  ASSERT_TRUE(node_sink.wait_last(has_exactly({"172.16.0.2:30080", "172.16.0.3:30080"})));
  // Nodes are watched: a node's new InternalIP and a deleted node are followed without a list.
  const int lists = api_.stats()["lists"].get<int>();
  api_.apply(K8sApiDouble::node("node-3", "172.16.0.33"));
  ASSERT_TRUE(node_sink.wait_last(has_exactly({"172.16.0.2:30080", "172.16.0.33:30080"})));
  api_.remove("Node", "", "node-2");
  ASSERT_TRUE(node_sink.wait_last(has_exactly({"172.16.0.33:30080"})));
  EXPECT_EQ(api_.stats()["lists"].get<int>(), lists) << "changes came through the watches";
  ASSERT_EQ(node.watches().size(), 3u);  // EndpointSlices, Services, Nodes
  EXPECT_EQ(node.watches()[2]->resource(), Resource::kNodes);

  // cluster_ip and load_balancer on one runtime (as in the daemon): one Services watch.
  runtime::Runtime rt(runtime::RuntimeOptions{.threads = 2});
  o.address = AddressMode::kClusterIp;
  KubernetesSource cip(o, "be_cip", nullptr);
  RecordingSink cip_sink;
  ASSERT_TRUE(cip.start_on(rt, cip_sink).ok());
  ASSERT_TRUE(cip_sink.wait_last(has_exactly({"10.96.0.10:80"})));
  const int lists_after_cip = api_.stats()["lists"].get<int>();

  o.address = AddressMode::kLoadBalancer;
  KubernetesSource lb(o, "be_lb", nullptr);
  RecordingSink lb_sink;
  ASSERT_TRUE(lb.start_on(rt, lb_sink).ok());
  ASSERT_TRUE(lb_sink.wait_last(has_exactly({"192.0.2.10:80"})));
  api_.apply(
      K8sApiDouble::service("shop", "web", "10.96.0.10", 80, 30080, {"192.0.2.10", "192.0.2.11"}));
  ASSERT_TRUE(lb_sink.wait_last(has_exactly({"192.0.2.10:80", "192.0.2.11:80"})));
  EXPECT_TRUE(has_exactly({"192.0.2.10:80", "192.0.2.11:80"})(lb.fetch_once(5s)));
  // One Services watch for the namespace, shared by the cluster_ip and load_balancer sources.
  EXPECT_EQ(cip.watch().get(), lb.watch().get());
  EXPECT_EQ(lb.watch()->resource(), Resource::kServices);
  EXPECT_EQ(api_.stats()["lists"].get<int>(), lists_after_cip)
      << "Services are watched (and the watch shared), not polled";
  // The Service deleted: an error naming it (the guard keeps the last good set).
  api_.remove("Service", "shop", "web");
  ASSERT_TRUE(lb_sink.wait_last(error_containing("Service web not found in namespace shop")));
  api_.apply(K8sApiDouble::service("shop", "web", "10.96.0.10", 80, 30080, {"192.0.2.12"}));
  ASSERT_TRUE(lb_sink.wait_last(has_exactly({"192.0.2.12:80"})));
  // RBAC for the Services watch names it.
  api_.configure({{"forbid", {"watch services"}}});
  api_.close_watches();
  ASSERT_TRUE(
      lb_sink.wait_last(error_containing("needs \"watch\" on \"services\" (API group \"core\")")));
  lb.stop();
  cip.stop();
  // Stopped before its sink (declared after it) is destroyed.
  node.stop();
}

TEST_F(KubernetesSourceTest, TwoClustersThroughTwoContextsOfOneKubeconfig) {
  K8sApiDouble other;  // a second cluster
  other.start();
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.1"}}));
  other.apply(K8sApiDouble::slice("shop", "web-z", "web", {{.address = "10.50.0.1"}}));
  auto cluster = [](const K8sApiDouble& d, const std::string& name) {
    return nlohmann::json{
        {"name", name}, {"cluster", {{"server", d.url()}, {"certificate-authority", d.ca_file()}}}};
  };
  nlohmann::json kc = {{"apiVersion", "v1"},
                       {"clusters", {cluster(api_, "eu"), cluster(other, "us")}},
                       {"users", {{{"name", "u"}, {"user", {{"token", "test-token"}}}}}},
                       {"contexts",
                        {{{"name", "prod-eu"}, {"context", {{"cluster", "eu"}, {"user", "u"}}}},
                         {{"name", "prod-us"}, {"context", {{"cluster", "us"}, {"user", "u"}}}}}},
                       {"current-context", "prod-eu"}};
  Options o = options();
  o.kubeconfig = api_.dir() + "/kubeconfig-two";
  std::ofstream(o.kubeconfig) << kc.dump();
  runtime::Runtime rt(runtime::RuntimeOptions{.threads = 1});
  Options eu = o, us = o;
  eu.context = "prod-eu";
  us.context = "prod-us";
  KubernetesSource a(eu, "be_web", nullptr), b(us, "be_web", nullptr);
  RecordingSink sa, sb;
  ASSERT_TRUE(a.start_on(rt, sa).ok());
  ASSERT_TRUE(b.start_on(rt, sb).ok());
  ASSERT_TRUE(sa.wait_last(has_exactly({"10.0.0.1:8080"})));
  ASSERT_TRUE(sb.wait_last(has_exactly({"10.50.0.1:8080"})));
  EXPECT_NE(a.watch().get(), b.watch().get()) << "one watch per cluster";
  other.kill();  // one cluster down: only its source fails
  ASSERT_TRUE(sb.wait_last([](const Snapshot& s) { return !s.ok(); }));
  api_.apply(K8sApiDouble::slice("shop", "web-a", "web", {{.address = "10.0.0.2"}}));
  ASSERT_TRUE(sa.wait_last(has_exactly({"10.0.0.2:8080"})));
  a.stop();
  b.stop();
}

TEST_F(KubernetesSourceTest, ZoneMarksOtherZonesBackup) {
  api_.apply(K8sApiDouble::slice(
      "shop", "web-a", "web",
      {{.address = "10.0.0.1", .zone = "zone-a"}, {.address = "10.0.0.2", .zone = "zone-b"}}));
  Options o = options();
  o.zone = "zone-a";
  KubernetesSource source(o, "be_web", nullptr);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last(has_exactly({"10.0.0.1:8080", "10.0.0.2:8080"})));
  const auto s = sink.last();
  EXPECT_FALSE((*s)[0].backup);
  EXPECT_TRUE((*s)[1].backup);
  // Stopped before its sink (declared after it) is destroyed.
  source.stop();
}

}  // namespace
}  // namespace ep::discovery::kubernetes
