#include "ops/endpoints.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/metrics.h"
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

}  // namespace

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

std::string status_json(const std::optional<OpsSnapshot>& snap, const EndpointOptions& options) {
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
  if (!snap) return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  j["reconciler_last_loop_seconds_ago"] = seconds_between(snap->last_loop, snap->now);

  for (const auto& inst : snap->instances) {
    json ji;
    ji["name"] = redact(inst.name);
    ji["reachable"] = inst.reachable;
    if (inst.reachable) {
      ji["haproxy_version"] = inst.info.version;
      ji["pid"] = inst.info.pid;
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
      jg["sources"].push_back(std::move(js));
    }
    j["backends"].push_back(std::move(jg));
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
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

HttpServer::Handler make_ops_handler(SnapshotFn snapshot, EndpointOptions options) {
  Metrics& registry = options.metrics ? *options.metrics : Metrics::global();
  return [snapshot = std::move(snapshot), options = std::move(options), &registry,
          stats = OpsStats(registry)](const HttpRequest& req) {
    static const char* kPaths[] = {"/metrics", "/healthz", "/readyz", "/status", "/"};
    bool known = false;
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
    if (!known) return text(404, "not found: try /metrics, /healthz, /readyz or /status");
    if (req.method != "GET" && req.method != "HEAD") {
      HttpResponse r = text(405, "method not allowed: use GET");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    if (req.path == "/") {
      return text(200, "ElasticProxy " + options.version +
                           "\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   "
                           "readiness\n/status   JSON status\n");
    }
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
      r.body = status_json(snap, options);
      return r;
    }
    // /metrics
    if (snap) update_scrape_metrics(*snap, options, stats);
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = redact(registry.render_prometheus());
    return r;
  };
}

}  // namespace ep::ops
