// No secret reaches the logs (text or JSON) or /status: registered values and secret-looking
// patterns are masked.

#include "ops/redact.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/config_node.h"
#include "core/log.h"
#include "ops/endpoints.h"
#include "ops/logging.h"

namespace ep::ops {
namespace {

// Realistic secrets of every kind the issue names.
const char* kAwsKeyId = "AKIAIOSFODNN7EXAMPLE";
const char* kAwsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const char* kSessionToken = "FwoGZXIvYXdzEBYaDHqa0AP1cB4bSXAMPLEsessionTOKENxyz";
const char* kConsulToken = "b1gs33cr3t-c0ns-ul70-k3n0-000000000001";
const char* kEtcdPassword = "etcd-Pa55word!";

std::vector<std::string> all_secrets() {
  return {kAwsKeyId, kAwsSecret, kSessionToken, kConsulToken, kEtcdPassword};
}

void expect_clean(const std::string& text) {
  for (const auto& s : all_secrets()) {
    EXPECT_EQ(text.find(s), std::string::npos) << "secret '" << s << "' printed in:\n" << text;
  }
}

class Redaction : public ::testing::Test {
 protected:
  void SetUp() override { clear_secrets(); }
  void TearDown() override {
    clear_secrets();
    log::set_sink(nullptr);
  }
};

TEST_F(Redaction, PatternsWithoutRegistration) {
  EXPECT_EQ(redact("key AKIAIOSFODNN7EXAMPLE used"), "key *** used");
  EXPECT_EQ(redact("GET /v1/health?token=abc123&x=1"), "GET /v1/health?token=***&x=1");
  EXPECT_EQ(redact("X-Consul-Token: abcd-efgh"), "X-Consul-Token: ***");
  EXPECT_EQ(redact("Authorization: Bearer eyJhbGciOi"), "Authorization: Bearer ***");
  EXPECT_EQ(redact(R"({"password": "hunter22", "user": "bob"})"),
            R"({"password": "***", "user": "bob"})");
  EXPECT_EQ(redact("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG"), "aws_secret_access_key=***");
  EXPECT_EQ(redact("http://root:s3cret@127.0.0.1:2379/v3"), "http://root:***@127.0.0.1:2379/v3");
  // Issue #14 point 5: a password with , ; ) " in it was cut at that character.
  EXPECT_EQ(redact("etcd http://root:s3cr,et;x)y\"z@127.0.0.1:2379, next"),
            "etcd http://root:***@127.0.0.1:2379, next");
  // Ordinary text is left alone.
  EXPECT_EQ(redact("backend web: 3 servers, token bucket full"),
            "backend web: 3 servers, token bucket full");
  EXPECT_EQ(redact("elasticproxy_reconcile_passes_total 3"),
            "elasticproxy_reconcile_passes_total 3");
}

TEST_F(Redaction, RegisteredSecretsAnywhere) {
  register_secret(kConsulToken);
  register_secret("abc");  // too short to be masked everywhere
  EXPECT_EQ(redact(std::string("consul said 403 for ") + kConsulToken + "!"),
            "consul said 403 for ***!");
  EXPECT_EQ(redact("abc"), "abc");
}

TEST_F(Redaction, SecretsFromTheConfigTreeAreRegistered) {
  ConfigNode consul = ConfigNode::make_map();
  consul.add("address", ConfigNode::make_scalar("127.0.0.1:8500"));
  consul.add("token", ConfigNode::make_scalar(kConsulToken));
  ConfigNode aws = ConfigNode::make_map();
  aws.add("session_token", ConfigNode::make_scalar(kSessionToken));
  aws.add("secret_access_key", ConfigNode::make_scalar(kAwsSecret));
  ConfigNode list = ConfigNode::make_sequence();
  list.items.push_back(aws);
  consul.add("nested", list);
  register_secrets_in(consul);
  EXPECT_EQ(redact(std::string("x ") + kSessionToken + " " + kAwsSecret + " " + kConsulToken),
            "x *** *** ***");
  EXPECT_EQ(redact("127.0.0.1:8500"), "127.0.0.1:8500");
}

// What the daemon prints: every log line through the installed sink, both formats.
TEST_F(Redaction, NoSecretInLogLinesTextOrJson) {
  register_secret(kConsulToken);
  register_secret(kEtcdPassword);
  for (const char* format : {"text", "json"}) {
    ASSERT_TRUE(install_log_format(format));
    testing::internal::CaptureStderr();
    log::error("consul", "GET http://127.0.0.1:8500/v1/catalog?token={} failed", kConsulToken);
    log::warn("etcd", "auth failed for user root with password {}", kEtcdPassword);
    log::info("aws", "credentials: access key {} secret_access_key={} session_token={}", kAwsKeyId,
              kAwsSecret, kSessionToken);
    log::info("aws", "{{\"AccessKeyId\": \"{}\", \"SecretAccessKey\": \"{}\", \"Token\": \"{}\"}}",
              kAwsKeyId, kAwsSecret, kSessionToken);
    log::error("etcd", "dial http://root:{}@127.0.0.1:2379: refused", kEtcdPassword);
    std::string out = testing::internal::GetCapturedStderr();
    expect_clean(out);
    EXPECT_NE(out.find("***"), std::string::npos);
    if (std::string(format) == "json") {
      // Every line is exactly one JSON object.
      size_t lines = 0;
      size_t pos = 0;
      while (pos < out.size()) {
        size_t nl = out.find('\n', pos);
        ASSERT_NE(nl, std::string::npos);
        auto j = nlohmann::json::parse(out.substr(pos, nl - pos), nullptr, false);
        EXPECT_TRUE(j.is_object()) << out.substr(pos, nl - pos);
        pos = nl + 1;
        ++lines;
      }
      EXPECT_EQ(lines, 5u);
    }
  }
}

TEST_F(Redaction, JsonLinesStayOneLineWhateverTheMessage) {
  std::string line = json_log_line("error", "x", "a\nb\r\n{\"c\": 1}\x01\xff", "t");
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_TRUE(nlohmann::json::parse(line, nullptr, false).is_object());
  std::string text =
      log::text_line("error", "x", "first\n2026-01-01T00:00:00Z error forged: y", "t");
  EXPECT_NE(text.find("\n    2026-01-01"), std::string::npos) << text;
}

// Issue #14 point 10: terminal escape sequences and other control characters from discovery data
// never reach a terminal or a log viewer as such.
TEST_F(Redaction, TextLinesEscapeControlCharacters) {
  std::string text =
      log::text_line("warn", "consul\x1b[31m", "tag \x1b]0;owned\x07 a\tb\x7f\r", "t");
  EXPECT_EQ(text, "t warn  consul\\x1b[31m: tag \\x1b]0;owned\\x07 a\tb\\x7f\n");
}

TEST_F(Redaction, NoSecretInStatus) {
  register_secret(kConsulToken);
  OpsSnapshot snap;
  snap.now = SteadyTime{} + std::chrono::seconds(100);
  snap.last_loop = snap.now;
  reconcile::InstanceStatus inst;
  inst.name = "/run/haproxy/admin.sock";
  inst.reachable = false;
  inst.last_error = std::string("connect failed, password=") + kEtcdPassword;
  snap.instances.push_back(inst);
  discovery::GuardStatus g;
  g.backend = "web";
  discovery::SourceStatus s;
  s.source = std::string("consul http://127.0.0.1:8500?token=") + kConsulToken;
  s.last_error = std::string("403 ACL not found for token ") + kConsulToken + " key " + kAwsKeyId;
  g.sources.push_back(s);
  snap.guards.push_back(g);
  const std::string doc = status_json(snap, {});
  expect_clean(doc);
  EXPECT_TRUE(nlohmann::json::parse(doc, nullptr, false).is_object());
  auto ready = check_ready(snap);
  expect_clean(ready.reason);
}

}  // namespace
}  // namespace ep::ops
