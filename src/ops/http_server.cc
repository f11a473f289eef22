#include "ops/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <list>

#include "core/log.h"

namespace ep::ops {
namespace {

constexpr const char* kComponent = "http";

bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParseResult bad(int status, std::string reason) {
  ParseResult r;
  r.state = ParseResult::State::kBad;
  r.status = status;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

const char* status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

ParseResult parse_http_request(std::string_view bytes, const HttpLimits& limits) {
  // The head ends at the first empty line; bare LF line ends are tolerated (RFC 9112 2.2).
  size_t end = std::string_view::npos;
  size_t body_start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '\n') continue;
    if (i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      end = i + 1;
      body_start = i + 2;
      break;
    }
    if (i + 2 < bytes.size() && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') {
      end = i + 1;
      body_start = i + 3;
      break;
    }
  }
  // The request line can be judged before the head is complete: garbage is refused at once.
  const size_t first_nl = bytes.find('\n');
  if (first_nl == std::string_view::npos) {
    if (bytes.size() > limits.max_head_bytes) return bad(414, "request line too long");
    for (unsigned char c : bytes) {
      if (c == ' ') break;
      if (!is_tchar(c)) return bad(400, "malformed request line");
    }
    return {};
  }
  if (end == std::string_view::npos) {
    if (bytes.size() > limits.max_head_bytes) return bad(431, "request head too large");
    return {};
  }
  if (body_start > limits.max_head_bytes) return bad(431, "request head too large");

  std::string_view head = bytes.substr(0, end);
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = head.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  if (lines.empty()) return bad(400, "empty request");

  ParseResult r;
  HttpRequest& req = r.request;
  std::string_view rl = lines[0];
  const size_t sp1 = rl.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      rl.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad(400, "malformed request line");
  }
  req.method = std::string(rl.substr(0, sp1));
  req.target = std::string(rl.substr(sp1 + 1, sp2 - sp1 - 1));
  req.version = std::string(rl.substr(sp2 + 1));
  if (req.method.empty() || !std::all_of(req.method.begin(), req.method.end(), [](char c) {
        return is_tchar(static_cast<unsigned char>(c));
      })) {
    return bad(400, "malformed method");
  }
  if (req.target.empty() || req.target[0] != '/') return bad(400, "malformed request target");
  for (unsigned char c : req.target) {
    if (c <= 0x20 || c >= 0x7f) return bad(400, "malformed request target");
  }
  if (req.version.rfind("HTTP/", 0) != 0) return bad(400, "malformed HTTP version");
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") {
    return bad(505, "only HTTP/1.0 and HTTP/1.1");
  }
  req.path = req.target.substr(0, req.target.find('?'));

  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    if (line[0] == ' ' || line[0] == '\t') return bad(400, "obsolete header folding");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad(400, "malformed header");
    std::string_view name = line.substr(0, colon);
    for (unsigned char c : name) {
      if (!is_tchar(c)) return bad(400, "malformed header name");
    }
    std::string_view value = trim(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return bad(400, "control character in header");
    }
    if (req.headers.size() >= limits.max_headers) return bad(431, "too many headers");
    req.headers.emplace_back(lower(name), std::string(value));
  }
  for (const auto& [name, value] : req.headers) {
    if (name == "transfer-encoding") return bad(501, "request bodies are not accepted");
    if (name == "content-length" && value != "0")
      return bad(413, "request bodies are not accepted");
  }
  r.state = ParseResult::State::kComplete;
  return r;
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error::invalid("listen address '" + std::string(text) +
                            "': expected [ipv6]:port, e.g. [::1]:9108");
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Error::invalid("listen address '" + std::string(text) +
                            "': expected host:port, e.g. 127.0.0.1:9108");
    }
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      return Error::invalid("listen address '" + std::string(text) +
                            "': an IPv6 address needs brackets, e.g. [::1]:9108");
    }
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return Error::invalid("listen address '" + std::string(text) + "': bad port");
  }
  out.port = std::stoi(std::string(port_text));
  if (out.port > 65535)
    return Error::invalid("listen address '" + std::string(text) + "': bad port");
  return out;
}

