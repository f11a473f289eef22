// /healthz, /readyz, /status and /metrics from a snapshot, through the handler an operator hits.

#include "ops/endpoints.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/metrics.h"
#include "ops/dashboard.h"
#include "ops/status_client.h"

namespace ep::ops {
namespace {

using namespace std::chrono_literals;

OpsSnapshot converged_snapshot() {
  OpsSnapshot snap;
  snap.now = SteadyTime{} + 1000s;
  snap.last_loop = snap.now - 1s;
  snap.sources_ready = true;
  snap.converged = true;
  reconcile::InstanceStatus inst;
  inst.name = "/run/haproxy/admin.sock";
  inst.reachable = true;
  inst.info.version = "2.6.12";
  inst.info.pid = 42;
  reconcile::BackendStatus b;
  b.backend = "web";
  b.ready = true;
  b.converged = true;
  b.desired = 2;
  b.actual = 2;
  b.mode = reconcile::BackendMode::kDynamic;
  ServerSpec s1{"ep-10.0.0.1:80", "10.0.0.1", 80, 1, false};
  ServerSpec s2{"ep-10.0.0.2:80", "10.0.0.2", 80, 1, false};
  b.desired_servers = {s1, s2};
  ActualServer a1;
  a1.name = s1.name;
  a1.address = "10.0.0.1";
  a1.port = 80;
  a1.op_state = 2;
  b.actual_servers = {a1};
  inst.backends.push_back(b);
  snap.instances.push_back(inst);
  discovery::GuardStatus g;
  g.backend = "web";
  g.ready = true;
  g.desired = 2;
  discovery::SourceStatus src;
  src.backend = "web";
  src.source = "file /etc/elasticproxy/web.json";
  src.delivered = true;
  src.endpoints = 2;
  src.last_success = snap.now - 5s;
  g.sources.push_back(src);
  snap.guards.push_back(g);
  return snap;
}

HttpResponse get(const HttpServer::Handler& h, const std::string& path,
                 const std::string& method = "GET", const std::string& host = "") {
  HttpRequest req;
  req.method = method;
  req.path = path;
  req.target = path;
  req.version = "HTTP/1.1";
  if (!host.empty()) req.headers.emplace_back("host", host);
  return h(req);
}

TEST(Endpoints, HostMustBeAnIpLiteralLocalhostOrAllowed) {
  for (const char* ok : {"127.0.0.1", "127.0.0.1:9108", "[::1]:9108", "[::1]", "localhost",
                         "LOCALHOST:9108", "localhost.", "10.1.2.3:80"}) {
    EXPECT_TRUE(host_allowed(ok, {})) << ok;
  }
  for (const char* bad :
       {"evil.example", "evil.example:9108", "127.0.0.1.nip.io:9108", "localhost.evil.example",
        "[::1", "[::1]x", "[evil]:80", "1.2.3.4:x", "localhost:9108:1"}) {
    EXPECT_FALSE(host_allowed(bad, {})) << bad;
  }
  EXPECT_TRUE(host_allowed("Ops.Example.Internal:9108", {"ops.example.internal"}));
  EXPECT_FALSE(host_allowed("other.example.internal", {"ops.example.internal"}));
  EXPECT_TRUE(host_allowed("anything.example", {"*"}));
}

TEST(Endpoints, ForeignHostGets421EverywhereButHealthz) {
  EndpointOptions opt;
  auto h = make_ops_handler([] { return std::optional<OpsSnapshot>(converged_snapshot()); }, opt);
  for (const char* path : {"/status", "/metrics", "/readyz", "/", "/nope"}) {
    EXPECT_EQ(get(h, path, "GET", "rebound.example:9108").status, 421) << path;
    EXPECT_EQ(get(h, path, "GET", "rebound.example:9108").body.find("web"), std::string::npos);
  }
  EXPECT_EQ(get(h, "/healthz", "GET", "rebound.example:9108").status, 200);
  EXPECT_EQ(get(h, "/status", "GET", "127.0.0.1:9108").status, 200);
  EXPECT_EQ(get(h, "/status", "GET", "localhost:9108").status, 200);
  EXPECT_EQ(get(h, "/status").status, 200);  // no Host (HTTP/1.0 tools): not a browser
  opt.allowed_hosts = {"ops.example.internal"};
  auto allowed =
      make_ops_handler([] { return std::optional<OpsSnapshot>(converged_snapshot()); }, opt);
  EXPECT_EQ(get(allowed, "/status", "GET", "ops.example.internal:9108").status, 200);
  EXPECT_EQ(get(allowed, "/status", "GET", "rebound.example").status, 421);
}

TEST(Endpoints, HealthFollowsTheReconcilerLoop) {
  EndpointOptions opt;
  opt.stuck_after = 30s;
  auto snap = converged_snapshot();
  EXPECT_TRUE(check_health(snap, opt).ok);
  snap.last_loop = snap.now - 31s;
  auto h = check_health(snap, opt);
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.reason.find("stuck"), std::string::npos);
  EXPECT_FALSE(check_health(std::nullopt, opt).ok);
}

TEST(Endpoints, ReadyNeedsEverySourceAndEveryInstance) {
  auto snap = converged_snapshot();
  EXPECT_TRUE(check_ready(snap).ok);

  auto no_snapshot = snap;
  no_snapshot.guards[0].sources[0].delivered = false;
  no_snapshot.sources_ready = false;
  auto r = check_ready(no_snapshot);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("file /etc/elasticproxy/web.json"), std::string::npos) << r.reason;

