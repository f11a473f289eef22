// Lifecycle hooks and group discovery of the aws_asg source against the AWS double (which
// verifies every signature and holds the pending lifecycle actions like AWS). HAProxy is replaced
// by a scripted ServerStateView; the real-HAProxy version is tests/integration/aws_e2e.

#include "discovery/aws/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/metrics.h"
#include "discovery/aws/asg_source.h"
#include "net/curl_http_client.h"
#include "support/aws/aws_double.h"
#include "support/aws/messages.h"
#include "support/eventually.h"

namespace ep::aws {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr const char* kKeyId = "AKIDLIFECYCLE0000001";
constexpr const char* kSecret = "lifecycle-secret-00000000000000000000000";
constexpr const char* kHook = "ep-node-a";

class NullSink final : public discovery::Sink {
 public:
  void publish(discovery::Snapshot s) override {
    std::lock_guard lock(mu_);
    last_ = std::move(s);
    ++count_;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return last_.ok() ? last_->size() : 0;
  }
  bool contains(const std::string& id) {
    std::lock_guard lock(mu_);
    if (!last_.ok()) return false;
    for (const auto& e : *last_) {
      if (e.id == id) return true;
    }
    return false;
  }
  std::string error() {
    std::lock_guard lock(mu_);
    return last_.ok() ? "" : last_.error().message;
  }

 private:
  std::mutex mu_;
  discovery::Snapshot last_{std::vector<ep::Endpoint>{}};
  size_t count_ = 0;
};

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline = 10s) {
  return test::eventually(pred, deadline);
}

// A scripted HAProxy view (one instance): per address, what the view answers.
class FakeHaproxy final : public ServerStateView {
 public:
  std::vector<InstanceServers> servers_at(std::string_view backend, std::string_view address,
                                          std::uint16_t port) const override {
    std::lock_guard lock(mu_);
    asked_.insert(std::string(backend) + " " + std::string(address) + ":" + std::to_string(port));
    InstanceServers one;
    one.reachable = true;
    auto it = states_.find(std::string(address));
    if (it != states_.end() && it->second.instances_present > 0) {
      const ServerState& s = it->second;
      ActualServer srv;
      srv.name = "ep-" + std::string(address);
      srv.address = std::string(address);
      srv.port = port;
      srv.sessions = static_cast<int>(s.sessions);
      srv.admin_state = s.instances_active > 0 ? 0 : admin::kForcedDrain;
      srv.op_state = s.instances_up > 0 ? 2 : 0;
      one.servers.push_back(srv);
    }
    return {one};  // absent unless scripted
  }
  void set(const std::string& address, int present, int active, int up, long sessions) {
    std::lock_guard lock(mu_);
    ServerState s;
    s.haproxy_instances = 1;
    s.instances_present = present;
    s.instances_active = active;
    s.instances_up = up;
    s.sessions = sessions;
    states_[address] = s;
  }
  bool asked(const std::string& what) {
    std::lock_guard lock(mu_);
    return asked_.count(what) != 0;
  }
  void hold_drain(std::string_view backend, std::string_view address, std::uint16_t port,
                  SteadyTime until) const override {
    std::lock_guard lock(mu_);
    holds_[std::string(backend) + " " + std::string(address) + ":" + std::to_string(port)] = until;
  }
  void release_drain(std::string_view backend, std::string_view address,
                     std::uint16_t port) const override {
    std::lock_guard lock(mu_);
    holds_.erase(std::string(backend) + " " + std::string(address) + ":" + std::to_string(port));
  }
  std::optional<SteadyTime> held(const std::string& what) {
    std::lock_guard lock(mu_);
    auto it = holds_.find(what);
    if (it == holds_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ServerState> states_;
  mutable std::set<std::string> asked_;
  mutable std::map<std::string, SteadyTime> holds_;
};

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    aws_.add_key(kKeyId, kSecret);
    aws_.start();
    for (int i = 0; i < 3; ++i) add_instance(i);
    queue_ = aws_.create_queue("ep-node-a");
  }

  void add_instance(int n, const std::string& state = "InService") {
    test::DoubleInstance d;
    d.id = fmt::format("i-{:017x}", n);
    d.group = "web-asg";
    d.lifecycle_state = state;
    d.private_ip = fmt::format("10.0.0.{}", n + 1);
    aws_.put_instance(d);
  }
  void set_state(int n, const std::string& state) { add_instance(n, state); }

