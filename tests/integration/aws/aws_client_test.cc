// The real AWS client code (AwsClient, HttpCredentialFetcher, CurlHttpClient) against the AWS
// double on 127.0.0.1, which verifies every request's SigV4 signature.

#include "discovery/aws/aws_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/log.h"
#include "discovery/aws/credential_fetcher.h"
#include "discovery/aws/parse.h"
#include "net/curl_http_client.h"
#include "os/process.h"
#include "runtime/runtime.h"
#include "support/aws/aws_double.h"
#include "support/http/loopback_http_server.h"

namespace ep::aws {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr const char* kKeyId = "AKIDEXAMPLEDOUBLE001";
constexpr const char* kSecret = "s3cr3t/Double+Secret+Key+0000000000000000";

// Records log lines so tests can prove no secret is logged.
class LogCapture {
 public:
  LogCapture() {
    log::set_level(log::Level::kDebug);
    log::set_sink([this](log::Level, std::string_view c, std::string_view m) {
      std::lock_guard lock(mu_);
      text_ += std::string(c) + ": " + std::string(m) + "\n";
    });
  }
  ~LogCapture() {
    log::set_sink(nullptr);
    log::set_level(log::Level::kInfo);
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

class AwsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    aws_.add_key(kKeyId, kSecret);
    aws_.start();
    endpoint_ = *parse_endpoint_url(aws_.url());
    test::DoubleInstance a;
    a.id = "i-0000000000000000a";
    a.group = "web-asg";
    a.private_ip = "10.0.0.1";
    aws_.put_instance(a);
  }

  AwsClientEnv recording_env() {
    AwsClientEnv env;
    env.sleep = [this](std::chrono::milliseconds d) { sleeps_.push_back(d); };
    env.random = [] { return 0.5; };
    return env;
  }

  test::AwsDouble aws_;
  Endpoint endpoint_;
  net::CurlHttpClient http_;
  StaticCredentialProvider creds_{Credentials{kKeyId, kSecret, "", std::nullopt, "test"}};
  std::vector<std::chrono::milliseconds> sleeps_;
};

TEST_F(AwsClientTest, SignedDescribeAutoScalingGroupsIsAcceptedAndParses) {
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto params = describe_auto_scaling_groups_params({"web-asg"}, "");
  ASSERT_TRUE(params.ok());
  auto body =
      client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups", *params);
  ASSERT_TRUE(body.ok()) << body.error().message;
  auto page = parse_describe_auto_scaling_groups(*body);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->groups.size(), 1u);
  EXPECT_EQ(page->groups[0].instances.at(0).instance_id, "i-0000000000000000a");
  EXPECT_EQ(aws_.signature_failures(), 0);
  EXPECT_EQ(client.stats().attempts, 1u);
}

TEST_F(AwsClientTest, WrongSecretIsRefusedWithSignatureDoesNotMatchAndNoSecretInTheError) {
  LogCapture logs;
  StaticCredentialProvider bad(Credentials{kKeyId, "wrong-secret-value-xyz", "", {}, "test"});
  AwsClient client(http_, bad, "eu-west-1", {}, recording_env());
  auto ids = describe_instances_by_id_params({"i-0000000000000000a"}, "");
  auto body = client.call_query(AwsService::kEc2, endpoint_, "DescribeInstances", *ids);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.error().kind, ErrorKind::kRefused);
  EXPECT_THAT(body.error().message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(body.error().message, HasSubstr("ec2 DescribeInstances"));
  EXPECT_THAT(body.error().message, Not(HasSubstr("wrong-secret-value-xyz")));
  EXPECT_THAT(logs.text(), Not(HasSubstr("wrong-secret-value-xyz")));
  EXPECT_EQ(client.stats().attempts, 1u) << "a signature error is not retried";
  EXPECT_EQ(aws_.signature_failures(), 1);
}

TEST_F(AwsClientTest, UnknownKeyIsRefused) {
  StaticCredentialProvider other(Credentials{"AKIDUNKNOWN000000000", kSecret, "", {}, "test"});
  AwsClient client(http_, other, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({}, ""));
  ASSERT_FALSE(body.ok());
  EXPECT_THAT(body.error().message, HasSubstr("InvalidClientTokenId"));
}

