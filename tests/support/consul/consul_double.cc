#include "support/consul/consul_double.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

namespace ep::test {
namespace {

using nlohmann::json;
using Reply = HttpServerReply;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Reply text(int status, std::string body) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  return r;
}

// Consul durations: "10s", "5m", "100ms"; a bare number is seconds in Consul's parser for wait.
std::chrono::milliseconds parse_wait(const std::string& s) {
  using namespace std::chrono;
  if (s.empty()) return minutes(5);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  double v = std::stod(s.substr(0, i));
  std::string unit = s.substr(i);
  double ms = unit == "ms" ? v : unit == "m" ? v * 60000 : unit == "h" ? v * 3600000 : v * 1000;
  return milliseconds(static_cast<long long>(ms));
}

std::string aggregated(const std::vector<ConsulCheck>& checks) {
  bool passing = false, warning = false, critical = false;
  for (const auto& c : checks) {
    if (c.id == "_node_maintenance" || c.id.rfind("_service_maintenance:", 0) == 0)
      return "maintenance";
    if (c.status == "passing")
      passing = true;
    else if (c.status == "warning")
      warning = true;
    else if (c.status == "critical")
      critical = true;
    else
      return "";
  }
  if (critical) return "critical";
  if (warning) return "warning";
  (void)passing;
  return "passing";
}

// One clause of the supported filter subset. Returns nullopt when the clause is not understood.
struct Clause {
  enum Op { kTagContains, kMetaEq, kMetaNe, kNodeMetaEq, kKindEq } op;
  std::string key, value;
};

std::optional<std::vector<Clause>> parse_filter(const std::string& filter) {
  std::vector<Clause> out;
  static const std::regex contains(R"re(^\s*Service\.Tags\s+contains\s+"([^"]*)"\s*$)re");
  static const std::regex in(R"re(^\s*"([^"]*)"\s+in\s+Service\.Tags\s*$)re");
  static const std::regex meta(
      R"re(^\s*Service\.Meta\.([A-Za-z0-9_\-]+)\s*(==|!=)\s*"([^"]*)"\s*$)re");
  static const std::regex node_meta(
      R"re(^\s*Node\.Meta\.([A-Za-z0-9_\-]+)\s*==\s*"([^"]*)"\s*$)re");
  static const std::regex kind(R"re(^\s*Service\.Kind\s*==\s*"([^"]*)"\s*$)re");
  size_t pos = 0;
  while (pos <= filter.size()) {
    size_t next = filter.find(" and ", pos);
    std::string part =
        filter.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    std::smatch m;
    if (std::regex_match(part, m, contains) || std::regex_match(part, m, in)) {
      out.push_back({Clause::kTagContains, "", m[1]});
    } else if (std::regex_match(part, m, meta)) {
      out.push_back({m[2] == "==" ? Clause::kMetaEq : Clause::kMetaNe, m[1], m[3]});
    } else if (std::regex_match(part, m, node_meta)) {
      out.push_back({Clause::kNodeMetaEq, m[1], m[2]});
    } else if (std::regex_match(part, m, kind)) {
      out.push_back({Clause::kKindEq, "", m[1]});
    } else {
      return std::nullopt;
    }
    if (next == std::string::npos) break;
    pos = next + 5;
  }
  return out;
}

bool matches(const ConsulService& s, const std::vector<Clause>& clauses) {
  for (const auto& c : clauses) {
    switch (c.op) {
      case Clause::kTagContains:
        if (std::find(s.tags.begin(), s.tags.end(), c.value) == s.tags.end()) return false;
        break;
      case Clause::kMetaEq: {
        auto it = s.meta.find(c.key);
        if (it == s.meta.end() || it->second != c.value) return false;
        break;
      }
      case Clause::kMetaNe: {
        auto it = s.meta.find(c.key);
        if (it != s.meta.end() && it->second == c.value) return false;
        break;
      }
      case Clause::kNodeMetaEq: {
        auto it = s.node_meta.find(c.key);
        if (it == s.node_meta.end() || it->second != c.value) return false;
        break;
      }
      case Clause::kKindEq:
        if (s.kind != c.value) return false;
        break;
    }
  }
  return true;
}

json check_json(const ConsulService& s, const ConsulCheck& c, bool node_level) {
  return json{{"Node", s.node},
              {"CheckID", c.id},
              {"Name", c.name.empty() ? c.id : c.name},
              {"Status", c.status},
              {"Notes", ""},
              {"Output", c.output},
              {"ServiceID", node_level ? "" : s.id},
              {"ServiceName", node_level ? "" : s.name},
              {"ServiceTags", node_level ? json::array() : json(s.tags)},
              {"Type", node_level ? "" : "ttl"},
              {"Interval", ""},
              {"Timeout", ""},
              {"ExposedPort", 0},
              {"Definition", json::object()},
              {"Namespace", s.ns},
              {"Partition", s.partition},
              {"CreateIndex", 10},
              {"ModifyIndex", 10}};
}

}  // namespace

ConsulDouble::ConsulDouble()
    : server_(std::make_unique<LoopbackHttpServer>(
          [this](const HttpServerRequest& r) { return handle(r); })) {}

ConsulDouble::~ConsulDouble() { stop(); }

void ConsulDouble::start() { server_->start(); }
void ConsulDouble::start_unix(const std::string& path) { server_->start_unix(path); }

void ConsulDouble::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  server_->stop();
}

std::string ConsulDouble::address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
std::string ConsulDouble::url() const { return server_->base_url(); }

void ConsulDouble::bump_locked(const std::string& service_name) {
  ++index_;
  service_index_[service_name] = index_;
}

void ConsulDouble::register_service(ConsulService service) {
  if (service.id.empty()) service.id = service.name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(services_.begin(), services_.end(), [&](const ConsulService& s) {
      return s.node == service.node && s.id == service.id;
    });
    std::string old_name;
    if (it != services_.end()) {
      old_name = it->name;
      *it = service;
    } else {
      services_.push_back(service);
    }
    bump_locked(service.name);
    if (!old_name.empty() && old_name != service.name) service_index_[old_name] = index_;
    services_index_ = index_;
    checks_index_ = index_;
  }
  cv_.notify_all();
}

bool ConsulDouble::deregister_service(const std::string& service_id, const std::string& node) {
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = services_.begin(); it != services_.end();) {
      if (it->id == service_id && (node.empty() || it->node == node)) {
        std::string name = it->name;
        it = services_.erase(it);
        bump_locked(name);
        services_index_ = index_;
        checks_index_ = index_;
        found = true;
      } else {
        ++it;
      }
    }
  }
  cv_.notify_all();
  return found;
}

bool ConsulDouble::set_check_status(const std::string& check_id, const std::string& status) {
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : services_) {
      for (auto& c : s.checks) {
        if (c.id == check_id) {
          c.status = status;
          bump_locked(s.name);
          checks_index_ = index_;
          found = true;
        }
      }
    }
  }
  cv_.notify_all();
  return found;
}

void ConsulDouble::set_node_check(const std::string& node, const std::string& check_id,
                                  const std::string& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    node_checks_[node][check_id] = ConsulCheck{check_id, check_id, status, ""};
    ++index_;
    checks_index_ = index_;
    for (const auto& s : services_) {
      if (s.node == node) service_index_[s.name] = index_;
    }
  }
  cv_.notify_all();
}

void ConsulDouble::touch(const std::string& service_name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bump_locked(service_name);
  }
  cv_.notify_all();
}

void ConsulDouble::simulate_restart(std::uint64_t new_index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    index_ = new_index;
    services_index_ = std::min(services_index_, new_index);
    checks_index_ = std::min(checks_index_, new_index);
    for (auto& [name, idx] : service_index_) idx = std::min(idx, new_index);
  }
  cv_.notify_all();
}

void ConsulDouble::set_acl_token(std::string token) {
  std::lock_guard<std::mutex> lock(mu_);
  token_ = std::move(token);
}

void ConsulDouble::set_fault(ConsulFault fault) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    fault_ = fault;
  }
  cv_.notify_all();
}

