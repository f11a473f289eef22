#include "config/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

namespace ep::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Loaded {
  Settings settings;
  std::vector<std::string> errors;
};

Loaded load_text(const std::string& text, const std::string& file = "ep.yaml") {
  auto root = parse_yaml(text, file);
  EXPECT_TRUE(root.ok()) << (root.ok() ? "" : root.error().message);
  if (!root.ok()) return {};
  Diagnostics diag;
  Loaded l;
  l.settings = settings_from_node(*root, file, diag);
  l.errors = diag.errors();
  return l;
}

const char* kMinimal =
    "haproxy:\n"
    "  sockets: /run/haproxy/admin.sock\n"
    "backends:\n"
    "  - name: web\n";

TEST(ParseYaml, MarksAreOneBasedForNodesAndKeys) {
  auto root = parse_yaml("a:\n  bb: [x, y]\n", "f.yaml");
  ASSERT_TRUE(root.ok());
  ASSERT_EQ(root->kind, ConfigNode::Kind::kMap);
  EXPECT_EQ(root->key_marks[0].str(), "f.yaml:1:1");
  const ConfigNode* a = root->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->key_marks[0].str(), "f.yaml:2:3");
  const ConfigNode* bb = a->find("bb");
  ASSERT_NE(bb, nullptr);
  EXPECT_EQ(bb->mark.str(), "f.yaml:2:7");
  ASSERT_EQ(bb->items.size(), 2u);
  EXPECT_EQ(bb->items[1].scalar, "y");
  EXPECT_EQ(bb->items[1].mark.str(), "f.yaml:2:11");
}

