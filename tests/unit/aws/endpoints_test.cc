#include "discovery/aws/endpoints.h"

#include <gtest/gtest.h>

#include "unit/aws/testdata.h"

namespace ep::aws {
namespace {

using testing::testdata;

ProfileFile config_file() {
  auto f = parse_profile_file(testdata("aws_config"), ProfileFileKind::kConfig, "aws_config");
  EXPECT_TRUE(f.ok());
  return f.ok() ? *f : ProfileFile{};
}

TEST(Region, Precedence) {
  const ProfileFile f = config_file();
  const Profile* prod = &f.profiles.at("prod");  // region = eu-west-1
  const EnvMap env = {{"AWS_REGION", "us-west-2"}, {"AWS_DEFAULT_REGION", "us-east-2"}};

  auto r = resolve_region("ap-south-1", env, prod, "ca-central-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->region, "ap-south-1");
  EXPECT_EQ(r->source, "configuration");

  r = resolve_region("", env, prod, "ca-central-1");
  EXPECT_EQ(r->region, "us-west-2");
  EXPECT_EQ(r->source, "AWS_REGION");

  r = resolve_region("", {{"AWS_DEFAULT_REGION", "us-east-2"}}, prod);
  EXPECT_EQ(r->region, "us-east-2");

  r = resolve_region("", {}, prod, "ca-central-1");
  EXPECT_EQ(r->region, "eu-west-1");
  EXPECT_EQ(r->source, "profile 'prod'");

  r = resolve_region("", {}, nullptr, "ca-central-1");
  EXPECT_EQ(r->region, "ca-central-1");
  EXPECT_EQ(r->source, "instance metadata");

  auto none = resolve_region("", {}, nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no AWS region"), std::string::npos);
}

TEST(Region, RejectsNamesThatWouldChangeTheHost) {
  for (const char* bad : {"eu-west-1.evil.com", "EU-WEST-1", "eu west", "-x", "a/b", "x@y"}) {
    auto r = resolve_region(bad, {}, nullptr);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(Endpoint, DefaultsPerServiceAndPartition) {
  struct Case {
    AwsService service;
    const char* region;
    const char* url;
  };
  for (Case c :
       {Case{AwsService::kAutoScaling, "eu-west-1", "https://autoscaling.eu-west-1.amazonaws.com"},
        Case{AwsService::kEc2, "us-east-1", "https://ec2.us-east-1.amazonaws.com"},
        Case{AwsService::kSqs, "ap-southeast-2", "https://sqs.ap-southeast-2.amazonaws.com"},
        Case{AwsService::kSts, "eu-central-1", "https://sts.eu-central-1.amazonaws.com"},
        Case{AwsService::kEc2, "cn-north-1", "https://ec2.cn-north-1.amazonaws.com.cn"}}) {
    auto e = resolve_endpoint(c.service, c.region, "", {}, nullptr, nullptr);
    ASSERT_TRUE(e.ok()) << e.error().message;
    EXPECT_EQ(e->url, c.url);
    EXPECT_EQ(e->source, "default");
    EXPECT_TRUE(e->tls());
    EXPECT_EQ(e->port, 443);
  }
  EXPECT_EQ(service_info(AwsService::kAutoScaling).signing_name, "autoscaling");
  EXPECT_EQ(service_info(AwsService::kEc2).api_version, "2016-11-15");
  EXPECT_EQ(service_info(AwsService::kSqs).env_suffix, "SQS");
}

TEST(Endpoint, OverrideOrder) {
  const ProfileFile f = config_file();
  const Profile* prod = &f.profiles.at("prod");  // services = local-stack
  EnvMap env = {{"AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:5000"},
                {"AWS_ENDPOINT_URL", "http://127.0.0.1:6000"}};

  // 1. ElasticProxy configuration wins over everything.
  auto e = resolve_endpoint(AwsService::kEc2, "eu-west-1", "https://vpce-1.ec2.example:8443/x/",
                            env, prod, &f);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->url, "https://vpce-1.ec2.example:8443/x");
  EXPECT_EQ(e->host_header, "vpce-1.ec2.example:8443");
  EXPECT_EQ(e->path, "/x");
  EXPECT_EQ(e->source, "configuration");

  // 2. service-specific environment variable
  e = resolve_endpoint(AwsService::kEc2, "eu-west-1", "", env, prod, &f);
  EXPECT_EQ(e->url, "http://127.0.0.1:5000");
  EXPECT_EQ(e->source, "AWS_ENDPOINT_URL_EC2");
  EXPECT_FALSE(e->tls());

  // 3. global environment variable
  e = resolve_endpoint(AwsService::kSqs, "eu-west-1", "", env, prod, &f);
  EXPECT_EQ(e->url, "http://127.0.0.1:6000");
  EXPECT_EQ(e->source, "AWS_ENDPOINT_URL");

  // 4. [services local-stack] of the profile
  e = resolve_endpoint(AwsService::kAutoScaling, "eu-west-1", "", {}, prod, &f);
  EXPECT_EQ(e->url, "http://127.0.0.1:4567");
  EXPECT_EQ(e->source, "[services local-stack] auto_scaling.endpoint_url");

  // ... a service the section does not list falls to the next step (default here).
  e = resolve_endpoint(AwsService::kSts, "eu-west-1", "", {}, prod, &f);
  EXPECT_EQ(e->url, "https://sts.eu-west-1.amazonaws.com");

  // 5. the profile's global endpoint_url
  e = resolve_endpoint(AwsService::kSts, "sa-east-1", "", {}, &f.profiles.at("regional-only"), &f);
  EXPECT_EQ(e->url, "https://global.example.internal");
  EXPECT_EQ(e->source, "profile 'regional-only' endpoint_url");

  // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS skips 2-5 but not the configuration.
  env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  e = resolve_endpoint(AwsService::kEc2, "eu-west-1", "", env, prod, &f);
  EXPECT_EQ(e->url, "https://ec2.eu-west-1.amazonaws.com");
  e = resolve_endpoint(AwsService::kEc2, "eu-west-1", "http://[::1]:4566", env, prod, &f);
  EXPECT_EQ(e->url, "http://[::1]:4566");
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->host_header, "[::1]:4566");
}

TEST(Endpoint, MissingServicesSectionIsAnError) {
  auto f = parse_profile_file("[profile p]\nservices = nope\n", ProfileFileKind::kConfig, "c");
  ASSERT_TRUE(f.ok());
  auto e = resolve_endpoint(AwsService::kEc2, "eu-west-1", "", {}, &f->profiles.at("p"), &*f);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("[services nope]"), std::string::npos);
}

TEST(Endpoint, UrlValidation) {
  auto ok = parse_endpoint_url("HTTPS://Ec2.Example.com");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->scheme, "https");
  EXPECT_EQ(ok->host_header, "Ec2.Example.com");
  EXPECT_EQ(parse_endpoint_url("http://h:80")->host_header, "h");
  EXPECT_EQ(parse_endpoint_url("https://h:443/")->url, "https://h");
  for (const char* bad :
       {"", "ec2.amazonaws.com", "ftp://h", "https://", "https://h:0", "https://h:65536",
        "https://h:x", "https://h:", "https://u:p@h", "https://h/?a=b", "https://h/#f",
        "https://h h", "https://[::1", "https://[zz::1]", "https://h/a b"}) {
    auto e = parse_endpoint_url(bad);
    EXPECT_FALSE(e.ok()) << bad;
  }
  auto err = resolve_endpoint(AwsService::kSqs, "eu-west-1", "", {{"AWS_ENDPOINT_URL_SQS", "sqs"}},
                              nullptr, nullptr);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message.find("AWS_ENDPOINT_URL_SQS"), std::string::npos);
}

}  // namespace
}  // namespace ep::aws
