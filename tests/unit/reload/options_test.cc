#include "haproxy/reload/options.h"

#include <gtest/gtest.h>

#include "config/settings.h"

namespace ep::haproxy::reload {
namespace {

ConfigNode yaml(const std::string& text) {
  auto n = config::parse_yaml(text, "ep.yaml");
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
  return n.ok() ? *n : ConfigNode{};
}

Options parse(const std::string& text, const Target& t, Diagnostics& diag) {
  ConfigNode root = yaml(text);
  const ConfigNode* reload = root.find("reload");
  return parse_options(reload ? *reload : ConfigNode{}, t, diag);
}

TEST(ReloadOptions, DefaultsFollowWhatIsConfigured) {
  Diagnostics diag;
  Target t;
  EXPECT_EQ(parse("x: 1\n", t, diag).method, Method::kNone);
  t.pidfile = "/run/haproxy.pid";
  t.config = "/etc/haproxy/haproxy.cfg";
  EXPECT_EQ(parse("x: 1\n", t, diag).method, Method::kBinary);
  t.master_socket = "/run/haproxy-master.sock";
  Options o = parse("x: 1\n", t, diag);
  EXPECT_EQ(o.method, Method::kMasterCli);
  EXPECT_TRUE(diag.ok()) << diag.joined();
  EXPECT_EQ(o.unit, "haproxy");
  EXPECT_EQ(o.timeout, std::chrono::seconds(10));
  EXPECT_EQ(o.quiet, std::chrono::milliseconds(500));
  EXPECT_EQ(o.max_wait, std::chrono::seconds(5));
  EXPECT_EQ(o.min_interval, std::chrono::seconds(2));
}

TEST(ReloadOptions, ReadsEveryKey) {
  Diagnostics diag;
  Options o = parse(
      "reload:\n  method: command\n  command: [/usr/local/bin/hup, --fast]\n  unit: lb\n"
      "  timeout: 3s\n  quiet: 100ms\n  max_wait: 1s\n  min_interval: 0s\n",
      Target{}, diag);
  ASSERT_TRUE(diag.ok()) << diag.joined();
  EXPECT_EQ(o.method, Method::kCommand);
  EXPECT_EQ(o.command, (std::vector<std::string>{"/usr/local/bin/hup", "--fast"}));
  EXPECT_EQ(o.unit, "lb");
  EXPECT_EQ(o.timeout, std::chrono::seconds(3));
  EXPECT_EQ(o.quiet, std::chrono::milliseconds(100));
  EXPECT_EQ(o.max_wait, std::chrono::seconds(1));
  EXPECT_EQ(o.min_interval, std::chrono::seconds(0));
}

// haproxy.reload.bulk_threshold: the default `auto` (over 1,000 additions and when predicted
// faster), `auto` written out, a value, 0 (off), and a negative or other value refused with its
// position.
TEST(ReloadOptions, BulkThreshold) {
  Diagnostics diag;
  EXPECT_EQ(parse("x: 1\n", Target{}, diag).bulk_threshold, Options::kAuto);
  EXPECT_EQ(parse("reload: {bulk_threshold: auto}\n", Target{}, diag).bulk_threshold,
            Options::kAuto);
  EXPECT_EQ(parse("reload: {bulk_threshold: 20}\n", Target{}, diag).bulk_threshold, 20);
  EXPECT_EQ(parse("reload: {bulk_threshold: 0}\n", Target{}, diag).bulk_threshold, 0);
  ASSERT_TRUE(diag.ok()) << diag.joined();
  Diagnostics bad;
  parse("reload:\n  bulk_threshold: -1\n", Target{}, bad);
  EXPECT_NE(bad.joined().find("ep.yaml:2:19"), std::string::npos) << bad.joined();
  EXPECT_NE(bad.joined().find("bulk_threshold"), std::string::npos) << bad.joined();
  Diagnostics word;
  parse("reload:\n  bulk_threshold: many\n", Target{}, word);
  EXPECT_NE(word.joined().find("ep.yaml:2:19"), std::string::npos) << word.joined();
  EXPECT_NE(word.joined().find("must be 'auto' or a whole number from 0 to 1000000, got 'many'"),
            std::string::npos)
      << word.joined();
}

TEST(ReloadOptions, ErrorsCarryPositions) {
  Diagnostics diag;
  parse("reload:\n  method: hup\n  bogus: 1\n  timeout: 0s\n", Target{}, diag);
  const std::string all = diag.joined();
  EXPECT_NE(all.find("ep.yaml:2:11"), std::string::npos) << all;  // method value
  EXPECT_NE(all.find("bogus"), std::string::npos) << all;
  EXPECT_NE(all.find("ep.yaml:4:12: haproxy.reload.timeout must be greater than 0"),
            std::string::npos)
      << all;
}

TEST(ReloadOptions, MethodRequirementsAreChecked) {
  Diagnostics diag;
  parse("reload:\n  method: master-cli\n", Target{}, diag);
  EXPECT_NE(diag.joined().find("ep.yaml:2:11: haproxy.reload.method master-cli needs "
                               "haproxy.master_socket"),
            std::string::npos)
      << diag.joined();
  Diagnostics d2;
  parse("reload:\n  method: signal\n", Target{}, d2);
  EXPECT_NE(d2.joined().find("needs haproxy.pidfile"), std::string::npos) << d2.joined();
  Diagnostics d3;
  parse("reload:\n  method: command\n", Target{}, d3);
  EXPECT_NE(d3.joined().find("needs haproxy.reload.command"), std::string::npos) << d3.joined();
  Diagnostics d4;
  parse("reload:\n  quiet: 10s\n  max_wait: 1s\n", Target{}, d4);
  EXPECT_NE(d4.joined().find("must not be longer than max_wait"), std::string::npos) << d4.joined();
  Diagnostics d5;
  parse("reload:\n  method: systemctl\n", Target{}, d5);
  EXPECT_TRUE(d5.ok()) << d5.joined();
}

}  // namespace
}  // namespace ep::haproxy::reload