TEST_F(AwsClientTest, ThrottlingIsRetriedWithJitteredExponentialBackoff) {
  aws_.inject(test::Fault::kThrottle, 2, "DescribeAutoScalingGroups");
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({"web-asg"}, ""));
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(client.stats().attempts, 3u);
  EXPECT_EQ(client.stats().throttled, 2u);
  // random = 0.5: 0.5 × 1 s × 2^0, then 0.5 × 1 s × 2^1.
  EXPECT_EQ(sleeps_, (std::vector<std::chrono::milliseconds>{500ms, 1000ms}));
}

TEST_F(AwsClientTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  aws_.inject(test::Fault::kThrottle, 5, "DescribeInstances");
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kEc2, endpoint_, "DescribeInstances",
                                *describe_instances_by_id_params({"i-0000000000000000a"}, ""));
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.error().kind, ErrorKind::kUnavailable);
  EXPECT_THAT(body.error().message, HasSubstr("RequestLimitExceeded"));
  EXPECT_EQ(client.stats().attempts, 3u);
  EXPECT_EQ(aws_.calls("DescribeInstances"), 3);
}

TEST_F(AwsClientTest, ServerErrorsAndGarbageAreTransientAndRetried) {
  aws_.inject(test::Fault::kInternalError, 1, "DescribeAutoScalingGroups");
  aws_.inject(test::Fault::kGarbage503, 1, "DescribeAutoScalingGroups");
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({"web-asg"}, ""));
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(client.stats().attempts, 3u);
  // transient base 50 ms: 25 ms then 50 ms.
  EXPECT_EQ(sleeps_, (std::vector<std::chrono::milliseconds>{25ms, 50ms}));
}

TEST_F(AwsClientTest, ConnectionRefusedIsUnavailableAfterRetries) {
  Endpoint dead = *parse_endpoint_url("http://127.0.0.1:1");
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, dead, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({}, ""));
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(client.stats().attempts, 3u);
}

TEST_F(AwsClientTest, ClockSkewIsCorrectedFromTheDateHeader) {
  aws_.set_clock_offset(std::chrono::hours(2));
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({"web-asg"}, ""));
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(client.stats().clock_skew_corrections, 1u);
  EXPECT_NEAR(client.clock_offset().count(), 7200, 5);
  EXPECT_TRUE(sleeps_.empty());
  // The offset sticks: the next call needs no correction.
  auto again = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                 *describe_auto_scaling_groups_params({"web-asg"}, ""));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(client.stats().clock_skew_corrections, 1u);
}

class CountingProvider final : public CredentialProvider {
 public:
  Result<Credentials> get(SystemTime) override {
    return Credentials{kKeyId, kSecret, "", std::nullopt, "test"};
  }
  void invalidate() override { ++invalidations; }
  int invalidations = 0;
};

TEST_F(AwsClientTest, ExpiredTokenRefreshesCredentialsAndRetries) {
  aws_.inject(test::Fault::kExpiredToken, 1, "DescribeAutoScalingGroups");
  CountingProvider provider;
  AwsClient client(http_, provider, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({"web-asg"}, ""));
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(provider.invalidations, 1);
  EXPECT_EQ(client.stats().credential_refreshes, 1u);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(AwsClientTest, SqsLongPollReceivesAMessageSentDuringTheWaitAndDeletesIt) {
  const std::string queue = aws_.create_queue("ep-events");
  Endpoint sqs = *parse_endpoint_url(aws_.url());
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  std::thread sender([&] {
    std::this_thread::sleep_for(200ms);  // the receiver must already be waiting
    aws_.send_message(queue, R"({"Event":"autoscaling:TEST_NOTIFICATION"})");
  });
  const auto start = std::chrono::steady_clock::now();
  auto body = client.call_sqs(sqs, "ReceiveMessage", *sqs_receive_message_body(queue, 10, 5, 30));
  const auto took = std::chrono::steady_clock::now() - start;
  sender.join();
  ASSERT_TRUE(body.ok()) << body.error().message;
  auto msgs = parse_receive_message(*body);
  ASSERT_TRUE(msgs.ok()) << msgs.error().message;
  ASSERT_EQ(msgs->size(), 1u);
  EXPECT_LT(took, 4s) << "the long poll returns as soon as a message arrives";
  auto del = client.call_sqs(sqs, "DeleteMessage",
                             sqs_delete_message_body(queue, msgs->at(0).receipt_handle));
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_EQ(aws_.queue_size(queue), 0u);
}

TEST_F(AwsClientTest, SqsErrorsUseTheJsonProtocol) {
  Endpoint sqs = *parse_endpoint_url(aws_.url());
  AwsClient client(http_, creds_, "eu-west-1", {}, recording_env());
  auto body = client.call_sqs(sqs, "ReceiveMessage",
                              *sqs_receive_message_body(aws_.url() + "/1/nope", 1, 0, 30));
  ASSERT_FALSE(body.ok());
  EXPECT_THAT(body.error().message, HasSubstr("QueueDoesNotExist"));
  EXPECT_EQ(body.error().kind, ErrorKind::kRefused);
}

// ---- credential fetchers ----

class FetcherTest : public AwsClientTest {
 protected:
  HttpCredentialFetcherOptions options() {
    HttpCredentialFetcherOptions o;
    o.default_region = "eu-west-1";
    o.sts_endpoint = [this](const std::string&) { return parse_endpoint_url(aws_.url()); };
    return o;
  }
  std::string temp_file(const std::string& content, mode_t mode = 0600) {
    std::string path = fmt::format("/tmp/ep-aws-{}-{}", getpid(), files_.size());
    std::ofstream(path) << content;
    chmod(path.c_str(), mode);
    files_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const auto& f : files_) unlink(f.c_str());
  }
  std::vector<std::string> files_;
};