TEST(ParseYaml, SyntaxErrorHasFileLineCol) {
  auto root = parse_yaml("a: [1, 2\nb: 3\n", "f.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.error().message, ::testing::StartsWith("f.yaml:"));
  EXPECT_THAT(root.error().message, ::testing::MatchesRegex("f\\.yaml:[0-9]+:[0-9]+: .+"));
}

TEST(ParseYaml, BadIndentationPinnedPosition) {
  auto root = parse_yaml("a:\n  b: 1\n c: 2\n", "f.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.error().message, "f.yaml:3:2: end of map not found");
}

TEST(ParseYaml, DuplicateKeyIsAnError) {
  auto root = parse_yaml("haproxy:\n  sockets: a\n  sockets: b\n", "f.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.error().message, "f.yaml:3:3: duplicate key 'sockets'");
}

TEST(ParseYaml, AliasBombIsRefusedNotExpanded) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    text += "]\n";
  }
  auto root = parse_yaml(text, "bomb.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.error().message, HasSubstr("document too large"));
}

TEST(ParseYaml, EmptyTextIsNullNode) {
  auto root = parse_yaml("", "f.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->kind, ConfigNode::Kind::kNull);
}

TEST(Settings, Defaults) {
  auto l = load_text(kMinimal);
  ASSERT_THAT(l.errors, ::testing::IsEmpty());
  const auto& h = l.settings.haproxy;
  EXPECT_THAT(h.sockets, ElementsAre("/run/haproxy/admin.sock"));
  EXPECT_EQ(h.master_socket, "");
  EXPECT_EQ(h.update, UpdateMode::kAuto);
  EXPECT_EQ(h.binary, "haproxy");
  EXPECT_EQ(h.timeout, std::chrono::seconds(2));
  EXPECT_EQ(h.resync_interval, std::chrono::seconds(10));
  EXPECT_EQ(h.reload.kind, ConfigNode::Kind::kNull);
  ASSERT_EQ(l.settings.backends.size(), 1u);
  const auto& p = l.settings.backends[0].policy;
  EXPECT_EQ(p.name, "web");
  EXPECT_EQ(p.mode, reconcile::BackendMode::kAuto);
  EXPECT_EQ(p.name_prefix, "ep-");
  EXPECT_EQ(p.slots, 0);
  EXPECT_EQ(p.server_options, "");
  EXPECT_FALSE(p.port.has_value());
  EXPECT_FALSE(p.weight.has_value());
  EXPECT_EQ(p.drain_timeout, std::chrono::seconds(30));
  EXPECT_EQ(p.debounce, std::chrono::milliseconds(0));
  EXPECT_DOUBLE_EQ(p.safety.max_remove_fraction, 0.5);
  EXPECT_FALSE(p.safety.allow_empty);
  EXPECT_EQ(p.safety.confirm_after, std::chrono::minutes(2));
  EXPECT_TRUE(l.settings.backends[0].sources.empty());
  EXPECT_EQ(l.settings.backends[0].mark.str(), "ep.yaml:4:5");
  EXPECT_TRUE(l.settings.metrics.enabled);
  EXPECT_EQ(l.settings.metrics.listen, "127.0.0.1:9108");
  EXPECT_EQ(l.settings.log.level, "info");
  EXPECT_EQ(l.settings.log.format, "text");
}

TEST(Settings, LoadFileReadsEveryKey) {
  const std::string path = std::string(EP_TESTDATA_DIR) + "/config/good.yaml";
  auto s = load_file(path);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->file, path);
  const auto& h = s->haproxy;
  EXPECT_THAT(h.sockets, ElementsAre("/run/haproxy/a.sock", "/run/haproxy/b.sock"));
  EXPECT_EQ(h.master_socket, "/run/haproxy/master.sock");
  EXPECT_EQ(h.config, "/etc/haproxy/haproxy.cfg");
  EXPECT_EQ(h.template_path, "/etc/elasticproxy/haproxy.cfg.tmpl");
  EXPECT_EQ(h.update, UpdateMode::kRuntime);
  EXPECT_EQ(h.binary, "/usr/sbin/haproxy");
  EXPECT_EQ(h.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(h.resync_interval, std::chrono::minutes(1));
  ASSERT_EQ(h.reload.kind, ConfigNode::Kind::kMap);
  ASSERT_NE(h.reload.find("method"), nullptr);
  EXPECT_EQ(h.reload.find("method")->scalar, "master-cli");
  EXPECT_EQ(h.reload.mark.line, 11);

  ASSERT_EQ(s->backends.size(), 2u);
  const auto& b = s->backends[0];
  EXPECT_EQ(b.policy.name, "web");
  EXPECT_EQ(b.policy.mode, reconcile::BackendMode::kSlots);
  EXPECT_EQ(b.policy.name_prefix, "web-");
  EXPECT_EQ(b.policy.slots, 20);
  EXPECT_EQ(b.policy.server_options, "check inter 2s maxconn 100");
  EXPECT_TRUE(b.policy.checks());
  EXPECT_EQ(b.policy.port, 8080);
  EXPECT_EQ(b.policy.weight, 10);
  EXPECT_EQ(b.policy.drain_timeout, std::chrono::minutes(1));
  EXPECT_EQ(b.policy.debounce, std::chrono::milliseconds(250));
  EXPECT_DOUBLE_EQ(b.policy.safety.max_remove_fraction, 0.25);
  EXPECT_TRUE(b.policy.safety.allow_empty);
  EXPECT_EQ(b.policy.safety.confirm_after, std::chrono::milliseconds(0));
  ASSERT_EQ(b.sources.size(), 2u);
  EXPECT_EQ(b.sources[0].kind, "file");
  EXPECT_EQ(b.sources[0].mark.str(), path + ":27:9");
  ASSERT_NE(b.sources[0].options.find("path"), nullptr);
  EXPECT_EQ(b.sources[0].options.find("path")->scalar, "web.json");
  EXPECT_EQ(b.sources[1].kind, "static");
  EXPECT_EQ(b.sources[1].options.kind, ConfigNode::Kind::kMap);
  EXPECT_EQ(s->backends[1].policy.name, "api.v2");
  EXPECT_FALSE(s->metrics.enabled);
  EXPECT_EQ(s->metrics.listen, "[::1]:9200");
  EXPECT_EQ(s->log.level, "debug");
  EXPECT_EQ(s->log.format, "json");
}

TEST(Settings, BadFileReportsEveryErrorWithPositions) {
  const std::string path = std::string(EP_TESTDATA_DIR) + "/config/bad.yaml";
  auto s = load_file(path);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  const std::vector<std::string> expected = {
      path + ":3:11: haproxy.update must be one of auto, runtime, config, got 'sometimes'",
      path + ":2:3: unknown key 'sokets' in haproxy",
      path + ":2:3: haproxy.sockets is required",
      path +
          ":5:11: backends[0].name may only contain letters, digits and _ . : -, got "
          "'web;reload'",
      path + ":6:11: backends[0].port must be between 1 and 65535, got 70000",
      path + ":7:13: backends[0].weight must be an integer, got 'heavy'",
      path +
          ":8:21: backends[0].server_options: word '#' contains a forbidden character (#); "
          "; \\ # and line breaks are refused",
      path +
          ":9:35: backends[0].safety.max_remove_fraction must be between 0.000000 and "
          "1.000000, got 1.5",
      path +
          ":11:9: backends[0].sources[0] must have exactly one key naming the source kind, "
          "got 2",
      path +
          ":15:20: backends[2].drain_timeout must be a duration such as 500ms, 2s or 1m, got "
          "'soon'",
      path + ":14:11: backends[2].name: duplicate backend 'api'",
      path + ":16:14: log.level must be one of debug, info, warn, error, got 'loud'",
      path + ":17:1: unknown key 'extra' in config",
  };
  for (const auto& e : expected) EXPECT_THAT(m + "\n", HasSubstr(e + "\n"));
  // One line per error, nothing else.
  EXPECT_EQ(static_cast<size_t>(std::count(m.begin(), m.end(), '\n')) + 1, expected.size()) << m;
}

TEST(Settings, MissingFileNamesPathAndReason) {
  auto s = load_file("/nonexistent/elasticproxy.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "cannot read /nonexistent/elasticproxy.yaml: No such file or directory");
}

TEST(Settings, DirectoryIsNotAFile) {
  auto s = load_file(EP_TESTDATA_DIR);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("Is a directory"));
}

TEST(Settings, YamlSyntaxErrorThroughLoadFile) {
  const std::string path = ::testing::TempDir() + "/ep_syntax.yaml";
  std::ofstream(path) << "haproxy: {sockets: [a\n";
  auto s = load_file(path);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, ::testing::StartsWith(path + ":"));
}

TEST(Settings, EmptyConfig) {
  auto l = load_text("");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:1:1: the configuration is empty; it needs at least "
                                    "'haproxy' and 'backends'"));
}

