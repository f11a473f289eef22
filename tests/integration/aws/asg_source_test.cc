// The aws_asg source against the AWS double (signature-verifying) on loopback.

#include "discovery/aws/asg_source.h"
#include "discovery/aws/ec2_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "runtime/runtime.h"
#include "support/aws/aws_double.h"
#include "support/proc_counts.h"
#include "support/recording_sink.h"
#include "support/eventually.h"

namespace ep::aws {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kKeyId = "AKIDASGSOURCE0000001";
constexpr const char* kSecret = "asg-source-secret-0000000000000000000000";

class RecordingSink final : public discovery::Sink {
 public:
  void publish(discovery::Snapshot s) override {
    {
      std::lock_guard lock(mu_);
      snapshots_.push_back(std::move(s));
    }
    cv_.notify_all();
  }
  // Waits (with a deadline) for a snapshot satisfying `pred`; returns it.
  std::optional<discovery::Snapshot> wait_for(
      const std::function<bool(const discovery::Snapshot&)>& pred,
      std::chrono::milliseconds deadline = 10s) {
    std::unique_lock lock(mu_);
    std::optional<discovery::Snapshot> found;
    cv_.wait_for(lock, test::scaled(deadline), [&] {
      for (size_t i = seen_; i < snapshots_.size(); ++i) {
        if (pred(snapshots_[i])) {
          found = snapshots_[i];
          seen_ = i + 1;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return snapshots_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<discovery::Snapshot> snapshots_;
  size_t seen_ = 0;
};

bool has_n(const discovery::Snapshot& s, size_t n) { return s.ok() && s->size() == n; }

class AsgSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    aws_.add_key(kKeyId, kSecret);
    aws_.start();
    for (int i = 0; i < 3; ++i) add_instance(i);
    test::DoubleInstance pending;
    pending.id = "i-pending";
    pending.group = "web-asg";
    pending.lifecycle_state = "Pending:Wait";
    pending.private_ip = "10.0.9.9";
    aws_.put_instance(pending);
  }

  void add_instance(int n, const std::string& group = "web-asg") {
    test::DoubleInstance d;
    d.id = fmt::format("i-{:017x}", n);
    d.group = group;
    d.availability_zone = n % 2 ? "eu-west-1b" : "eu-west-1a";
    d.private_ip = fmt::format("10.0.{}.{}", n / 250, n % 250 + 1);
    d.weighted_capacity = "2";
    aws_.put_instance(d);
  }

  AsgOptions options(std::vector<std::string> groups = {"web-asg"}) {
    AsgOptions o;
    o.groups = std::move(groups);
    o.region = "eu-west-1";
    o.autoscaling_endpoint = o.ec2_endpoint = o.sqs_endpoint = o.sts_endpoint = aws_.url();
    o.port = 8080;
    o.interval = 60s;  // tests drive polls with trigger()
    return o;
  }

  Ec2Options ec2_options() {
    Ec2Options o;
    o.region = "eu-west-1";
    o.autoscaling_endpoint = o.ec2_endpoint = o.sqs_endpoint = o.sts_endpoint = aws_.url();
    o.port = 8080;
    o.interval = 60s;  // tests drive polls with trigger()
    return o;
  }

  AsgRuntime runtime() {
    AsgRuntime r;
    r.read_files = false;
    r.env = {{"AWS_ACCESS_KEY_ID", kKeyId}, {"AWS_SECRET_ACCESS_KEY", kSecret}};
    r.client_env.sleep = [](std::chrono::milliseconds) {};  // backoff is tested elsewhere
    return r;
  }

  discovery::SourceContext context() {
    discovery::SourceContext c;
    c.backend = "be_web";
    return c;
  }

  test::AwsDouble aws_;
};

TEST_F(AsgSourceTest, PublishesInServiceHealthyInstancesWithPortWeightAndZone) {
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  auto snap = sink.wait_for([](const auto& s) { return s.ok(); });
  ASSERT_TRUE(snap.has_value());
  ASSERT_EQ((*snap)->size(), 3u);
  const ep::Endpoint& e = (*snap)->at(1);
  EXPECT_EQ(e.id, "i-00000000000000001");
  EXPECT_EQ(e.address, "10.0.0.2");
  EXPECT_EQ(e.port, 8080u);
  EXPECT_EQ(e.weight, 2);
  EXPECT_EQ(e.labels.at("availability_zone"), "eu-west-1b");
  EXPECT_EQ(source.last_api_calls(), 2);
  EXPECT_EQ(aws_.signature_failures(), 0);
  source.stop();
}

TEST_F(AsgSourceTest, ScaleOutAndInAreSeenOnTheNextPoll) {
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  add_instance(7);
  source.trigger();
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 4); }));
  aws_.remove_instance("i-00000000000000000");
  source.trigger();
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  source.stop();
}