TEST_F(FetcherTest, AssumeRoleIsSignedAndItsCredentialsWork) {
  net::CurlHttpClient sts_http;
  HttpCredentialFetcher fetcher(sts_http, options());
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kAssumeRole;
  plan.role_arn = "arn:aws:iam::111122223333:role/ep";
  auto creds = fetcher.assume_role(plan, Credentials{kKeyId, kSecret, "", {}, "base"});
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_TRUE(creds->temporary());
  ASSERT_TRUE(creds->expiration.has_value());
  // The temporary credentials (with their session token, signed) are accepted.
  StaticCredentialProvider temp(*creds);
  AwsClient client(http_, temp, "eu-west-1", {}, recording_env());
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({}, ""));
  EXPECT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(aws_.calls("AssumeRole"), 1);
}

// The chain on a loop (what the sources use): an AssumeRole over IMDS credentials, every step a
// request of an AsyncHttpClient; AsyncAwsClient awaits the provider's refresh before each attempt,
// and an ExpiredToken answer re-fetches the chain (IMDS and STS again) on the loop.
TEST_F(FetcherTest, AsyncChainOnTheLoopRefreshesOnExpiredToken) {
  aws_.set_imds_role("ep-role", "ASIAIMDS000000000001", "imds-secret", "imds-session",
                     "2099-01-01T00:00:00Z");
  runtime::Runtime rt({.threads = 0});
  auto http = std::make_unique<net::AsyncHttpClient>(rt.loop(0));
  AsyncHttpCredentialFetcher fetcher(rt.loop(0), *http, options());
  CredentialPlan imds;
  imds.kind = CredentialSourceKind::kImds;
  imds.imds_endpoint = aws_.url();
  imds.description = "IMDS";
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kAssumeRole;
  plan.role_arn = "arn:aws:iam::111122223333:role/ep";
  plan.description = "AssumeRole over IMDS";
  plan.source = std::make_shared<CredentialPlan>(imds);
  AsyncCachingCredentialProvider provider(plan, fetcher);
  const auto now = std::chrono::system_clock::now();
  ASSERT_FALSE(provider.get(now).ok());
  EXPECT_THAT(provider.get(now).error().message, HasSubstr("not fetched yet"));

  aws_.inject(test::Fault::kExpiredToken, 1, "DescribeAutoScalingGroups");
  auto client = std::make_unique<AsyncAwsClient>(rt.loop(0), provider, "eu-west-1", RetryPolicy{},
                                                 recording_env());
  std::optional<Result<std::string>> body;
  const QueryParams params = *describe_auto_scaling_groups_params({"web-asg"}, "");
  const std::string action = "DescribeAutoScalingGroups";
  auto run = [&]() -> runtime::Co<void> {
    body.emplace(co_await client->call_query(AwsService::kAutoScaling, endpoint_, action, params));
  };
  runtime::Spawned task = runtime::spawn(run());
  rt.run_until([&] { return body.has_value(); }, 10s);
  task.reset();
  ASSERT_TRUE(body.has_value()) << "no answer";
  ASSERT_TRUE(body->ok()) << body->error().message;
  EXPECT_EQ(client->stats().credential_refreshes, 1u);
  EXPECT_EQ(aws_.calls("AssumeRole"), 2) << "fetched, then re-fetched after ExpiredToken";
  const auto asked = aws_.imds_requests();
  EXPECT_EQ(std::count(asked.begin(), asked.end(), "PUT /latest/api/token"), 1)
      << "the IMDS token is reused";
  EXPECT_EQ(std::count(asked.begin(), asked.end(),
                       "GET /latest/meta-data/iam/security-credentials/ep-role"),
            2);
  auto creds = provider.get(std::chrono::system_clock::now());
  ASSERT_TRUE(creds.ok());
  EXPECT_TRUE(creds->temporary());
  EXPECT_EQ(creds->source, "AssumeRole over IMDS");
  client.reset();
  http.reset();
}