TEST(Settings, RootMustBeAMap) {
  auto l = load_text("- a\n- b\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:1:1: config must be a map, got a list"));
}

TEST(Settings, BackendsRequiredAndNonEmpty) {
  auto l = load_text("haproxy: {sockets: a}\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:1:1: backends is required (at least one backend)"));
  l = load_text("haproxy: {sockets: a}\nbackends: []\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:11: backends needs at least one backend"));
  l = load_text("haproxy: {sockets: a}\nbackends: {name: web}\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:11: backends must be a list, got a map"));
}

TEST(Settings, SocketsListRules) {
  auto l = load_text("haproxy: {sockets: []}\nbackends: [{name: web}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:1:20: haproxy.sockets needs at least one socket"));
  l = load_text("haproxy: {sockets: [a, {b: c}]}\nbackends: [{name: web}]\n");
  EXPECT_THAT(l.errors,
              ElementsAre("ep.yaml:1:24: haproxy.sockets items must be strings, got a map"));
}

TEST(Settings, BackendNameRules) {
  auto l = load_text("haproxy: {sockets: a}\nbackends: [{port: 80}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:12: backends[0].name is required"));
  l = load_text("haproxy: {sockets: a}\nbackends: [{name: " + std::string(101, 'w') + "}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:19: backends[0].name must be at most 100 "
                                    "characters, got 101"));
  l = load_text("haproxy: {sockets: a}\nbackends: [{name: " + std::string(100, 'w') + "}]\n");
  EXPECT_THAT(l.errors, ::testing::IsEmpty());
  l = load_text("haproxy: {sockets: a}\nbackends: [{name: \"we b\"}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:19: backends[0].name may only contain letters, "
                                    "digits and _ . : -, got 'we b'"));
  l = load_text("haproxy: {sockets: a}\nbackends: [{name: \"web\\n\"}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:19: backends[0].name may only contain letters, "
                                    "digits and _ . : -, got 'web\\n'"));
  l = load_text("haproxy: {sockets: a}\nbackends: [{name: web, name_prefix: \"\"}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:37: backends[0].name_prefix must not be empty"));
  l = load_text("haproxy: {sockets: a}\nbackends: [{name: web, name_prefix: \"a/b\"}]\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:2:37: backends[0].name_prefix may only contain "
                                    "letters, digits and _ . : -, got 'a/b'"));
}