  AsgOptions options() {
    AsgOptions o;
    o.groups = {"web-asg"};
    o.region = "eu-west-1";
    o.autoscaling_endpoint = o.ec2_endpoint = o.sqs_endpoint = o.sts_endpoint = aws_.url();
    o.port = 8080;
    o.interval = 60s;  // only messages drive polls here
    o.queue_url = queue_;
    o.wait_seconds = 1;
    o.lifecycle_hook = kHook;
    o.lifecycle_states = {"Pending:Wait", "Pending:Proceed", "InService"};
    o.heartbeat_interval = 200ms;
    o.hook_check_interval = 50ms;
    o.hook_drain_timeout = 30s;
    o.launch_timeout = 30s;
    return o;
  }

  AsgRuntime runtime() {
    AsgRuntime r;
    r.read_files = false;
    r.env = {{"AWS_ACCESS_KEY_ID", kKeyId}, {"AWS_SECRET_ACCESS_KEY", kSecret}};
    r.client_env.sleep = [](std::chrono::milliseconds) {};
    return r;
  }

  discovery::SourceContext context(const ServerStateView* haproxy = nullptr) {
    discovery::SourceContext c;
    c.backend = "web";
    c.server_states = haproxy;
    return c;
  }

  int count(const std::string& action, const std::string& result = "", bool accepted = true) {
    int n = 0;
    for (const auto& c : aws_.lifecycle_calls()) {
      if (c.action == action && (result.empty() || c.result == result) && c.accepted == accepted) {
        ++n;
      }
    }
    return n;
  }

  // An instance goes Terminating:Wait with our hook pending, and the message arrives.
  std::string terminate(int n, test::Envelope env, const std::string& token) {
    const std::string id = fmt::format("i-{:017x}", n);
    set_state(n, "Terminating:Wait");
    aws_.add_lifecycle_action("web-asg", kHook, id, token, "autoscaling:EC2_INSTANCE_TERMINATING");
    test::LifecycleMessage m;
    m.hook = kHook;
    m.instance_id = id;
    m.token = token;
    const std::string body = test::lifecycle_body(m, env);
    aws_.send_message(queue_, body);
    return body;
  }

  test::AwsDouble aws_;
  std::string queue_;
};

TEST_F(LifecycleTest, TerminatingWaitsForTheDrainWithHeartbeatsThenContinues) {
  FakeHaproxy haproxy;
  haproxy.set("10.0.0.1", 1, 1, 1, 2);  // serving, 2 sessions
  AsgSource source(options(), context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));

  terminate(0, test::Envelope::kRaw, "3c4b7b8e-1111-4222-8333-444455556666");
  // The re-poll drops the instance (Terminating:Wait is not served)…
  ASSERT_TRUE(eventually([&] { return sink.size() == 2; }));
  EXPECT_FALSE(sink.contains("i-00000000000000000"));
  // … the reconciler drains it: sessions remain, so heartbeats go out and nothing completes.
  haproxy.set("10.0.0.1", 1, 0, 0, 2);
  ASSERT_TRUE(eventually([&] { return count("RecordLifecycleActionHeartbeat") >= 3; }));
  EXPECT_EQ(count("CompleteLifecycleAction"), 0);
  EXPECT_GE(aws_.calls("ChangeMessageVisibility"), 1) << "the message is kept invisible";
  EXPECT_EQ(aws_.queue_size(queue_), 1u) << "not deleted before the action is completed";
  EXPECT_TRUE(haproxy.asked("web 10.0.0.1:8080"));
  // The dashboard sees the action in flight with its drain progress (issue #19).
  ASSERT_TRUE(eventually([&] {
    auto h = source.hooks_in_flight();
    return h.size() == 1 && h[0].progress == "2 session(s), active on 0 of 1 HAProxy";
  }));
  const auto hooks = source.hooks_in_flight();
  EXPECT_EQ(hooks[0].instance, "i-00000000000000000");
  EXPECT_EQ(hooks[0].hook, kHook);
  EXPECT_EQ(hooks[0].transition, "autoscaling:EC2_INSTANCE_TERMINATING");
  EXPECT_GT(hooks[0].deadline, hooks[0].started);

  // Sessions gone: CONTINUE, then the message is deleted; AWS terminates the instance.
  haproxy.set("10.0.0.1", 1, 0, 0, 0);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_EQ(aws_.pending_lifecycle_actions(), 0);
  ASSERT_TRUE(eventually([&] { return source.hooks_in_flight().empty(); }));
  EXPECT_EQ(count("CompleteLifecycleAction", "", false), 0) << "no refused calls";
  const auto calls = aws_.lifecycle_calls();
  const auto& done = calls.back();
  EXPECT_EQ(done.token, "3c4b7b8e-1111-4222-8333-444455556666");
  EXPECT_EQ(done.group, "web-asg");
  EXPECT_EQ(done.hook, kHook);
  EXPECT_EQ(aws_.signature_failures(), 0);
  source.stop();
  EXPECT_EQ(source.lifecycle_stats().completed_continue, 1);
  EXPECT_GE(source.lifecycle_stats().heartbeats, 3);
  EXPECT_GE(Metrics::global().value(
                "elasticproxy_aws_lifecycle_completed_total",
                {{"backend", "web"}, {"transition", "terminating"}, {"result", "CONTINUE"}}),
            1);
  EXPECT_GE(
      Metrics::global().value("elasticproxy_aws_lifecycle_heartbeats_total", {{"backend", "web"}}),
      3);
}