  auto down = snap;
  down.instances[0].reachable = false;
  down.instances[0].last_error = "connect: No such file or directory";
  down.converged = false;
  r = check_ready(down);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("unreachable"), std::string::npos) << r.reason;

  auto converging = snap;
  converging.instances[0].backends[0].converged = false;
  converging.converged = false;
  EXPECT_FALSE(check_ready(converging).ok);
}

TEST(Endpoints, HandlerRoutesMethodsAndPaths) {
  auto snap = converged_snapshot();
  auto h = make_ops_handler([&] { return std::optional<OpsSnapshot>(snap); }, {"1.2.3", 30s});
  EXPECT_EQ(get(h, "/healthz").status, 200);
  EXPECT_EQ(get(h, "/readyz").status, 200);
  EXPECT_EQ(get(h, "/status").status, 200);
  EXPECT_EQ(get(h, "/metrics").status, 200);
  EXPECT_EQ(get(h, "/metrics", "HEAD").status, 200);
  EXPECT_EQ(get(h, "/nope").status, 404);
  EXPECT_EQ(get(h, "/metrics/").status, 404);
  auto post = get(h, "/metrics", "POST");
  EXPECT_EQ(post.status, 405);
  ASSERT_FALSE(post.headers.empty());
  EXPECT_EQ(post.headers[0].first, "Allow");
  EXPECT_EQ(get(h, "/healthz", "DELETE").status, 405);

  snap.instances[0].reachable = false;
  EXPECT_EQ(get(h, "/readyz").status, 503);
  EXPECT_EQ(get(h, "/healthz").status, 200);  // alive, just not ready

  auto detached = make_ops_handler([] { return std::optional<OpsSnapshot>(); }, {});
  EXPECT_EQ(get(detached, "/healthz").status, 503);
  EXPECT_EQ(get(detached, "/readyz").status, 503);
  EXPECT_EQ(get(detached, "/status").status, 200);
}

