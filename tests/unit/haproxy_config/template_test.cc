#include "haproxy/config/template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "haproxy/config/render.h"

namespace ep::haproxy::config {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string data(const std::string& name) {
  return std::string(EP_TESTDATA_DIR) + "/templates/" + name;
}

ActualServer srv(std::string name, std::string addr, int port, int weight, int admin = 0) {
  ActualServer s;
  s.name = std::move(name);
  s.address = std::move(addr);
  s.port = static_cast<std::uint16_t>(port);
  s.weight = weight;
  s.admin_state = admin;
  return s;
}

// EP2's template with a slot backend: two live slots, one in maintenance, one free slot whose
// address HAProxy shows as "-".
std::vector<RenderBackend> ep2_backends() {
  RenderBackend be{"haproxynode", "check inter 2000", {}};
  be.servers.push_back(srv("node1", "10.0.0.5", 6003, 1));
  be.servers.push_back(srv("node2", "10.0.0.6", 6003, 33));
  be.servers.push_back(srv("node3", "10.0.0.7", 6003, 1, admin::kForcedMaint));
  be.servers.push_back(srv("node4", "", 0, 1, admin::kForcedMaint | admin::kConfigMaint));
  return {be};
}

TEST(TemplateGolden, Ep2TemplateRendersByteExactWithFinalNewline) {
  auto tpl = load_template(data("ep2.tmpl"));
  ASSERT_TRUE(tpl.ok()) << tpl.error().message;
  EXPECT_TRUE(tpl->uses_nodes());
  auto out = render(*tpl, ep2_backends());
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, slurp(data("ep2.golden.cfg")));
  ASSERT_FALSE(out->empty());
  EXPECT_EQ(out->back(), '\n');  // the template has none (EP2 bug #11)
}

TEST(TemplateGolden, MultiBackendTemplateRendersByteExact) {
  auto tpl = load_template(data("multi.tmpl"));
  ASSERT_TRUE(tpl.ok()) << tpl.error().message;
  EXPECT_EQ(tpl->referenced_backends(), (std::vector<std::string>{"web", "api", "empty"}));
  RenderBackend web{"web", "check", {}};
  web.servers.push_back(srv("ep-a", "10.1.0.10", 8080, 1));
  web.servers.push_back(srv("ep-b", "2001:db8::7", 8080, 256, admin::kForcedDrain));
  ActualServer backup = srv("ep-c", "10.1.0.12", 8080, 0);
  backup.backup = true;
  web.servers.push_back(backup);
  RenderBackend api{"api", "", {srv("ep-api-1", "10.2.0.1", 0, 10)}};
  RenderBackend empty{"empty", "check", {}};
  auto out = render(*tpl, {web, api, empty});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, slurp(data("multi.golden.cfg")));
}

TEST(Template, TextWithoutPlaceholdersIsCopiedByteForByte) {
  const std::string text =
      "{% for x in y %}\nglobal\r\n  log stdout format raw local0\n\n{ not a placeholder "
      "}\n%{+Q}o\n";
  auto tpl = parse_template(text, "t.cfg");
  ASSERT_TRUE(tpl.ok()) << tpl.error().message;
  auto out = render(*tpl, {});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, text);
}

TEST(Template, BothNodesSpellingsWork) {
  for (const char* p : {"{{nodes}}", "{{ nodes }}", "{{  nodes\t}}"}) {
    auto tpl = parse_template(std::string("backend b\n  ") + p + "\n", "t");
    ASSERT_TRUE(tpl.ok()) << p << ": " << tpl.error().message;
    auto out = render(*tpl, {{"b", "", {srv("s1", "10.0.0.1", 80, 1)}}});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "backend b\n  server s1 10.0.0.1:80 weight 1\n") << p;
  }
}