TEST_F(LifecycleTest, SnsAndEventBridgeTerminationsAreCompletedToo) {
  FakeHaproxy haproxy;  // nothing in HAProxy: drained at once
  AsgSource source(options(), context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
  terminate(1, test::Envelope::kSns, "aaaaaaaa-1111-4222-8333-000000000001");
  terminate(2, test::Envelope::kEventBridge, "bbbbbbbb-1111-4222-8333-000000000002");
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 2; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_EQ(aws_.pending_lifecycle_actions(), 0);
  source.stop();
}

TEST_F(LifecycleTest, DrainTimeoutCompletesWithTheConfiguredResult) {
  FakeHaproxy haproxy;
  haproxy.set("10.0.0.1", 1, 0, 0, 5);  // sessions never end
  AsgOptions o = options();
  o.hook_drain_timeout = 600ms;
  o.on_drain_timeout = HookResult::kAbandon;
  AsgSource source(o, context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
  const auto t0 = std::chrono::steady_clock::now();
  terminate(0, test::Envelope::kRaw, "cccccccc-1111-4222-8333-000000000003");
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "ABANDON") == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 600ms);
  EXPECT_EQ(count("CompleteLifecycleAction", "CONTINUE"), 0);
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  source.stop();
}

TEST_F(LifecycleTest, LaunchingIsAddedInPendingWaitAndContinuedOnceUpElseAbandoned) {
  FakeHaproxy haproxy;
  AsgOptions o = options();
  o.launch_timeout = 800ms;
  AsgSource source(o, context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));

  add_instance(5, "Pending:Wait");
  aws_.add_lifecycle_action("web-asg", kHook, "i-00000000000000005", "dddddddd-0005",
                            "autoscaling:EC2_INSTANCE_LAUNCHING");
  test::LifecycleMessage m;
  m.hook = kHook;
  m.instance_id = "i-00000000000000005";
  m.token = "dddddddd-0005";
  m.terminating = false;
  aws_.send_message(queue_, test::lifecycle_body(m, test::Envelope::kSns));
  ASSERT_TRUE(eventually([&] { return sink.contains("i-00000000000000005"); }))
      << "Pending:Wait is served when hooks are configured";
  haproxy.set("10.0.0.6", 1, 1, 0, 0);  // added, health check not passed yet
  std::this_thread::sleep_for(200ms);   // several checks: nothing may complete while DOWN
  EXPECT_EQ(count("CompleteLifecycleAction"), 0);
  haproxy.set("10.0.0.6", 1, 1, 1, 0);  // UP
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));

  // A second launch whose server never comes UP: ABANDON after launch_timeout.
  add_instance(6, "Pending:Wait");
  aws_.add_lifecycle_action("web-asg", kHook, "i-00000000000000006", "eeeeeeee-0006",
                            "autoscaling:EC2_INSTANCE_LAUNCHING");
  m.instance_id = "i-00000000000000006";
  m.token = "eeeeeeee-0006";
  aws_.send_message(queue_, test::lifecycle_body(m, test::Envelope::kEventBridge));
  haproxy.set("10.0.0.7", 1, 1, 0, 0);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "ABANDON") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  source.stop();
}

