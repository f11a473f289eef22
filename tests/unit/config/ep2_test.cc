// EP2 ep2.conf compatibility: the INI reader (configparser semantics) and the mapping of every
// EP2 key onto ElasticProxy's settings tree.

#include "config/ep2.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ep::config {
namespace {

std::string read(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/ep2/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const ConfigNode& at(const ConfigNode& n, std::string_view key) {
  const ConfigNode* v = n.find(key);
  if (v == nullptr) {
    ADD_FAILURE() << "missing key " << key;
    static ConfigNode empty;
    return empty;
  }
  return *v;
}

std::string scalar(const ConfigNode& n, std::string_view key) { return at(n, key).scalar; }

// ---- INI reader ----

TEST(Ep2Ini, SectionsKeysAndPositions) {
  auto ini = parse_ini("[haproxy]\nBackend_Name = web\nnode_slots: 7\n\n[AWS]\n  asg_name =a\n",
                       "ep2.conf");
  ASSERT_TRUE(ini) << ini.error().message;
  const ConfigNode& h = at(*ini, "haproxy");
  EXPECT_EQ(scalar(h, "backend_name"), "web");  // keys are case-insensitive (lowered)
  EXPECT_EQ(scalar(h, "node_slots"), "7");      // ':' is a delimiter too
  EXPECT_EQ(at(h, "node_slots").mark.str(), "ep2.conf:3:13");
  EXPECT_EQ(scalar(at(*ini, "AWS"), "asg_name"), "a");
}

TEST(Ep2Ini, CommentsContinuationsAndDefaults) {
  auto ini = parse_ini(
      "# comment\n; another\n[DEFAULT]\nregion_name = eu-west-1\n[haproxy]\n"
      "tags = a,\n   b\n\n   c\n# not part of the value\nx = 1 # not a comment\n[AWS]\n",
      "f");
  ASSERT_TRUE(ini) << ini.error().message;
  const ConfigNode& h = at(*ini, "haproxy");
  EXPECT_EQ(scalar(h, "tags"), "a,\nb\n\nc");
  EXPECT_EQ(scalar(h, "x"), "1 # not a comment");  // configparser has no inline comments
  EXPECT_EQ(scalar(at(*ini, "AWS"), "region_name"), "eu-west-1");  // inherited from DEFAULT
}

TEST(Ep2Ini, Interpolation) {
  auto ini = parse_ini("[haproxy]\ndir = /etc/ep2\ntemplate_file = %(dir)s/t.cfg\npct = 50%%\n",
                       "f");
  ASSERT_TRUE(ini) << ini.error().message;
  EXPECT_EQ(scalar(at(*ini, "haproxy"), "template_file"), "/etc/ep2/t.cfg");
  EXPECT_EQ(scalar(at(*ini, "haproxy"), "pct"), "50%");

  auto bad = parse_ini("[haproxy]\nx = 50%\n", "f");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("f:2:5"), std::string::npos) << bad.error().message;
  auto missing = parse_ini("[haproxy]\nx = %(nope)s\n", "f");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("unknown key 'nope'"), std::string::npos);
  auto loop = parse_ini("[haproxy]\na = %(b)s\nb = %(a)s\n", "f");
  ASSERT_FALSE(loop);
  EXPECT_NE(loop.error().message.find("10 levels"), std::string::npos);
}

TEST(Ep2Ini, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"backend_name = x\n[haproxy]\n", "f:1:1: 'backend_name = x' comes before the first"},
      {"[haproxy]\n[haproxy]\n", "f:2:1: section [haproxy] appears twice"},
      {"[haproxy]\na = 1\nA = 2\n", "f:3:1: key 'a' appears twice in section [haproxy]"},
      {"[haproxy]\njust words\n", "f:2:1: 'just words' is not 'key = value'"},
      {"[haproxy\n", "f:1:1: section header '[haproxy' is missing its closing ']'"},
      {"[haproxy]\n= 1\n", "f:2:1: a key is missing before '='"},
  };
  for (const auto& c : cases) {
    auto r = parse_ini(c.text, "f");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos)
        << "got: " << r.error().message << "\nwant: " << c.expect;
  }
}

TEST(Ep2Ini, NulByteIsAnError) {
  const std::string text("[haproxy]\na = x\0y\n", 17);
  auto r = parse_ini(text, "f");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("f:2:1: NUL byte"), std::string::npos) << r.error().message;
}