TEST_F(AsgSourceTest, UnchangedSetIsNotRepublished) {
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  const auto polls = source.polls();
  source.trigger();
  test::eventually([&] { return source.polls() != polls; }, 10s);
  ASSERT_GT(source.polls(), polls);
  EXPECT_EQ(sink.count(), 1u);
  source.stop();
}

// #16.1's immediate re-poll is for polls that timed out only: a poll that failed otherwise
// (throttled past the retries here) waits `interval` (60 s) like before, so an endpoint that
// answers errors is not hammered.
TEST_F(AsgSourceTest, AFailureThatIsNotATimeoutWaitsTheInterval) {
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  aws_.inject(test::Fault::kThrottle, 3, "DescribeInstances");  // all 3 attempts fail
  const auto polls = source.polls();
  source.trigger();
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return !s.ok(); }).has_value());
  EXPECT_TRUE(test::consistently([&] { return source.polls() == polls + 1; }, 500ms))
      << "polls: " << source.polls() << " (was " << polls << ")";
  source.stop();
}

TEST_F(AsgSourceTest, FailuresPublishAnErrorAndRecoveryRepublishes) {
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  aws_.inject(test::Fault::kThrottle, 3, "DescribeInstances");  // all 3 attempts fail
  source.trigger();
  auto err = sink.wait_for([](const auto& s) { return !s.ok(); });
  ASSERT_TRUE(err.has_value());
  EXPECT_THAT(err->error().message, HasSubstr("RequestLimitExceeded"));
  EXPECT_THAT(err->error().message, HasSubstr("aws_asg web-asg"));
  source.trigger();
  EXPECT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }))
      << "the same set is published again after an error";
  source.stop();
}

TEST_F(AsgSourceTest, ThrottlingWithinTheRetryBudgetConverges) {
  aws_.inject(test::Fault::kThrottle, 2, "DescribeAutoScalingGroups");
  aws_.inject(test::Fault::kGarbage503, 1, "DescribeInstances");
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  auto snap = sink.wait_for([](const auto&) { return true; });
  ASSERT_TRUE(snap.has_value());
  EXPECT_TRUE(has_n(*snap, 3));
  source.stop();
}

TEST_F(AsgSourceTest, UnknownGroupIsAnError) {
  AsgSource source(options({"web-asg", "nope"}), context(), runtime());
  auto snap = source.fetch_once(10s);
  ASSERT_FALSE(snap.ok());
  EXPECT_THAT(snap.error().message, HasSubstr("Auto Scaling group 'nope' not found"));
}

TEST_F(AsgSourceTest, WrongKeysAreAnErrorWithoutTheSecret) {
  auto r = runtime();
  r.env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-000000000";
  AsgSource source(options(), context(), r);
  auto snap = source.fetch_once(10s);
  ASSERT_FALSE(snap.ok());
  EXPECT_THAT(snap.error().message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(snap.error().message, ::testing::Not(HasSubstr("not-the-secret")));
}

TEST_F(AsgSourceTest, FiveHundredInstancesTakeTwoCallsAndPaginationIsFollowed) {
  for (int i = 3; i < 500; ++i) add_instance(i);
  AsgSource source(options(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 500); }));
  EXPECT_EQ(source.last_api_calls(), 2);
  EXPECT_EQ(aws_.calls("DescribeAutoScalingGroups"), 1);
  EXPECT_EQ(aws_.calls("DescribeInstances"), 1);
  source.stop();

  aws_.set_ec2_page_size(100);  // the double now pages DescribeInstances
  auto snap = AsgSource(options(), context(), runtime()).fetch_once(10s);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(snap->size(), 500u);
  EXPECT_EQ(aws_.calls("DescribeInstances"), 1 + 5);
}

TEST_F(AsgSourceTest, MoreThanFiftyGroupsAreBatched) {
  std::vector<std::string> names;
  for (int g = 0; g < 60; ++g) {
    names.push_back(fmt::format("asg-{:02}", g));
    add_instance(1000 + g, names.back());
  }
  auto snap = AsgSource(options(names), context(), runtime()).fetch_once(10s);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(snap->size(), 60u);
  EXPECT_EQ(aws_.calls("DescribeAutoScalingGroups"), 2);
}

