// status_json() writes /status directly (a small streaming writer, for 1,000 backends × 10
// servers); this checks it against the implementation it replaced, which built the document with
// nlohmann::json: the same bytes, pretty and compact, for a rich snapshot with hostile strings.

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>

#include "ops/endpoints.h"
#include "ops/redact.h"

namespace ep::ops {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

double seconds_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

double unix_seconds(SteadyTime t, SteadyTime now) {
  const auto wall = std::chrono::system_clock::now() -
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(now - t);
  return std::chrono::duration<double>(wall.time_since_epoch()).count();
}

const char* server_state(const ActualServer& s) {
  if (s.draining()) return "drain";
  if (s.in_maint()) return "maint";
  switch (s.op_state) {
    case 0:
      return "down";
    case 1:
      return "starting";
    case 2:
      return "up";
    case 3:
      return "stopping";
  }
  return "unknown";
}

// The implementation before the streaming writer, unchanged.
std::string reference_status_json(const std::optional<OpsSnapshot>& snap,
                                  const EndpointOptions& options, bool compact) {
  const int indent = compact ? -1 : 2;
  json j;
  j["version"] = options.version;
  const Health h = check_health(snap, options);
  const Health r = check_ready(snap);
  j["healthy"] = h.ok;
  j["ready"] = r.ok;
  if (!r.ok) j["not_ready_because"] = r.reason;
  if (!h.ok) j["unhealthy_because"] = redact(h.reason);
  j["instances"] = json::array();
  j["backends"] = json::array();
  if (!snap) return j.dump(indent, ' ', false, json::error_handler_t::replace) + "\n";
  j["reconciler_last_loop_seconds_ago"] = seconds_between(snap->last_loop, snap->now);

  for (const auto& inst : snap->instances) {
    json ji;
    ji["name"] = redact(inst.name);
    if (snap->config) {
      const auto& c = *snap->config;
      const bool named = std::any_of(snap->instances.begin(), snap->instances.end(),
                                     [&](const auto& i) { return i.name == c.instance; });
      if (named ? inst.name == c.instance : &inst == &snap->instances.front()) {
        json jc;
        jc["path"] = redact(c.path);
        jc["mode"] = c.config_mode ? "config" : "follow";
        jc["reloads"] = c.reloads;
        if (c.last_reload) {
          jc["last_reload"] = {{"result", c.last_reload->result},
                               {"message", redact(c.last_reload->message)},
                               {"duration_seconds", c.last_reload->seconds},
                               {"seconds_ago", seconds_between(c.last_reload->at, snap->now)}};
        }
        ji["config"] = std::move(jc);
      }
    }
    ji["reachable"] = inst.reachable;
    if (inst.reachable) {
      ji["haproxy_version"] = inst.info.version;
      ji["pid"] = inst.info.pid;
      ji["uptime_seconds"] = inst.info.uptime_sec;
    }
    if (!inst.last_error.empty()) ji["last_error"] = redact(inst.last_error);
    ji["backends"] = json::array();
    for (const auto& b : inst.backends) {
      json jb;
      jb["backend"] = b.backend;
      jb["mode"] = reconcile::to_string(b.mode);
      jb["ready"] = b.ready;
      jb["converged"] = b.converged;
      jb["desired"] = b.desired;
      jb["actual"] = b.actual;
      jb["draining"] = b.draining;
      if (b.missing_slots > 0) jb["missing_slots"] = b.missing_slots;
      if (!b.last_error.empty()) jb["last_error"] = redact(b.last_error);
      json ds = json::array();
      for (const auto& s : b.desired_servers) {
        ds.push_back({{"name", s.name},
                      {"address", s.address_port()},
                      {"weight", s.weight},
                      {"backup", s.backup}});
      }
      jb["desired_servers"] = std::move(ds);
      json as = json::array();
      for (const auto& s : b.actual_servers) {
        ServerSpec tmp;
        tmp.address = s.address;
        tmp.port = s.port;
        json js = {{"name", s.name},
                   {"address", s.address.empty() ? std::string("-") : tmp.address_port()},
                   {"state", server_state(s)},
                   {"weight", s.weight},
                   {"sessions", s.sessions}};
        for (const auto& d : b.drains) {
          if (d.server != s.name) continue;
          js["drain_since_seconds_ago"] = seconds_between(d.since, snap->now);
          if (d.deadline) js["drain_deadline_in_seconds"] = seconds_between(snap->now, *d.deadline);
        }
        if (std::find(b.operator_maint.begin(), b.operator_maint.end(), s.name) !=
            b.operator_maint.end()) {
          js["operator_maint"] = true;  // left in maintenance until the operator enables it
        }
        const bool desired = std::any_of(b.desired_servers.begin(), b.desired_servers.end(),
                                         [&](const ServerSpec& d) { return d.name == s.name; });
        if (s.draining() && !s.health_passed() && desired) js["health_gated"] = true;
        as.push_back(std::move(js));
      }
      if (!b.operator_maint.empty()) jb["operator_maint"] = b.operator_maint;
      jb["actual_servers"] = std::move(as);
      ji["backends"].push_back(std::move(jb));
    }
    j["instances"].push_back(std::move(ji));
  }
  for (const auto& g : snap->guards) {
    json jg;
    jg["backend"] = g.backend;
    jg["ready"] = g.ready;
    jg["held"] = discovery::to_string(g.hold);
    jg["desired"] = g.desired;
    jg["sources"] = json::array();
    for (const auto& s : g.sources) {
      json js;
      js["source"] = redact(s.source);
      js["delivered"] = s.delivered;
      js["healthy"] = s.delivered && !s.failing;
      js["endpoints"] = s.endpoints;
      js["rejected"] = s.rejected;
      js["snapshots"] = s.snapshots;
      js["errors"] = s.errors;
      js["events_per_minute"] = s.events_last_minute;
      if (s.from_state) js["from_state"] = true;  // the set restored from the state file
      if (s.last_success)
        js["last_success_seconds_ago"] = seconds_between(*s.last_success, snap->now);
      if (!s.last_error.empty()) js["last_error"] = redact(s.last_error);
      if (!s.hooks.empty()) {
        json hooks = json::array();
        for (const auto& h : s.hooks) {
          hooks.push_back(
              {{"instance", h.instance},
               {"hook", h.hook},
               {"transition", h.transition},
               {"since_seconds_ago", seconds_between(h.started, snap->now)},
               {"deadline_in_seconds", seconds_between(snap->now, h.deadline)},
               {"next_heartbeat_in_seconds", seconds_between(snap->now, h.next_heartbeat)},
               {"progress", h.progress}});
        }
        js["hooks_in_flight"] = std::move(hooks);
      }
      if (!s.rejected_messages.empty()) {
        json rm = json::array();
        for (const auto& m : s.rejected_messages) rm.push_back(redact(m));
        js["rejected_endpoints"] = std::move(rm);
      }
      if (s.labels) {
        json sl = json::object();
        for (const auto& l : *s.labels) {
          json a = json::array();
          for (const auto& [kv, vv] : l.pairs()) {
            const std::string k(kv), v(vv);
            const std::string last = k.substr(k.rfind('.') + 1);
            a.push_back(redact(k + "=" + (is_secret_key(last) ? std::string("***") : v)));
          }
          sl[l.server] = std::move(a);
        }
        js["server_labels"] = std::move(sl);
      }
      if (!s.servers.empty()) js["servers"] = s.servers;
      jg["sources"].push_back(std::move(js));
    }
    if (g.hold != discovery::Hold::kNone) {
      json h;
      h["reason"] = discovery::to_string(g.hold);
      h["servers"] = g.held_servers;
      if (g.held_since) h["since_seconds_ago"] = seconds_between(*g.held_since, snap->now);
      h["would_remove"] = g.would_remove;
      if (g.confirm_at) {
        h["confirm_in_seconds"] = std::max(0.0, seconds_between(snap->now, *g.confirm_at));
      }
      jg["hold"] = std::move(h);
    }
    j["backends"].push_back(std::move(jg));
  }
  // The change timeline, newest first, and the last hour's convergence and changes per minute.
  json tl = json::array();
  const auto& acts = snap->journal.actions;
  for (auto it = acts.rbegin(); it != acts.rend(); ++it) {
    json a;
    a["at_unix"] = unix_seconds(it->at, snap->now);
    a["instance"] = redact(it->instance);
    a["backend"] = it->backend;
    a["server"] = it->server;
    a["action"] = it->action;
    a["reason"] = redact(it->reason);
    a["ok"] = it->ok;
    if (!it->error.empty()) a["error"] = redact(it->error);
    a["latency_ms"] = it->latency_s * 1000.0;
    tl.push_back(std::move(a));
  }
  j["timeline"] = std::move(tl);
  json conv;
  conv["window_minutes"] = snap->journal.minutes.size();
  conv["convergences"] = snap->journal.convergences;
  conv["p50_seconds"] = snap->journal.p50_s;
  conv["p99_seconds"] = snap->journal.p99_s;
  conv["changes"] = snap->journal.changes;
  json mins = json::array();
  for (const auto& m : snap->journal.minutes) {
    mins.push_back({{"changes", m.changes},
                    {"convergences", m.convergences},
                    {"p50_seconds", m.p50_s},
                    {"p99_seconds", m.p99_s}});
  }
  conv["minutes"] = std::move(mins);
  j["convergence"] = std::move(conv);
  return j.dump(indent, ' ', false, json::error_handler_t::replace) + "\n";
}

// Strings discovery or HAProxy could hand us: quotes, backslashes, every control character, DEL,
// markup, valid UTF-8 (2-, 3- and 4-byte), invalid UTF-8 (lone continuation, truncated sequence,
// overlong, surrogate), NUL, and secret-looking text that redact() must mask.
std::vector<std::string> hostile_strings() {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  return {"",
          "plain",
          "quote \" backslash \\ slash /",
          controls,
          "del \x7f end",
          "<script>alert(1)</script>&amp;",
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
          "lone \x80 continuation",
          "truncated \xe2\x82",
          "overlong \xc0\xaf",
          "surrogate \xed\xa0\x80",
          "bad end \xff",
          std::string("nul \0 inside", 12),
          "\x1b]0;pwned\x07 \u2028 \u2029",
          "token=abcdef123456 password: hunter22 AKIAABCDEFGHIJKLMNOP",
          "http://user:pa55word@consul:8500/v1"};
}

OpsSnapshot rich_snapshot() {
  const auto hostile = hostile_strings();
  OpsSnapshot snap;
  snap.now = SteadyTime{} + 100000s;
  snap.last_loop = snap.now - 1234ms;
  snap.sources_ready = true;
  snap.converged = false;
  for (int i = 0; i < 3; ++i) {
    reconcile::InstanceStatus inst;
    inst.name = i == 2 ? hostile[3] : "/run/haproxy/admin" + std::to_string(i) + ".sock";
    inst.reachable = i != 1;
    inst.info.version = "2.8.3";
    inst.info.pid = 4000 + i;
    inst.info.uptime_sec = 86400 * i + 7;
    if (i == 1) inst.last_error = "connect: " + hostile[7];
    for (size_t bi = 0; bi < hostile.size(); ++bi) {
      reconcile::BackendStatus b;
      b.backend = hostile[bi].empty() ? "web" : hostile[bi];
      b.ready = bi % 2 == 0;
      b.converged = bi % 3 == 0;
      b.desired = bi;
      b.actual = bi + 1;
      b.draining = bi % 4;
      b.missing_slots = static_cast<int>(bi % 3) - 1;
      b.mode = bi % 2 ? reconcile::BackendMode::kSlots : reconcile::BackendMode::kDynamic;
      if (bi % 5 == 1) b.last_error = hostile[(bi + 3) % hostile.size()];
      std::vector<ServerSpec> ds;
      std::vector<ActualServer> as;
      for (int s = 0; s < 4; ++s) {
        ServerSpec spec;
        spec.name = s == 3 ? hostile[(bi + s) % hostile.size()] : "ep-10.0.0." + std::to_string(s);
        spec.address = s == 2 ? "fd00::" + std::to_string(s) : "10.0.0." + std::to_string(s);
        spec.port = static_cast<uint16_t>(8000 + s);
        spec.weight = s * 37;
        spec.backup = s == 1;
        ds.push_back(spec);
        ActualServer a;
        a.name = spec.name;
        a.address = s == 0 ? "" : spec.address;
        a.port = spec.port;
        a.op_state = (s + static_cast<int>(bi)) % 5;
        a.admin_state = s == 1 ? 0x01 : (s == 2 ? 0x08 : 0);
        a.weight = -s;
        a.sessions = s * 1000;
        // Checks enabled, none passed yet: a draining desired server is health-gated.
        if (bi % 2 == 0) a.check_state = 0x06;
        as.push_back(a);
      }
      if (bi % 3 == 0) ds.erase(ds.begin() + 2);  // draining, no longer desired: not health-gated
      // As the guard gives them: sorted by name.
      std::sort(ds.begin(), ds.end(),
                [](const ServerSpec& x, const ServerSpec& y) { return x.name < y.name; });
      b.desired_servers = SharedList<ServerSpec>(ds);
      b.actual_servers = SharedList<ActualServer>(as);
      if (bi % 3 == 2) b.operator_maint = {as[1].name, as[3].name};
      // Draining servers: one with a deadline (past or ahead), one without (held / warming).
      if (bi % 2 == 0) {
        b.drains.push_back(
            {as[2].name, snap.now - std::chrono::milliseconds(700 * bi + 1),
             snap.now + std::chrono::milliseconds(3000 - 500 * static_cast<int>(bi))});
        b.drains.push_back({as[3].name, snap.now - 2500ms, std::nullopt});
      }
      inst.backends.push_back(b);
    }
    snap.instances.push_back(inst);
  }
  for (size_t gi = 0; gi < hostile.size(); ++gi) {
    discovery::GuardStatus g;
    g.backend = hostile[gi];
    g.ready = gi % 2 == 1;
    g.desired = gi * 3;
    g.hold = gi % 3 == 0 ? discovery::Hold::kNone
                         : (gi % 3 == 1 ? discovery::Hold::kShrink : discovery::Hold::kEmpty);
    g.held_servers = gi;
    if (gi % 2) g.held_since = snap.now - std::chrono::milliseconds(1500 * gi);
    if (gi % 4 == 1) g.confirm_at = snap.now + std::chrono::milliseconds(333 * gi);
    if (gi % 4 == 3) g.confirm_at = snap.now - 1s;  // overdue: shown as 0
    g.would_remove = {hostile[gi], "ep-10.0.0.9:80"};
    for (int si = 0; si < 2; ++si) {
      discovery::SourceStatus s;
      s.backend = g.backend;
      s.source = si ? "consul " + hostile[(gi + 1) % hostile.size()] : "file /etc/ep.json";
      s.delivered = (gi + si) % 3 != 0;
      s.failing = si == 1;
      s.from_state = gi % 5 == 0;
      s.endpoints = gi + si;
      s.rejected = si;
      s.snapshots = 1000000007ULL * gi + si;
      s.errors = gi * si;
      s.events_last_minute = gi % 7;
      if (si) s.last_success = snap.now - std::chrono::microseconds(123456789 * gi + 1);
      if ((gi + si) % 2) s.last_error = hostile[(gi + 2) % hostile.size()];
      if (si) s.rejected_messages = {hostile[gi], "endpoint \"x\": not an IP literal"};
      if (gi % 3 == 1) s.servers = {"ep-10.0.0." + std::to_string(si), hostile[gi]};
      if (si == 1 && gi % 2 == 0) {
        // Consul's service name, tags and meta (and any source's labels), hostile too; a
        // secret-looking meta key's value is hidden.
        std::vector<discovery::ServerLabels> labels;
        labels.push_back({"ep-10.0.0.1",
                          {{"consul.service", hostile[gi]},
                           {"consul.tags", hostile[(gi + 1) % hostile.size()]},
                           {"consul.meta.db_password", "s3cr3t-meta"},
                           {"consul.meta." + hostile[(gi + 5) % hostile.size()],
                            hostile[(gi + 2) % hostile.size()]}}});
        labels.push_back({hostile[(gi + 3) % hostile.size()], {{"zone", "a"}}});
        std::sort(labels.begin(), labels.end(),
                  [](const auto& a, const auto& b) { return a.server < b.server; });
        s.labels = std::make_shared<const std::vector<discovery::ServerLabels>>(labels);
      }
      if (gi % 4 == 0) {
        discovery::HookInFlight h;
        h.instance = "i-0123456789abcdef" + std::to_string(gi);
        h.hook = hostile[gi];
        h.transition = "autoscaling:EC2_INSTANCE_TERMINATING";
        h.started = snap.now - 20s;
        h.deadline = snap.now + 280500ms;
        h.next_heartbeat = snap.now + 40s;
        h.progress = "2 session(s), active on 0 of 1 HAProxy";
        s.hooks.push_back(h);
      }
      g.sources.push_back(s);
    }
    snap.guards.push_back(g);
  }
  for (size_t ai = 0; ai < hostile.size(); ++ai) {
    reconcile::ActionRecord a;
    a.at = snap.now - std::chrono::seconds(ai * 7);
    a.instance = ai % 2 ? hostile[ai] : "/run/haproxy/admin0.sock";
    a.backend = hostile[(ai + 1) % hostile.size()];
    a.server = hostile[(ai + 2) % hostile.size()];
    a.action = ai % 2 ? "add" : "drain";
    a.reason = "new in discovery " + hostile[(ai + 3) % hostile.size()];
    a.ok = ai % 3 != 0;
    if (!a.ok) a.error = hostile[(ai + 4) % hostile.size()];
    a.latency_s = 0.001 * static_cast<double>(ai * ai) + 1e-9;
    snap.journal.actions.push_back(a);
  }
  ConfigStatus cfg;
  cfg.instance = "/run/haproxy/admin1.sock";
  cfg.path = "/etc/haproxy/" + hostile[5] + ".cfg";
  cfg.config_mode = true;
  cfg.reloads = 12;
  cfg.last_reload = ConfigStatus::Reload{snap.now - 4321ms, "rolled_back",
                                         "[ALERT] parsing: " + hostile[14] + hostile[9], 0.25};
  snap.config = cfg;
  snap.journal.convergences = 17;
  snap.journal.p50_s = 0.1;
  snap.journal.p99_s = 2.5e-5;
  snap.journal.changes = 99;
  snap.journal.minutes.resize(60);
  for (size_t m = 0; m < 60; ++m) {
    snap.journal.minutes[m].changes = m;
    snap.journal.minutes[m].convergences = m / 2;
    snap.journal.minutes[m].p50_s = static_cast<double>(m) / 3.0;
    snap.journal.minutes[m].p99_s = m == 7 ? 1e21 : static_cast<double>(m) * 1e-7;
  }
  return snap;
}

EndpointOptions opts(std::string version) {
  EndpointOptions o;
  o.version = std::move(version);
  o.stuck_after = 30s;
  return o;
}

// at_unix is read from the wall clock at each call: mask it so two calls compare.
std::string mask_clock(const std::string& doc) {
  static const std::regex kAt("(\"at_unix\": ?)[-0-9.e+]+");
  return std::regex_replace(doc, kAt, "$1T");
}

class StatusJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_secrets();
    register_secret("hunter22");
  }
  void TearDown() override { clear_secrets(); }
};