TEST_F(FetcherTest, AssumeRoleWithABadCallerNamesStsAndTheCode) {
  HttpCredentialFetcher fetcher(http_, options());
  CredentialPlan plan;
  plan.role_arn = "arn:aws:iam::111122223333:role/ep";
  auto creds = fetcher.assume_role(plan, Credentials{kKeyId, "nope-secret-123", "", {}, "base"});
  ASSERT_FALSE(creds.ok());
  EXPECT_THAT(creds.error().message, HasSubstr("AssumeRole"));
  EXPECT_THAT(creds.error().message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(creds.error().message, Not(HasSubstr("nope-secret-123")));
}

TEST_F(FetcherTest, WebIdentityReadsTheTokenFileEachTime) {
  aws_.set_web_identity_token("jwt-one");
  HttpCredentialFetcher fetcher(http_, options());
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kWebIdentity;
  plan.role_arn = "arn:aws:iam::111122223333:role/irsa";
  plan.web_identity_token_file = temp_file("jwt-one\n");
  auto creds = fetcher.assume_role_with_web_identity(plan);
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_TRUE(creds->temporary());
  // Rotated token on disk, double expects the new one.
  std::ofstream(plan.web_identity_token_file) << "jwt-two";
  aws_.set_web_identity_token("jwt-two");
  EXPECT_TRUE(fetcher.assume_role_with_web_identity(plan).ok());
  aws_.set_web_identity_token("jwt-three");
  auto refused = fetcher.assume_role_with_web_identity(plan);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("InvalidIdentityToken"));
  EXPECT_THAT(refused.error().message, Not(HasSubstr("jwt-two")));
  plan.web_identity_token_file = "/nonexistent/token";
  auto missing = fetcher.assume_role_with_web_identity(plan);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("/nonexistent/token"));
}

TEST_F(FetcherTest, ContainerCredentialsSendTheAuthorizationTokenFromItsFile) {
  aws_.set_container_credentials("Bearer pod-token", "ASIACONTAINER0000001", "container-secret",
                                 "container-session", "2099-01-01T00:00:00Z");
  HttpCredentialFetcher fetcher(http_, options());
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kContainer;
  plan.container_uri = aws_.url() + "/container-credentials";
  plan.container_auth_token_file = temp_file("Bearer pod-token\n");
  auto creds = fetcher.fetch_container(plan);
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_EQ(creds->access_key_id, "ASIACONTAINER0000001");
  plan.container_auth_token_file.clear();
  plan.container_auth_token = "Bearer wrong";
  auto refused = fetcher.fetch_container(plan);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("HTTP 403"));
  EXPECT_THAT(refused.error().message, Not(HasSubstr("Bearer wrong")));
}

TEST_F(FetcherTest, ImdsV2UsesATokenAndRenewsItOn401) {
  aws_.set_imds_role("ep-role", "ASIAIMDS000000000001", "imds-secret", "imds-session",
                     "2099-01-01T00:00:00Z");
  HttpCredentialFetcher fetcher(http_, options());
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kImds;
  plan.imds_endpoint = aws_.url();
  auto creds = fetcher.fetch_imds(plan);
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_EQ(creds->access_key_id, "ASIAIMDS000000000001");
  EXPECT_EQ(creds->session_token, "imds-session");
  aws_.revoke_imds_tokens();
  auto again = fetcher.fetch_imds(plan);
  EXPECT_TRUE(again.ok()) << again.error().message;
  auto region = fetcher.imds_get(aws_.url(), "placement/region");
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(*region, "eu-west-1");
}