TEST_F(LifecycleTest, OtherHooksAndGroupsAreOnlyRepolledDuplicatesJoinAndStaleActionsEnd) {
  FakeHaproxy haproxy;
  haproxy.set("10.0.0.1", 1, 0, 0, 1);
  AsgSource source(options(), context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));

  // Another node's hook on the same group: re-poll, delete, never complete.
  test::LifecycleMessage other;
  other.hook = "ep-node-b";
  other.instance_id = "i-00000000000000002";
  other.token = "ffffffff-0000";
  aws_.send_message(queue_, test::lifecycle_body(other, test::Envelope::kRaw));
  // A group that is not ours.
  other.hook = kHook;
  other.group = "db-asg";
  aws_.send_message(queue_, test::lifecycle_body(other, test::Envelope::kRaw));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_EQ(
      count("CompleteLifecycleAction", "", true) + count("CompleteLifecycleAction", "", false), 0);

  // The same action delivered twice (at-least-once): one completion, both copies deleted.
  const std::string body = terminate(0, test::Envelope::kRaw, "12345678-dup");
  aws_.send_message(queue_, body);
  ASSERT_TRUE(eventually(
      [&] { return source.lifecycle_pending() == 1 && aws_.calls("ReceiveMessage") >= 3; }));
  haproxy.set("10.0.0.1", 0, 0, 0, 0);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  std::this_thread::sleep_for(200ms);  // kept, deliberate: no second completion may follow
  EXPECT_EQ(count("CompleteLifecycleAction", "CONTINUE"), 1);

  // An action AWS no longer holds (timed out meanwhile): ValidationError = over; deleted.
  test::LifecycleMessage stale;
  stale.hook = kHook;
  stale.instance_id = "i-00000000000000001";
  stale.token = "0000dead-0000";
  set_state(1, "Terminating:Wait");
  aws_.send_message(queue_, test::lifecycle_body(stale, test::Envelope::kRaw));
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "", false) == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_EQ(source.lifecycle_pending(), 0u);
  source.stop();
}

TEST_F(LifecycleTest, ThrottledCompletionIsRetriedAndTheMessageKeptUntilThen) {
  FakeHaproxy haproxy;
  AsgOptions o = options();
  AsgRuntime rt = runtime();
  rt.retry.max_attempts = 1;  // every throttle fails the call: the worker must retry it
  AsgSource source(o, context(&haproxy), rt);
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
  aws_.inject(test::Fault::kThrottle, 3, "CompleteLifecycleAction");
  terminate(0, test::Envelope::kRaw, "77777777-throttle");
  ASSERT_TRUE(eventually([&] { return aws_.calls("CompleteLifecycleAction") >= 2; }));
  EXPECT_EQ(aws_.queue_size(queue_), 1u);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_EQ(aws_.calls("CompleteLifecycleAction"), 4);
  source.stop();
}

TEST_F(LifecycleTest, DoubleRefusesUnknownActionsAndBadSignaturesLikeAws) {
  // Straight through the client: the double's lifecycle API answers like AWS.
  auto http = std::make_unique<net::CurlHttpClient>();
  StaticCredentialProvider creds({kKeyId, kSecret, "", std::nullopt, "test"});
  AwsClient client(*http, creds, "eu-west-1");
  Endpoint ep = *parse_endpoint_url(aws_.url());
  auto params = complete_lifecycle_action_params({kHook, "web-asg", "nope", ""},
                                                 LifecycleActionResult::kContinue);
  ASSERT_TRUE(params.ok());
  auto r = client.call_query(AwsService::kAutoScaling, ep, "CompleteLifecycleAction", *params);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("ValidationError"));
  EXPECT_THAT(r.error().message, HasSubstr("No active Lifecycle Action found"));

  aws_.add_lifecycle_action("web-asg", kHook, "i-00000000000000000", "tok-1",
                            "autoscaling:EC2_INSTANCE_TERMINATING");
  auto hb = record_lifecycle_action_heartbeat_params({kHook, "web-asg", "", "i-00000000000000000"});
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(
      client.call_query(AwsService::kAutoScaling, ep, "RecordLifecycleActionHeartbeat", *hb).ok());
  StaticCredentialProvider wrong({kKeyId, "wrong-secret", "", std::nullopt, "test"});
  AwsClient bad(*http, wrong, "eu-west-1");
  auto refused = bad.call_query(AwsService::kAutoScaling, ep, "CompleteLifecycleAction", *params);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_EQ(aws_.pending_lifecycle_actions(), 1);
}