void ConsulDouble::set_shuffle(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  shuffle_ = on;
}

void ConsulDouble::set_no_jitter(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  no_jitter_ = on;
}

std::uint64_t ConsulDouble::index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_;
}

std::uint64_t ConsulDouble::health_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_requests_;
}

std::uint64_t ConsulDouble::requests_to(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<std::uint64_t>(std::count_if(
      paths_.begin(), paths_.end(), [&](const std::string& p) { return p.rfind(prefix, 0) == 0; }));
}

std::vector<ConsulDouble::Seen> ConsulDouble::seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

int ConsulDouble::blocked_now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocked_;
}

std::uint64_t ConsulDouble::service_index_locked(const std::string& name) const {
  auto it = service_index_.find(name);
  // An unknown service blocks on the whole catalog, as Consul falls back to a table index.
  return it == service_index_.end() ? index_ : it->second;
}

template <typename F>
bool ConsulDouble::block_locked(std::unique_lock<std::mutex>& lock, const HttpServerRequest& req,
                                F current, bool wake_on_fault) {
  if (!req.has_param("index")) return true;
  const std::uint64_t min_index =
      std::stoull(req.param("index").empty() ? "0" : req.param("index"));
  if (min_index == 0) return true;
  auto wait =
      std::min<std::chrono::milliseconds>(parse_wait(req.param("wait")), std::chrono::minutes(10));
  if (!no_jitter_ && wait.count() >= 16) {
    static thread_local std::mt19937 rng{std::random_device{}()};
    wait += std::chrono::milliseconds(
        std::uniform_int_distribution<long long>(0, wait.count() / 16)(rng));
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  ++blocked_;
  while (!stopping_ && current() <= min_index && (!wake_on_fault || fault_ == ConsulFault::kNone)) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  --blocked_;
  return !stopping_;
}

HttpServerReply ConsulDouble::handle(const HttpServerRequest& req) {
  auto held = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    if (frozen_) ++held_;
    return frozen_;
  };
  HttpServerReply hang;
  hang.action = HttpServerReply::Action::kHang;
  if (held()) return hang;
  HttpServerReply r = handle_request(req);
  if (held()) return hang;  // answered while frozen: never sent
  return r;
}

