#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "discovery/file/options.h"
#include "discovery/file/parse.h"
#include "discovery/guard.h"

namespace ep::discovery::file {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/file/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::vector<Endpoint>> parse_saved(const std::string& name) {
  return parse_file_sd(testdata(name), Format::kAuto, name);
}

void expect_good_groups(const std::vector<Endpoint>& eps) {
  ASSERT_EQ(eps.size(), 5u);
  EXPECT_EQ(eps[0].address, "10.0.0.5");
  EXPECT_EQ(eps[0].port, 8080u);
  EXPECT_EQ(eps[0].weight, 10);
  EXPECT_FALSE(eps[0].backup);
  EXPECT_EQ(eps[0].id, "");
  EXPECT_EQ(eps[0].labels, (std::map<std::string, std::string>{{"env", "prod"}, {"zone", "a"}}));
  EXPECT_EQ(eps[1].address, "10.0.0.6");
  EXPECT_EQ(eps[2].address, "2001:db8::7");
  EXPECT_EQ(eps[2].port, 8080u);
  EXPECT_EQ(eps[3].address, "10.0.0.9");
  EXPECT_EQ(eps[3].port, 0u);  // the backend's port fills it
  EXPECT_EQ(eps[3].id, "web-9");
  EXPECT_TRUE(eps[3].backup);
  EXPECT_EQ(eps[3].weight, 3);
  EXPECT_THAT(eps[3].labels, IsEmpty());
  EXPECT_EQ(eps[4].address, "web-3.internal");  // passed through; the guard rejects it
  EXPECT_EQ(eps[4].port, 8080u);
  EXPECT_FALSE(eps[4].weight.has_value());
}

TEST(ParseFileSd, GoodJson) {
  auto r = parse_saved("good.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_good_groups(*r);
}

TEST(ParseFileSd, GoodYamlSameAsJson) {
  auto y = parse_saved("good.yaml");
  ASSERT_TRUE(y.ok()) << y.error().message;
  expect_good_groups(*y);
  EXPECT_EQ(*y, *parse_saved("good.json"));
}

TEST(ParseFileSd, EmptyListIsValid) {
  auto r = parse_saved("empty_list.json");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, IsEmpty());
  auto y = parse_file_sd("[]\n", Format::kYaml, "x.yaml");
  ASSERT_TRUE(y.ok());
  EXPECT_THAT(*y, IsEmpty());
}

TEST(ParseFileSd, EmptyFileIsAnError) {
  auto r = parse_file_sd("", Format::kJson, "web.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "web.json: file is empty (write [] for an explicit empty list)");
  EXPECT_FALSE(parse_file_sd(" \n", Format::kYaml, "web.yaml").ok());
}

TEST(ParseFileSd, TruncatedJsonNamesLineAndColumn) {
  auto r = parse_saved("truncated.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, ::testing::StartsWith("truncated.json:2:45: invalid JSON: "));
}

TEST(ParseFileSd, JsonSyntaxErrorPosition) {
  auto r = parse_file_sd("[\n  {\"targets\": [\"a:1\",]}\n]", Format::kJson, "w.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, ::testing::StartsWith("w.json:2:22: invalid JSON: "));
}

TEST(ParseFileSd, JsonStructureErrorNamesGroup) {
  auto r = parse_saved("bad_structure.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "bad_structure.json: [1].targets: must be a list of \"host:port\" strings, got a "
            "scalar");
}

TEST(ParseFileSd, YamlErrorsHavePositions) {
  auto w = parse_saved("bad_weight.yaml");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message,
            "bad_weight.yaml:3:13: [0].labels.weight: weight must be an integer, got 'heavy'");
  auto s = parse_saved("bad_syntax.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, ::testing::MatchesRegex("bad_syntax\\.yaml:[0-9]+:[0-9]+: .+"));
  auto l = parse_saved("not_a_list.yaml");
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().message, "not_a_list.yaml:1:1: expected a list of target groups, got a map");
  auto u = parse_saved("unknown_key.yaml");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message,
            "unknown_key.yaml:2:3: [0]: unknown key 'lables' (expected targets, labels)");
}

TEST(ParseFileSd, OtherStructuralErrors) {
  auto msg = [](std::string_view text) {
    auto r = parse_file_sd(text, Format::kJson, "w.json");
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(msg("[{\"labels\": {}}]"), "w.json: [0]: missing 'targets'");
  EXPECT_EQ(msg("[\"10.0.0.1:80\"]"),
            "w.json: [0]: a target group must be a map with 'targets', got a scalar");
  EXPECT_EQ(msg("[{\"targets\": [1.5]}]"), "ok");  // a number is text "1.5": the guard rejects it
  EXPECT_EQ(msg("[{\"targets\": [{\"a\": 1}]}]"),
            "w.json: [0].targets[0]: a target must be a \"host:port\" string, got a map");
  EXPECT_EQ(msg("[{\"targets\": [], \"labels\": [1]}]"),
            "w.json: [0].labels: must be a map of strings, got a list");
  EXPECT_EQ(msg("[{\"targets\": [], \"labels\": {\"zone\": {}}}]"),
            "w.json: [0].labels.zone: label values must be strings, got a map");
  EXPECT_EQ(msg("[{\"targets\": [\"10.0.0.1:1\"], \"labels\": {\"backup\": \"maybe\"}}]"),
            "w.json: [0].labels.backup: backup must be true or false, got 'maybe'");
  EXPECT_EQ(msg("[{\"targets\": [\"10.0.0.1:1\", \"10.0.0.2:1\"], \"labels\": {\"id\": \"x\"}}]"),
            "w.json: [0]: label 'id' names one endpoint, but the group has 2 targets");
  EXPECT_EQ(msg("{\"targets\": []}"), "w.json: expected a list of target groups, got a map");
  EXPECT_THAT(msg(std::string(1000, '[') + std::string(1000, ']')), HasSubstr("nesting deeper"));
  EXPECT_THAT(msg("[{\"targets\": [\"\xff\"]}]"), HasSubstr("invalid JSON"));
}

TEST(ParseFileSd, WeightLabelRangeLeftToGuard) {
  auto r = parse_file_sd(R"([{"targets": ["10.0.0.1:80"], "labels": {"weight": "-1"}},
                             {"targets": ["10.0.0.2:80"], "labels": {"weight": "257"}}])",
                         Format::kJson, "w.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].weight, -1);
  EXPECT_EQ((*r)[1].weight, 257);
}

TEST(EndpointFromText, Shapes) {
  auto t = [](std::string_view s) {
    Endpoint e = ep::discovery::endpoint_from_text(s);
    return e.address + "|" + std::to_string(e.port);
  };
  EXPECT_EQ(t("10.0.0.1:80"), "10.0.0.1|80");
  EXPECT_EQ(t("[2001:db8::1]:443"), "2001:db8::1|443");
  EXPECT_EQ(t("[2001:db8::1]"), "2001:db8::1|0");
  EXPECT_EQ(t("2001:db8::1"), "2001:db8::1|0");
  EXPECT_EQ(t("10.0.0.1"), "10.0.0.1|0");
  EXPECT_EQ(t("host:65536"), "host|65536");        // the guard names the bad port
  EXPECT_EQ(t("10.0.0.1:abc"), "10.0.0.1:abc|0");  // kept whole: the guard names it
  EXPECT_EQ(t("10.0.0.1:"), "10.0.0.1:|0");
  EXPECT_EQ(t("10.0.0.1:1234567"), "10.0.0.1:1234567|0");
  EXPECT_EQ(t("[::1]x"), "[::1]x|0");
  EXPECT_EQ(t("[::1"), "[::1|0");
}

TEST(FileOptions, DefaultsAndRelativePath) {
  ConfigNode n = ConfigNode::make_map({"ep.yaml", 3, 9});
  n.add("path", ConfigNode::make_scalar("sd/web.json", {"ep.yaml", 3, 15}));
  Diagnostics diag;
  auto o = options_from_node(n, "/etc/elasticproxy", diag);
  ASSERT_TRUE(o.has_value()) << diag.joined();
  EXPECT_EQ(o->path, "/etc/elasticproxy/sd/web.json");
  EXPECT_EQ(o->format, Format::kJson);
  EXPECT_EQ(o->debounce, std::chrono::milliseconds(0));
  EXPECT_EQ(o->refresh_interval, std::chrono::minutes(5));
}

TEST(FileOptions, Errors) {
  {
    ConfigNode n = ConfigNode::make_map({"ep.yaml", 3, 9});
    n.add("format", ConfigNode::make_scalar("xml", {"ep.yaml", 3, 20}), {"ep.yaml", 3, 12});
    n.add("debounce", ConfigNode::make_scalar("fast", {"ep.yaml", 4, 20}), {"ep.yaml", 4, 12});
    n.add("pth", ConfigNode::make_scalar("x", {"ep.yaml", 5, 20}), {"ep.yaml", 5, 12});
    Diagnostics diag;
    EXPECT_FALSE(options_from_node(n, "/", diag).has_value());
    EXPECT_THAT(diag.errors(),
                ElementsAre("ep.yaml:3:9: file.path is required",
                            "ep.yaml:3:20: file.format must be one of auto, json, yaml, got 'xml'",
                            "ep.yaml:4:20: file.debounce must be a duration such as 500ms, 2s or "
                            "1m, got 'fast'",
                            "ep.yaml:5:12: unknown key 'pth' in file"));
  }
  {
    ConfigNode n = ConfigNode::make_map({"ep.yaml", 3, 9});
    n.add("path", ConfigNode::make_scalar("targets.txt", {"ep.yaml", 3, 15}));
    Diagnostics diag;
    EXPECT_FALSE(options_from_node(n, "/", diag).has_value());
    EXPECT_THAT(diag.errors(),
                ElementsAre("ep.yaml:3:15: file.path: cannot tell the format from the name "
                            "'targets.txt' (expected .json, .yml or .yaml); set file.format to "
                            "json or yaml"));
    n.add("format", ConfigNode::make_scalar("yaml"));
    Diagnostics diag2;
    auto o = options_from_node(n, "/", diag2);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->format, Format::kYaml);
  }
}

}  // namespace
}  // namespace ep::discovery::file

namespace ep::discovery::file {
namespace {

TEST(Examples, ShippedWebJsonParses) {
  std::ifstream in(std::string(EP_SOURCE_DIR) + "/examples/web.json");
  std::ostringstream s;
  s << in.rdbuf();
  auto r = parse_file_sd(s.str(), Format::kAuto, "web.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 5u);
}

}  // namespace
}  // namespace ep::discovery::file

namespace ep::discovery::file {
namespace {

// Deterministic garbage: whatever the bytes, the parser returns a value (never crashes or hangs)
// and every error names the file.
TEST(ParseFileSd, GarbageGivesErrorsNamingTheFile) {
  const std::string alphabet = "[]{}\",:- \n\t0123456789abtargetslabels&*!|>'#%@\\\x01\xff";
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    const size_t len = next() % 120;
    for (size_t j = 0; j < len; ++j) text += alphabet[next() % alphabet.size()];
    for (Format f : {Format::kJson, Format::kYaml}) {
      auto r = parse_file_sd(text, f, "g.sd");
      if (!r.ok()) {
        EXPECT_EQ(r.error().message.rfind("g.sd", 0), 0u) << r.error().message;
      }
    }
  }
}

}  // namespace
}  // namespace ep::discovery::file
