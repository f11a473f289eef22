#include "ops/endpoints.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/metrics.h"
#include "ops/dashboard.h"
#include "ops/redact.h"

namespace ep::ops {
namespace {

using nlohmann::json;

double seconds_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

// Wall-clock seconds since the epoch of a steady-clock time point, relative to `now`.
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

HttpResponse text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Percent-decodes a query value ('+' is a space). Invalid escapes are kept as they are.
std::string percent_decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < in.size() &&
               std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

// The value of `key` in a query string ("a=1&b=2"), decoded.
std::optional<std::string> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// Compares in time independent of where the first difference is.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  }
  return diff == 0;
}

// The token a request presents: `Authorization: Bearer X`, else the cookie `ep_token=X`.
std::optional<std::string> presented_token(const HttpRequest& req) {
  if (auto auth = req.header("authorization")) {
    std::string_view v = *auth;
    if (v.size() > 7 && iequals(v.substr(0, 7), "bearer ")) return std::string(v.substr(7));
  }
  if (auto cookie = req.header("cookie")) {
    std::string_view v = *cookie;
    while (!v.empty()) {
      const size_t semi = v.find(';');
      std::string_view item = v.substr(0, semi);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      if (item.substr(0, 9) == "ep_token=") return percent_decode(item.substr(9));
      if (semi == std::string_view::npos) break;
      v.remove_prefix(semi + 1);
    }
  }
  return std::nullopt;
}

enum class Access { kOk, kNoToken, kRefused };
Access check_access(const HttpRequest& req, const EndpointOptions& options) {
  if (options.token.empty()) return options.exposed ? Access::kNoToken : Access::kOk;
  const auto t = presented_token(req);
  return t && same_secret(*t, options.token) ? Access::kOk : Access::kRefused;
}

}  // namespace

bool listen_is_loopback(std::string_view address) {
  std::string host(address);
  if (const size_t colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (iequals(host, "localhost")) return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  std::string name;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !all_digits(rest.substr(1)))) return false;
    in6_addr a6{};
    return inet_pton(AF_INET6, std::string(host.substr(1, close - 1)).c_str(), &a6) == 1;
  }
  const size_t colon = host.rfind(':');
  if (colon != std::string_view::npos) {
    if (!all_digits(host.substr(colon + 1))) return false;
    host = host.substr(0, colon);
  }
  name = std::string(host);
  in_addr a4{};
  if (inet_pton(AF_INET, name.c_str(), &a4) == 1) return true;
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (iequals(name, "localhost")) return true;
  for (const auto& a : allowed) {
    if (a == "*" || (!name.empty() && iequals(name, a))) return true;
  }
  return false;
}

Health check_health(const std::optional<OpsSnapshot>& snap, const EndpointOptions& options) {
  if (!snap) return {false, "starting or reloading: no reconciler attached"};
  const double age = seconds_between(snap->last_loop, snap->now);
  const double limit = std::chrono::duration<double>(options.stuck_after).count();
  if (age > limit) {
    return {false, "reconciler loop stuck: last iteration " +
                       std::to_string(static_cast<long>(age)) + "s ago (limit " +
                       std::to_string(static_cast<long>(limit)) + "s)"};
  }
  return {true, "ok"};
}

Health check_ready(const std::optional<OpsSnapshot>& snap) {
  if (!snap) return {false, "starting or reloading"};
  std::string why;
  for (const auto& g : snap->guards) {
    for (const auto& s : g.sources) {
      if (!s.delivered) {
        why += "source " + s.source + " (backend " + g.backend + ") has not delivered a snapshot" +
               (s.last_error.empty() ? "" : ": " + s.last_error) + "\n";
      }
    }
  }
  for (const auto& inst : snap->instances) {
    if (!inst.reachable) {
      why += "HAProxy " + inst.name + " unreachable" +
             (inst.last_error.empty() ? "" : ": " + inst.last_error) + "\n";
      continue;
    }
    for (const auto& b : inst.backends) {
      if (b.ready && !b.converged) {
        why += "HAProxy " + inst.name + " backend " + b.backend + " not converged" +
               (b.last_error.empty() ? "" : ": " + b.last_error) + "\n";
      }
    }
  }
  if (why.empty() && !(snap->sources_ready && snap->converged)) why = "not converged yet\n";
  if (!why.empty()) return {false, redact(why)};
  return {true, "ready"};
}