// Region resolution like the SDKs, one step at a time: each step is shadowed by the ones
// before it, and the region actually used is the one in the credential scope the double saw.
TEST_F(AsgSourceTest, RegionComesFromConfigThenEnvThenProfileThenImds) {
  struct Step {
    std::string name, configured;
    EnvMap env;
    std::string config_file, region, from;
  };
  const std::vector<Step> steps = {
      {"configuration",
       "us-east-1",
       {{"AWS_REGION", "eu-west-2"}, {"AWS_DEFAULT_REGION", "eu-west-3"}},
       "[default]\nregion = ap-south-1\n",
       "us-east-1",
       "configuration"},
      {"AWS_REGION",
       "",
       {{"AWS_REGION", "eu-west-2"}, {"AWS_DEFAULT_REGION", "eu-west-3"}},
       "[default]\nregion = ap-south-1\n",
       "eu-west-2",
       "AWS_REGION"},
      {"AWS_DEFAULT_REGION",
       "",
       {{"AWS_DEFAULT_REGION", "eu-west-3"}},
       "[default]\nregion = ap-south-1\n",
       "eu-west-3",
       "AWS_DEFAULT_REGION"},
      {"default profile",
       "",
       {},
       "[default]\nregion = ap-south-1\n",
       "ap-south-1",
       "profile 'default'"},
      {"AWS_PROFILE",
       "",
       {{"AWS_PROFILE", "prod"}},
       "[default]\nregion = ap-south-1\n[profile prod]\nregion = sa-east-1\n",
       "sa-east-1",
       "profile 'prod'"},
  };
  for (const auto& step : steps) {
    SCOPED_TRACE(step.name);
    auto o = options();
    o.region = step.configured;
    auto r = runtime();
    for (const auto& [k, v] : step.env) r.env[k] = v;
    r.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = aws_.url();
    r.config_file = step.config_file;
    AsgSource source(o, context(), r);
    auto plan = source.region_plan();
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    ASSERT_TRUE(plan->region.has_value());
    EXPECT_EQ(plan->region->region, step.region);
    EXPECT_EQ(plan->region->source, step.from);
    ASSERT_EQ(source.check_notes().size(), 1u);
    EXPECT_THAT(source.check_notes()[0],
                HasSubstr("region " + step.region + " (from " + step.from));
    ASSERT_TRUE(source.fetch_once(10s).ok());
    EXPECT_EQ(aws_.signing_regions().count(step.region), 1u);
  }
  EXPECT_EQ(aws_.signing_regions().count("eu-west-2"), 1u);  // only from its own step
  EXPECT_TRUE(aws_.imds_requests().empty()) << "IMDS asked although a region was configured";

  // Nothing configured: IMDSv2, a token PUT then GET placement/region with it.
  aws_.set_imds_region("ca-central-1");
  auto r = runtime();
  r.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = aws_.url();
  auto o = options();
  o.region.clear();
  AsgSource source(o, context(), r);
  auto plan = source.region_plan();
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_FALSE(plan->region.has_value());
  EXPECT_EQ(plan->imds_endpoint, aws_.url());
  EXPECT_THAT(source.check_notes().at(0),
              HasSubstr("it will be asked of the instance metadata (IMDSv2 placement/region at " +
                        aws_.url()));
  EXPECT_TRUE(aws_.imds_requests().empty()) << "check must not use the network";
  auto snap = source.fetch_once(10s);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(snap->size(), 3u);
  EXPECT_EQ(aws_.signing_regions().count("ca-central-1"), 1u);
  EXPECT_EQ(aws_.imds_requests(),
            (std::vector<std::string>{"PUT /latest/api/token",
                                      "GET /latest/meta-data/placement/region"}));
}

TEST_F(AsgSourceTest, NoRegionAnywhereIsAnErrorNamingEveryStep) {
  auto o = options();
  o.region.clear();
  // IMDS answers 404 for placement/region.
  aws_.set_imds_region("");
  auto r = runtime();
  r.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = aws_.url();
  AsgSource source(o, context(), r);
  auto snap = source.fetch_once(10s);
  ASSERT_FALSE(snap.ok());
  EXPECT_THAT(snap.error().message,
              HasSubstr("no AWS region: none of `region` in the source, AWS_REGION, "
                        "AWS_DEFAULT_REGION, profile 'default' region is set, and the instance "
                        "metadata at " +
                        aws_.url() + " did not give one (IMDS placement/region: "));

  // IMDS off: an error already at `check`, and IMDS is never asked.
  const size_t asked = aws_.imds_requests().size();
  r.env["AWS_EC2_METADATA_DISABLED"] = "true";
  AsgSource off(o, context(), r);
  auto plan = off.region_plan();
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.error().message, HasSubstr("AWS_EC2_METADATA_DISABLED=true"));
  EXPECT_THAT(off.check_notes().at(0), HasSubstr("no AWS region"));
  EXPECT_FALSE(off.fetch_once(10s).ok());
  EXPECT_EQ(aws_.imds_requests().size(), asked);

  // An invalid region is refused wherever it comes from.
  auto bad = runtime();
  bad.env["AWS_REGION"] = "eu-west-1.evil.example";
  AsgSource invalid(o, context(), bad);
  ASSERT_FALSE(invalid.region_plan().ok());
  EXPECT_THAT(invalid.region_plan().error().message, HasSubstr("(from AWS_REGION)"));
}

