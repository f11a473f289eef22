#include "discovery/aws/profile.h"

#include <gtest/gtest.h>

#include "unit/aws/testdata.h"

namespace ep::aws {
namespace {

using testing::testdata;

TEST(ProfileFileTest, ConfigSectionsAndPrecedence) {
  auto f = parse_profile_file(testdata("aws_config"), ProfileFileKind::kConfig, "aws_config");
  ASSERT_TRUE(f.ok()) << f.error().message;
  // [profile default] wins over [default], whatever the order.
  EXPECT_EQ(f->profiles.at("default").get("region"), "eu-central-1");
  EXPECT_EQ(f->profiles.at("default").get("output"), "json");
  EXPECT_EQ(f->profiles.at("prod").get("role_arn"),
            "arn:aws:iam::111122223333:role/elasticproxy-read");
  EXPECT_EQ(f->profiles.at("tool").get("credential_process"),
            "/usr/local/bin/get-creds --profile \"tool\"");
  EXPECT_EQ(f->profiles.count("notaprofile"), 0u);  // bare [name] in config is ignored
  EXPECT_EQ(f->profiles.count("corp"), 0u);         // sso-session is not a profile
  ASSERT_EQ(f->services.count("local-stack"), 1u);
  const Profile& s = f->services.at("local-stack");
  EXPECT_EQ(s.get("ec2", "endpoint_url"), "http://127.0.0.1:4566");
  EXPECT_EQ(s.get("auto_scaling", "endpoint_url"), "http://127.0.0.1:4567");  // comment stripped
  EXPECT_EQ(s.get("sts", "endpoint_url"), std::nullopt);
  EXPECT_EQ(f->profiles.at("regional-only").get("endpoint_url"), "https://global.example.internal");
}

TEST(ProfileFileTest, CredentialsFileUsesBareNames) {
  auto f = parse_profile_file(testdata("aws_credentials"), ProfileFileKind::kCredentials, "c");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->profiles.at("base").get("aws_access_key_id"), "AKIABASEEXAMPLE00002");
  EXPECT_EQ(f->profiles.at("session").get("aws_session_token"), "FwoGZXIvYXdzESessionTokenEXAMPLE");
}

TEST(ProfileFileTest, ContinuationsCommentsAndDuplicates) {
  auto f = parse_profile_file(
      "# top comment\n"
      "; another\n"
      "[profile a]  # trailing comment\n"
      "x = 1\n"
      "x = 2\n"
      "url = https://h/p#frag\n"
      "multi = first\n"
      "  second\n"
      "\tthird\n"
      "[profile a]\n"
      "y = 3\r\n"
      "[profile b]\n"
      "empty =\n",
      ProfileFileKind::kConfig, "cfg");
  ASSERT_TRUE(f.ok()) << f.error().message;
  const Profile& a = f->profiles.at("a");
  EXPECT_EQ(a.get("x"), "2");
  EXPECT_EQ(a.get("y"), "3");
  EXPECT_EQ(a.get("url"), "https://h/p#frag");
  EXPECT_EQ(a.get("multi"), "first\nsecond\nthird");
  EXPECT_EQ(f->profiles.at("b").get("empty"), "");
}

TEST(ProfileFileTest, ErrorsCarryFileAndLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (Case c : {Case{"x = 1\n", "f:1: property before any [section]"},
                 Case{"[default]\nnovalue\n", "f:2: expected 'name = value'"},
                 Case{"[default\n", "f:1: section header without ']'"},
                 Case{"[]\n", "f:1: empty section name"},
                 Case{"[default] junk\n", "f:1: unexpected text after section header"},
                 Case{"[default]\n = v\n", "f:2: property with an empty name"},
                 Case{"[services s]\nec2 =\n  novalue\n", "f:3: sub-property without '='"}}) {
    auto f = parse_profile_file(c.text, ProfileFileKind::kConfig, "f");
    ASSERT_FALSE(f.ok()) << c.text;
    EXPECT_EQ(f.error().message, c.message);
  }
}

TEST(ProfileFileTest, MergeCredentialsWinKeyByKey) {
  auto config = parse_profile_file("[profile p]\nregion = r1\naws_access_key_id = FROMCONFIG\n",
                                   ProfileFileKind::kConfig, "config");
  auto creds = parse_profile_file("[p]\naws_access_key_id = FROMCREDS\n[only]\nk = v\n",
                                  ProfileFileKind::kCredentials, "credentials");
  ASSERT_TRUE(config.ok() && creds.ok());
  ProfileFile m = merge_profile_files(*config, *creds);
  EXPECT_EQ(m.profiles.at("p").get("region"), "r1");
  EXPECT_EQ(m.profiles.at("p").get("aws_access_key_id"), "FROMCREDS");
  EXPECT_EQ(m.profiles.at("only").get("k"), "v");
}

TEST(ProfileFileTest, GarbageNeverCrashes) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919) % 256);
  (void)parse_profile_file(junk, ProfileFileKind::kConfig, "junk");
  (void)parse_profile_file(junk, ProfileFileKind::kCredentials, "junk");
  (void)parse_profile_file("", ProfileFileKind::kConfig, "empty");
  (void)parse_profile_file("[", ProfileFileKind::kConfig, "x");
  (void)parse_profile_file("[a]\n\t", ProfileFileKind::kConfig, "x");
}

}  // namespace
}  // namespace ep::aws
