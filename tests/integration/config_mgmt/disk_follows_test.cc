// Disk follows runtime, end to end: the daemon changes HAProxy at runtime and keeps the rendered
// haproxy.cfg equal to it; HAProxy restarted from that file runs the same servers.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "integration/daemon/daemon_process.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/haproxy_fixture.h"
#include "support/haproxy/servers_state.h"
#include "support/haproxy/http_backend.h"
#include "support/haproxy/loopback.h"

namespace ep::test {
namespace {

using namespace std::chrono_literals;

struct Row {
  std::string addr;
  int admin = 0, weight = 0, port = 0;
  bool operator==(const Row&) const = default;
};

std::map<std::string, Row> servers(const HaproxyFixture& hp, const std::string& backend) {
  std::map<std::string, Row> out;
  for (const auto& [name, r] : servers_state(hp, backend)) {
    // Admin bits that survive a config round trip: forced/config maintenance as "in maint".
    out[name] = Row{r.addr, (r.admin & 0x23) ? 1 : 0, r.weight, r.port};
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// HAProxy's starting config and the template share everything but the managed server lines.
const char* kHead = R"(global
  stats socket @SOCKET@ level admin
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:@PORT0@
  default_backend web
backend web
  balance roundrobin
  server handmade 127.0.0.1:@PORT1@ disabled
)";
const char* kSlotsHead = R"(frontend fe_slots
  bind 127.0.0.1:@PORT2@
  default_backend slots
backend slots
  balance static-rr
)";

std::string target(const HttpBackend& b) { return "127.0.0.1:" + std::to_string(b.port()); }

TEST(ConfigMgmtE2E, DiskFollowsRuntimeAndRestartFromFileReproducesIt) {
  if (!HaproxyFixture::available()) GTEST_SKIP() << "haproxy not installed";
  HaproxyFixture hp(std::string(kHead) + kSlotsHead +
                    "  server-template ep- 3 127.0.0.1:1 check inter 200ms disabled\n");
  ASSERT_TRUE(hp.start().ok()) << hp.log();
  std::vector<std::unique_ptr<HttpBackend>> bs;
  for (int i = 0; i < 3; ++i) {
    bs.push_back(std::make_unique<HttpBackend>("b" + std::to_string(i)));
    ASSERT_TRUE(bs.back()->ok());
  }
  const std::string dir = hp.dir();
  // The template: HAProxy's config as it runs (placeholders already resolved by the fixture)
  // with the managed lines replaced by placeholders.
  std::string tpl = hp.config();
  const std::string st = "  server-template ep- 3 127.0.0.1:1 check inter 200ms disabled\n";
  ASSERT_NE(tpl.find(st), std::string::npos);
  replace_all(tpl, st, "  {{ servers \"slots\" }}\n");
  replace_all(tpl, "  server handmade", "  {{ servers web }}\n  server handmade");
  write_file(dir + "/haproxy.cfg.tmpl", tpl);
  write_file(dir + "/web.json", "[{\"targets\": [\"" + target(*bs[0]) + "\", \"" + target(*bs[1]) +
                                    "\"], \"labels\": {\"weight\": \"7\"}}]\n");
  write_file(dir + "/slots.json", "[{\"targets\": [\"" + target(*bs[2]) + "\"]}]\n");
  const std::string rendered = dir + "/rendered.cfg";
  write_file(dir + "/ep.yaml", "haproxy:\n  sockets: [" + hp.socket_path() +
                                   "]\n  timeout: 1s\n  binary: " + haproxy_binary() +
                                   "\n  template: haproxy.cfg.tmpl\n"
                                   "  config: rendered.cfg\n"
                                   "backends:\n"
                                   "  - name: web\n"
                                   "    sources:\n"
                                   "      - file: {path: web.json}\n"
                                   "  - name: slots\n"
                                   "    slots: 3\n"
                                   "    server_options: check inter 200ms\n"
                                   "    sources:\n"
                                   "      - file: {path: slots.json}\n");
  DaemonProcess daemon;
  ASSERT_TRUE(
      daemon.start({"run", "-c", dir + "/ep.yaml", "--log-level", "debug"}, dir + "/ep.log"));
  const std::string web0 = "ep-" + target(*bs[0]), web1 = "ep-" + target(*bs[1]);
  ASSERT_TRUE(wait_until([&] {
    const std::string text = slurp(rendered);
    return text.find(web0) != std::string::npos && text.find(web1) != std::string::npos &&
           text.find(target(*bs[2])) != std::string::npos;
  })) << daemon.log();
  std::string text = slurp(rendered);
  EXPECT_NE(text.find("  server " + web0 + " " + target(*bs[0]) + " weight 7\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  server handmade"), std::string::npos);
  EXPECT_NE(text.find("  server ep-1 " + target(*bs[2]) + " weight 1 check inter 200ms\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  server ep-2 127.0.0.1:1 weight 1 check inter 200ms disabled\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.back(), '\n');

  // A runtime change: one web server goes, its weight changes on the other; the file follows.
  write_file_atomic(dir + "/web.json", "[{\"targets\": [\"" + target(*bs[0]) +
                                           "\"], \"labels\": {\"weight\": \"3\"}}]\n");
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string t = slurp(rendered);
        return t.find(web1) == std::string::npos &&
               t.find(web0 + " " + target(*bs[0]) + " weight 3\n") != std::string::npos;
      },
      40s))
      << daemon.log() << slurp(rendered);
  EXPECT_TRUE(std::filesystem::exists(rendered + ".bak"));
  EXPECT_NE(daemon.log().find("wrote " + rendered), std::string::npos) << daemon.log();
  const auto web_before = servers(hp, "web");
  const auto slots_before = servers(hp, "slots");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();

  // HAProxy restarted from the written file (its own socket and frontend ports) runs the same
  // servers: names, addresses, ports, weights, maintenance.
  ASSERT_TRUE(hp.stop().ok());
  std::string again = slurp(rendered);
  replace_all(again, hp.socket_path(), "@SOCKET@");
  replace_all(again, "127.0.0.1:" + std::to_string(hp.port(0)) + "\n", "127.0.0.1:@PORT0@\n");
  replace_all(again, "127.0.0.1:" + std::to_string(hp.port(2)) + "\n", "127.0.0.1:@PORT2@\n");
  HaproxyFixture hp2(again);
  ASSERT_TRUE(hp2.start().ok()) << hp2.log() << again;
  EXPECT_EQ(servers(hp2, "web"), web_before);
  EXPECT_EQ(servers(hp2, "slots"), slots_before);
  ASSERT_EQ(web_before.size(), 2u);  // handmade + web0
  EXPECT_EQ(web_before.at(web0).weight, 3);
  EXPECT_EQ(slots_before.at("ep-2").admin, 1);
  auto r = http_get(hp2.port(0), "/");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, bs[0]->name());
}

TEST(ConfigMgmtE2E, CheckReportsTemplateErrorsWithPosition) {
  char tmpl[] = "/tmp/ep-cm-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  write_file(dir + "/t.tmpl", "global\nbackend web\n  {{ server \"web\" }}\n");
  write_file(dir + "/web.json", "[]\n");
  write_file(dir + "/ep.yaml",
             "haproxy:\n  sockets: [/tmp/nonexistent.sock]\n  template: t.tmpl\n  config: out.cfg\n"
             "backends:\n  - name: web\n    sources:\n      - file: {path: web.json}\n");
  auto r = run_elasticproxy({"check", "-c", dir + "/ep.yaml"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(dir + "/t.tmpl:3:6: unknown placeholder 'server \"web\"'"), std::string::npos)
      << r.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ep::test