TEST(Ep2Ini, LooksLikeIni) {
  EXPECT_TRUE(looks_like_ini("\n# EP2\n[haproxy]\nx = 1\n"));
  EXPECT_TRUE(looks_like_ini("[AWS]"));
  EXPECT_FALSE(looks_like_ini("haproxy:\n  sockets: [a]\n"));
  EXPECT_FALSE(looks_like_ini("# yaml\n[a, b]\n"));  // a YAML flow sequence
  EXPECT_FALSE(looks_like_ini(""));
}

// ---- mapping ----

ConfigNode map_file(const std::string& name, Diagnostics& diag, std::vector<std::string>& notes) {
  auto ini = parse_ini(read(name), name);
  EXPECT_TRUE(ini) << ini.error().message;
  if (!ini) return {};
  return ep2_to_settings_node(*ini, "/etc/ep2", diag, notes);
}

TEST(Ep2Mapping, ReadmeAwsConfig) {
  Diagnostics diag;
  std::vector<std::string> notes;
  ConfigNode root = map_file("aws.conf", diag, notes);
  ASSERT_TRUE(diag.ok()) << diag.joined();
  const ConfigNode& h = at(root, "haproxy");
  ASSERT_EQ(at(h, "sockets").items.size(), 1u);
  EXPECT_EQ(at(h, "sockets").items[0].scalar, "/var/run/haproxy/haproxy.sock");
  EXPECT_EQ(scalar(h, "config"), "/etc/haproxy/haproxy.cfg");
  EXPECT_EQ(scalar(h, "template"), "/etc/ep2/haproxy.cfg.template");
  EXPECT_EQ(scalar(h, "binary"), "/usr/sbin/haproxy");
  EXPECT_EQ(scalar(h, "pidfile"), "/run/haproxy.pid");
  EXPECT_EQ(scalar(h, "update"), "runtime");
  EXPECT_EQ(scalar(h, "bootstrap"), "true");
  EXPECT_EQ(scalar(at(h, "reload"), "method"), "systemctl");
  EXPECT_EQ(scalar(at(h, "reload"), "unit"), "haproxy");

  const ConfigNode& backends = at(root, "backends");
  ASSERT_EQ(backends.items.size(), 1u);
  const ConfigNode& b = backends.items[0];
  EXPECT_EQ(scalar(b, "name"), "haproxynode");
  EXPECT_EQ(b.find("slots"), nullptr);  // dynamic servers: no slot pool to size
  EXPECT_EQ(scalar(b, "server_options"), "check");
  const ConfigNode& asg = at(at(b, "sources").items.at(0), "aws_asg");
  EXPECT_EQ(scalar(asg, "asg_name"), "web-asg, web-asg-canary");
  EXPECT_EQ(scalar(asg, "region"), "eu-west-1");
  EXPECT_EQ(scalar(asg, "port"), "6003");
  EXPECT_EQ(scalar(asg, "interval"), "5s");
  // Empty keys in the sample mean "not set": the AWS credential chain is used.
  EXPECT_EQ(asg.find("access_key_id"), nullptr);
  // EP2 silently used public IPs without ip_type; we use private ones and say so.
  bool ip_note = false, lock_note = false, log_note = false;
  for (const auto& n : notes) {
    ip_note |= n.find("ip_type not set: using private IPs") != std::string::npos;
    lock_note |= n.find("lock_dir is not used") != std::string::npos;
    log_note |= n.find("log_file is not used") != std::string::npos;
  }
  EXPECT_TRUE(ip_note && lock_note && log_note);
}

TEST(Ep2Mapping, ConsulSectionAndConfigUpdates) {
  Diagnostics diag;
  std::vector<std::string> notes;
  ConfigNode root = map_file("consul.conf", diag, notes);
  ASSERT_TRUE(diag.ok()) << diag.joined();
  const ConfigNode& h = at(root, "haproxy");
  ASSERT_EQ(at(h, "sockets").items.size(), 2u);  // EP2's nbproc list: one instance each
  EXPECT_EQ(at(h, "sockets").items[1].scalar, "/run/haproxy/b.sock");
  EXPECT_EQ(scalar(h, "update"), "config");
  EXPECT_EQ(scalar(at(h, "reload"), "method"), "binary");
  const ConfigNode& b = at(root, "backends").items.at(0);
  EXPECT_EQ(scalar(b, "server_options"), "check inter 2000 maxconn 100");
  // orchestrator = Consul (capitalised) works: EP2 crashed on it (its bug #19).
  const ConfigNode& consul = at(at(b, "sources").items.at(0), "consul");
  EXPECT_EQ(scalar(consul, "service"), "web");
  EXPECT_EQ(scalar(consul, "address"), "10.1.2.3:8501");
  EXPECT_EQ(scalar(consul, "passing_only"), "False");  // read as a boolean later (EP2 bug #7)
  ASSERT_EQ(at(consul, "tags").items.size(), 2u);
  EXPECT_EQ(at(consul, "tags").items[1].scalar, "v2");
}