TEST_F(LifecycleTest, WithoutHaproxyStateATerminateCompletesAtOnce) {
  // The source outside the daemon: no HAProxy view in its context.
  AsgSource source(options(), context(), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
  terminate(0, test::Envelope::kRaw, "99999999-noprobe");
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_EQ(count("RecordLifecycleActionHeartbeat"), 0);
  source.stop();
}

TEST_F(LifecycleTest, APendingActionSurvivesARestartThroughSqs) {
  FakeHaproxy haproxy;
  haproxy.set("10.0.0.1", 1, 0, 0, 4);  // draining, sessions left
  AsgOptions o = options();
  o.heartbeat_interval = 1s;  // visibility 5 s (the floor)
  {
    AsgSource first(o, context(&haproxy), runtime());
    NullSink sink;
    ASSERT_TRUE(first.start(sink).ok());
    ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
    terminate(0, test::Envelope::kRaw, "abcdef00-restart");
    ASSERT_TRUE(eventually([&] { return first.lifecycle_pending() == 1; }));
    ASSERT_TRUE(eventually([&] { return aws_.calls("ChangeMessageVisibility") >= 1; }));
    first.stop();  // ElasticProxy restarts mid-drain: nothing completed, message not deleted
  }
  EXPECT_EQ(count("CompleteLifecycleAction"), 0);
  EXPECT_EQ(aws_.queue_size(queue_), 1u);
  AsgSource second(o, context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(second.start(sink).ok());
  // The message becomes visible again and the new process takes the action over.
  ASSERT_TRUE(eventually([&] { return second.lifecycle_pending() == 1; }, 15s));
  haproxy.set("10.0.0.1", 0, 0, 0, 0);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  second.stop();
}

TEST_F(LifecycleTest, AStaleFirstPollIsFollowedByMorePollsWhileTheServerStillTakesTraffic) {
  FakeHaproxy haproxy;
  haproxy.set("10.0.0.1", 1, 1, 1, 0);  // still active: the drain has not started
  AsgSource source(options(), context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
  // The message arrives, but DescribeAutoScalingGroups still says InService (eventual
  // consistency): the instance stays in the set.
  aws_.add_lifecycle_action("web-asg", kHook, "i-00000000000000000", "stale-0001",
                            "autoscaling:EC2_INSTANCE_TERMINATING");
  test::LifecycleMessage m;
  m.hook = kHook;
  m.instance_id = "i-00000000000000000";
  m.token = "stale-0001";
  aws_.send_message(queue_, test::lifecycle_body(m, test::Envelope::kRaw));
  ASSERT_TRUE(eventually([&] { return source.lifecycle_pending() == 1; }));
  EXPECT_EQ(sink.size(), 3u);
  // AWS catches up; the heartbeat-time re-poll (interval is 60 s) drops the instance.
  set_state(0, "Terminating:Wait");
  ASSERT_TRUE(eventually([&] { return sink.size() == 2; }, 5s));
  haproxy.set("10.0.0.1", 0, 0, 0, 0);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  source.stop();
}

// ---- group discovery by name pattern and tags ----

TEST_F(LifecycleTest, PatternsAndTagFiltersFindGroupsAcrossPages) {
  // 230 groups: web-0..web-149 (every other one role=web), api-0..api-79 (role=web).
  for (int g = 0; g < 150; ++g) {
    aws_.add_group(fmt::format("web-{}", g), {{"role", g % 2 ? "batch" : "web"}, {"env", "prod"}});
  }
  for (int g = 0; g < 80; ++g) aws_.add_group(fmt::format("api-{}", g), {{"role", "web"}});
  for (int i = 0; i < 4; ++i) {
    test::DoubleInstance d;
    d.id = fmt::format("i-web{}", i);
    d.group = fmt::format("web-{}", i);  // web-0, web-2 role=web; web-1, web-3 batch
    d.private_ip = fmt::format("10.1.0.{}", i + 1);
    aws_.put_instance(d);
  }
  AsgOptions o = options();
  o.queue_url.clear();
  o.lifecycle_hook.clear();
  o.groups = {"web-*"};
  o.group_tags = {{"role", "web"}};
  AsgSource source(o, context(), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 2; })) << sink.error();
  EXPECT_TRUE(sink.contains("i-web0"));
  EXPECT_TRUE(sink.contains("i-web2"));
  // role=web leaves 75 web-* + 80 api-* groups for AWS to return: 2 pages of 100, + 1 EC2 call.
  EXPECT_EQ(source.last_api_calls(), 3);
  source.stop();

  // Tags alone; a tag-key filter; and no match is an error naming what was looked for.
  o.groups.clear();
  o.group_tags = {{"env", ""}};
  auto made = AsgSource(o, context(), runtime()).fetch_once(5s);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ(made->size(), 4u) << "every web-N group has an env tag";
  o.group_tags = {{"role", "nothing"}};
  auto none = AsgSource(o, context(), runtime()).fetch_once(5s);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message, HasSubstr("no Auto Scaling group matches tag role=nothing"));
}