std::string serialize_response(const HttpResponse& response, bool head_only) {
  std::string out =
      "HTTP/1.1 " + std::to_string(response.status) + " " + status_text(response.status) + "\r\n";
  out += "Content-Type: " + response.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  out += "Connection: close\r\nCache-Control: no-store\r\n";
  for (const auto& [k, v] : response.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (!head_only) out += response.body;
  return out;
}

HttpServer::HttpServer(Handler handler, HttpLimits limits)
    : handler_(std::move(handler)), limits_(limits) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start(std::string_view address) {
  if (thread_.joinable()) return Error::internal("http server already started");
  auto addr = parse_listen_address(address);
  if (!addr) return addr.error();
  std::string host = addr->host.empty() ? "0.0.0.0" : addr->host;
  if (host == "localhost") host = "127.0.0.1";

  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
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
    // No name resolution here: the daemon must not depend on DNS to expose its health.
    return Error::invalid("listen address '" + std::string(address) +
                          "': host must be an IP address (e.g. 127.0.0.1 or [::1])");
  }
  const std::string where = std::string(address);
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::unavailable("listen " + where + ": socket: " + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    return Error::unavailable("listen " + where + ": " + std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  address_ = (family == AF_INET6 ? "[" + host + "]" : host) + ":" + std::to_string(port_);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ::close(fd);
    return Error::unavailable("listen " + where + ": eventfd: " + std::strerror(errno));
  }
  listen_fd_ = fd;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
  return {};
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

namespace {

struct Conn {
  int fd = -1;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool writing = false;
  std::chrono::steady_clock::time_point deadline;
};

}  // namespace

void HttpServer::loop() {
  using Clock = std::chrono::steady_clock;
  std::list<Conn> conns;
  std::vector<pollfd> fds;
  std::vector<Conn*> index;

  auto respond = [this](Conn& c, const HttpResponse& r, bool head_only) {
    c.out = serialize_response(r, head_only);
    c.sent = 0;
    c.writing = true;
    c.deadline = Clock::now() + limits_.write_timeout;
    // Nothing more is read from this connection: the request (if any) is complete.
    ::shutdown(c.fd, SHUT_RD);
  };
  auto error_response = [](int status, const std::string& reason) {
    HttpResponse r;
    r.status = status;
    r.body = std::to_string(status) + " " + status_text(status) + ": " + reason + "\n";
    return r;
  };

  while (!stop_) {
    fds.clear();
    index.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    // Stop accepting while at the connection cap would leave clients hanging in the backlog;
    // instead accept and answer 503 at once (bounded work, the client learns why).
    fds.push_back({listen_fd_, POLLIN, 0});
    auto now = Clock::now();
    auto next = now + std::chrono::seconds(1);
    for (auto& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
      index.push_back(&c);
      next = std::min(next, c.deadline);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait, 0) + 1));
    if (n < 0 && errno != EINTR) {
      log::error(kComponent, "poll: {}", std::strerror(errno));
      break;
    }
    if (stop_) break;
    now = Clock::now();

    std::vector<Conn*> closing;
    for (size_t i = 2; i < fds.size(); ++i) {
      Conn& c = *index[i - 2];
      const short re = fds[i].revents;
      if (re == 0) {
        if (now >= c.deadline) {
          if (!c.writing) {
            // Slow or silent client: answer 408 once (bounded, non-blocking), then close.
            ++timed_out_;
            HttpResponse r = error_response(408, "request not received in time");
            std::string out = serialize_response(r, false);
            [[maybe_unused]] auto w =
                ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          }
          closing.push_back(&c);
        }
        continue;
      }
      if (c.writing) {
        if (re & (POLLERR | POLLHUP | POLLNVAL)) {
          closing.push_back(&c);
          continue;
        }
        ssize_t w = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (w > 0) c.sent += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || c.sent >= c.out.size()) {
          closing.push_back(&c);
        }
        continue;
      }
      char buf[4096];
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        closing.push_back(&c);
        continue;
      }
      if (r < 0) continue;
      c.in.append(buf, static_cast<size_t>(r));
      ParseResult p = parse_http_request(c.in, limits_);
      if (p.state == ParseResult::State::kIncomplete) continue;
      if (p.state == ParseResult::State::kBad) {
        respond(c, error_response(p.status, p.reason), false);
        continue;
      }
      HttpResponse resp;
      try {
        resp = handler_(p.request);
      } catch (const std::exception& e) {
        log::error(kComponent, "handler for {} failed: {}", p.request.path, e.what());
        resp = error_response(500, "internal error");
      }
      ++served_;
      c.in.clear();
      c.in.shrink_to_fit();
      respond(c, resp, p.request.method == "HEAD");
    }
    for (Conn* c : closing) {
      ::close(c->fd);
      conns.remove_if([c](const Conn& x) { return &x == c; });
    }
    open_ = conns.size();

    if (fds[1].revents & POLLIN) {
      // Accept everything pending, bounded per round so one flood cannot starve the others.
      for (int k = 0; k < 64; ++k) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        if (conns.size() >= limits_.max_connections) {
          ++refused_;
          std::string out = serialize_response(error_response(503, "too many connections"), false);
          [[maybe_unused]] auto w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          ::close(fd);
          continue;
        }
        Conn c;
        c.fd = fd;
        c.deadline = Clock::now() + limits_.read_timeout;
        conns.push_back(std::move(c));
      }
      open_ = conns.size();
    }
  }
  for (auto& c : conns) ::close(c.fd);
  open_ = 0;
}

}  // namespace ep::ops