// Issue #14 point 4: IMDS and container-credential requests never go through http_proxy (a proxy
// received the IMDSv2 token request and its fake token was accepted).
TEST_F(FetcherTest, CredentialEndpointsAreNeverProxied) {
  test::LoopbackHttpServer proxy([](const test::HttpServerRequest&) {
    test::HttpServerReply r;
    r.body = "fake-token-from-the-proxy";
    return r;
  });
  proxy.start();
  aws_.set_imds_role("ep-role", "ASIAIMDS000000000001", "imds-secret", "imds-session",
                     "2099-01-01T00:00:00Z");
  aws_.set_container_credentials("Bearer pod-token", "ASIACONTAINER0000001", "container-secret",
                                 "container-session", "2099-01-01T00:00:00Z");
  ::setenv("http_proxy", proxy.base_url().c_str(), 1);
  ::setenv("HTTP_PROXY", proxy.base_url().c_str(), 1);
  // The proxy is really in effect for ordinary requests (so this test can fail).
  net::HttpRequest plain;
  plain.url = aws_.url() + "/";
  auto via_proxy = http_.perform(plain);
  const auto proxied = proxy.connections_accepted();

  HttpCredentialFetcher fetcher(http_, options());
  CredentialPlan imds;
  imds.kind = CredentialSourceKind::kImds;
  imds.imds_endpoint = aws_.url();
  auto creds = fetcher.fetch_imds(imds);
  CredentialPlan container;
  container.kind = CredentialSourceKind::kContainer;
  container.container_uri = aws_.url() + "/container-credentials";
  container.container_auth_token = "Bearer pod-token";
  auto ccreds = fetcher.fetch_container(container);
  ::unsetenv("http_proxy");
  ::unsetenv("HTTP_PROXY");

  ASSERT_TRUE(via_proxy.ok()) << via_proxy.error().message;
  EXPECT_EQ(via_proxy->body, "fake-token-from-the-proxy");
  EXPECT_GE(proxied, 1u);
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_EQ(creds->access_key_id, "ASIAIMDS000000000001");
  ASSERT_TRUE(ccreds.ok()) << ccreds.error().message;
  EXPECT_EQ(ccreds->access_key_id, "ASIACONTAINER0000001");
  EXPECT_EQ(proxy.connections_accepted(), proxied) << "a credential request went to the proxy";
}

TEST_F(FetcherTest, ImdsWithoutARoleIsAnError) {
  HttpCredentialFetcher fetcher(http_, options());
  CredentialPlan plan;
  plan.imds_endpoint = aws_.url();
  auto creds = fetcher.fetch_imds(plan);
  ASSERT_FALSE(creds.ok());
  EXPECT_THAT(creds.error().message, HasSubstr("IMDS iam/security-credentials/: HTTP 404"));
}

TEST_F(FetcherTest, CredentialProcessRunsWithoutAShellAndTimesOut) {
  const std::string script = temp_file(
      "#!/bin/sh\n"
      "if [ \"$1\" = \"sleep\" ]; then exec sleep 10; fi\n"
      "if [ \"$1\" = \"fail\" ]; then echo oops >&2; exit 3; fi\n"
      "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS000000001\", "
      "\"SecretAccessKey\": \"proc-secret\", \"SessionToken\": \"proc-token\", "
      "\"Expiration\": \"2099-01-01T00:00:00Z\"}'\n",
      0700);
  auto o = options();
  o.process_timeout = 300ms;
  HttpCredentialFetcher fetcher(http_, o);
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kProcess;
  plan.credential_process = script + " 'arg with space'";
  auto creds = fetcher.run_credential_process(plan);
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_EQ(creds->access_key_id, "AKIDPROCESS000000001");

  plan.credential_process = script + " sleep";
  const auto start = std::chrono::steady_clock::now();
  auto slow = fetcher.run_credential_process(plan);
  ASSERT_FALSE(slow.ok());
  EXPECT_THAT(slow.error().message, HasSubstr("timed out"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

  plan.credential_process = script + " fail";
  auto failed = fetcher.run_credential_process(plan);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.error().message, HasSubstr("exit status 3"));

  plan.credential_process = "/nonexistent/helper --x";
  auto missing = fetcher.run_credential_process(plan);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("/nonexistent/helper"));
}