void ConsulDouble::set_frozen(bool on) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    frozen_ = on;
  }
  cv_.notify_all();
}

std::uint64_t ConsulDouble::held_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

HttpServerReply ConsulDouble::handle_request(const HttpServerRequest& req) {
  const std::string& p = req.path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    paths_.push_back(p);
  }
  if (p.rfind("/v1/health/state/", 0) == 0) {
    return health_state(req, p.substr(std::string("/v1/health/state/").size()));
  }
  if (p.rfind("/v1/health/service/", 0) == 0) {
    if (req.method != "GET") return text(405, "method not allowed");
    return health_service(req, p.substr(std::string("/v1/health/service/").size()));
  }
  if (p == "/v1/catalog/services") return catalog_services(req);
  if (p == "/v1/status/leader") {
    Reply r;
    r.body = "\"127.0.0.1:8300\"";
    return r;
  }
  if (p == "/v1/agent/service/register" && req.method == "PUT") return agent_register(req);
  if (p.rfind("/v1/agent/service/deregister/", 0) == 0 && req.method == "PUT") {
    const std::string id = p.substr(std::string("/v1/agent/service/deregister/").size());
    if (!deregister_service(id, ""))
      return text(404, "Unknown service ID \"" + id +
                           "\". Ensure that the service ID is passed, not the service name.");
    return Reply{};
  }
  return text(404, "404 page not found\n");
}