// A listener that accepts connections (in the kernel's backlog) and never answers: a black-holed
// instance metadata service.
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~BlackHole() { ::close(fd_); }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// The region lookup and the credential fetch ask IMDS as requests on the source loop, never as
// blocking calls: with IMDS black-holed (5 s timeouts), two sources waiting on it share one
// loop thread with a third that publishes meanwhile; start_on returns at once; stop cancels
// the waits. And IMDS credentials (the double's role) work through the same path.
TEST_F(AsgSourceTest, ImdsRegionAndCredentialsAreAskedWithoutBlockingTheSharedLoop) {
  BlackHole hole;
  runtime::Runtime rt({.threads = 1});
  auto region_opts = options();
  region_opts.region.clear();  // → IMDS placement/region
  auto region_rt = runtime();
  region_rt.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = hole.url();
  region_rt.imds_timeout = 5s;
  auto creds_rt = runtime();  // no keys anywhere → IMDS credentials
  creds_rt.env = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", hole.url()}};
  creds_rt.imds_timeout = 5s;
  AsgSource by_region(region_opts, context(), region_rt);
  AsgSource by_creds(options(), context(), creds_rt);
  AsgSource plain(options(), context(), runtime());
  RecordingSink s_region, s_creds, s_plain;
  ASSERT_TRUE(by_region.start_on(rt, s_region).ok());
  ASSERT_TRUE(by_creds.start_on(rt, s_creds).ok());
  ASSERT_TRUE(plain.start_on(rt, s_plain).ok());
  ASSERT_TRUE(s_plain.wait_for([](const discovery::Snapshot& s) { return has_n(s, 3); }, 4s))
      << "the loop was blocked";
  EXPECT_EQ(s_region.count(), 0u) << "still waiting on IMDS for its region";
  EXPECT_EQ(s_creds.count(), 0u) << "still waiting on IMDS for its credentials";
  by_region.stop();
  by_creds.stop();
  plain.stop();

  // The same asynchronous path with an IMDS that answers: its role's credentials sign the poll.
  aws_.set_imds_role("node-role", "ASIAIMDSNODE00000001", "imds-node-secret-000000000000000000000",
                     "imds-node-token", "2099-01-01T00:00:00Z");
  auto imds_rt = runtime();
  imds_rt.env = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", aws_.url()}};
  AsgSource by_imds(options(), context(), imds_rt);
  RecordingSink s_imds;
  ASSERT_TRUE(by_imds.start_on(rt, s_imds).ok());
  auto snap = s_imds.wait_for([](const discovery::Snapshot&) { return true; });
  ASSERT_TRUE(snap.has_value());
  ASSERT_TRUE(snap->ok()) << snap->error().message;
  EXPECT_EQ(snap->value().size(), 3u);
  by_imds.stop();
  const auto imds = aws_.imds_requests();
  ASSERT_GE(imds.size(), 3u);
  EXPECT_EQ(imds[0], "PUT /latest/api/token");
  EXPECT_EQ(imds[1], "GET /latest/meta-data/iam/security-credentials/");
  EXPECT_EQ(imds[2], "GET /latest/meta-data/iam/security-credentials/node-role");
  EXPECT_EQ(aws_.signature_failures(), 0);
}

// aws_ec2: running instances by tag filters, every page, address kinds, port and weight tags.
TEST_F(AsgSourceTest, Ec2SourceSelectsRunningInstancesByTagAcrossPages) {
  for (int i = 0; i < 12; ++i) {
    test::DoubleInstance d;
    d.id = fmt::format("i-ec2{:014x}", i);
    d.private_ip = fmt::format("10.1.0.{}", i + 1);
    d.public_ip = fmt::format("203.0.113.{}", i + 1);
    d.ipv6 = {fmt::format("2001:db8::{}", i + 1)};
    d.tags = {{"Service", i % 3 == 2 ? "api" : "web"}, {"Env", i < 10 ? "prod" : "test"}};
    if (i == 0) d.tags.emplace_back("port", "9090");
    if (i == 1) d.tags.emplace_back("weight", "7");
    if (i == 3) d.state_code = 80;  // stopped
    aws_.put_instance(d);
  }
  aws_.set_ec2_page_size(3);
  Ec2Options o = ec2_options();
  o.weight = 2;
  o.weight_tag = "weight";
  o.port_tag = "port";
  o.filters = {{"tag:Service", {"web"}}, {"tag:Env", {"prod"}}};
  Ec2Source source(o, context(), runtime());
  EXPECT_EQ(source.describe(), "aws_ec2 tag:Service=web tag:Env=prod");
  const int calls0 = aws_.calls("DescribeInstances");
  auto snap = source.fetch_once(10s);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  // web & prod: 0,1,3,4,6,7,9 — minus 3 (stopped) = 6 instances, 3 per page: every page read.
  std::vector<std::string> ids;
  for (const auto& e : *snap) ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"i-ec200000000000000", "i-ec200000000000001",
                                           "i-ec200000000000004", "i-ec200000000000006",
                                           "i-ec200000000000007", "i-ec200000000000009"}));
  EXPECT_EQ(aws_.calls("DescribeInstances") - calls0, 2);
  using F = std::vector<std::pair<std::string, std::vector<std::string>>>;
  EXPECT_EQ(
      aws_.last_filters(),
      (F{{"tag:Service", {"web"}}, {"tag:Env", {"prod"}}, {"instance-state-name", {"running"}}}));
  EXPECT_EQ((*snap)[0].address, "10.1.0.1");
  EXPECT_EQ((*snap)[0].port, 9090u);  // port tag
  EXPECT_EQ((*snap)[1].port, 8080u);  // config
  EXPECT_EQ((*snap)[1].weight, 7);    // weight tag
  EXPECT_EQ((*snap)[0].weight, 2);    // config
  EXPECT_EQ((*snap)[0].labels.at("instance_id"), "i-ec200000000000000");
  EXPECT_EQ((*snap)[0].labels.count("asg"), 0u);

  o.address = AddressType::kPublic;
  Ec2Source pub(o, context(), runtime());
  auto p = pub.fetch_once(10s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].address, "203.0.113.1");
  o.address = AddressType::kIpv6;
  Ec2Source v6(o, context(), runtime());
  auto v = v6.fetch_once(10s);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0].address, "2001:db8::1");
  EXPECT_EQ(aws_.signature_failures(), 0);
}

