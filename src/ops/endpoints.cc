#include "ops/endpoints.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <type_traits>

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

// `name` is one of the backend's desired servers (sorted by name).
bool is_desired(const reconcile::BackendStatus& b, const std::string& name) {
  const auto it =
      std::lower_bound(b.desired_servers.begin(), b.desired_servers.end(), name,
                       [](const ServerSpec& s, const std::string& n) { return s.name < n; });
  return it != b.desired_servers.end() && it->name == name;
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

// Writes JSON straight into one string, byte for byte as nlohmann::json::dump(indent, ' ', false,
// error_handler_t::replace) would for the same document (tests/unit/ops/status_json_test.cc checks
// it against a document built with nlohmann::json). Keys are written in the order nlohmann's
// std::map would hold them (sorted), so every object below lists its keys sorted.
class JsonOut {
 public:
  JsonOut(std::string& out, bool pretty) : out_(out), pretty_(pretty) {}

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  // `k` is a literal key of this file: plain ASCII, nothing to escape.
  JsonOut& key(std::string_view k) {
    separate();
    out_ += '"';
    out_ += k;
    out_ += pretty_ ? "\": " : "\":";
    after_key_ = true;
    return *this;
  }

  // A key that comes from data (a server name): escaped like a string value.
  JsonOut& key_text(std::string_view k) {
    separate();
    string(k);
    out_ += pretty_ ? ": " : ":";
    after_key_ = true;
    return *this;
  }

  void value(bool b) {
    start_value();
    out_ += b ? "true" : "false";
  }
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) void value(T n) {
    start_value();
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, res.ptr);
  }
  void value(double d) {
    start_value();
    if (!std::isfinite(d)) {
      out_ += "null";
      return;
    }
    char buf[64];
    char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);
    out_.append(buf, end);
  }
  void value(std::string_view s) {
    start_value();
    string(s);
  }
  void value(const std::string& s) { value(std::string_view(s)); }
  void value(const char* s) { value(std::string_view(s)); }
  void value(const std::vector<std::string>& list) {
    begin_array();
    for (const auto& s : list) value(std::string_view(s));
    end_array();
  }

 private:
  struct Level {
    bool empty = true;
  };

  void open(char c) {
    start_value();
    out_ += c;
    levels_.push_back({});
  }
  void close(char c) {
    const bool empty = levels_.back().empty;
    levels_.pop_back();
    if (pretty_ && !empty) newline();
    out_ += c;
  }
  void newline() {
    out_ += '\n';
    out_.append(levels_.size() * 2, ' ');
  }
  // Before a key, or before an element of an array.
  void separate() {
    Level& l = levels_.back();
    if (!l.empty) out_ += ',';
    l.empty = false;
    if (pretty_) newline();
  }
  void start_value() {
    if (after_key_) {
      after_key_ = false;
    } else if (!levels_.empty()) {
      separate();
    }
  }

  // A JSON string: printable ASCII is copied as it is (the common case), the few escapes are
  // written here, and a string with any byte >= 0x80 goes through nlohmann's serializer, which
  // replaces invalid UTF-8 with U+FFFD exactly as before.
  void string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80) {
        out_ += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
        return;
      }
    }
    out_ += '"';
    size_t plain = 0;  // start of the run of bytes copied as they are
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 0xF];
      }
    }
    out_.append(s.data() + plain, s.size() - plain);
    out_ += '"';
  }

  std::string& out_;
  bool pretty_;
  bool after_key_ = false;
  std::vector<Level> levels_;
};

// One discovery label as shown in /status: "key=value", redacted; the value of a key that names
// a secret (password, token, ...) is hidden whatever it is.
std::string label_text(std::string_view key, std::string_view value) {
  const std::string_view last = key.substr(key.rfind('.') + 1);
  std::string text(key);
  text += '=';
  text += is_secret_key(last) ? std::string_view("***") : value;
  return redact(text);
}