HttpServerReply ConsulDouble::agent_register(const HttpServerRequest& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return text(400, "Request decode failed: invalid JSON");
  ConsulService s;
  s.name = j.value("Name", "");
  if (s.name.empty()) return text(400, "Invalid Service Meta: Missing service name");
  s.id = j.value("ID", s.name);
  s.address = j.value("Address", "");
  s.port = j.value("Port", 0);
  s.kind = j.value("Kind", "");
  if (j.contains("Tags") && j["Tags"].is_array())
    s.tags = j["Tags"].get<std::vector<std::string>>();
  if (j.contains("Meta") && j["Meta"].is_object()) {
    s.meta = j["Meta"].get<std::map<std::string, std::string>>();
  }
  if (j.contains("Weights") && j["Weights"].is_object()) {
    s.weight_passing = j["Weights"].value("Passing", 1);
    s.weight_warning = j["Weights"].value("Warning", 1);
  }
  auto add_check = [&](const json& c, int n) {
    ConsulCheck check;
    check.id = c.value("CheckID",
                       c.value("ID", "service:" + s.id + (n > 0 ? ":" + std::to_string(n) : "")));
    check.name = c.value("Name", "Service '" + s.name + "' check");
    check.status = c.value("Status", "critical");  // Consul's default initial status
    s.checks.push_back(check);
  };
  if (j.contains("Check") && j["Check"].is_object()) add_check(j["Check"], 0);
  if (j.contains("Checks") && j["Checks"].is_array()) {
    int n = 1;
    for (const auto& c : j["Checks"]) add_check(c, n++);
  }
  register_service(std::move(s));
  return Reply{};
}