// On the loop (what the sources use): credential_process's child is awaited on loop timers, so
// the loop keeps running while it works; a slow one is killed at process_timeout, and a chain
// destroyed while waiting (a source stopping) kills and reaps its child.
TEST_F(FetcherTest, AsyncCredentialProcessLeavesTheLoopRunning) {
  const std::string script = temp_file(
      "#!/bin/sh\n"
      "if [ \"$1\" = \"sleep\" ]; then exec sleep 10; fi\n"
      "sleep 0.5\n"
      "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS000000002\", "
      "\"SecretAccessKey\": \"proc-secret\", \"SessionToken\": \"proc-token\", "
      "\"Expiration\": \"2099-01-01T00:00:00Z\"}'\n",
      0700);
  runtime::Runtime rt({.threads = 0});
  auto http = std::make_unique<net::AsyncHttpClient>(rt.loop(0));
  auto o = options();
  o.process_timeout = 3s;
  AsyncHttpCredentialFetcher fetcher(rt.loop(0), *http, o);
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kProcess;
  plan.credential_process = script;
  std::optional<Result<Credentials>> creds;
  std::chrono::steady_clock::time_point ticked{}, answered{};
  auto run = [&]() -> runtime::Co<void> {
    creds.emplace(co_await fetcher.run_credential_process(plan));
    answered = std::chrono::steady_clock::now();
  };
  rt.loop(0).after(50ms, [&] { ticked = std::chrono::steady_clock::now(); });
  runtime::Spawned task = runtime::spawn(run());
  rt.run_until([&] { return creds.has_value(); }, 10s);
  ASSERT_TRUE(creds.has_value());
  ASSERT_TRUE(creds->ok()) << creds->error().message;
  EXPECT_EQ((*creds)->access_key_id, "AKIDPROCESS000000002");
  ASSERT_NE(ticked, std::chrono::steady_clock::time_point{}) << "the loop never ran its timer";
  EXPECT_LT(ticked + 200ms, answered) << "the timer ran only after the process (loop blocked)";

  // Too slow: killed at the timeout, an error naming it.
  o.process_timeout = 300ms;
  AsyncHttpCredentialFetcher quick(rt.loop(0), *http, o);
  plan.credential_process = script + " sleep";
  creds.reset();
  auto slow = [&]() -> runtime::Co<void> {
    creds.emplace(co_await quick.run_credential_process(plan));
  };
  const auto start = std::chrono::steady_clock::now();
  task = runtime::spawn(slow());
  rt.run_until([&] { return creds.has_value(); }, 10s);
  ASSERT_TRUE(creds.has_value());
  ASSERT_FALSE(creds->ok());
  EXPECT_THAT(creds->error().message, HasSubstr("timed out after 300 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

  // Destroyed while waiting: the child is killed and reaped (no child of ours is left).
  creds.reset();
  task = runtime::spawn(slow());
  rt.run_until([] { return false; }, 100ms);
  task.reset();
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child left behind";
  EXPECT_EQ(errno, ECHILD);
  http.reset();
}

TEST(SplitCommandLine, FollowsShellWordRulesWithoutExpansion) {
  auto w = split_command_line(R"(/bin/tool --a "b c" 'd $HOME' e\ f "g\"h")");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, (std::vector<std::string>{"/bin/tool", "--a", "b c", "d $HOME", "e f", "g\"h"}));
  EXPECT_FALSE(split_command_line("tool 'open").ok());
  EXPECT_FALSE(split_command_line("   ").ok());
}

TEST_F(FetcherTest, ChainAssumeRoleOverAStaticSourceProfileThroughTheCache) {
  ChainInputs in;
  in.config_file =
      "[profile app]\nrole_arn = arn:aws:iam::111122223333:role/app\nsource_profile = base\n"
      "region = eu-west-1\n";
  in.credentials_file =
      fmt::format("[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n", kKeyId, kSecret);
  in.profile = "app";
  auto plan = plan_credentials(in);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  net::CurlHttpClient sts_http;
  HttpCredentialFetcher fetcher(sts_http, options());
  CachingCredentialProvider provider(*plan, fetcher);
  AwsClient client(http_, provider, "eu-west-1", {}, recording_env());
  for (int i = 0; i < 3; ++i) {
    auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                  *describe_auto_scaling_groups_params({}, ""));
    ASSERT_TRUE(body.ok()) << body.error().message;
  }
  EXPECT_EQ(aws_.calls("AssumeRole"), 1) << "credentials are cached until near expiry";
  // ExpiredToken → the cache refreshes (a second AssumeRole) and the call succeeds.
  aws_.inject(test::Fault::kExpiredToken, 1, "DescribeAutoScalingGroups");
  auto body = client.call_query(AwsService::kAutoScaling, endpoint_, "DescribeAutoScalingGroups",
                                *describe_auto_scaling_groups_params({}, ""));
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(aws_.calls("AssumeRole"), 2);
}