// Bytes of /status per server and per backend, to reserve the output once.
constexpr size_t kBytesPerServer = 260;
constexpr size_t kBytesPerBackend = 600;

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
  const Health h = check_health(snap, options);
  const Health r = check_ready(snap);
  std::string out;
  JsonOut w(out, !compact);
  if (!snap) {
    w.begin_object();
    w.key("backends").begin_array();
    w.end_array();
    w.key("healthy").value(h.ok);
    w.key("instances").begin_array();
    w.end_array();
    if (!r.ok) w.key("not_ready_because").value(r.reason);
    w.key("ready").value(r.ok);
    if (!h.ok) w.key("unhealthy_because").value(redact(h.reason));
    w.key("version").value(options.version);
    w.end_object();
    out += '\n';
    return out;
  }
  size_t servers = 0, backends = snap->guards.size();
  for (const auto& inst : snap->instances) {
    backends += inst.backends.size();
    for (const auto& b : inst.backends)
      servers += b.desired_servers.size() + b.actual_servers.size();
  }
  out.reserve(4096 + servers * kBytesPerServer + backends * kBytesPerBackend +
              snap->journal.actions.size() * 300 + snap->journal.minutes.size() * 120);

  w.begin_object();
  w.key("backends").begin_array();
  for (const auto& g : snap->guards) {
    w.begin_object();
    w.key("backend").value(g.backend);
    w.key("desired").value(g.desired);
    w.key("held").value(discovery::to_string(g.hold));
    if (g.hold != discovery::Hold::kNone) {
      w.key("hold").begin_object();
      if (g.confirm_at) {
        w.key("confirm_in_seconds").value(std::max(0.0, seconds_between(snap->now, *g.confirm_at)));
      }
      w.key("reason").value(discovery::to_string(g.hold));
      w.key("servers").value(g.held_servers);
      if (g.held_since) w.key("since_seconds_ago").value(seconds_between(*g.held_since, snap->now));
      w.key("would_remove").value(g.would_remove);
      w.end_object();
    }
    w.key("ready").value(g.ready);
    w.key("sources").begin_array();
    for (const auto& s : g.sources) {
      w.begin_object();
      w.key("delivered").value(s.delivered);
      w.key("endpoints").value(s.endpoints);
      w.key("errors").value(s.errors);
      w.key("events_per_minute").value(s.events_last_minute);
      if (s.from_state) w.key("from_state").value(true);  // the set restored from the state file
      w.key("healthy").value(s.delivered && !s.failing);
      if (!s.hooks.empty()) {
        w.key("hooks_in_flight").begin_array();
        for (const auto& hk : s.hooks) {
          w.begin_object();
          w.key("deadline_in_seconds").value(seconds_between(snap->now, hk.deadline));
          w.key("hook").value(hk.hook);
          w.key("instance").value(hk.instance);
          w.key("next_heartbeat_in_seconds").value(seconds_between(snap->now, hk.next_heartbeat));
          w.key("progress").value(hk.progress);
          w.key("since_seconds_ago").value(seconds_between(hk.started, snap->now));
          w.key("transition").value(hk.transition);
          w.end_object();
        }
        w.end_array();
      }
      if (!s.last_error.empty()) w.key("last_error").value(redact(s.last_error));
      if (s.last_success) {
        w.key("last_success_seconds_ago").value(seconds_between(*s.last_success, snap->now));
      }
      w.key("rejected").value(s.rejected);
      if (!s.rejected_messages.empty()) {
        w.key("rejected_endpoints").begin_array();
        for (const auto& m : s.rejected_messages) w.value(redact(m));
        w.end_array();
      }
      if (s.labels) {
        // Per server, its labels from discovery as "key=value" (redacted; a secret-looking key's
        // value is hidden). Untrusted text: the dashboard shows it as text only.
        w.key("server_labels").begin_object();
        for (const auto& sl : *s.labels) {
          w.key_text(sl.server).begin_array();
          for (const auto& [k, v] : sl.pairs()) w.value(label_text(k, v));
          w.end_array();
        }
        w.end_object();
      }
      if (!s.servers.empty()) w.key("servers").value(s.servers);  // several sources: whose is what
      w.key("snapshots").value(s.snapshots);
      w.key("source").value(redact(s.source));
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();

  // The last hour's convergence and changes per minute.
  const auto& journal = snap->journal;
  w.key("convergence").begin_object();
  w.key("changes").value(journal.changes);
  w.key("convergences").value(journal.convergences);
  w.key("minutes").begin_array();
  for (const auto& m : journal.minutes) {
    w.begin_object();
    w.key("changes").value(m.changes);
    w.key("convergences").value(m.convergences);
    w.key("p50_seconds").value(m.p50_s);
    w.key("p99_seconds").value(m.p99_s);
    w.end_object();
  }
  w.end_array();
  w.key("p50_seconds").value(journal.p50_s);
  w.key("p99_seconds").value(journal.p99_s);
  w.key("window_minutes").value(journal.minutes.size());
  w.end_object();

  w.key("healthy").value(h.ok);

  // The config manager's HAProxy: the instance named by its admin socket, else the first.
  const reconcile::InstanceStatus* config_instance = nullptr;
  if (snap->config) {
    for (const auto& inst : snap->instances)
      if (inst.name == snap->config->instance) config_instance = &inst;
    if (!config_instance && !snap->instances.empty()) config_instance = &snap->instances.front();
  }
  w.key("instances").begin_array();
  for (const auto& inst : snap->instances) {
    w.begin_object();
    w.key("backends").begin_array();
    for (const auto& b : inst.backends) {
      const auto maint = [&](const std::string& name) {
        return std::find(b.operator_maint.begin(), b.operator_maint.end(), name) !=
               b.operator_maint.end();
      };
      const auto drain_of = [&](const std::string& name) -> const reconcile::DrainStatus* {
        for (const auto& d : b.drains)
          if (d.server == name) return &d;
        return nullptr;
      };
      w.begin_object();
      w.key("actual").value(b.actual);
      w.key("actual_servers").begin_array();
      for (const auto& s : b.actual_servers) {
        w.begin_object();
        if (s.address.empty()) {
          w.key("address").value("-");
        } else {
          ServerSpec tmp;
          tmp.address = s.address;
          tmp.port = s.port;
          w.key("address").value(tmp.address_port());
        }
        // timed by the reconciler: since when it drains, and when drain_timeout removes it
        if (const auto* d = drain_of(s.name)) {
          if (d->deadline) {
            w.key("drain_deadline_in_seconds").value(seconds_between(snap->now, *d->deadline));
          }
          w.key("drain_since_seconds_ago").value(seconds_between(d->since, snap->now));
        }
        // a new (desired) server held in DRAIN until its first health check passes
        if (s.draining() && !s.health_passed() && is_desired(b, s.name)) {
          w.key("health_gated").value(true);
        }
        w.key("name").value(s.name);
        // left in maintenance until the operator enables it
        if (!b.operator_maint.empty() && maint(s.name)) w.key("operator_maint").value(true);
        w.key("sessions").value(s.sessions);
        w.key("state").value(server_state(s));
        w.key("weight").value(s.weight);
        w.end_object();
      }
      w.end_array();
      w.key("backend").value(b.backend);
      w.key("converged").value(b.converged);
      w.key("desired").value(b.desired);
      w.key("desired_servers").begin_array();
      for (const auto& s : b.desired_servers) {
        w.begin_object();
        w.key("address").value(s.address_port());
        w.key("backup").value(s.backup);
        w.key("name").value(s.name);
        w.key("weight").value(s.weight);
        w.end_object();
      }
      w.end_array();
      w.key("draining").value(b.draining);
      if (!b.last_error.empty()) w.key("last_error").value(redact(b.last_error));
      if (b.missing_slots > 0) w.key("missing_slots").value(b.missing_slots);
      w.key("mode").value(reconcile::to_string(b.mode));
      if (!b.operator_maint.empty()) w.key("operator_maint").value(b.operator_maint);
      w.key("ready").value(b.ready);
      w.end_object();
    }
    w.end_array();
    if (config_instance == &inst) {
      const ConfigStatus& c = *snap->config;
      w.key("config").begin_object();
      if (c.last_reload) {
        w.key("last_reload").begin_object();
        w.key("duration_seconds").value(c.last_reload->seconds);
        w.key("message").value(redact(c.last_reload->message));
        w.key("result").value(c.last_reload->result);
        w.key("seconds_ago").value(seconds_between(c.last_reload->at, snap->now));
        w.end_object();
      }
      w.key("mode").value(c.config_mode ? "config" : "follow");
      w.key("path").value(redact(c.path));
      w.key("reloads").value(c.reloads);
      w.end_object();
    }
    if (inst.reachable) w.key("haproxy_version").value(inst.info.version);
    if (!inst.last_error.empty()) w.key("last_error").value(redact(inst.last_error));
    w.key("name").value(redact(inst.name));
    if (inst.reachable) w.key("pid").value(inst.info.pid);
    w.key("reachable").value(inst.reachable);
    if (inst.reachable) w.key("uptime_seconds").value(inst.info.uptime_sec);
    w.end_object();
  }
  w.end_array();

  if (!r.ok) w.key("not_ready_because").value(r.reason);
  w.key("ready").value(r.ok);
  w.key("reconciler_last_loop_seconds_ago").value(seconds_between(snap->last_loop, snap->now));

  // The change timeline, newest first.
  w.key("timeline").begin_array();
  const auto& acts = journal.actions;
  for (auto it = acts.rbegin(); it != acts.rend(); ++it) {
    w.begin_object();
    w.key("action").value(it->action);
    w.key("at_unix").value(unix_seconds(it->at, snap->now));
    w.key("backend").value(it->backend);
    if (!it->error.empty()) w.key("error").value(redact(it->error));
    w.key("instance").value(redact(it->instance));
    w.key("latency_ms").value(it->latency_s * 1000.0);
    w.key("ok").value(it->ok);
    w.key("reason").value(redact(it->reason));
    w.key("server").value(it->server);
    w.end_object();
  }
  w.end_array();
  if (!h.ok) w.key("unhealthy_because").value(redact(h.reason));
  w.key("version").value(options.version);
  w.end_object();
  out += '\n';
  return out;
}

void update_scrape_metrics(const OpsSnapshot& snap, const EndpointOptions& options,
                           const OpsStats& stats) {
  for (const auto& g : snap.guards) {
    for (const auto& s : g.sources) {
      const LabelValues labels{g.backend, redact(s.source)};
      stats.source_up.set(labels, s.delivered && !s.failing ? 1 : 0);
      stats.source_endpoints.set(labels, static_cast<double>(s.endpoints));
      stats.source_events_per_minute.set(labels, static_cast<double>(s.events_last_minute));
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
    // After the document is written: the re-read it asks for does not compete with this answer.
    if (options.on_status) options.on_status();
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