HttpServerReply ConsulDouble::health_state(const HttpServerRequest& req, const std::string& state) {
  if (state != "any" && state != "passing" && state != "warning" && state != "critical") {
    return text(400, "Invalid check state \"" + state + "\"");
  }
  std::vector<std::string> names;
  bool filtered = false;
  if (req.has_param("filter")) {
    static const std::regex clause(R"re(^\s*ServiceName\s*==\s*"((?:[^"\\]|\\.)*)"\s*$)re");
    const std::string f = req.param("filter");
    size_t pos = 0;
    while (true) {
      size_t next = f.find(" or ", pos);
      std::string part = f.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
      std::smatch m;
      if (!std::regex_match(part, m, clause)) {
        return text(400, "Failed to create boolean expression evaluator: unsupported filter " + f);
      }
      std::string name;
      const std::string raw = m[1];
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
        name += raw[i];
      }
      names.push_back(name);
      if (next == std::string::npos) break;
      pos = next + 4;
    }
    filtered = true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  const std::string token = req.header("x-consul-token");
  if (!token_.empty() && !token.empty() && token != token_) return text(403, "ACL not found");
  if (!block_locked(lock, req, [&] { return checks_index_; })) return text(500, "shutting down");
  auto wanted = [&](const std::string& service_name) {
    return !filtered || std::find(names.begin(), names.end(), service_name) != names.end();
  };
  json out = json::array();
  std::set<std::string> nodes_done;
  for (const auto& s : services_) {
    if (wanted("") && nodes_done.insert(s.node).second) {
      if (auto nc = node_checks_.find(s.node); nc != node_checks_.end()) {
        for (const auto& [id, c] : nc->second) {
          if (state == "any" || c.status == state) out.push_back(check_json(s, c, true));
        }
      }
    }
    if (!wanted(s.name)) continue;
    for (const auto& c : s.checks) {
      if (state == "any" || c.status == state) out.push_back(check_json(s, c, false));
    }
  }
  Reply r;
  r.body = out.dump();
  r.headers = {{"X-Consul-Index", std::to_string(checks_index_)},
               {"X-Consul-KnownLeader", "true"},
               {"X-Consul-LastContact", "0"}};
  return r;
}

HttpServerReply ConsulDouble::catalog_services(const HttpServerRequest& req) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!block_locked(lock, req, [&] { return services_index_; })) return text(500, "shutting down");
  json out = json::object();
  out["consul"] = json::array();
  for (const auto& s : services_) {
    auto& tags = out[s.name];
    if (tags.is_null()) tags = json::array();
    for (const auto& t : s.tags) {
      if (std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);
    }
  }
  Reply r;
  r.body = out.dump();
  r.headers = {{"X-Consul-Index", std::to_string(services_index_)},
               {"X-Consul-KnownLeader", "true"},
               {"X-Consul-LastContact", "0"}};
  return r;
}

HttpServerReply ConsulDouble::health_service(const HttpServerRequest& req,
                                             const std::string& name) {
  std::unique_lock<std::mutex> lock(mu_);
  ++health_requests_;
  seen_.push_back(
      {req.target, req.header("x-consul-token"), req.header("authorization"), req.header("host")});

  // ACL check happens before blocking, as in Consul.
  std::string token = req.header("x-consul-token");
  if (token.empty()) {
    const std::string auth = req.header("authorization");
    if (auth.rfind("Bearer ", 0) == 0) token = auth.substr(7);
  }
  bool anonymous_filtered = false;
  if (!token_.empty()) {
    if (token.empty()) {
      anonymous_filtered = true;
    } else if (token != token_) {
      return text(403, "ACL not found");
    }
  }

  std::optional<std::vector<Clause>> clauses = std::vector<Clause>{};
  if (req.has_param("filter")) {
    clauses = parse_filter(req.param("filter"));
    if (!clauses) {
      return text(400, "Failed to create boolean expression evaluator: unsupported filter " +
                           req.param("filter"));
    }
  }

  switch (fault_) {
    case ConsulFault::kNoLeader: {
      Reply r = text(500, "No cluster leader");
      r.headers.emplace_back("X-Consul-KnownLeader", "false");
      return r;
    }
    case ConsulFault::kRpcEof:
      return text(500, "rpc error making call: EOF");
    case ConsulFault::kTooMany:
      return text(
          429,
          "Your IP is issuing too many concurrent connections, please rate limit your calls\n");
    case ConsulFault::kHang: {
      Reply r;
      r.action = Reply::Action::kHang;
      return r;
    }
    default:
      break;
  }

  if (!block_locked(
          lock, req, [&] { return service_index_locked(name); }, true)) {
    return text(500, "shutting down");
  }
  const ConsulFault fault = fault_;  // may have been set while blocked
  if (fault == ConsulFault::kHang) {
    Reply r;
    r.action = Reply::Action::kHang;
    return r;
  }
  if (fault == ConsulFault::kNoLeader || fault == ConsulFault::kRpcEof) {
    return text(
        500, fault == ConsulFault::kNoLeader ? "No cluster leader" : "rpc error making call: EOF");
  }
  if (fault == ConsulFault::kTooMany) {  // a parked query woken after the fault was set
    return text(
        429, "Your IP is issuing too many concurrent connections, please rate limit your calls\n");
  }

  const bool passing =
      req.has_param("passing") && req.param("passing") != "false" && req.param("passing") != "0";
  const auto tags = req.params("tag");
  const std::string dc = req.param("dc");
  const std::string ns = req.param("ns");
  const std::string partition = req.param("partition");
  const auto node_meta = req.params("node-meta");

  json out = json::array();
  std::vector<const ConsulService*> picked;
  for (const auto& s : services_) {
    if (s.name != name) continue;
    if (!dc.empty() && s.datacenter != dc) continue;
    if (!ns.empty() && s.ns != ns) continue;
    if (ns.empty() && s.ns != "default") continue;
    if (!partition.empty() && s.partition != partition) continue;
    if (partition.empty() && s.partition != "default") continue;
    bool tag_ok = true;
    for (const auto& t : tags) {
      tag_ok = tag_ok && std::any_of(s.tags.begin(), s.tags.end(),
                                     [&](const std::string& x) { return lower(x) == lower(t); });
    }
    if (!tag_ok) continue;
    bool meta_ok = true;
    for (const auto& kv : node_meta) {
      size_t colon = kv.find(':');
      auto it = s.node_meta.find(kv.substr(0, colon));
      meta_ok = meta_ok && it != s.node_meta.end() &&
                (colon == std::string::npos || it->second == kv.substr(colon + 1));
    }
    if (!meta_ok || !matches(s, *clauses)) continue;
    std::vector<ConsulCheck> all = s.checks;
    if (auto nc = node_checks_.find(s.node); nc != node_checks_.end()) {
      for (const auto& [id, c] : nc->second) all.push_back(c);
    }
    if (passing && aggregated(all) != "passing") continue;
    // Consul's ?passing drops entries with any non-passing check (maintenance included).
    if (passing && std::any_of(all.begin(), all.end(),
                               [](const ConsulCheck& c) { return c.status != "passing"; }))
      continue;
    picked.push_back(&s);
  }
  std::sort(picked.begin(), picked.end(), [](const ConsulService* a, const ConsulService* b) {
    return std::tie(a->node, a->id) < std::tie(b->node, b->id);
  });
  if (shuffle_) std::reverse(picked.begin(), picked.end());
  if (anonymous_filtered || fault == ConsulFault::kEmpty || fault == ConsulFault::kEmptyNoLeader) {
    picked.clear();
  }
  for (const ConsulService* s : picked) {
    json node_tagged = json::object();
    for (const auto& [k, v] : s->node_tagged) node_tagged[k] = v;
    if (node_tagged.empty()) {
      node_tagged = {{"lan", s->node_address},
                     {"lan_ipv4", s->node_address},
                     {"wan", s->node_address},
                     {"wan_ipv4", s->node_address}};
    }
    json svc_tagged = json::object();
    for (const auto& [k, v] : s->tagged) svc_tagged[k] = {{"Address", v.first}, {"Port", v.second}};
    json service = {
        {"Kind", s->kind},
        {"ID", s->id},
        {"Service", s->name},
        {"Tags", s->tags},
        {"Address", s->address},
        {"TaggedAddresses", svc_tagged},
        {"Meta", s->meta},
        {"Port", s->port},
        {"SocketPath", ""},
        {"EnableTagOverride", false},
        {"Proxy", {{"Mode", ""}, {"MeshGateway", json::object()}, {"Expose", json::object()}}},
        {"Connect", json::object()},
        {"PeerName", ""},
        {"Namespace", s->ns},
        {"Partition", s->partition},
        {"CreateIndex", 10},
        {"ModifyIndex", service_index_locked(s->name)}};
    if (s->meta.empty()) service["Meta"] = nullptr;  // Consul sends null for no meta
    if (s->weight_passing) {
      service["Weights"] = {{"Passing", *s->weight_passing}, {"Warning", s->weight_warning}};
    }
    json checks = json::array();
    if (auto nc = node_checks_.find(s->node); nc != node_checks_.end()) {
      for (const auto& [id, c] : nc->second) checks.push_back(check_json(*s, c, true));
    }
    for (const auto& c : s->checks) checks.push_back(check_json(*s, c, false));
    out.push_back({{"Node",
                    {{"ID", "0b2c1a3e-0000-0000-0000-" +
                                std::string(12 - std::min<size_t>(12, s->node.size()), '0') +
                                s->node.substr(0, 12)},
                     {"Node", s->node},
                     {"Address", s->node_address},
                     {"Datacenter", s->datacenter},
                     {"TaggedAddresses", node_tagged},
                     {"Meta", s->node_meta},
                     {"Partition", s->partition},
                     {"PeerName", ""},
                     {"CreateIndex", 5},
                     {"ModifyIndex", 5}}},
                   {"Service", service},
                   {"Checks", checks}});
  }

  Reply r;
  const std::uint64_t idx = service_index_locked(name);
  if (fault != ConsulFault::kNoIndex) r.headers.emplace_back("X-Consul-Index", std::to_string(idx));
  r.headers.emplace_back("X-Consul-KnownLeader",
                         fault == ConsulFault::kEmptyNoLeader ? "false" : "true");
  r.headers.emplace_back("X-Consul-LastContact", "0");
  if (req.has_param("stale")) r.headers.emplace_back("X-Consul-Effective-Consistency", "stale");
  if (req.has_param("cached")) {
    r.headers.emplace_back("X-Cache", "HIT");
    r.headers.emplace_back("Age", "0");
  }
  if (anonymous_filtered) r.headers.emplace_back("X-Consul-Results-Filtered-By-ACLs", "true");
  r.body = out.dump();
  switch (fault) {
    case ConsulFault::kGarbage:
      r.body = "<html><body>502 Bad Gateway</body></html>";
      break;
    case ConsulFault::kObject:
      r.body = R"({"Node":{"Node":"x"},"Service":{"ID":"x","Port":1}})";
      break;
    case ConsulFault::kTruncated:
      r.body = out.dump().substr(0, out.dump().size() / 2);
      if (r.body.empty()) r.body = "[{\"Node\":";
      break;
    case ConsulFault::kCloseMidBody:
      r.action = Reply::Action::kCloseMidBody;
      if (out.empty()) r.body = R"([{"Node":{"Node":"n","Address":"10.0.0.9"}}])";
      break;
    default:
      break;
  }
  return r;
}

}  // namespace ep::test