TEST_F(StatusJsonTest, ByteIdenticalToTheNlohmannDocumentForARichHostileSnapshot) {
  const auto snap = rich_snapshot();
  const EndpointOptions options = opts("1.2.3 \"quoted\" \x01");
  for (const bool compact : {false, true}) {
    const std::string got = status_json(snap, options, compact);
    const std::string want = reference_status_json(snap, options, compact);
    ASSERT_EQ(mask_clock(got), mask_clock(want)) << (compact ? "compact" : "pretty");
    // And the timeline's clock agrees within the time between the two calls.
    const auto g = json::parse(got), w = json::parse(want);
    ASSERT_EQ(g["timeline"].size(), w["timeline"].size());
    for (size_t i = 0; i < g["timeline"].size(); ++i) {
      EXPECT_NEAR(g["timeline"][i]["at_unix"].get<double>(),
                  w["timeline"][i]["at_unix"].get<double>(), 5.0);
    }
  }
  // The hostile strings reach the document escaped: no raw control character, and the secrets in
  // redacted fields (source names, errors, reasons) masked.
  const std::string doc = status_json(snap, options, true);
  EXPECT_EQ(std::count(doc.begin(), doc.end(), '\n'), 1);
  for (const char c : doc.substr(0, doc.size() - 1)) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control character in /status";
  }
  const auto j = json::parse(doc);
  const std::string source = j["backends"][13]["sources"][1]["source"];  // "consul " + hostile[14]
  EXPECT_EQ(source.find("hunter22"), std::string::npos) << source;
  EXPECT_EQ(source.find("abcdef123456"), std::string::npos) << source;
  const std::string url = j["backends"][14]["sources"][1]["source"];  // "consul " + hostile[15]
  EXPECT_EQ(url.find("pa55word"), std::string::npos) << url;
  EXPECT_NE(doc.find(R"(\u0000\u0001)"), std::string::npos);
  EXPECT_NE(doc.find("\xef\xbf\xbd"), std::string::npos);  // invalid UTF-8 replaced by U+FFFD
  // Discovery labels (Consul service name, tags, meta) per server, as "key=value" text: markup
  // kept literally (escaped only as JSON), a secret-looking meta key's value and a registered
  // secret hidden.
  const auto& labels = j["backends"][4]["sources"][1]["server_labels"];
  ASSERT_TRUE(labels.contains("ep-10.0.0.1")) << labels.dump();
  const auto& web = labels["ep-10.0.0.1"];
  EXPECT_NE(std::find(web.begin(), web.end(), "consul.service=" + hostile_strings()[4]), web.end())
      << web.dump();
  EXPECT_NE(std::find(web.begin(), web.end(), "consul.tags=<script>alert(1)</script>&amp;"),
            web.end())
      << web.dump();
  EXPECT_NE(std::find(web.begin(), web.end(), "consul.meta.db_password=***"), web.end())
      << web.dump();
  EXPECT_EQ(doc.find("s3cr3t-meta"), std::string::npos);
  EXPECT_FALSE(j["backends"][4]["sources"][0].contains("server_labels"));  // none: omitted
  // A new server held in DRAIN until its first health check passes is health-gated; a draining
  // server no longer desired is not (instance 0: backend 2 desires it, backend 0 does not).
  auto gated = [&](size_t backend) {
    for (const auto& s : j["instances"][0]["backends"][backend]["actual_servers"]) {
      if (s["state"] == "drain") return s.value("health_gated", false);
    }
    return false;
  };
  EXPECT_TRUE(gated(2));
  EXPECT_FALSE(gated(0));
}

