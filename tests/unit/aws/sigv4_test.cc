// Unit tests of the SigV4 building blocks and of signing the requests ElasticProxy sends. The
// whole official suite runs in sigv4_suite_test.cc.

#include "discovery/aws/sigv4.h"

#include <gtest/gtest.h>

#include "discovery/aws/requests.h"

namespace ep::aws {
namespace {

SystemTime at(const char* iso) { return parse_iso8601(iso).value(); }

Credentials example_credentials() {
  return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", std::nullopt, ""};
}

SigningConfig suite_config() {
  SigningConfig c;
  c.region = "us-east-1";
  c.service = "service";
  c.time = at("2015-08-30T12:36:00Z");
  return c;
}

TEST(SigV4, GetVanillaMatchesTheValuesQuotedInAwsMd) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"Host", "example.amazonaws.com"}};
  auto s = sign_request(r, example_credentials(), suite_config());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(s->string_to_sign.substr(s->string_to_sign.rfind('\n') + 1),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s->authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  ASSERT_EQ(s->added_headers.size(), 2u);
  EXPECT_EQ(s->added_headers[0], (HttpHeader{"X-Amz-Date", "20150830T123600Z"}));
  EXPECT_EQ(s->added_headers[1].name, "Authorization");
}

TEST(SigV4, SigningKeyMatchesAwsDocumentationExample) {
  EXPECT_EQ(hex_encode(derive_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                          "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(SigV4, HashesAndDates) {
  EXPECT_EQ(sha256_hex(""), kEmptyPayloadSha256);
  EXPECT_EQ(sha256_hex("Param1=value1"),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_EQ(format_amz_date(at("2026-03-02T10:15:30Z")), "20260302T101530Z");
  EXPECT_EQ(credential_scope("20260302", "eu-west-1", "sqs"),
            "20260302/eu-west-1/sqs/aws4_request");
}

TEST(SigV4, UriEncoding) {
  EXPECT_EQ(uri_encode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(uri_encode("a b+c/d=e&f", false), "a%20b%2Bc%2Fd%3De%26f");
  EXPECT_EQ(uri_encode("/a b/", true), "/a%20b/");
  EXPECT_EQ(uri_encode("\xE1\x88\xB4", false), "%E1%88%B4");
  EXPECT_EQ(uri_decode("%E1%88%b4%20x"), "\xE1\x88\xB4 x");
  EXPECT_EQ(uri_decode("100%"), "100%");
  EXPECT_EQ(uri_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(uri_decode("a+b"), "a+b");  // '+' is not a space in SigV4
}

TEST(SigV4, CanonicalUri) {
  EXPECT_EQ(canonical_uri("", true), "/");
  EXPECT_EQ(canonical_uri("/", true), "/");
  EXPECT_EQ(canonical_uri("//a//b/", true), "/a/b/");
  EXPECT_EQ(canonical_uri("/a/./b/../c", true), "/a/c");
  EXPECT_EQ(canonical_uri("/../..", true), "/");
  EXPECT_EQ(canonical_uri("/a/./b/../c", false), "/a/./b/../c");
  EXPECT_EQ(canonical_uri("/a%20b", true), "/a%2520b");  // double-encoded, as AWS expects
}

TEST(SigV4, CanonicalQueryString) {
  EXPECT_EQ(canonical_query_string(""), "");
  EXPECT_EQ(canonical_query_string("b=2&a=1&a=0"), "a=0&a=1&b=2");
  EXPECT_EQ(canonical_query_string("flag&x="), "flag=&x=");
  EXPECT_EQ(canonical_query_string("k=a b&j=%7e"), "j=~&k=a%20b");
  EXPECT_EQ(canonical_query_string("&&a=1&"), "a=1");
  EXPECT_EQ(canonical_query_string("Param-3=3&Param=2"), "Param=2&Param-3=3");
}

TEST(SigV4, CanonicalHeaderValue) {
  EXPECT_EQ(canonical_header_value("  a   b\t c  "), "a b c");
  EXPECT_EQ(canonical_header_value("value1\r\n  value2\n\tvalue3"), "value1 value2 value3");
  EXPECT_EQ(canonical_header_value(""), "");
}

TEST(SigV4, RejectsUnsafeOrIncompleteRequests) {
  const Credentials creds = example_credentials();
  SignableRequest base;
  base.headers = {{"Host", "example.amazonaws.com"}};
  struct Case {
    std::vector<HttpHeader> headers;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "no Host header"},
           {{{"Host", "h"}, {"Bad Name", "v"}}, "header name 'Bad Name'"},
           {{{"Host", "h"}, {"X-A", "v\r\nX-Injected: 1"}}, "line break"},
           {{{"Host", "h"}, {"X-A", "v\n"}}, "line break"},
           {{{"Host", "h"}, {"X-A", std::string("a\0b", 3)}}, "NUL"},
           {{{"Host", "h"}, {"authorization", "x"}}, "already has"},
           {{{"Host", "h"}, {"X-Amz-Date", "x"}}, "already has"},
           {{{"Host", "h"}, {"x-amz-security-token", "x"}}, "already has"},
       }) {
    SignableRequest r = base;
    r.headers = c.headers;
    auto s = sign_request(r, creds, suite_config());
    ASSERT_FALSE(s.ok()) << c.expect;
    EXPECT_EQ(s.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(s.error().message.find(c.expect), std::string::npos) << s.error().message;
  }
  Credentials no_secret = creds;
  no_secret.secret_access_key.clear();
  EXPECT_FALSE(sign_request(base, no_secret, suite_config()).ok());
  SigningConfig no_region = suite_config();
  no_region.region.clear();
  EXPECT_FALSE(sign_request(base, creds, no_region).ok());
  SigningConfig zero = suite_config();
  zero.presign_expires = std::chrono::seconds(0);
  EXPECT_FALSE(presign_request(base, creds, zero).ok());
}

TEST(SigV4, SkipsHeadersThatChangeInTransit) {
  SignableRequest r;
  r.headers = {{"Host", "example.amazonaws.com"},
               {"User-Agent", "elasticproxy/0.1"},
               {"Expect", "100-continue"},
               {"X-Amzn-Trace-Id", "Root=1"}};
  auto s = sign_request(r, example_credentials(), suite_config());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->signed_headers, "host;x-amz-date");
  EXPECT_EQ(s->signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// A real DescribeAutoScalingGroups call with session credentials, checked against an independent
// implementation (Python hmac/hashlib, see the commit that added this test).
TEST(SigV4, DescribeAutoScalingGroupsWithSessionToken) {
  auto endpoint = parse_endpoint_url("https://autoscaling.eu-west-1.amazonaws.com");
  ASSERT_TRUE(endpoint.ok());
  auto params = describe_auto_scaling_groups_params({"web-asg", "api asg"}, "", 100);
  ASSERT_TRUE(params.ok());
  SignableRequest r =
      make_query_request(*endpoint, "DescribeAutoScalingGroups", "2011-01-01", *params);
  EXPECT_EQ(r.body,
            "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1="
            "web-asg&AutoScalingGroupNames.member.2=api%20asg&MaxRecords=100");
  Credentials creds{"ASIAEXAMPLE", "secretEXAMPLEsecretEXAMPLE",
                    "IQoJb3JpZ2luX2VjEXAMPLE/token+==", std::nullopt, ""};
  SigningConfig cfg;
  cfg.region = "eu-west-1";
  cfg.service = "autoscaling";
  cfg.time = at("2026-03-02T10:15:30Z");
  auto s = sign_request(r, creds, cfg);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->signed_headers, "content-type;host;x-amz-date;x-amz-security-token");
  EXPECT_EQ(s->signature, "45e60d8afd993e3d23a61c28f92dacf84cd1c9f15b1af6513f392bf37367c5df");
  ASSERT_EQ(s->added_headers.size(), 3u);
  EXPECT_EQ(s->added_headers[0],
            (HttpHeader{"X-Amz-Security-Token", "IQoJb3JpZ2luX2VjEXAMPLE/token+=="}));
  EXPECT_EQ(s->added_headers[1], (HttpHeader{"X-Amz-Date", "20260302T101530Z"}));
  EXPECT_EQ(s->added_headers[2].value,
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260302/eu-west-1/autoscaling/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
            "Signature=45e60d8afd993e3d23a61c28f92dacf84cd1c9f15b1af6513f392bf37367c5df");
}

}  // namespace
}  // namespace ep::aws