TEST(Endpoints, StatusShowsDesiredVsActualAndSourceHealth) {
  auto doc = nlohmann::json::parse(status_json(converged_snapshot(), {"1.2.3", 30s}));
  EXPECT_EQ(doc["version"], "1.2.3");
  EXPECT_EQ(doc["ready"], true);
  const auto& b = doc["instances"][0]["backends"][0];
  EXPECT_EQ(b["backend"], "web");
  EXPECT_EQ(b["mode"], "dynamic");
  EXPECT_EQ(b["desired_servers"].size(), 2u);
  EXPECT_EQ(b["actual_servers"].size(), 1u);
  EXPECT_EQ(b["actual_servers"][0]["state"], "up");
  EXPECT_EQ(b["actual_servers"][0]["address"], "10.0.0.1:80");
  const auto& s = doc["backends"][0]["sources"][0];
  EXPECT_EQ(s["healthy"], true);
  EXPECT_DOUBLE_EQ(s["last_success_seconds_ago"].get<double>(), 5.0);
  EXPECT_EQ(s["snapshots"], 0);
  EXPECT_EQ(s["errors"], 0);
  EXPECT_EQ(s["events_per_minute"], 0);

  auto table = render_status_table(doc.dump());
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_NE(table->find("ready"), std::string::npos);
  EXPECT_NE(table->find("web"), std::string::npos);
  EXPECT_NE(table->find("converged"), std::string::npos);
  EXPECT_NE(table->find("file /etc/elasticproxy/web.json"), std::string::npos) << *table;
  EXPECT_FALSE(render_status_table("<html>").ok());
  EXPECT_FALSE(render_status_table("{\"instances\": 3, \"backends\": [1]}").ok());
}

// Issue #19: a draining server carries when its drain started and, when drain_timeout cuts it,
// how long is left; a server an operator put in maintenance is marked as the operator's.
TEST(Endpoints, StatusShowsDrainTimingAndOperatorMaintenancePerServer) {
  OpsSnapshot snap = converged_snapshot();
  auto& b = snap.instances[0].backends[0];
  ActualServer a1 = *b.actual_servers.begin();
  a1.admin_state = 0x08;  // drain
  a1.sessions = 3;
  ActualServer a2;
  a2.name = "ep-10.0.0.2:80";
  a2.address = "10.0.0.2";
  a2.port = 80;
  a2.admin_state = 0x01;  // maint
  ActualServer a3;
  a3.name = "ep-10.0.0.3:80";
  a3.address = "10.0.0.3";
  a3.port = 80;
  a3.admin_state = 0x08;  // drain, held by a source: no deadline
  b.actual_servers = {a1, a2, a3};
  b.operator_maint = {a2.name};
  b.drains = {{a1.name, snap.now - 12s, snap.now + 18s}, {a3.name, snap.now - 4s, std::nullopt}};
  const auto doc = nlohmann::json::parse(status_json(snap, {"1.2.3", 30s}));
  const auto& servers = doc["instances"][0]["backends"][0]["actual_servers"];
  ASSERT_EQ(servers.size(), 3u);
  EXPECT_EQ(servers[0]["state"], "drain");
  EXPECT_EQ(servers[0]["sessions"], 3);
  EXPECT_DOUBLE_EQ(servers[0]["drain_since_seconds_ago"].get<double>(), 12.0);
  EXPECT_DOUBLE_EQ(servers[0]["drain_deadline_in_seconds"].get<double>(), 18.0);
  EXPECT_FALSE(servers[0].contains("operator_maint"));
  EXPECT_EQ(servers[1]["state"], "maint");
  EXPECT_EQ(servers[1]["operator_maint"], true);
  EXPECT_FALSE(servers[1].contains("drain_since_seconds_ago"));
  EXPECT_DOUBLE_EQ(servers[2]["drain_since_seconds_ago"].get<double>(), 4.0);
  EXPECT_FALSE(servers[2].contains("drain_deadline_in_seconds"));
  EXPECT_EQ(doc["instances"][0]["backends"][0]["operator_maint"],
            nlohmann::json::array({"ep-10.0.0.2:80"}));
}

// Issue #19: per source, the snapshots it published, the failed ones, and those of the last
// minute (events per minute).
TEST(Endpoints, StatusCountsEachSourcesSnapshotsErrorsAndEventsPerMinute) {
  OpsSnapshot snap = converged_snapshot();
  auto& src = snap.guards[0].sources[0];
  src.snapshots = 42;
  src.errors = 3;
  src.events_last_minute = 7;
  const auto doc = nlohmann::json::parse(status_json(snap, {"1.2.3", 30s}));
  const auto& s = doc["backends"][0]["sources"][0];
  EXPECT_EQ(s["snapshots"], 42);
  EXPECT_EQ(s["errors"], 3);
  EXPECT_EQ(s["events_per_minute"], 7);
}