// The config manager's reload, on the instance it reloads: named by its admin socket, else the
// first instance; with and without a reload yet.
TEST_F(StatusJsonTest, ByteIdenticalWithTheConfigManagersLastReload) {
  const EndpointOptions options = opts("1.2.3");
  auto snap = rich_snapshot();
  snap.config->instance = "/not/an/instance.sock";
  snap.config->config_mode = false;
  for (const bool compact : {false, true}) {
    EXPECT_EQ(mask_clock(status_json(snap, options, compact)),
              mask_clock(reference_status_json(snap, options, compact)));
  }
  snap.config->last_reload.reset();
  EXPECT_EQ(mask_clock(status_json(snap, options, false)),
            mask_clock(reference_status_json(snap, options, false)));
  const auto j = json::parse(status_json(snap, options, true));
  EXPECT_EQ(j["instances"][0]["config"]["mode"], "follow");
  EXPECT_FALSE(j["instances"][0]["config"].contains("last_reload"));
  EXPECT_FALSE(j["instances"][1].contains("config"));
}

TEST_F(StatusJsonTest, ByteIdenticalForEmptyAndMissingSnapshots) {
  const EndpointOptions options = opts("1.2.3");
  for (const bool compact : {false, true}) {
    EXPECT_EQ(status_json(std::nullopt, options, compact),
              reference_status_json(std::nullopt, options, compact));
    OpsSnapshot empty;
    empty.now = SteadyTime{} + 50s;
    empty.last_loop = empty.now - 45s;  // unhealthy too
    EXPECT_EQ(status_json(empty, options, compact), reference_status_json(empty, options, compact));
    empty.last_loop = empty.now;
    empty.sources_ready = empty.converged = true;
    EXPECT_EQ(status_json(empty, options, compact), reference_status_json(empty, options, compact));
  }
}