TEST(Template, OwnLinePlaceholderWithNoServersLeavesNoLine) {
  auto tpl = parse_template("backend b\n    {{ servers \"b\" }}  \n    server x 1.2.3.4:1\n", "t");
  ASSERT_TRUE(tpl.ok());
  auto out = render(*tpl, {{"b", "", {}}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "backend b\n    server x 1.2.3.4:1\n");
}

TEST(Template, InlinePlaceholderJoinsWithTheLineIndent) {
  auto tpl = parse_template("  # first: {{ nodes }} end\n", "t");
  ASSERT_TRUE(tpl.ok());
  auto out = render(*tpl, {{"b", "", {srv("a", "1.1.1.1", 1, 1), srv("b", "2.2.2.2", 2, 2)}}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "  # first: server a 1.1.1.1:1 weight 1\n  server b 2.2.2.2:2 weight 2 end\n");
}

struct BadCase {
  const char* text;
  const char* where;
  const char* what;
};

TEST(Template, ErrorsNameFileLineAndColumn) {
  const BadCase cases[] = {
      {"global\n  {{ node }}\n", "t.cfg:2:6:", "unknown placeholder 'node'"},
      {"a\nb\n   {{ servers }}\n", "t.cfg:3:", "expected a backend name"},
      {"x {{ nodes\n}}\n", "t.cfg:1:3:", "unclosed placeholder"},
      {"  {{ nodes extra }}\n", "t.cfg:1:12:", "unexpected 'extra'"},
      {"{{ \"abc }}\n", "t.cfg:1:1:", "unclosed placeholder"},
      {"ok\n{{ servers \"web\" x }}\n", "t.cfg:2:18:", "unexpected 'x'"},
      {"{{ servers \"web }}\n", "t.cfg:1:1:", "unclosed placeholder"},
      {"{{}}\n", "t.cfg:1:", "unknown placeholder"},
      {"{{ 42 }}\n", "t.cfg:1:4:", "unknown placeholder '42'"},
  };
  for (const auto& c : cases) {
    auto tpl = parse_template(c.text, "t.cfg");
    ASSERT_FALSE(tpl.ok()) << c.text;
    EXPECT_EQ(tpl.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(tpl.error().message.find(c.where), std::string::npos)
        << c.text << " -> " << tpl.error().message;
    EXPECT_NE(tpl.error().message.find(c.what), std::string::npos)
        << c.text << " -> " << tpl.error().message;
  }
}

TEST(Template, GarbageNeverCrashes) {
  std::string junk;
  unsigned x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 1103515245u + 12345u;
    const char alphabet[] = "{}\"% \n\tnodesrv\\a";
    junk += alphabet[(x >> 16) % (sizeof alphabet - 1)];
    if (i % 50 == 0) {
      auto tpl = parse_template(junk, "j");
      if (tpl.ok()) {
        auto out = render(*tpl, {{"a", "", {srv("s", "1.1.1.1", 1, 1)}}});
        (void)out;
      } else {
        EXPECT_EQ(tpl.error().message.rfind("j:", 0), 0u) << tpl.error().message;
      }
    }
  }
}

TEST(TemplateCheck, ReportsEveryMismatchWithPositions) {
  auto tpl = parse_template("a\n{{ nodes }}\n{{ servers \"nope\" }}\n{{ servers web }}\n", "t.cfg");
  ASSERT_TRUE(tpl.ok());
  Diagnostics diag;
  check_template(*tpl, {"web", "api", "db"}, diag);
  ASSERT_EQ(diag.errors().size(), 4u) << diag.joined();
  EXPECT_NE(diag.errors()[0].find("t.cfg:2:1: {{ nodes }} needs exactly one"), std::string::npos)
      << diag.joined();
  EXPECT_NE(diag.errors()[1].find("t.cfg:3:1:"), std::string::npos) << diag.joined();
  EXPECT_NE(diag.errors()[1].find("'nope' is not a managed backend"), std::string::npos);
  EXPECT_NE(diag.joined().find("'api' has no placeholder"), std::string::npos);
  EXPECT_NE(diag.joined().find("'db' has no placeholder"), std::string::npos);

  Diagnostics ok;
  check_template(*tpl = *parse_template("{{nodes}}\n", "t"), {"only"}, ok);
  EXPECT_TRUE(ok.ok()) << ok.joined();
}

TEST(TemplateCheck, ShippedExampleTemplateIsValid) {
  auto tpl = load_template(std::string(EP_SOURCE_DIR) + "/examples/haproxy.cfg.tmpl");
  ASSERT_TRUE(tpl.ok()) << tpl.error().message;
  Diagnostics diag;
  check_template(*tpl, {"web"}, diag);
  EXPECT_TRUE(diag.ok()) << diag.joined();
}

TEST(Template, MissingFileIsAClearError) {
  auto tpl = load_template("/nonexistent/t.tmpl");
  ASSERT_FALSE(tpl.ok());
  EXPECT_NE(tpl.error().message.find("cannot read template /nonexistent/t.tmpl"),
            std::string::npos);
}

TEST(Render, NodesWithTwoBackendsIsAnError) {
  auto tpl = parse_template("x\n  {{nodes}}\n", "t.cfg");
  ASSERT_TRUE(tpl.ok());
  auto out = render(*tpl, {{"a", "", {}}, {"b", "", {}}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("t.cfg:2:3:"), std::string::npos) << out.error().message;
}

TEST(Render, ServerLineForms) {
  EXPECT_EQ(server_line(srv("s", "10.0.0.1", 80, 5), ""), "server s 10.0.0.1:80 weight 5");
  EXPECT_EQ(server_line(srv("s", "10.0.0.1", 80, 5), "check", 100001),
            "server s 10.0.0.1:80 weight 5 id 100001 check");
  EXPECT_EQ(server_line(srv("s", "::1", 80, 1), "check"), "server s [::1]:80 weight 1 check");
  EXPECT_EQ(server_line(srv("s", "10.0.0.1", 0, 1), ""), "server s 10.0.0.1 weight 1");
  EXPECT_EQ(server_line(srv("s", "", 0, 1, admin::kForcedMaint | admin::kConfigMaint), "check"),
            "server s 127.0.0.1:1 weight 1 check disabled");
  EXPECT_EQ(server_line(srv("s", "10.0.0.1", 80, 1, admin::kResolutionMaint), ""),
            "server s 10.0.0.1:80 weight 1 disabled");
}

}  // namespace
}  // namespace ep::haproxy::config