// Issue #19: in config mode, the instance the config manager reloads carries its last reload:
// result, HAProxy's words (redacted), how long ago and how long it took.
TEST(Endpoints, StatusShowsTheLastReloadOnTheInstanceItReloads) {
  OpsSnapshot snap = converged_snapshot();
  ConfigStatus c;
  c.instance = "/run/haproxy/admin.sock";
  c.path = "/etc/haproxy/haproxy.cfg";
  c.config_mode = true;
  c.reloads = 3;
  c.last_reload = ConfigStatus::Reload{snap.now - 7s, "rolled_back",
                                       "new worker did not answer; previous config restored", 1.5};
  snap.config = c;
  const auto doc = nlohmann::json::parse(status_json(snap, {"1.2.3", 30s}));
  const auto& cfg = doc["instances"][0]["config"];
  EXPECT_EQ(cfg["mode"], "config");
  EXPECT_EQ(cfg["path"], "/etc/haproxy/haproxy.cfg");
  EXPECT_EQ(cfg["reloads"], 3);
  EXPECT_EQ(cfg["last_reload"]["result"], "rolled_back");
  EXPECT_EQ(cfg["last_reload"]["message"], "new worker did not answer; previous config restored");
  EXPECT_DOUBLE_EQ(cfg["last_reload"]["seconds_ago"].get<double>(), 7.0);
  EXPECT_DOUBLE_EQ(cfg["last_reload"]["duration_seconds"].get<double>(), 1.5);
  // Without config management: no config object.
  snap.config.reset();
  EXPECT_FALSE(
      nlohmann::json::parse(status_json(snap, {"1.2.3", 30s}))["instances"][0].contains("config"));
}

// Issue #14 point 10: terminal escape sequences and line breaks from discovery data are escaped
// in `elasticproxy status` (they could recolour or clear the operator's terminal, or forge rows).
TEST(Endpoints, StatusTableEscapesControlCharacters) {
  auto doc = nlohmann::json::parse(status_json(converged_snapshot(), {"1.2.3", 30s}));
  doc["backends"][0]["sources"][0]["source"] = "consul \x1b]0;pwned\x07web\nweb  ok  9";
  doc["not_ready_because"] = "line one\x1b[2J\nline two";
  auto table = render_status_table(doc.dump());
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->find('\x1b'), std::string::npos) << *table;
  EXPECT_EQ(table->find('\x07'), std::string::npos) << *table;
  EXPECT_NE(table->find("consul \\x1b]0;pwned\\x07web\\nweb  ok  9"), std::string::npos) << *table;
  EXPECT_NE(table->find("  not ready: line one\\x1b[2J\n  not ready: line two\n"),
            std::string::npos)
      << *table;
}

TEST(Endpoints, MetricsFollowPrometheusConventions) {
  auto snap = converged_snapshot();
  snap.guards[0].sources[0].snapshots = 9;
  snap.guards[0].sources[0].events_last_minute = 4;
  auto h = make_ops_handler([&] { return std::optional<OpsSnapshot>(snap); }, {"1.2.3", 30s});
  const std::string body = get(h, "/metrics").body;
  EXPECT_NE(
      body.find(
          "elasticproxy_source_up{backend=\"web\",source=\"file /etc/elasticproxy/web.json\"} 1"),
      std::string::npos)
      << body;
  EXPECT_NE(body.find("elasticproxy_source_last_success_timestamp_seconds{"), std::string::npos);
  // The dashboard's events per minute, per source (its snapshots and errors are the counters
  // elasticproxy_source_snapshots_total / elasticproxy_source_errors_total of the guard).
  EXPECT_NE(body.find("elasticproxy_source_events_per_minute{backend=\"web\",source=\"file "
                      "/etc/elasticproxy/web.json\"} 4"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("elasticproxy_haproxy_instances_reachable 1"), std::string::npos);
  EXPECT_NE(body.find("elasticproxy_build_info{version=\"1.2.3\"} 1"), std::string::npos);
  // Every family: a TYPE line; counters end in _total; no family name carries a non-base unit.
  std::regex type_line("^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$");
  std::istringstream in(body);
  std::string line;
  int families = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, type_line)) continue;
    ++families;
    const std::string name = m[1];
    EXPECT_EQ(name.rfind("elasticproxy_", 0), 0u) << name;
    if (m[2] == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    } else {
      EXPECT_FALSE(name.ends_with("_total")) << name;
    }
    for (const char* bad : {"_ms", "_milliseconds", "_minutes", "_bytes_kb", "_count_total"}) {
      EXPECT_EQ(name.find(bad), std::string::npos) << name;
    }
  }
  EXPECT_GE(families, 5);
}

}  // namespace
}  // namespace ep::ops