// Figure: API calls per poll for one ASG of 500 instances, counted by the double.
TEST_F(LifecycleTest, ApiCallsPerPollForAnAsgOf500Instances) {
  for (int i = 0; i < 500; ++i) {
    test::DoubleInstance d;
    d.id = fmt::format("i-big{:05}", i);
    d.group = "big-asg";
    d.private_ip = fmt::format("10.2.{}.{}", i / 250, i % 250 + 1);
    aws_.put_instance(d);
  }
  for (int g = 0; g < 120; ++g) aws_.add_group(fmt::format("other-{}", g));
  struct Case {
    std::vector<std::string> groups;
    std::vector<std::pair<std::string, std::string>> tags;
    const char* what;
  };
  for (const Case& c : {Case{{"big-asg"}, {}, "by name"}, Case{{"big-*"}, {}, "by pattern"}}) {
    AsgOptions o = options();
    o.queue_url.clear();
    o.lifecycle_hook.clear();
    o.groups = c.groups;
    o.group_tags = c.tags;
    AsgSource source(o, context(), runtime());
    const int asg0 = aws_.calls("DescribeAutoScalingGroups");
    const int ec20 = aws_.calls("DescribeInstances");
    const int kPolls = 5;
    for (int p = 0; p < kPolls; ++p) {
      auto snap = source.fetch_once(10s);
      ASSERT_TRUE(snap.ok()) << snap.error().message;
      ASSERT_EQ(snap->size(), 500u);
    }
    const double asg = (aws_.calls("DescribeAutoScalingGroups") - asg0) / double(kPolls);
    const double ec2 = (aws_.calls("DescribeInstances") - ec20) / double(kPolls);
    std::printf(
        "ASG of 500 instances, groups %s (%zu groups in the account): %.0f "
        "DescribeAutoScalingGroups + %.0f DescribeInstances = %.0f API calls per poll\n",
        c.what, size_t{122}, asg, ec2, asg + ec2);
    if (std::string(c.what) == "by name") {
      EXPECT_EQ(asg + ec2, 2.0);
    } else {
      EXPECT_EQ(asg, 2.0) << "122 groups listed in pages of 100";
      EXPECT_EQ(ec2, 1.0);
    }
  }
}