TEST(Settings, ServerOptionsRules) {
  auto opts = [](const std::string& yaml_value) {
    return load_text("haproxy: {sockets: a}\nbackends:\n  - name: web\n    server_options: " +
                     yaml_value + "\n");
  };
  EXPECT_THAT(opts("\"check; del server\"").errors,
              ElementsAre("ep.yaml:4:21: backends[0].server_options: word 'check;' contains a "
                          "forbidden character (;); ; \\ # and line breaks are refused"));
  EXPECT_THAT(opts("\"check\\nshutdown\"").errors,
              ElementsAre("ep.yaml:4:21: backends[0].server_options: word 'check\\nshutdown' "
                          "contains a forbidden character (\\n); ; \\ # and line breaks are "
                          "refused"));
  EXPECT_THAT(opts("'a\\b'").errors,
              ElementsAre("ep.yaml:4:21: backends[0].server_options: word 'a\\b' contains a "
                          "forbidden character (\\); ; \\ # and line breaks are refused"));
  std::string many;
  for (int i = 0; i < 61; ++i) many += "w" + std::to_string(i) + " ";
  EXPECT_THAT(opts("\"" + many + "\"").errors,
              ElementsAre("ep.yaml:4:21: backends[0].server_options has 61 words, at most 60 "
                          "are allowed (first extra word: 'w60')"));
  EXPECT_THAT(opts("[check]").errors,
              ElementsAre("ep.yaml:4:21: backends[0].server_options must be a string, got a "
                          "list"));
  auto ok = opts("\"  check\tinter 2s \"");
  ASSERT_THAT(ok.errors, ::testing::IsEmpty());
  EXPECT_EQ(ok.settings.backends[0].policy.server_options, "check inter 2s");
}

TEST(Settings, NumericRanges) {
  auto one = [](const std::string& kv) {
    return load_text("haproxy: {sockets: a}\nbackends:\n  - name: web\n    " + kv + "\n").errors;
  };
  EXPECT_THAT(one("port: 0"),
              ElementsAre("ep.yaml:4:11: backends[0].port must be between 1 and 65535, got 0"));
  EXPECT_THAT(one("weight: 257"),
              ElementsAre("ep.yaml:4:13: backends[0].weight must be between 0 and 256, got 257"));
  EXPECT_THAT(one("weight: -1"),
              ElementsAre("ep.yaml:4:13: backends[0].weight must be between 0 and 256, got -1"));
  EXPECT_THAT(one("slots: 100001"), ElementsAre("ep.yaml:4:12: backends[0].slots must be between "
                                                "0 and 100000, got 100001"));
  EXPECT_THAT(one("mode: fast"), ElementsAre("ep.yaml:4:11: backends[0].mode must be one of "
                                             "auto, dynamic, slots, got 'fast'"));
  EXPECT_THAT(one("safety: {allow_empty: maybe}"),
              ElementsAre("ep.yaml:4:27: backends[0].safety.allow_empty must be true or false, "
                          "got 'maybe'"));
  EXPECT_THAT(one("safety: {confirm: 1m}"),
              ElementsAre("ep.yaml:4:14: unknown key 'confirm' in backends[0].safety"));
  EXPECT_THAT(one("safety: [1]"),
              ElementsAre("ep.yaml:4:13: backends[0].safety must be a map, got a list"));
  EXPECT_THAT(one("debounce: -1s"),
              ElementsAre("ep.yaml:4:15: backends[0].debounce must not be negative, got '-1s'"));
}

TEST(Settings, MaxServersPerBackend) {
  auto l = load_text(std::string(kMinimal));
  EXPECT_EQ(l.settings.backends.at(0).policy.safety.max_servers, 20'000u);
  auto m = load_text("haproxy: {sockets: a}\nbackends: [{name: web, safety: {max_servers: 50}}]\n");
  EXPECT_TRUE(m.errors.empty());
  EXPECT_EQ(m.settings.backends.at(0).policy.safety.max_servers, 50u);
  auto bad =
      load_text("haproxy: {sockets: a}\nbackends: [{name: web, safety: {max_servers: -1}}]\n");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].find("max_servers"), std::string::npos) << bad.errors[0];
}

