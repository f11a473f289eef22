#include "discovery/aws/credentials.h"

#include <gtest/gtest.h>

#include <sstream>

#include "core/secrets.h"
#include "unit/aws/testdata.h"

namespace ep::aws {
namespace {

using std::chrono::seconds;
using testing::testdata;

SystemTime at(const char* iso) { return parse_iso8601(iso).value(); }

// ---- value type and redaction ----

TEST(Credentials, RedactedFormNeverShowsSecretOrToken) {
  Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "IQoJb3JpZ2luX2VjTOKEN", at("2026-03-02T11:15:30Z"), "environment"};
  for (const std::string& text :
       {redacted(c), fmt::format("{}", c), (std::ostringstream() << c).str()}) {
    EXPECT_EQ(text.find("wJalr"), std::string::npos) << text;
    EXPECT_EQ(text.find("IQoJ"), std::string::npos) << text;
    EXPECT_EQ(text.find("AKIAIOSFODNN7"), std::string::npos) << text;
    EXPECT_NE(text.find("MPLE"), std::string::npos) << text;
    EXPECT_NE(text.find("2026-03-02T11:15:30Z"), std::string::npos) << text;
  }
  EXPECT_EQ(redacted(c),
            "Credentials{key_id=…MPLE, secret=<redacted>, token=<redacted>, "
            "expires=2026-03-02T11:15:30Z, source=environment}");
  Credentials shortid{"AKIA", "s", "", std::nullopt, ""};
  EXPECT_EQ(redacted(shortid).find("AKIA"), std::string::npos);  // too short: nothing shown
  EXPECT_NE(redacted(shortid).find("token=<none>"), std::string::npos);
}

TEST(Credentials, ExpiresWithin) {
  Credentials c;
  EXPECT_FALSE(c.expires_within(at("2030-01-01T00:00:00Z"), seconds(300)));  // no expiry
  c.expiration = at("2026-03-02T11:00:00Z");
  EXPECT_FALSE(c.expires_within(at("2026-03-02T10:54:59Z"), seconds(300)));
  EXPECT_TRUE(c.expires_within(at("2026-03-02T10:55:00Z"), seconds(300)));
}

// ---- environment ----

TEST(CredentialsEnv, KeysTokenAndExpiration) {
  auto c = credentials_from_env({{"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                 {"AWS_SECRET_ACCESS_KEY", "secret"},
                                 {"AWS_SESSION_TOKEN", "tok"},
                                 {"AWS_CREDENTIAL_EXPIRATION", "2026-03-02T11:00:00Z"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->access_key_id, "AKIAENV");
  EXPECT_EQ((*c)->session_token, "tok");
  EXPECT_EQ((*c)->expiration, at("2026-03-02T11:00:00Z"));
  EXPECT_TRUE((*c)->temporary());
}

TEST(CredentialsEnv, AbsentAndHalfSet) {
  auto none = credentials_from_env({{"AWS_REGION", "eu-west-1"}});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto half = credentials_from_env({{"AWS_ACCESS_KEY_ID", "AKIA"}});
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  auto bad_exp = credentials_from_env({{"AWS_ACCESS_KEY_ID", "A"},
                                       {"AWS_SECRET_ACCESS_KEY", "s"},
                                       {"AWS_CREDENTIAL_EXPIRATION", "tomorrow"}});
  ASSERT_FALSE(bad_exp.ok());
  EXPECT_NE(bad_exp.error().message.find("AWS_CREDENTIAL_EXPIRATION"), std::string::npos);
}

// ---- JSON / XML documents ----

TEST(CredentialsParse, CredentialProcess) {
  auto c = parse_credential_process_output(testdata("credential_process.json"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "ASIAPROCESSEXAMPLE01");
  EXPECT_EQ(c->session_token, "FwoGZXIvYXdzEProcessTokenEXAMPLE");
  EXPECT_EQ(c->expiration, at("2026-03-02T11:45:00Z"));

  auto v2 =
      parse_credential_process_output(R"({"Version":2,"AccessKeyId":"A","SecretAccessKey":"S"})");
  ASSERT_FALSE(v2.ok());
  EXPECT_NE(v2.error().message.find("Version"), std::string::npos);
  auto long_term =
      parse_credential_process_output(R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"S"})");
  ASSERT_TRUE(long_term.ok());
  EXPECT_FALSE(long_term->expiration.has_value());
  EXPECT_FALSE(parse_credential_process_output("Version=1").ok());
  EXPECT_FALSE(parse_credential_process_output(R"({"Version":1,"AccessKeyId":"A"})").ok());
}

TEST(CredentialsParse, StsAssumeRole) {
  auto c = parse_sts_assume_role_response(testdata("sts_assume_role.xml"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "ASIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(c->secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
  EXPECT_EQ(c->session_token.substr(0, 12), "IQoJb3JpZ2lu");
  EXPECT_EQ(c->expiration, at("2026-03-02T11:15:30Z"));
}

TEST(CredentialsParse, StsAssumeRoleWithWebIdentity) {
  auto c = parse_sts_assume_role_with_web_identity_response(
      testdata("sts_assume_role_with_web_identity.xml"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(c->expiration, at("2026-03-02T12:00:04Z"));
  // The two operations are not interchangeable.
  EXPECT_FALSE(
      parse_sts_assume_role_response(testdata("sts_assume_role_with_web_identity.xml")).ok());
}

TEST(CredentialsParse, StsErrors) {
  auto idp = parse_sts_assume_role_with_web_identity_response(
      testdata("sts_error_invalid_identity_token.xml"));
  ASSERT_FALSE(idp.ok());
  EXPECT_EQ(idp.error().kind, ErrorKind::kUnavailable);  // retried, aws.md §3.3
  EXPECT_NE(idp.error().message.find("InvalidIdentityToken"), std::string::npos);

  auto denied = parse_sts_assume_role_response(testdata("sts_error_access_denied.xml"));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().kind, ErrorKind::kRefused);
  EXPECT_NE(denied.error().message.find("AccessDenied"), std::string::npos);

  auto missing_exp = parse_sts_assume_role_response(
      "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
      "<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken></Credentials>"
      "</AssumeRoleResult></AssumeRoleResponse>");
  ASSERT_FALSE(missing_exp.ok());
  EXPECT_NE(missing_exp.error().message.find("Expiration"), std::string::npos);
  EXPECT_FALSE(parse_sts_assume_role_response("<AssumeRoleResponse><Assume").ok());
}

TEST(CredentialsParse, ContainerAndImds) {
  auto c = parse_container_credentials(testdata("container_credentials.json"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "ASIACONTAINEREXAMPLE");
  EXPECT_EQ(c->session_token, "IQoJb3JpZ2luX2VjContainerTokenEXAMPLE==");
  EXPECT_EQ(c->expiration, at("2026-03-02T16:12:43Z"));

  auto i = parse_imds_credentials(testdata("imds_credentials.json"));
  ASSERT_TRUE(i.ok()) << i.error().message;
  EXPECT_EQ(i->access_key_id, "ASIAIMDSEXAMPLE00001");
  EXPECT_EQ(i->expiration, at("2026-03-02T16:30:47Z"));

  auto e = parse_imds_credentials(testdata("imds_credentials_error.json"));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("AssumeRoleUnauthorizedAccess"), std::string::npos);

  auto role = parse_imds_role_name(testdata("imds_role_list.txt"));
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, "elasticproxy-instance");
  EXPECT_FALSE(parse_imds_role_name("\n\n").ok());
  EXPECT_FALSE(parse_imds_role_name("../../etc").ok());
}

TEST(CredentialsParse, ContainerFullUriRules) {
  for (const char* ok :
       {"https://creds.example.com/v1", "http://127.0.0.1:8080/creds", "http://127.1.2.3/x",
        "http://[::1]:9000/c", "http://169.254.170.2/v2/c", "http://169.254.170.23/v1/credentials",
        "http://[fd00:ec2::23]/v1/credentials"}) {
    EXPECT_TRUE(validate_container_full_uri(ok).ok()) << ok;
  }
  for (const char* bad : {"http://10.0.0.1/creds", "http://example.com/creds",
                          "http://169.254.169.254/latest", "ftp://127.0.0.1/", "127.0.0.1/creds",
                          "http://user@127.0.0.1/", "http://[fd00:ec2::254]/"}) {
    EXPECT_FALSE(validate_container_full_uri(bad).ok()) << bad;
  }
}

// ---- the chain ----

ChainInputs files_only(EnvMap env = {}, std::string profile = "") {
  ChainInputs in;
  in.env = std::move(env);
  in.config_file = testdata("aws_config");
  in.credentials_file = testdata("aws_credentials");
  in.config_file_name = "aws_config";
  in.credentials_file_name = "aws_credentials";
  in.profile = std::move(profile);
  return in;
}

TEST(CredentialChain, EnvironmentComesFirst) {
  auto plan = plan_credentials(files_only(
      {{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "s"}, {"AWS_PROFILE", "prod"}}));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->kind, CredentialSourceKind::kStatic);
  EXPECT_EQ(plan->description, "environment");
  EXPECT_EQ(plan->static_credentials->access_key_id, "AKIAENV");
}

TEST(CredentialChain, DefaultProfileMergesConfigAndCredentials) {
  auto plan = plan_credentials(files_only());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->kind, CredentialSourceKind::kStatic);
  EXPECT_EQ(plan->static_credentials->access_key_id, "AKIADEFAULTEXAMPLE01");
}

TEST(CredentialChain, AssumeRoleViaSourceProfile) {
  auto plan = plan_credentials(files_only({{"AWS_PROFILE", "prod"}}));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->kind, CredentialSourceKind::kAssumeRole);
  EXPECT_EQ(plan->role_arn, "arn:aws:iam::111122223333:role/elasticproxy-read");
  EXPECT_EQ(plan->role_session_name, "ep-prod");
  EXPECT_EQ(plan->external_id, "3f9c");
  EXPECT_EQ(plan->duration_seconds, 3600);
  EXPECT_EQ(plan->sts_region, "eu-west-1");
  ASSERT_TRUE(plan->source);
  EXPECT_EQ(plan->source->kind, CredentialSourceKind::kStatic);
  EXPECT_EQ(plan->source->static_credentials->access_key_id, "AKIABASEEXAMPLE00002");
}

TEST(CredentialChain, ConfiguredProfileBeatsAwsProfile) {
  auto plan = plan_credentials(files_only({{"AWS_PROFILE", "prod"}}, "tool"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->kind, CredentialSourceKind::kProcess);
  EXPECT_EQ(plan->credential_process, "/usr/local/bin/get-creds --profile \"tool\"");
}

TEST(CredentialChain, ChainedRolesAndCredentialSource) {
  auto chained = plan_credentials(files_only({}, "chained"));
  ASSERT_TRUE(chained.ok()) << chained.error().message;
  EXPECT_EQ(chained->kind, CredentialSourceKind::kAssumeRole);
  ASSERT_TRUE(chained->source);
  EXPECT_EQ(chained->source->kind, CredentialSourceKind::kAssumeRole);
  EXPECT_EQ(chained->source->source->kind, CredentialSourceKind::kStatic);

  auto ec2 = plan_credentials(files_only({}, "on-ec2"));
  ASSERT_TRUE(ec2.ok()) << ec2.error().message;
  ASSERT_TRUE(ec2->source);
  EXPECT_EQ(ec2->source->kind, CredentialSourceKind::kImds);
  EXPECT_EQ(ec2->source->imds_endpoint, "http://169.254.169.254");
}

TEST(CredentialChain, WebIdentityFromProfileAndEnvironment) {
  auto p = plan_credentials(files_only({}, "irsa"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->kind, CredentialSourceKind::kWebIdentity);
  EXPECT_EQ(p->web_identity_token_file, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");

  ChainInputs in;  // no files at all
  in.env = {{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"},
            {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
            {"AWS_REGION", "eu-west-3"}};
  auto e = plan_credentials(in);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->kind, CredentialSourceKind::kWebIdentity);
  EXPECT_EQ(e->role_session_name, "elasticproxy");
  EXPECT_EQ(e->sts_region, "eu-west-3");

  in.env.erase("AWS_ROLE_ARN");
  auto half = plan_credentials(in);
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("AWS_ROLE_ARN"), std::string::npos);
}

TEST(CredentialChain, ContainerBeforeImds) {
  ChainInputs in;
  in.env = {{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"},
            {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic abc"}};
  auto p = plan_credentials(in);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->kind, CredentialSourceKind::kContainer);
  EXPECT_EQ(p->container_uri, "http://169.254.170.2/v2/credentials/abc");
  EXPECT_EQ(p->container_auth_token, "Basic abc");

  in.env = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"},
            {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/pod-identity/token"}};
  p = plan_credentials(in);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->container_auth_token_file, "/var/run/pod-identity/token");

  in.env = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example.com/creds"}};
  p = plan_credentials(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("AWS_CONTAINER_CREDENTIALS_FULL_URI"), std::string::npos);
}

TEST(CredentialChain, ImdsLastAndDisableable) {
  ChainInputs in;
  auto p = plan_credentials(in);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->kind, CredentialSourceKind::kImds);
  EXPECT_EQ(p->imds_endpoint, "http://169.254.169.254");

  in.env = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"}};
  p = plan_credentials(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->imds_endpoint, "http://[fd00:ec2::254]");

  in.env = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338/"}};
  p = plan_credentials(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->imds_endpoint, "http://127.0.0.1:1338");

  in.env = {{"AWS_EC2_METADATA_DISABLED", "TRUE"}};
  p = plan_credentials(in);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(p.error().message.find("no AWS credentials found"), std::string::npos);
}

TEST(CredentialChain, ProfileWithoutCredentialsFallsThrough) {
  // "regional-only" has only region/endpoint_url: the chain goes on (here: to IMDS).
  auto p = plan_credentials(files_only({}, "regional-only"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->kind, CredentialSourceKind::kImds);
}

TEST(CredentialChain, BrokenSetupsAreClearErrors) {
  struct Case {
    const char* profile;
    const char* expect;
  };
  for (Case c : {Case{"missing", "profile 'missing' not found in aws_config or aws_credentials"},
                 Case{"loop-a", "source_profile cycle: loop-a -> loop-b -> loop-a"},
                 Case{"broken", "no aws_secret_access_key"}, Case{"sso", "does not support"},
                 Case{"notaprofile", "not found"}}) {
    auto p = plan_credentials(files_only({}, c.profile));
    ASSERT_FALSE(p.ok()) << c.profile;
    EXPECT_EQ(p.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(p.error().message.find(c.expect), std::string::npos)
        << c.profile << ": " << p.error().message;
  }
  ChainInputs in;
  in.config_file = "region = x\n";
  in.config_file_name = "/home/u/.aws/config";
  auto p = plan_credentials(in);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, "/home/u/.aws/config:1: property before any [section]");
}

// ---- executing plans and refreshing ----

class FakeFetcher : public CredentialFetcher {
 public:
  Result<Credentials> assume_role(const CredentialPlan& plan, const Credentials& caller) override {
    calls.push_back("assume_role " + plan.role_arn + " as " + caller.access_key_id);
    return next("ASIAROLE");
  }
  Result<Credentials> assume_role_with_web_identity(const CredentialPlan& plan) override {
    calls.push_back("web_identity " + plan.role_arn);
    return next("ASIAWEB");
  }
  Result<Credentials> run_credential_process(const CredentialPlan& plan) override {
    calls.push_back("process " + plan.credential_process);
    return next("ASIAPROC");
  }
  Result<Credentials> fetch_container(const CredentialPlan& plan) override {
    calls.push_back("container " + plan.container_uri);
    return next("ASIACONT");
  }
  Result<Credentials> fetch_imds(const CredentialPlan& plan) override {
    calls.push_back("imds " + plan.imds_endpoint);
    return next("ASIAIMDS");
  }

  Result<Credentials> next(const std::string& id) {
    if (fail) return Error::unavailable("endpoint down");
    ++serial;
    return Credentials{id + std::to_string(serial), "secret", "token", expiration, ""};
  }

  std::vector<std::string> calls;
  bool fail = false;
  int serial = 0;
  std::optional<SystemTime> expiration;
};

TEST(CredentialExecute, AssumeRoleUsesSourceCredentials) {
  auto plan = plan_credentials(files_only({}, "chained"));
  ASSERT_TRUE(plan.ok());
  FakeFetcher f;
  auto c = execute_plan(*plan, f);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(f.calls.size(), 2u);
  EXPECT_EQ(f.calls[0],
            "assume_role arn:aws:iam::111122223333:role/elasticproxy-read as AKIABASEEXAMPLE00002");
  EXPECT_EQ(f.calls[1], "assume_role arn:aws:iam::444455556666:role/cross-account as ASIAROLE1");
  EXPECT_EQ(c->access_key_id, "ASIAROLE2");
  EXPECT_EQ(c->source, plan->description);
}

// Issue #14 point 5: credentials obtained at run time are registered for redaction the moment
// they are obtained, whatever their source.
TEST(CredentialExecute, ObtainedSecretsAreRegisteredForRedaction) {
  auto plan = plan_credentials(files_only({}, "chained"));
  ASSERT_TRUE(plan.ok());
  FakeFetcher f;
  auto c = execute_plan(*plan, f);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_FALSE(c->secret_access_key.empty());
  std::string line = "signing with " + c->secret_access_key + " and " + c->session_token;
  secrets::mask(line);
  EXPECT_EQ(line, c->session_token.empty() ? "signing with *** and " : "signing with *** and ***");
}

TEST(CredentialExecute, FailureNamesTheStep) {
  auto plan = plan_credentials(files_only({}, "on-ec2"));
  ASSERT_TRUE(plan.ok());
  FakeFetcher f;
  f.fail = true;
  auto c = execute_plan(*plan, f);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(c.error().message.find("on-ec2"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("instance metadata"), std::string::npos);
  EXPECT_NE(c.error().message.find("endpoint down"), std::string::npos);
}

TEST(CredentialCacheTest, RefreshesFiveMinutesBeforeExpiry) {
  ChainInputs in;
  auto plan = plan_credentials(in);  // IMDS
  ASSERT_TRUE(plan.ok());
  FakeFetcher f;
  f.expiration = at("2026-03-02T12:00:00Z");
  CredentialCache cache(*plan, f);

  auto a = cache.get(at("2026-03-02T11:00:00Z"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->access_key_id, "ASIAIMDS1");
  auto b = cache.get(at("2026-03-02T11:54:59Z"));  // 5 min 1 s left: cached
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->access_key_id, "ASIAIMDS1");
  EXPECT_EQ(f.calls.size(), 1u);

  f.expiration = at("2026-03-02T18:00:00Z");
  auto c = cache.get(at("2026-03-02T11:55:00Z"));  // within the margin: refreshed
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIAIMDS2");
  EXPECT_EQ(f.calls.size(), 2u);
}

TEST(CredentialCacheTest, FailedRefreshKeepsValidCredentialsThenFails) {
  ChainInputs in;
  auto plan = plan_credentials(in);
  ASSERT_TRUE(plan.ok());
  FakeFetcher f;
  f.expiration = at("2026-03-02T12:00:00Z");
  CredentialCache cache(*plan, f);
  ASSERT_TRUE(cache.get(at("2026-03-02T11:00:00Z")).ok());

  f.fail = true;
  auto kept = cache.get(at("2026-03-02T11:56:00Z"));
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->access_key_id, "ASIAIMDS1");
  ASSERT_TRUE(cache.last_error().has_value());
  EXPECT_NE(cache.last_error()->message.find("endpoint down"), std::string::npos);
  EXPECT_EQ(f.calls.size(), 2u);

  // No new attempt within 30 s of the failure, one after.
  ASSERT_TRUE(cache.get(at("2026-03-02T11:56:20Z")).ok());
  EXPECT_EQ(f.calls.size(), 2u);
  ASSERT_TRUE(cache.get(at("2026-03-02T11:56:31Z")).ok());
  EXPECT_EQ(f.calls.size(), 3u);

  auto expired = cache.get(at("2026-03-02T12:00:00Z"));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().kind, ErrorKind::kUnavailable);

  f.fail = false;
  auto back = cache.get(at("2026-03-02T12:00:01Z"));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(cache.last_error().has_value());
}

TEST(CredentialCacheTest, InvalidateForcesFetchAndStaticNeverRefreshes) {
  auto plan = plan_credentials(files_only());
  ASSERT_TRUE(plan.ok());
  FakeFetcher f;
  CredentialCache cache(*plan, f);
  auto a = cache.get(at("2026-03-02T11:00:00Z"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->access_key_id, "AKIADEFAULTEXAMPLE01");
  cache.invalidate();
  ASSERT_TRUE(cache.get(at("2030-01-01T00:00:00Z")).ok());
  EXPECT_TRUE(f.calls.empty());  // static keys need no fetcher
}

// ---- ISO 8601 ----

TEST(Iso8601, FormsAwsUses) {
  EXPECT_EQ(format_iso8601(at("2026-03-02T10:15:30Z")), "2026-03-02T10:15:30Z");
  EXPECT_EQ(at("2026-03-02T10:15:30.123Z"), at("2026-03-02T10:15:30Z"));
  EXPECT_EQ(at("2026-03-02T12:15:30+02:00"), at("2026-03-02T10:15:30Z"));
  EXPECT_EQ(at("2026-03-02T05:15:30-0500"), at("2026-03-02T10:15:30Z"));
  EXPECT_EQ(std::chrono::system_clock::to_time_t(at("2015-08-30T12:36:00Z")), 1440938160);
  EXPECT_EQ(format_iso8601(at("2024-02-29T00:00:00Z")), "2024-02-29T00:00:00Z");
  for (const char* bad :
       {"", "2026-03-02", "2026-03-02T10:15:30", "2026-13-02T10:15:30Z", "2026-02-30T10:15:30Z",
        "2025-02-29T00:00:00Z", "2026-03-02T24:00:00Z", "2026-03-02T10:15:30Zjunk",
        "2026-03-02T10:15:30.Z", "2026-03-02 10:15:30Z"}) {
    auto r = parse_iso8601(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

}  // namespace
}  // namespace ep::aws