TEST_F(AsgSourceTest, Ec2SourceFailuresAreErrorsAndTheFactoryBuildsIt) {
  test::DoubleInstance d;
  d.id = "i-ec2web";
  d.private_ip = "10.2.0.1";
  d.tags = {{"Service", "web"}};
  aws_.put_instance(d);
  Ec2Options o = ec2_options();
  o.filters = {{"tag:Service", {"web"}}};
  auto r = runtime();
  r.retry.max_attempts = 1;
  Ec2Source source(o, context(), r);
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const discovery::Snapshot& s) { return has_n(s, 1); }));
  // A failing poll publishes an error (the pipeline keeps the last good set: fail static).
  aws_.inject(test::Fault::kInternalError, 5, "DescribeInstances");
  source.trigger();
  auto failed = sink.wait_for([](const discovery::Snapshot& s) { return !s.ok(); });
  ASSERT_TRUE(failed.has_value());
  EXPECT_THAT(failed->error().message, HasSubstr("aws_ec2 tag:Service=web"));
  // Recovery republishes.
  ASSERT_TRUE(test::eventually(
      [&] {
        source.trigger();
        return sink.wait_for([](const discovery::Snapshot& s) { return has_n(s, 1); }, 500ms)
            .has_value();
      },
      20s));
  source.stop();

  // The double refuses a filter it does not know, like AWS.
  o.filters = {{"colour", {"blue"}}};
  Ec2Source bad(o, context(), runtime());
  auto snap = bad.fetch_once(10s);
  ASSERT_FALSE(snap.ok());
  EXPECT_THAT(snap.error().message, HasSubstr("The filter 'colour' is invalid"));

  // The factory: `aws_ec2` is a source kind.
  Diagnostics diag;
  ConfigNode node = ConfigNode::make_map();
  ConfigNode tags = ConfigNode::make_map();
  tags.add("Service", ConfigNode::make_scalar("web"));
  node.add("tags", tags);
  node.add("region", ConfigNode::make_scalar("eu-west-1"));
  auto made = discovery::aws::ec2_source_kind().create(node, diag, context());
  ASSERT_NE(made, nullptr) << diag.joined();
  EXPECT_EQ(made->describe(), "aws_ec2 tag:Service=web");
  // Its own source class (sharing AwsPollingSource with aws_asg), not a mode of the ASG one.
  EXPECT_NE(dynamic_cast<Ec2Source*>(made.get()), nullptr);
  EXPECT_EQ(dynamic_cast<AsgSource*>(made.get()), nullptr);
}

TEST_F(AsgSourceTest, StopInterruptsAndFactoryBuildsTheSource) {
  auto kind = discovery::aws::source_kind();
  EXPECT_EQ(kind.name, "aws_asg");
  ConfigNode node = ConfigNode::make_map();
  node.add("asg_name", ConfigNode::make_scalar("web-asg"));
  Diagnostics diag;
  auto src = kind.create(node, diag, context());
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->describe(), "aws_asg web-asg");
  ConfigNode bad = ConfigNode::make_map();
  EXPECT_EQ(kind.create(bad, diag, context()), nullptr);
  EXPECT_FALSE(diag.ok());
}

// ---- SQS events ----

std::string read_testdata(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/aws/" + name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AsgEventsTest : public AsgSourceTest {
 protected:
  AsgOptions with_queue() {
    AsgOptions o = options();
    queue_ = aws_.create_queue("ep-web-events");
    o.queue_url = queue_;
    o.wait_seconds = 1;
    return o;
  }
  bool wait_queue_empty(std::chrono::milliseconds deadline = 10s) {
    return test::eventually([&] { return aws_.queue_size(queue_) == 0; }, deadline);
  }
  std::string queue_;
};

