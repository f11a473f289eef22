#include "os/json.h"

#include <gtest/gtest.h>

#include <string>

namespace ep::os {
namespace {

// `[[[ … ]]]` nested `depth` deep around `inner`.
std::string nested(int depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST(JsonDepth, CountsContainersOutsideStrings) {
  EXPECT_EQ(json_depth("1"), 0);
  EXPECT_EQ(json_depth(R"({"a":[1,{"b":[]}]})"), 4);
  EXPECT_EQ(json_depth(R"({"a":"[[[[{{{{"})"), 1) << "brackets inside strings do not count";
  EXPECT_EQ(json_depth(R"({"a":"\"[[[["})"), 1) << "an escaped quote does not end the string";
  EXPECT_EQ(json_depth(nested(80'000)), 80'000);
}

// The etcd crash of issue #14: a field nested 80,000 deep (160 KB) is refused before the JSON
// library builds it, so nothing downstream (copy, compare, dump) can recurse that deep.
TEST(ParseJson, DeepNestingIsRefusedWithItsDepth) {
  const std::string text = R"({"address":"10.0.0.1","port":)" + nested(80'000) + "}";
  auto r = parse_json(text, "etcd key '/svc/a'");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(r.error().message.rfind("etcd key '/svc/a': JSON nested deeper than 64 levels", 0), 0u)
      << r.error().message;
  EXPECT_NE(r.error().message.find("80001"), std::string::npos) << r.error().message;
}

TEST(ParseJson, NestingUpToTheLimitParses) {
  auto r = parse_json(nested(64), "x");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(parse_json(nested(65), "x").ok());
  EXPECT_TRUE(parse_json(nested(100), "x", 100).ok());
}

TEST(ParseJson, SyntaxErrorsAndOverflowAreErrorsNotExceptions) {
  auto r = parse_json("{not json", "Consul health reply");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("Consul health reply: not valid JSON (", 0), 0u)
      << r.error().message;
  EXPECT_FALSE(parse_json("1e999", "x").ok());
  EXPECT_FALSE(parse_json("", "x").ok());
}

TEST(JsonBrief, ContainersByKindScalarsBounded) {
  EXPECT_EQ(json_brief(nlohmann::json::parse("[1,2,3]")), "an array of 3 items");
  EXPECT_EQ(json_brief(nlohmann::json::parse(R"({"a":1,"b":[]})")), "an object with 2 keys");
  EXPECT_EQ(json_brief(nlohmann::json(42)), "42");
  EXPECT_EQ(json_brief(nlohmann::json(true)), "true");
  EXPECT_EQ(json_brief(nlohmann::json(nullptr)), "null");
  EXPECT_EQ(json_brief(nlohmann::json(std::string(100, 'x'))),
            "\"" + std::string(40, 'x') + "...\"");
  EXPECT_EQ(json_brief(nlohmann::json("a\nb\x1b[2J")), "\"a\\nb\\x1b[2J\"")
      << "control characters are escaped, never passed to a terminal";
}

// A container that was built (not parsed) deeper than the limit is still described without
// recursion.
TEST(JsonBrief, DeepContainerIsDescribedWithoutRecursion) {
  nlohmann::json deep = 1;
  for (int i = 0; i < 100'000; ++i) deep = nlohmann::json::array({std::move(deep)});
  EXPECT_EQ(json_brief(deep), "an array of 1 items");
}

}  // namespace
}  // namespace ep::os