// ---- the dashboard, its access rules and its action (#19) ---------------------------------

namespace ep::ops {
namespace {

HttpRequest request(const std::string& method, const std::string& target,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpRequest req;
  req.method = method;
  req.target = target;
  const size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  req.version = "HTTP/1.1";
  req.headers = std::move(headers);
  return req;
}

std::optional<std::string> header_of(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

struct ActionLog {
  std::vector<std::pair<std::string, bool>> calls;
  GuardActionFn fn() {
    return [this](const std::string& backend, bool confirm) -> Result<std::string> {
      calls.emplace_back(backend, confirm);
      if (backend == "web") return std::string(confirm ? "confirmed" : "rejected");
      if (backend == "calm") return Error::not_yet("backend calm: nothing is held");
      return Error::invalid("no backend named '" + backend + "'");
    };
  }
};

HttpServer::Handler handler(EndpointOptions options, ActionLog* log = nullptr) {
  auto snap = converged_snapshot();
  return make_ops_handler([snap] { return std::optional<OpsSnapshot>(snap); }, std::move(options),
                          log ? log->fn() : GuardActionFn{});
}

TEST(Dashboard, ServesThePageAndItsFilesWithStrictHeaders) {
  auto h = handler({"1.2.3", 30s});
  const auto page = h(request("GET", "/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("/dashboard.js"), std::string::npos);
  // No inline script or style: the CSP allows only files from this origin.
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_EQ(page.body.find("style="), std::string::npos);
  EXPECT_EQ(page.body.find("http://"), std::string::npos);
  EXPECT_EQ(page.body.find("https://"), std::string::npos);
  for (const char* path : {"/", "/dashboard.js", "/dashboard.css", "/login.js", "/status",
                           "/metrics", "/healthz", "/nope"}) {
    const auto r = h(request("GET", path));
    EXPECT_EQ(header_of(r, "Content-Security-Policy").value_or(""),
              "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        << path;
    EXPECT_EQ(header_of(r, "X-Frame-Options").value_or(""), "DENY") << path;
    EXPECT_EQ(header_of(r, "Referrer-Policy").value_or(""), "no-referrer") << path;
  }
  EXPECT_EQ(h(request("GET", "/dashboard.js")).content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(h(request("GET", "/dashboard.css")).content_type, "text/css; charset=utf-8");
  EXPECT_EQ(h(request("GET", "/login.html")).status, 200);  // harmless: the token form
}

TEST(Dashboard, PageWeightStaysUnderBudget) {
  EXPECT_LE(dashboard_bytes(), 150u * 1024u);
  EXPECT_GT(dashboard_bytes(), 1000u);
}

TEST(Dashboard, TheScriptNeverInsertsMarkup) {
  // Discovered strings reach the DOM as text only: the page's script uses no markup sinks.
  const std::string js(dashboard_file("/dashboard.js")->body);
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "eval(", "new Function"}) {
    EXPECT_EQ(js.find(sink), std::string::npos) << sink;
  }
}

TEST(Dashboard, LoopbackWithoutTokenIsOpen) {
  auto h = handler({"1.2.3", 30s});
  EXPECT_EQ(h(request("GET", "/")).status, 200);
  EXPECT_EQ(h(request("GET", "/status")).status, 200);
}

// The page polls /status: each read asks the daemon for a fresh look at HAProxy (the daemon
// rate-limits it); a refused read, the page itself, health and metrics do not.
TEST(Dashboard, ReadingStatusAsksForAFreshReadOfHaproxy) {
  EndpointOptions o{"1.2.3", 30s};
  int reads = 0;
  o.on_status = [&reads] { ++reads; };
  auto h = handler(o);
  EXPECT_EQ(h(request("GET", "/status")).status, 200);
  EXPECT_EQ(h(request("GET", "/status?compact")).status, 200);
  EXPECT_EQ(reads, 2);
  for (const char* path : {"/", "/dashboard.js", "/healthz", "/readyz", "/metrics"}) {
    EXPECT_EQ(h(request("GET", path)).status, 200) << path;
  }
  EXPECT_EQ(reads, 2);
  o.exposed = true;  // no token: refused before anything is asked of the daemon
  auto refused = handler(o);
  EXPECT_EQ(refused(request("GET", "/status")).status, 403);
  EXPECT_EQ(reads, 2);
}

TEST(Dashboard, ExposedWithoutTokenRefusesPageStatusAndAction) {
  EndpointOptions o{"1.2.3", 30s};
  o.exposed = true;
  ActionLog log;
  auto h = handler(o, &log);
  EXPECT_EQ(h(request("GET", "/")).status, 403);
  EXPECT_EQ(h(request("GET", "/status")).status, 403);
  EXPECT_THAT(h(request("GET", "/status")).body, ::testing::HasSubstr("metrics.token_file"));
  EXPECT_EQ(
      h(request("POST", "/api/guard/confirm?backend=web", {{"x-elasticproxy-action", "1"}})).status,
      403);
  EXPECT_TRUE(log.calls.empty());
  // Health, metrics and the (data-free) assets stay open.
  EXPECT_EQ(h(request("GET", "/healthz")).status, 200);
  EXPECT_EQ(h(request("GET", "/readyz")).status, 200);
  EXPECT_EQ(h(request("GET", "/metrics")).status, 200);
  EXPECT_EQ(h(request("GET", "/dashboard.js")).status, 200);
}

TEST(Dashboard, TokenByBearerOrCookie) {
  EndpointOptions o{"1.2.3", 30s};
  o.exposed = true;
  o.token = "s3cr3t-token/+=";
  auto h = handler(o);
  const auto none = h(request("GET", "/"));
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("token-form"), std::string::npos);  // the token form
  EXPECT_NE(none.body.find("/login.js"), std::string::npos);
  EXPECT_EQ(header_of(none, "WWW-Authenticate").value_or(""), "Bearer realm=\"elasticproxy\"");
  EXPECT_EQ(none.body.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(h(request("GET", "/status")).status, 401);
  EXPECT_EQ(h(request("GET", "/status", {{"authorization", "Bearer wrong"}})).status, 401);
  EXPECT_EQ(h(request("GET", "/status", {{"authorization", "Bearer s3cr3t-token/+"}})).status, 401);
  EXPECT_EQ(h(request("GET", "/status", {{"authorization", "Bearer s3cr3t-token/+="}})).status,
            200);
  EXPECT_EQ(h(request("GET", "/", {{"cookie", "a=b; ep_token=s3cr3t-token%2F%2B%3D; c=d"}})).status,
            200);
  EXPECT_EQ(h(request("GET", "/", {{"cookie", "ep_token=nope"}})).status, 401);
  // A token configured on loopback is required too.
  o.exposed = false;
  auto local = handler(o);
  EXPECT_EQ(local(request("GET", "/status")).status, 401);
  EXPECT_EQ(local(request("GET", "/healthz")).status, 200);
  EXPECT_EQ(local(request("GET", "/metrics")).status, 200);
  o.token_for_metrics = true;
  auto strict = handler(o);
  EXPECT_EQ(strict(request("GET", "/metrics")).status, 401);
  EXPECT_EQ(strict(request("GET", "/readyz")).status, 401);
  EXPECT_EQ(strict(request("GET", "/healthz")).status, 200);
  EXPECT_EQ(
      strict(request("GET", "/metrics", {{"authorization", "Bearer s3cr3t-token/+="}})).status,
      200);
}

TEST(Dashboard, ActionNeedsPostTokenAndTheCsrfHeader) {
  EndpointOptions o{"1.2.3", 30s};
  o.exposed = true;
  o.token = "tok-12345";
  ActionLog log;
  auto h = handler(o, &log);
  const std::pair<std::string, std::string> auth{"authorization", "Bearer tok-12345"};
  const std::pair<std::string, std::string> csrf{"x-elasticproxy-action", "1"};
  const auto get = h(request("GET", "/api/guard/confirm?backend=web", {auth, csrf}));
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(header_of(get, "Allow").value_or(""), "POST");
  EXPECT_EQ(h(request("POST", "/api/guard/confirm?backend=web", {csrf})).status, 401);
  EXPECT_EQ(h(request("POST", "/api/guard/confirm?backend=web", {auth})).status, 403);
  EXPECT_EQ(h(request("POST", "/api/guard/confirm?backend=web",
                      {auth, csrf, {"host", "127.0.0.1:9108"}, {"origin", "http://evil.test"}}))
                .status,
            403);
  EXPECT_TRUE(log.calls.empty());

  const auto ok =
      h(request("POST", "/api/guard/confirm?backend=web",
                {auth, csrf, {"host", "127.0.0.1:9108"}, {"origin", "http://127.0.0.1:9108"}}));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "confirmed\n");
  EXPECT_EQ(h(request("POST", "/api/guard/reject?backend=web", {auth, csrf})).status, 200);
  EXPECT_EQ(h(request("POST", "/api/guard/reject?backend=calm", {auth, csrf})).status, 409);
  EXPECT_EQ(h(request("POST", "/api/guard/reject?backend=we%62x", {auth, csrf})).status, 404);
  EXPECT_EQ(h(request("POST", "/api/guard/reject", {auth, csrf})).status, 400);
  ASSERT_EQ(log.calls.size(), 4u);
  EXPECT_EQ(log.calls[0], std::make_pair(std::string("web"), true));
  EXPECT_EQ(log.calls[1], std::make_pair(std::string("web"), false));
  EXPECT_EQ(log.calls[3].first, "webx");  // percent-decoded
}

TEST(Dashboard, StatusShowsHoldDetailsAndRejectedReasons) {
  auto snap = converged_snapshot();
  auto& g = snap.guards[0];
  g.hold = discovery::Hold::kShrink;
  g.held_servers = 1;
  g.held_since = snap.now - 30s;
  g.confirm_at = snap.now + 90s;
  g.would_remove = {"ep-10.0.0.2:80"};
  g.sources[0].rejected = 1;
  g.sources[0].rejected_messages = {"endpoint \"<script>x</script>\": not an IP literal"};
  snap.instances[0].info.uptime_sec = 3600;
  discovery::HookInFlight hook;
  hook.instance = "i-0123456789abcdef0";
  hook.hook = "drain-hook";
  hook.transition = "autoscaling:EC2_INSTANCE_TERMINATING";
  hook.started = snap.now - 20s;
  hook.deadline = snap.now + 280s;
  hook.next_heartbeat = snap.now + 40s;
  hook.progress = "2 session(s), active on 0 of 1 HAProxy";
  g.sources[0].hooks.push_back(hook);
  const auto j = nlohmann::json::parse(status_json(snap, {"1.2.3", 30s}));
  const auto& hold = j["backends"][0]["hold"];
  EXPECT_EQ(hold["reason"], "shrink");
  EXPECT_EQ(hold["servers"], 1);
  EXPECT_NEAR(hold["since_seconds_ago"].get<double>(), 30, 0.01);
  EXPECT_NEAR(hold["confirm_in_seconds"].get<double>(), 90, 0.01);
  EXPECT_EQ(hold["would_remove"][0], "ep-10.0.0.2:80");
  EXPECT_EQ(j["backends"][0]["sources"][0]["rejected_endpoints"][0],
            "endpoint \"<script>x</script>\": not an IP literal");
  EXPECT_EQ(j["instances"][0]["uptime_seconds"], 3600);
  const auto& h = j["backends"][0]["sources"][0]["hooks_in_flight"][0];
  EXPECT_EQ(h["instance"], "i-0123456789abcdef0");
  EXPECT_EQ(h["hook"], "drain-hook");
  EXPECT_EQ(h["transition"], "autoscaling:EC2_INSTANCE_TERMINATING");
  EXPECT_NEAR(h["since_seconds_ago"].get<double>(), 20, 0.01);
  EXPECT_NEAR(h["deadline_in_seconds"].get<double>(), 280, 0.01);
  EXPECT_NEAR(h["next_heartbeat_in_seconds"].get<double>(), 40, 0.01);
  EXPECT_EQ(h["progress"], "2 session(s), active on 0 of 1 HAProxy");
}

TEST(Dashboard, StatusCarriesTheTimelineNewestFirstAndTheConvergenceChart) {
  auto snap = converged_snapshot();
  reconcile::ActionRecord a;
  a.at = snap.now - 10s;
  a.instance = "/run/haproxy/admin.sock";
  a.backend = "web";
  a.server = "ep-10.0.0.1:80";
  a.action = "add";
  a.reason = "new in discovery";
  a.latency_s = 0.25;
  snap.journal.actions.push_back(a);
  a.at = snap.now - 5s;
  a.server = "ep-10.0.0.2:80";
  a.ok = false;
  a.error = "No such server.";
  snap.journal.actions.push_back(a);
  snap.journal.minutes.resize(60);
  snap.journal.minutes[59].changes = 1;
  snap.journal.p99_s = 0.25;
  const auto j = nlohmann::json::parse(status_json(snap, {"1.2.3", 30s}));
  ASSERT_EQ(j["timeline"].size(), 2u);
  EXPECT_EQ(j["timeline"][0]["server"], "ep-10.0.0.2:80");
  EXPECT_EQ(j["timeline"][0]["ok"], false);
  EXPECT_EQ(j["timeline"][0]["error"], "No such server.");
  EXPECT_EQ(j["timeline"][1]["latency_ms"], 250.0);
  EXPECT_NEAR(j["timeline"][1]["at_unix"].get<double>(),
              static_cast<double>(std::time(nullptr)) - 10, 5);
  EXPECT_EQ(j["convergence"]["window_minutes"], 60);
  EXPECT_EQ(j["convergence"]["minutes"][59]["changes"], 1);
  EXPECT_EQ(j["convergence"]["p99_seconds"], 0.25);
  // /status?compact is the same document on one line.
  const auto compact = status_json(snap, {"1.2.3", 30s}, true);
  EXPECT_EQ(std::count(compact.begin(), compact.end(), '\n'), 1);
  EXPECT_EQ(nlohmann::json::parse(compact)["timeline"].size(), 2u);  // at_unix moves on
}

TEST(Dashboard, ListenIsLoopback) {
  EXPECT_TRUE(listen_is_loopback("127.0.0.1:9108"));
  EXPECT_TRUE(listen_is_loopback("127.5.6.7:0"));
  EXPECT_TRUE(listen_is_loopback("[::1]:9108"));
  EXPECT_TRUE(listen_is_loopback("localhost:9108"));
  EXPECT_FALSE(listen_is_loopback(":9108"));
  EXPECT_FALSE(listen_is_loopback("0.0.0.0:9108"));
  EXPECT_FALSE(listen_is_loopback("[::]:9108"));
  EXPECT_FALSE(listen_is_loopback("10.1.2.3:9108"));
  EXPECT_FALSE(listen_is_loopback("ops.example.com:9108"));
}

}  // namespace
}  // namespace ep::ops