TEST_F(AsgEventsTest, TerminateNotificationTriggersARepollAndIsDeletedAfterwards) {
  AsgSource source(with_queue(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  aws_.remove_instance("i-00000000000000000");
  aws_.send_message(queue_, read_testdata("msg_asg_terminate_sns.json"));
  // interval is 60 s: only the message can make this happen in time.
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 2); }));
  EXPECT_TRUE(wait_queue_empty());
  // The totals are copied when the batch's round ends, just after its DeleteMessage: wait for
  // them, not for the queue (under ASan the queue emptied first and stop() cut the round short).
  EXPECT_TRUE(test::eventually([&] { return source.sqs_totals().repolls >= 1; }, 10s));
  source.stop();
  EXPECT_GE(source.sqs_totals().repolls, 1);
}

TEST_F(AsgEventsTest, EventBridgeAndRawLifecycleMessagesTriggerRepolls) {
  AsgSource source(with_queue(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  add_instance(9);
  aws_.send_message(queue_, read_testdata("msg_eventbridge_launch_successful.json"));
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 4); }));
  aws_.remove_instance("i-00000000000000009");
  aws_.send_message(queue_, read_testdata("msg_lifecycle_terminating_raw.json"));
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  EXPECT_TRUE(wait_queue_empty());
  source.stop();
}