std::string status_json(const std::optional<OpsSnapshot>& snap, const EndpointOptions& options,
                        bool compact) {
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
        if (std::find(b.operator_maint.begin(), b.operator_maint.end(), s.name) !=
            b.operator_maint.end()) {
          js["operator_maint"] = true;  // left in maintenance until the operator enables it
        }
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

void update_scrape_metrics(const OpsSnapshot& snap, const EndpointOptions& options,
                           const OpsStats& stats) {
  for (const auto& g : snap.guards) {
    for (const auto& s : g.sources) {
      const LabelValues labels{g.backend, redact(s.source)};
      stats.source_up.set(labels, s.delivered && !s.failing ? 1 : 0);
      stats.source_endpoints.set(labels, static_cast<double>(s.endpoints));
      if (s.last_success) {
        stats.source_last_success_timestamp_seconds.set(labels,
                                                        unix_seconds(*s.last_success, snap.now));
      }
    }
  }
  double reachable = 0;
  for (const auto& i : snap.instances) reachable += i.reachable ? 1 : 0;
  stats.haproxy_instances.set(static_cast<double>(snap.instances.size()));
  stats.haproxy_instances_reachable.set(reachable);
  stats.ready.set(check_ready(snap).ok ? 1 : 0);
  stats.reconciler_last_loop_age_seconds.set(seconds_between(snap.last_loop, snap.now));
  stats.build_info.set({options.version}, 1);
}

namespace {

void add_security_headers(HttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                         "form-action 'self'");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

HttpResponse file_response(int status, const DashboardFile& f) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::string(f.content_type);
  r.body = std::string(f.body);
  return r;
}

HttpResponse refused(const HttpRequest& req, Access a) {
  if (a == Access::kNoToken) {
    return text(403,
                "forbidden: this listener is not on loopback and no token is configured "
                "(set metrics.token_file or metrics.token_env)");
  }
  // The page itself answers with the token form; the others with a plain 401.
  if (req.path == "/" && req.method == "GET") {
    if (auto f = dashboard_file("/login.html")) {
      HttpResponse r = file_response(401, *f);
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"elasticproxy\"");
      return r;
    }
  }
  HttpResponse r = text(401, "unauthorized: send the token (Authorization: Bearer ...)");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"elasticproxy\"");
  return r;
}

HttpResponse guard_action(const HttpRequest& req, const GuardActionFn& action) {
  // CSRF: a cross-site form or image cannot set a custom header, and a cross-site fetch that
  // sets one needs a preflight this server never grants. An Origin, when sent, must be ours.
  if (!req.header("x-elasticproxy-action")) {
    return text(403, "forbidden: the action needs the header X-ElasticProxy-Action");
  }
  if (auto origin = req.header("origin")) {
    const auto host = req.header("host");
    if (!host || (*origin != "http://" + *host && *origin != "https://" + *host)) {
      return text(403, "forbidden: cross-origin request");
    }
  }
  const auto backend = query_value(req.query, "backend");
  if (!backend || backend->empty()) return text(400, "bad request: ?backend=NAME is missing");
  if (!action) return text(503, "unavailable: no daemon attached");
  const bool confirm = req.path == "/api/guard/confirm";
  Result<std::string> r = action(*backend, confirm);
  if (!r) {
    const int status = r.error().kind == ErrorKind::kInvalid   ? 404
                       : r.error().kind == ErrorKind::kNotYet  ? 409
                       : r.error().kind == ErrorKind::kRefused ? 409
                                                               : 503;
    return text(status, redact(r.error().message));
  }
  return text(200, redact(*r));
}

HttpResponse handle(const HttpRequest& req, const SnapshotFn& snapshot,
                    const EndpointOptions& options, const GuardActionFn& action, Metrics& registry,
                    const OpsStats& stats) {
  static const char* kPaths[] = {"/metrics", "/healthz", "/readyz", "/status"};
  const bool is_action = req.path == "/api/guard/confirm" || req.path == "/api/guard/reject";
  bool known = is_action || dashboard_file(req.path).has_value();
  for (const char* p : kPaths) known = known || req.path == p;
  if (req.path != "/healthz") {
    // Before anything else, so that a rebound name learns nothing, not even which paths exist.
    if (auto host = req.header("host");
        host && !host->empty() && !host_allowed(*host, options.allowed_hosts)) {
      return text(421,
                  "misdirected request: this endpoint answers to IP addresses, localhost and "
                  "the names in metrics.allowed_hosts only");
    }
  }
  if (!known) return text(404, "not found: try /, /metrics, /healthz, /readyz or /status");
  if (is_action) {
    if (req.method != "POST") {
      HttpResponse r = text(405, "method not allowed: use POST");
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    if (Access a = check_access(req, options); a != Access::kOk) return refused(req, a);
    return guard_action(req, action);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    HttpResponse r = text(405, "method not allowed: use GET");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  const bool needs_token =
      req.path == "/" || req.path == "/status" ||
      (options.token_for_metrics && (req.path == "/metrics" || req.path == "/readyz"));
  if (needs_token) {
    if (Access a = check_access(req, options); a != Access::kOk) return refused(req, a);
  }
  if (auto f = dashboard_file(req.path)) return file_response(200, *f);
  const std::optional<OpsSnapshot> snap = snapshot();
  if (req.path == "/healthz") {
    const Health h = check_health(snap, options);
    return text(h.ok ? 200 : 503, h.reason);
  }
  if (req.path == "/readyz") {
    const Health r = check_ready(snap);
    return text(r.ok ? 200 : 503, r.reason);
  }
  if (req.path == "/status") {
    HttpResponse r;
    r.content_type = "application/json";
    // The dashboard polls `/status?compact` every second: without indentation, half the bytes.
    r.body = status_json(snap, options, req.query == "compact");
    return r;
  }
  // /metrics
  if (snap) update_scrape_metrics(*snap, options, stats);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = redact(registry.render_prometheus());
  return r;
}

}  // namespace

HttpServer::Handler make_ops_handler(SnapshotFn snapshot, EndpointOptions options,
                                     GuardActionFn action) {
  Metrics& registry = options.metrics ? *options.metrics : Metrics::global();
  return [snapshot = std::move(snapshot), options = std::move(options), action = std::move(action),
          &registry, stats = OpsStats(registry)](const HttpRequest& req) {
    HttpResponse r = handle(req, snapshot, options, action, registry, stats);
    add_security_headers(r);
    return r;
  };
}

}  // namespace ep::ops