TEST_F(StatusJsonTest, EveryNumberFormatsAsBefore) {
  // Durations whose shortest representation switches between fixed and exponent notation.
  OpsSnapshot snap;
  snap.now = SteadyTime{} + 1000s;
  snap.sources_ready = snap.converged = true;
  EndpointOptions options = opts("v");
  options.stuck_after = std::chrono::milliseconds(1LL << 40);
  for (const auto ago : {0ns, 1ns, 10ns, 123456ns, 1000000000ns, 999999999999ns}) {
    snap.last_loop = snap.now - ago;
    EXPECT_EQ(status_json(snap, options, true), reference_status_json(snap, options, true));
    snap.last_loop = snap.now + ago;  // negative
    EXPECT_EQ(status_json(snap, options, true), reference_status_json(snap, options, true));
  }
  snap.last_loop = snap.now;
  snap.journal.minutes.resize(8);
  const double values[] = {0.0, -0.0, 1e-5, 1e15, 1e16, 123456789012345678.0, 0.1 + 0.2, 5e-324};
  for (size_t i = 0; i < 8; ++i) snap.journal.minutes[i].p50_s = values[i];
  snap.journal.p99_s = std::numeric_limits<double>::infinity();
  snap.journal.p50_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(status_json(snap, options, false), reference_status_json(snap, options, false));
}

}  // namespace
}  // namespace ep::ops