TEST_F(AsgEventsTest, TestUnknownAndMalformedMessagesAreDeletedWithoutCrashing) {
  AsgSource source(with_queue(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  for (const std::string& body :
       {read_testdata("msg_test_notification_sns.json"),
        read_testdata("msg_eventbridge_ec2_state_change.json"), std::string("not json {"),
        std::string("{\"Type\":\"Notification\"}"), std::string("\x01\x02 garbage"),
        std::string(R"({"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"})")}) {
    aws_.send_message(queue_, body);
  }
  EXPECT_TRUE(wait_queue_empty());
  test::eventually([&] { return source.sqs_totals().deleted >= 6; }, 10s);
  source.stop();
  EXPECT_EQ(source.sqs_totals().deleted, 6);
  EXPECT_EQ(source.sqs_totals().repolls, 0);
  // Not JSON ×2 and a hook message without EC2InstanceId are malformed; {"Type":"Notification"}
  // without TopicArn/Message is not taken for an SNS envelope and is acknowledged as unknown.
  EXPECT_EQ(source.sqs_totals().malformed, 3);
  EXPECT_EQ(sink.count(), 1u);
}

TEST_F(AsgEventsTest, AMessageWhoseRepollFailsIsKeptForRedelivery) {
  AsgSource source(with_queue(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  aws_.inject(test::Fault::kInternalError, 3, "DescribeAutoScalingGroups");
  aws_.send_message(queue_, read_testdata("msg_asg_launch_raw.json"));
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return !s.ok(); }));
  test::eventually([&] { return source.sqs_totals().kept >= 1; }, 10s);
  EXPECT_EQ(source.sqs_totals().kept, 1);
  EXPECT_EQ(aws_.queue_size(queue_), 1u) << "not deleted: the effect was not applied";
  // The faults are used up: the next round's re-poll succeeds and the kept message is deleted
  // then, without waiting for SQS to redeliver it.
  EXPECT_TRUE(wait_queue_empty());
  EXPECT_EQ(aws_.calls("ReceiveMessage") >= 2, true);
  source.stop();
}

TEST_F(AsgEventsTest, ManySourcesShareTheRuntimeThreads) {
  // Sources with polls, an SQS long poll and a lifecycle hook each, on one runtime: they are
  // coroutines on its loops, so no thread is added. The AWS double serves each connection on a
  // thread of its own (some may have ended): at most one per connection.
  constexpr int kSources = 10;
  runtime::Runtime rt({.threads = 2});
  const size_t threads = test::thread_count();
  const std::uint64_t connections = aws_.connections_accepted();
  AsgOptions o = with_queue();
  o.lifecycle_hook = "ep-drain";
  o.hook_check_interval = 20ms;
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  std::vector<std::unique_ptr<AsgSource>> sources;
  for (int i = 0; i < kSources; ++i) {
    sinks.push_back(std::make_unique<RecordingSink>());
    sources.push_back(std::make_unique<AsgSource>(o, context(), runtime()));
    ASSERT_TRUE(sources.back()->start_on(rt, *sinks.back()).ok());
  }
  for (auto& s : sinks) ASSERT_TRUE(s->wait_for([](const auto& x) { return has_n(x, 3); }));
  EXPECT_LE(static_cast<long>(test::thread_count()) - static_cast<long>(threads),
            static_cast<long>(aws_.connections_accepted() - connections));
  // Events still work: the source that receives the message re-polls and deletes it.
  aws_.remove_instance("i-00000000000000000");
  aws_.send_message(queue_, read_testdata("msg_asg_terminate_sns.json"));
  EXPECT_TRUE(wait_queue_empty());
  EXPECT_LE(static_cast<long>(test::thread_count()) - static_cast<long>(threads),
            static_cast<long>(aws_.connections_accepted() - connections));
  for (auto& s : sources) s->stop();
  EXPECT_EQ(rt.loop(0).timer_count() + rt.loop(1).timer_count(), 0u);
  EXPECT_EQ(rt.loop(0).watch_count() + rt.loop(1).watch_count(), 0u);
}

TEST_F(AsgEventsTest, MessageToPublishLatency) {
  AsgSource source(with_queue(), context(), runtime());
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_for([](const auto& s) { return has_n(s, 3); }));
  std::vector<double> ms;
  const std::string body = read_testdata("msg_asg_launch_raw.json");
  for (int i = 0; i < 20; ++i) {
    const bool add = i % 2 == 0;
    if (add) {
      add_instance(100);
    } else {
      aws_.remove_instance(fmt::format("i-{:017x}", 100));
    }
    const auto t0 = std::chrono::steady_clock::now();
    aws_.send_message(queue_, body);
    ASSERT_TRUE(sink.wait_for([&](const auto& s) { return has_n(s, add ? 4 : 3); }));
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("SQS message -> sink publish: p50 %.1f ms, p99 %.1f ms (n=%zu)\n", ms[ms.size() / 2],
              ms[ms.size() * 99 / 100], ms.size());
  source.stop();
}

// ---- #16.1: the AWS endpoint frozen (the double's process stopped by SIGSTOP) ----

// The AWS double in a child process, so that SIGSTOP freezes it while its sockets stay open (and
// new connections still complete into its listen backlog). One byte on `to_child` = one more
// instance (i-…0a0 + n) and, with `queue`, a launch notification on the queue. Three instances
// to begin with.
class FrozenDouble {
 public:
  explicit FrozenDouble(bool queue) {
    int to[2], from[2];
    if (::pipe(to) != 0 || ::pipe(from) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(to[1]);
      ::close(from[0]);
      test::AwsDouble d;
      d.add_key(kKeyId, kSecret);
      d.start();
      auto add = [&](int n) {
        test::DoubleInstance i;
        i.id = fmt::format("i-{:017x}", 0xa0 + n);
        i.group = "web-asg";
        i.private_ip = fmt::format("10.0.7.{}", n + 1);
        d.put_instance(i);
      };
      for (int n = 0; n < 3; ++n) add(n);
      const std::string q = queue ? d.create_queue("ep-web-events") : "";
      const std::string hello = d.url() + "\n" + q + "\n";
      (void)!::write(from[1], hello.data(), hello.size());
      const std::string launch = read_testdata("msg_asg_launch_raw.json");
      char c;
      int n = 3;
      while (::read(to[0], &c, 1) == 1) {
        if (c == 'i') {
          add(n++);
          (void)!::write(from[1], "k", 1);
        } else if (queue) {
          d.send_message(q, launch);
        }
      }
      d.stop();
      ::_exit(0);
    }
    ::close(to[0]);
    ::close(from[1]);
    to_ = to[1];
    std::string line;
    char c;
    int lines = 0;
    while (lines < 2 && ::read(from[0], &c, 1) == 1) {
      if (c == '\n') {
        (lines++ == 0 ? url_ : queue_) = line;
        line.clear();
      } else {
        line += c;
      }
    }
    from_ = from[0];
  }
  ~FrozenDouble() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::close(to_);
    ::close(from_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  bool ok() const { return pid_ > 0 && !url_.empty(); }
  const std::string& url() const { return url_; }
  const std::string& queue() const { return queue_; }
  // One more instance; `wait`: until the double has it (not while it is stopped).
  bool add_instance(bool wait) {
    if (::write(to_, "i", 1) != 1) return false;
    char c;
    return !wait || ::read(from_, &c, 1) == 1;
  }
  bool send_launch_message() { return ::write(to_, "m", 1) == 1; }
  bool pause() { return ::kill(pid_, SIGSTOP) == 0; }
  bool resume() { return ::kill(pid_, SIGCONT) == 0; }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string url_, queue_;
};

// Freezes the double for `frozen`; asserts only the old set or errors while frozen and returns
// the time from SIGCONT to the new set at the sink (< 0: never). With a queue, the new instance
// is added just before the freeze (the source, polling every 60 s, does not see it) and its launch
// message is sent during it (read by the double after SIGCONT); without, the instance itself is
// added during the freeze (after SIGCONT, racing the poll that was waiting: then the next poll).
double frozen_trial(FrozenDouble& aws, AsgSource& source, test::RecordingSink& sink,
                    std::chrono::milliseconds frozen) {
  EXPECT_TRUE(sink.wait_next(0, [](const discovery::Snapshot& s) { return has_n(s, 3); }));
  const bool queue = !aws.queue().empty();
  if (queue) EXPECT_TRUE(aws.add_instance(true));
  const size_t before = sink.size();
  EXPECT_TRUE(aws.pause());
  EXPECT_TRUE(queue ? aws.send_launch_message() : aws.add_instance(false));
  EXPECT_TRUE(test::consistently(
      [&] {
        auto all = sink.all();
        return std::all_of(all.begin() + static_cast<long>(before), all.end(),
                           [](const discovery::Snapshot& s) { return !s.ok() || has_n(s, 3); });
      },
      frozen));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(aws.resume());
  auto got =
      sink.wait_next(before, [](const discovery::Snapshot& s) { return has_n(s, 4); }, 10s);
  source.stop();
  if (!got) return -1;
  return std::chrono::duration<double, std::milli>(sink.time(*got) - t0).count();
}

AsgOptions frozen_options(const FrozenDouble& aws) {
  AsgOptions o;
  o.groups = {"web-asg"};
  o.region = "eu-west-1";
  o.autoscaling_endpoint = o.ec2_endpoint = o.sqs_endpoint = o.sts_endpoint = aws.url();
  o.port = 8080;
  o.queue_url = aws.queue();
  o.interval = 60s;  // only the queue's message can bring the new set in time
  o.timeout = 1s;    // requests to the frozen double fail (and are published as errors) quickly
  return o;
}

AsgRuntime frozen_runtime() {
  AsgRuntime r;
  r.read_files = false;
  r.env = {{"AWS_ACCESS_KEY_ID", kKeyId}, {"AWS_SECRET_ACCESS_KEY", kSecret}};
  r.retry.max_attempts = 1;
  return r;
}

discovery::SourceContext frozen_context() {
  discovery::SourceContext c;
  c.backend = "be_web";
  return c;
}

// The long poll (wait_seconds 20, the default) in flight when the double is stopped for 1.5 s:
// it is answered on SIGCONT, with the launch message, and the re-poll brings the new set.
TEST(AsgSourceStopped, SqsLongPollAcrossSigstopNewSetWithinTwoSeconds) {
  FrozenDouble aws(true);
  ASSERT_TRUE(aws.ok());
  AsgOptions o = frozen_options(aws);
  ASSERT_EQ(o.wait_seconds, 20);
  AsgSource source(o, frozen_context(), frozen_runtime());
  test::RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  const double ms = frozen_trial(aws, source, sink, 1500ms);
  std::printf("AWS double SIGSTOP 1.5 s (SQS wait 20 s): new set after SIGCONT: %.0f ms\n", ms);
  ASSERT_GE(ms, 0) << "the new set never came";
  EXPECT_LE(ms, 2000.0 * test::time_scale());
}

// A freeze longer than a ReceiveMessage may take (wait_seconds 1 + min(timeout, 10 s) = 2 s here):
// the receive fails, and the next one is sent at once (a timed-out receive is not followed by the
// 5 s pause a fast failure gets), so it waits in the double's backlog and is answered on SIGCONT.
TEST(AsgSourceStopped, FreezeLongerThanTheReceiveTimeoutNewSetWithinTwoSeconds) {
  FrozenDouble aws(true);
  ASSERT_TRUE(aws.ok());
  AsgOptions o = frozen_options(aws);
  o.wait_seconds = 1;
  AsgSource source(o, frozen_context(), frozen_runtime());
  test::RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  const double ms = frozen_trial(aws, source, sink, 3500ms);
  std::printf("AWS double SIGSTOP 3.5 s (SQS wait 1 s, timeout 1 s): new set after SIGCONT: %.0f ms\n",
              ms);
  ASSERT_GE(ms, 0) << "the new set never came";
  EXPECT_LE(ms, 2000.0 * test::time_scale());
}

// Polling only (no queue): a poll that fails while the double is frozen is published as an error
// (servers kept) and sent again at once while it times out, so one is waiting on the double when
// it resumes; the new set comes with it, or (when that poll is answered before the double took
// the new instance in, a race of the test's double) with the next poll, `interval` (500 ms) later.
TEST(AsgSourceStopped, PollingOnlyNewSetWithTheNextPollAfterSigcont) {
  FrozenDouble aws(false);
  ASSERT_TRUE(aws.ok());
  AsgOptions o = frozen_options(aws);
  o.queue_url.clear();
  o.interval = 500ms;
  AsgSource source(o, frozen_context(), frozen_runtime());
  test::RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  const double ms = frozen_trial(aws, source, sink, 2500ms);
  std::printf("AWS double SIGSTOP 2.5 s (polling every 500 ms): new set after SIGCONT: %.0f ms\n",
              ms);
  ASSERT_GE(ms, 0) << "the new set never came";
  EXPECT_LE(ms, 2000.0 * test::time_scale());
}

}  // namespace
}  // namespace ep::aws