TEST(Settings, SourcesShape) {
  auto one = [](const std::string& v) {
    return load_text("haproxy: {sockets: a}\nbackends:\n  - name: web\n    sources: " + v + "\n");
  };
  EXPECT_THAT(one("{file: {path: a}}").errors,
              ElementsAre("ep.yaml:4:14: backends[0].sources must be a list, got a map"));
  EXPECT_THAT(one("[file]").errors,
              ElementsAre("ep.yaml:4:15: backends[0].sources[0] must be a map with one key "
                          "naming the source kind (e.g. 'file: {path: ...}'), got a scalar"));
  auto l = one("[{consul: {service: web}}, {static: }]");
  ASSERT_THAT(l.errors, ::testing::IsEmpty());
  const auto& src = l.settings.backends[0].sources;
  ASSERT_EQ(src.size(), 2u);
  EXPECT_EQ(src[0].kind, "consul");  // kinds are checked by the app's source table
  EXPECT_EQ(src[0].mark.str(), "ep.yaml:4:16");
  EXPECT_EQ(src[1].kind, "static");
  EXPECT_EQ(src[1].options.kind, ConfigNode::Kind::kNull);
}

TEST(Settings, MetricsAndLog) {
  auto l = load_text(std::string(kMinimal) + "metrics: {enabled: no, listen: 'localhost'}\n" +
                     "log: {format: xml}\n");
  EXPECT_THAT(l.errors,
              ElementsAre("ep.yaml:5:32: metrics.listen must be host:port (e.g. 127.0.0.1:9108), "
                          "got 'localhost'",
                          "ep.yaml:6:15: log.format must be one of text, json, got 'xml'"));
  EXPECT_FALSE(l.settings.metrics.enabled);
}

TEST(Settings, MetricsAllowedHosts) {
  auto l =
      load_text(std::string(kMinimal) + "metrics: {allowed_hosts: [ops.example.internal, '*']}\n");
  EXPECT_TRUE(l.errors.empty()) << l.errors[0];
  EXPECT_THAT(l.settings.metrics.allowed_hosts, ElementsAre("ops.example.internal", "*"));
  EXPECT_TRUE(load_text(kMinimal).settings.metrics.allowed_hosts.empty());
  l = load_text(std::string(kMinimal) + "metrics:\n  allowed_hosts: [ok.example, 'bad host:80']\n");
  EXPECT_THAT(l.errors, ElementsAre("ep.yaml:6:31: metrics.allowed_hosts entries must be host "
                                    "names (letters, digits, '.', '-'; no port) or \"*\", got "
                                    "'bad host:80'"));
  l = load_text(std::string(kMinimal) + "metrics: {allowed_hosts: {a: b}}\n");
  ASSERT_EQ(l.errors.size(), 1u);
  EXPECT_THAT(l.errors[0], HasSubstr("ep.yaml:5:"));
}

TEST(Settings, HaproxyScalarsAndEnums) {
  auto l = load_text(
      "haproxy: {sockets: a, update: config, timeout: 0s, binary: '', resync_interval: x}\n"
      "backends: [{name: web}]\n");
  EXPECT_THAT(l.errors,
              ElementsAre("ep.yaml:1:60: haproxy.binary must not be empty",
                          "ep.yaml:1:48: haproxy.timeout must be greater than 0, got '0s'",
                          "ep.yaml:1:81: haproxy.resync_interval must be a duration such as "
                          "500ms, 2s or 1m, got 'x'"));
  EXPECT_EQ(l.settings.haproxy.update, UpdateMode::kConfig);
  EXPECT_STREQ(to_string(UpdateMode::kRuntime), "runtime");
}

}  // namespace
}  // namespace ep::config

namespace ep::config {
namespace {

TEST(Examples, ShippedExamplesLoad) {
  for (const char* name : {"elasticproxy.file.yaml", "elasticproxy.static.yaml"}) {
    auto s = load_file(std::string(EP_SOURCE_DIR) + "/examples/" + name);
    EXPECT_TRUE(s.ok()) << name << ": " << (s.ok() ? "" : s.error().message);
  }
}

}  // namespace
}  // namespace ep::config