TEST(Ep2Mapping, DefaultsWhenKeysAreMissing) {
  auto ini = parse_ini("[haproxy]\n[aws]\nasg_name = a\nip_type = PUBLIC\n", "f");
  ASSERT_TRUE(ini);
  Diagnostics diag;
  std::vector<std::string> notes;
  ConfigNode root = ep2_to_settings_node(*ini, "/nonexistent", diag, notes);
  ASSERT_TRUE(diag.ok()) << diag.joined();
  const ConfigNode& h = at(root, "haproxy");
  EXPECT_EQ(at(h, "sockets").items.at(0).scalar, "/var/run/haproxy/haproxy.sock");
  EXPECT_EQ(scalar(h, "config"), "/etc/haproxy/haproxy.cfg");
  EXPECT_EQ(scalar(h, "template"), "/nonexistent/ep2.template");
  EXPECT_EQ(scalar(h, "update"), "runtime");
  EXPECT_EQ(scalar(at(h, "reload"), "method"), "binary");
  const ConfigNode& b = at(root, "backends").items.at(0);
  EXPECT_EQ(scalar(b, "name"), "haproxynode");
  const ConfigNode& asg = at(at(b, "sources").items.at(0), "aws_asg");
  EXPECT_EQ(scalar(asg, "address"), "public");
  EXPECT_EQ(scalar(asg, "port"), "6003");
}

TEST(Ep2Mapping, BadValuesAreErrorsAtTheirLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"[haproxy]\nupdate_type = update_by_magic\n[AWS]\nasg_name=a\n",
       "f:2:15: [haproxy] update_type: 'update_by_magic' is not update_by_runtime or "
       "update_by_config"},
      {"[haproxy]\nstart_by = init\n[AWS]\nasg_name=a\n", "'init' was never implemented"},
      {"[haproxy]\nbackend_port = 70000\n[AWS]\nasg_name=a\n", "not a port"},
      {"[haproxy]\ncheck_interval = 2 s\n[AWS]\nasg_name=a\n", "not an HAProxy time"},
      {"[haproxy]\nsleep_before_next_run = soon\n[AWS]\nasg_name=a\n",
       "not a number of seconds"},
      {"[haproxy]\norchestrator = k8s\n", "'k8s' is not aws or consul"},
      {"[haproxy]\norchestrator = aws\n", "the [AWS] section is missing"},
      {"[haproxy]\n[AWS]\nregion_name = x\n", "[AWS] asg_name: required"},
      {"[haproxy]\n[AWS]\nasg_name = a\naws_access_key_id = AKID\n",
       "must be set together"},
      {"[haproxy]\n[AWS]\nasg_name = a\nip_type = elastic\n", "'elastic' is not private or public"},
      {"[haproxy]\norchestrator = consul\n[CONSUL]\nconsul_ip = x\n",
       "[CONSUL] service_name: required"},
      {"[aws]\nasg_name = a\n", "the [haproxy] section is missing"},
  };
  for (const auto& c : cases) {
    auto ini = parse_ini(c.text, "f");
    ASSERT_TRUE(ini) << c.text;
    Diagnostics diag;
    std::vector<std::string> notes;
    (void)ep2_to_settings_node(*ini, "/", diag, notes);
    EXPECT_NE(diag.joined().find(c.expect), std::string::npos)
        << "text:\n" << c.text << "got: " << diag.joined() << "\nwant: " << c.expect;
  }
}

TEST(Ep2Mapping, UnknownKeysAndSectionsAreNotedNotFatal) {
  auto ini = parse_ini("[haproxy]\nflux = 1\n[AWS]\nasg_name = a\nfoo = 2\n[extra]\n", "f");
  ASSERT_TRUE(ini);
  Diagnostics diag;
  std::vector<std::string> notes;
  (void)ep2_to_settings_node(*ini, "/", diag, notes);
  EXPECT_TRUE(diag.ok()) << diag.joined();
  std::string all;
  for (const auto& n : notes) all += n + "\n";
  EXPECT_NE(all.find("f:2:1: [haproxy] flux: unknown key, ignored"), std::string::npos) << all;
  EXPECT_NE(all.find("f:5:1: [AWS] foo: unknown key"), std::string::npos) << all;
  EXPECT_NE(all.find("section [extra] is not an EP2 section"), std::string::npos) << all;
}

}  // namespace
}  // namespace ep::config
