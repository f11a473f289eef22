#include "ops/status_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "net/curl_http_client.h"
#include "ops/http_server.h"
#include "os/json.h"
#include "os/strings.h"

namespace ep::ops {
namespace {

constexpr size_t kMaxReply = 16u << 20;

// A field for the terminal: control characters (terminal escape sequences from discovery data,
// line breaks that would forge table rows) are escaped.
std::string str(const nlohmann::json& j, const char* key, const std::string& dflt = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (it->is_string()) return os::printable(it->get_ref<const std::string&>());
  return os::json_brief(*it);
}

// A multi-line field: one printable line per line of the text.
std::vector<std::string> lines_of(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return out;
  std::string_view text = it->get_ref<const std::string&>();
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    out.push_back(os::printable(text.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return out;
}

}  // namespace

Result<HttpGetReply> http_get(std::string_view address, std::string_view path,
                              std::chrono::milliseconds timeout) {
  auto addr = parse_listen_address(address);
  if (!addr) return addr.error();
  std::string host = addr->host;
  if (host.empty() || host == "0.0.0.0" || host == "localhost") host = "127.0.0.1";
  if (host == "::") host = "::1";
  const std::string where = std::string(address);
  in6_addr scratch{};
  if (inet_pton(AF_INET6, host.c_str(), &scratch) == 1) {
    host = "[" + host + "]";
  } else if (inet_pton(AF_INET, host.c_str(), &scratch) != 1) {
    return Error::invalid(where + ": host must be an IP address");
  }
  net::CurlHttpClient::Options options;
  options.max_body_bytes = kMaxReply;
  options.user_agent = "elasticproxy-status";
  net::CurlHttpClient client(options);
  net::HttpRequest request;
  request.url = "http://" + host + ":" + std::to_string(addr->port) + std::string(path);
  request.timeout = timeout;
  request.connect_timeout = timeout;
  request.direct = true;  // the daemon's own address: never through http_proxy
  auto reply = client.perform(request);
  if (!reply) {
    if (reply.error().kind == ErrorKind::kUnavailable) {
      return Error::unavailable("cannot reach " + where + ": " + reply.error().message);
    }
    return Error{reply.error().kind, where + ": " + reply.error().message};
  }
  return HttpGetReply{static_cast<int>(reply->status), std::move(reply->body)};
}

Result<std::string> render_status_table(std::string_view status_json) {
  auto parsed = os::parse_json(status_json, "/status");
  nlohmann::json j = parsed ? std::move(*parsed) : nlohmann::json();
  if (!j.is_object() || !j.contains("instances")) {
    return Error::invalid("not an ElasticProxy /status document");
  }
  std::string out;
  try {
    out += fmt::format("ElasticProxy {}: {}, {}\n", str(j, "version", "?"),
                       j.value("healthy", false) ? "healthy" : "UNHEALTHY",
                       j.value("ready", false) ? "ready" : "NOT READY");
    if (j.contains("unhealthy_because"))
      out += "  unhealthy: " + str(j, "unhealthy_because") + "\n";
    for (const std::string& why : lines_of(j, "not_ready_because")) {
      out += "  not ready: " + why + "\n";
    }
    out += "\nHAPROXY INSTANCE / BACKEND            MODE     DESIRED  ACTUAL  DRAINING  STATE\n";
    for (const auto& inst : j["instances"]) {
      std::string line = str(inst, "name");
      if (inst.value("reachable", false)) {
        line += "  (HAProxy " + str(inst, "haproxy_version") + ", pid " + str(inst, "pid") + ")";
      } else {
        line +=
            "  UNREACHABLE" + (inst.contains("last_error") ? ": " + str(inst, "last_error") : "");
      }
      out += line + "\n";
      for (const auto& b : inst.value("backends", nlohmann::json::array())) {
        std::string state = !b.value("ready", false)      ? "waiting for sources"
                            : b.value("converged", false) ? "converged"
                                                          : "converging";
        if (b.contains("missing_slots")) state += ", " + str(b, "missing_slots") + " without slot";
        if (b.contains("operator_maint")) {
          state += ", operator maintenance: " + std::to_string(b["operator_maint"].size());
        }
        if (b.contains("last_error")) state += ", error: " + str(b, "last_error");
        out +=
            fmt::format("  {:<34} {:<8} {:>7} {:>7} {:>9}  {}\n", str(b, "backend"), str(b, "mode"),
                        str(b, "desired"), str(b, "actual"), str(b, "draining"), state);
      }
    }
    out += "\nBACKEND / SOURCE                      HEALTH     ENDPOINTS  REJECTED  LAST SUCCESS\n";
    for (const auto& g : j.value("backends", nlohmann::json::array())) {
      std::string held = str(g, "held");
      out += str(g, "backend") + "  (desired " + str(g, "desired") +
             (held.empty() || held == "none" ? "" : ", new set held back: " + held) + ")\n";
      for (const auto& s : g.value("sources", nlohmann::json::array())) {
        std::string health = !s.value("delivered", false) ? "waiting"
                             : s.value("healthy", false)  ? "ok"
                                                          : "FAILING";
        std::string ago = "never";
        if (s.contains("last_success_seconds_ago")) {
          ago = fmt::format("{:.1f}s ago", s["last_success_seconds_ago"].get<double>());
        }
        out += fmt::format("  {:<36} {:<10} {:>9} {:>9}  {}\n", str(s, "source"), health,
                           str(s, "endpoints"), str(s, "rejected"), ago);
        if (s.value("from_state", false)) {
          out += "      serving the last good set from the state file (not answered yet)\n";
        }
        if (s.contains("last_error")) out += "      last error: " + str(s, "last_error") + "\n";
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::invalid(std::string("malformed /status document: ") + e.what());
  }
  return out;
}

}  // namespace ep::ops