// Launch and terminate hooks in one source, each with its own transition and timeouts.
TEST_F(LifecycleTest, ALaunchAndATerminateHookInOneSourceEachWithItsOwnTimeouts) {
  FakeHaproxy haproxy;
  AsgOptions o = options();
  o.lifecycle_hook.clear();
  LifecycleHookOptions launch;
  launch.name = "ep-launch";
  launch.transition = HookTransition::kLaunching;
  launch.heartbeat_interval = 200ms;
  launch.launch_timeout = 30s;
  LifecycleHookOptions term;
  term.name = "ep-term";
  term.transition = HookTransition::kTerminating;
  term.heartbeat_interval = 200ms;
  term.drain_timeout = 700ms;
  term.on_drain_timeout = HookResult::kAbandon;
  o.lifecycle_hooks = {launch, term};
  AsgSource source(o, context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));

  // Scale-in through the terminate hook: the drain is held in the reconciler until the hook's
  // own drain_timeout, then ABANDON (its on_drain_timeout) and the hold is released.
  haproxy.set("10.0.0.1", 1, 0, 0, 3);  // draining with sessions that never end
  set_state(0, "Terminating:Wait");
  aws_.add_lifecycle_action("web-asg", "ep-term", "i-00000000000000000", "term-0000",
                            "autoscaling:EC2_INSTANCE_TERMINATING");
  test::LifecycleMessage m;
  m.hook = "ep-term";
  m.instance_id = "i-00000000000000000";
  m.token = "term-0000";
  const auto t0 = std::chrono::steady_clock::now();
  aws_.send_message(queue_, test::lifecycle_body(m, test::Envelope::kRaw));
  ASSERT_TRUE(eventually([&] { return haproxy.held("web 10.0.0.1:8080").has_value(); }));
  EXPECT_GE(*haproxy.held("web 10.0.0.1:8080"), t0 + 700ms) << "held for the hook's drain_timeout";
  EXPECT_LE(*haproxy.held("web 10.0.0.1:8080"), std::chrono::steady_clock::now() + 800ms);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "ABANDON") == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 700ms);
  EXPECT_FALSE(haproxy.held("web 10.0.0.1:8080").has_value()) << "released with the action";

  // A launch message naming the terminate hook is not ours to complete (wrong transition).
  add_instance(5, "Pending:Wait");
  aws_.add_lifecycle_action("web-asg", "ep-term", "i-00000000000000005", "wrong-0005",
                            "autoscaling:EC2_INSTANCE_LAUNCHING");
  m.hook = "ep-term";
  m.instance_id = "i-00000000000000005";
  m.token = "wrong-0005";
  m.terminating = false;
  aws_.send_message(queue_, test::lifecycle_body(m, test::Envelope::kRaw));
  ASSERT_TRUE(eventually([&] { return aws_.queue_size(queue_) == 0; }));
  EXPECT_FALSE(sink.contains("i-00000000000000005")) << "Pending under a hook that is not ours";
  EXPECT_EQ(source.lifecycle_pending(), 0u);

  // Scale-out through the launch hook: served while Pending:Wait, CONTINUE once UP.
  add_instance(6, "Pending:Wait");
  aws_.add_lifecycle_action("web-asg", "ep-launch", "i-00000000000000006", "launch-0006",
                            "autoscaling:EC2_INSTANCE_LAUNCHING");
  m.hook = "ep-launch";
  m.instance_id = "i-00000000000000006";
  m.token = "launch-0006";
  aws_.send_message(queue_, test::lifecycle_body(m, test::Envelope::kSns));
  ASSERT_TRUE(eventually([&] { return sink.contains("i-00000000000000006"); }));
  EXPECT_FALSE(sink.contains("i-00000000000000005"));
  haproxy.set("10.0.0.7", 1, 1, 1, 0);
  ASSERT_TRUE(eventually([&] { return count("CompleteLifecycleAction", "CONTINUE") == 1; }));
  const auto calls = aws_.lifecycle_calls();
  EXPECT_EQ(calls.back().hook, "ep-launch");
  EXPECT_EQ(count("CompleteLifecycleAction", "", false), 0);
  source.stop();
}

// Instances waiting on another hook (or in a terminate-only setup) get no traffic.
TEST_F(LifecycleTest, PendingInstancesAreServedOnlyUnderOurOwnLaunchHook) {
  FakeHaproxy haproxy;
  add_instance(7, "Pending:Wait");     // waits on someone else's hook
  add_instance(8, "Pending:Proceed");  // likewise, past the other hook
  AsgSource source(options(), context(&haproxy), runtime());
  NullSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(eventually([&] { return sink.size() == 3; }));
  ASSERT_TRUE(source.trigger_and_wait(10s));
  EXPECT_EQ(sink.size(), 3u);
  EXPECT_FALSE(sink.contains("i-00000000000000007"));
  EXPECT_FALSE(sink.contains("i-00000000000000008"));
  // `once` / `plan` see the same set.
  auto snap = source.fetch_once(10s);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 3u);
  source.stop();

  // Terminate-only hooks: Pending states are not even served by default.
  Diagnostics diag;
  ConfigNode node = ConfigNode::make_map();
  node.add("groups", ConfigNode::make_scalar("web-asg"));
  node.add("queue_url", ConfigNode::make_scalar(queue_));
  ConfigNode hooks = ConfigNode::make_sequence();
  ConfigNode h = ConfigNode::make_map();
  h.add("name", ConfigNode::make_scalar("ep-term"));
  h.add("transition", ConfigNode::make_scalar("terminating"));
  hooks.items.push_back(h);
  node.add("lifecycle_hooks", hooks);
  auto parsed = parse_asg_options(node, diag);
  ASSERT_TRUE(parsed.has_value()) << diag.joined();
  EXPECT_EQ(parsed->lifecycle_states, std::vector<std::string>{"InService"});
}

}  // namespace
}  // namespace ep::aws