// ---- pure helpers ----

TEST(Backoff, IsCappedExponentialWithFullJitter) {
  RetryPolicy p;
  EXPECT_EQ(backoff_delay(p, ErrorClass::kThrottling, 1, 0.0), 0ms);
  EXPECT_EQ(backoff_delay(p, ErrorClass::kThrottling, 1, 0.999), 999ms);
  EXPECT_EQ(backoff_delay(p, ErrorClass::kThrottling, 3, 0.5), 2000ms);
  EXPECT_EQ(backoff_delay(p, ErrorClass::kTransient, 2, 1.0), 100ms);
  EXPECT_EQ(backoff_delay(p, ErrorClass::kThrottling, 10, 1.0), 20000ms) << "capped";
  EXPECT_EQ(backoff_delay(p, ErrorClass::kThrottling, 1000, 1.0), 20000ms) << "no overflow";
}

TEST(HttpDate, ParsesImfFixdateAndRejectsOtherForms) {
  auto t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 784111777);
  EXPECT_FALSE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").ok());
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST").ok());
  EXPECT_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT").ok());
  EXPECT_FALSE(parse_http_date("").ok());
}

// The double read by botocore (signs with SigV4, parses with the real EC2 / Auto Scaling service
// models): DescribeInstances filters, pagination and errors as the SDKs see them.
TEST(AwsDoubleBotocore, DescribeInstancesFiltersAndPagesParseWithTheServiceModel) {
  const std::string script = std::string(EP_TESTDATA_DIR) + "/../support/aws/botocore_check.py";
  auto probe = os::run_process({"python3", "-c", "import botocore"});
  if (!probe || !probe->succeeded()) GTEST_SKIP() << "python3 with botocore not installed";
  test::AwsDouble aws;
  aws.add_key(kKeyId, kSecret);
  aws.start();
  aws.add_group("web-asg");
  for (int i = 0; i < 9; ++i) {
    test::DoubleInstance d;
    d.id = fmt::format("i-bc{:015x}", i);
    d.private_ip = fmt::format("10.3.0.{}", i + 1);
    if (i == 0) d.public_ip = "203.0.113.9";
    d.tags = {{"Service", i == 8 ? "db" : (i == 7 ? "www" : "web")}};
    if (i == 6) d.state_code = 80;  // stopped
    aws.put_instance(d);
  }
  os::ProcessOptions po;
  po.timeout = 60s;
  po.merge_stderr = false;
  auto run = os::run_process({"python3", script, aws.url(), kKeyId, kSecret}, po);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->succeeded()) << run->output << "\n" << run->error_output;
  auto out = nlohmann::json::parse(run->output);
  std::vector<std::string> want;
  for (int i : {0, 1, 2, 3, 4, 5, 7}) want.push_back(fmt::format("i-bc{:015x}", i));
  EXPECT_EQ(out["filtered_ids"].get<std::vector<std::string>>(), want);
  EXPECT_EQ(out["pages"], 2) << "7 instances, MaxResults 5";
  EXPECT_EQ(out["addresses"]["i-bc000000000000000"]["private"], "10.3.0.1");
  EXPECT_EQ(out["addresses"]["i-bc000000000000000"]["public"], "203.0.113.9");
  EXPECT_EQ(out["addresses"]["i-bc000000000000000"]["state"], "running");
  EXPECT_EQ(out["addresses"]["i-bc000000000000000"]["tags"]["Service"], "web");
  EXPECT_EQ(out["unknown_filter"], "InvalidParameterValue");
  EXPECT_EQ(out["ids_with_max_results"], "InvalidParameterCombination");
  EXPECT_EQ(out["groups"], nlohmann::json::array({"web-asg"}));
  EXPECT_EQ(aws.signature_failures(), 0);
}

}  // namespace
}  // namespace ep::aws
