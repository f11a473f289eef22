#include "ops/status_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ops/http_server.h"
#include "os/json.h"

namespace ep::ops {
namespace {

constexpr size_t kMaxReply = 16u << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` until `deadline`; false on timeout or error.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

std::string str(const nlohmann::json& j, const char* key, const std::string& dflt = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (it->is_string()) return it->get<std::string>();
  return os::json_brief(*it);
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
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  int family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(sockaddr_in6);
  } else {
    return Error::invalid(where + ": host must be an IP address");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Error::unavailable(where + ": socket: " + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      return Error::unavailable("cannot connect to " + where + ": " + std::strerror(errno));
    }
    if (!wait_for(fd.get(), POLLOUT, deadline)) {
      return Error::unavailable("cannot connect to " + where + ": timed out");
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0)
      return Error::unavailable("cannot connect to " + where + ": " + std::strerror(err));
  }
  const std::string req = "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + where +
                          "\r\nUser-Agent: elasticproxy-status\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    if (!wait_for(fd.get(), POLLOUT, deadline))
      return Error::unavailable(where + ": send timed out");
    ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Error::unavailable(where + ": send: " + std::strerror(errno));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string in;
  for (;;) {
    if (!wait_for(fd.get(), POLLIN, deadline))
      return Error::unavailable(where + ": reply timed out");
    char buf[16384];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Error::unavailable(where + ": recv: " + std::strerror(errno));
    }
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > kMaxReply) return Error::invalid(where + ": reply too large");
  }
  const size_t head_end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || in.size() < 12) {
    return Error::invalid(where + ": not an HTTP reply (is this ElasticProxy's metrics address?)");
  }
  HttpGetReply reply;
  reply.status = std::atoi(in.substr(9, 3).c_str());
  reply.body = in.substr(head_end + 4);
  return reply;
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
    if (j.contains("not_ready_because")) {
      std::string why = str(j, "not_ready_because");
      while (!why.empty() && why.back() == '\n') why.pop_back();
      size_t pos = 0;
      while (pos <= why.size()) {
        size_t nl = why.find('\n', pos);
        if (nl == std::string::npos) nl = why.size();
        out += "  not ready: " + why.substr(pos, nl - pos) + "\n";
        pos = nl + 1;
      }
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
        if (s.contains("last_error")) out += "      last error: " + str(s, "last_error") + "\n";
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::invalid(std::string("malformed /status document: ") + e.what());
  }
  return out;
}

}  // namespace ep::ops
