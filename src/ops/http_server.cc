#include "ops/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "core/log.h"

namespace ep::ops {
namespace {

constexpr const char* kComponent = "http";
using Clock = std::chrono::steady_clock;

bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

HeadCheck bad_head(int status, std::string reason) {
  HeadCheck h;
  h.state = HeadCheck::State::kBad;
  h.status = status;
  h.reason = std::move(reason);
  return h;
}

HttpResponse error_response(int status, const std::string& reason) {
  HttpResponse r;
  r.status = status;
  const char* text = MHD_get_reason_phrase_for(static_cast<unsigned>(status));
  r.body = std::to_string(status) + " " + (text && *text ? text : "Error") + ": " + reason + "\n";
  return r;
}

std::string peer_of(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa == nullptr) return {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

// The gate answers the few errors it finds itself (before any HTTP engine is involved) with a
// fixed reply; everything it admits is answered by libmicrohttpd.
std::string gate_reply(int status, const std::string& reason) {
  const HttpResponse r = error_response(status, reason);
  const char* text = MHD_get_reason_phrase_for(static_cast<unsigned>(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + (text && *text ? text : "Error") +
         "\r\nContent-Type: " + r.content_type +
         "\r\nContent-Length: " + std::to_string(r.body.size()) +
         "\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: "
         "nosniff\r\n\r\n" +
         r.body;
}

struct MhdDaemonDeleter {
  void operator()(MHD_Daemon* d) const { MHD_stop_daemon(d); }
};
using MhdDaemon = std::unique_ptr<MHD_Daemon, MhdDaemonDeleter>;

struct MhdResponseDeleter {
  void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
};
using MhdResponse = std::unique_ptr<MHD_Response, MhdResponseDeleter>;

}  // namespace

std::optional<std::string> HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return std::nullopt;
}

HeadCheck check_request_head(std::string_view bytes, const HttpLimits& limits) {
  // The request line can be judged before it ends: garbage (a TLS ClientHello, a stray protocol)
  // is refused at its first bytes instead of waiting for a line end that never comes.
  for (unsigned char c : bytes) {
    if (c == ' ') break;
    if (!is_tchar(c)) return bad_head(400, "malformed request line");
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f) {
      return bad_head(400, "control character in request head");
    }
  }
  // The head ends at the first empty line; bare LF line ends are tolerated (RFC 9112 2.2).
  size_t end = std::string_view::npos;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '\n') continue;
    if (i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      end = i + 2;
      break;
    }
    if (i + 2 < bytes.size() && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') {
      end = i + 3;
      break;
    }
  }
  const size_t first_nl = bytes.find('\n');
  if (end == std::string_view::npos) {
    if (bytes.size() > limits.max_head_bytes) {
      return first_nl == std::string_view::npos ? bad_head(414, "request line too long")
                                                : bad_head(431, "request head too large");
    }
    return {};
  }
  if (end > limits.max_head_bytes) return bad_head(431, "request head too large");
  // Obsolete line folding (a header line starting with white space) is refused, not joined.
  for (size_t i = first_nl; i + 1 < end; ++i) {
    if (bytes[i] == '\n' && (bytes[i + 1] == ' ' || bytes[i + 1] == '\t')) {
      return bad_head(400, "obsolete header folding");
    }
  }
  HeadCheck ok;
  ok.state = HeadCheck::State::kComplete;
  return ok;
}

std::optional<HttpResponse> check_request(const HttpRequest& req, const HttpLimits& limits) {
  if (req.method.empty() || !std::all_of(req.method.begin(), req.method.end(), [](char c) {
        return is_tchar(static_cast<unsigned char>(c));
      })) {
    return error_response(400, "malformed method");
  }
  if (req.target.empty() || req.target[0] != '/') {
    return error_response(400, "malformed request target");
  }
  for (unsigned char c : req.target) {
    if (c <= 0x20 || c >= 0x7f) return error_response(400, "malformed request target");
  }
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") {
    if (req.version.rfind("HTTP/", 0) == 0) {
      return error_response(505, "only HTTP/1.0 and HTTP/1.1");
    }
    return error_response(400, "malformed HTTP version");
  }
  if (req.headers.size() > limits.max_headers) return error_response(431, "too many headers");
  for (const auto& [name, value] : req.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return is_tchar(static_cast<unsigned char>(c));
        })) {
      return error_response(400, "malformed header name");
    }
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return error_response(400, "control character in header");
      }
    }
  }
  for (const auto& [name, value] : req.headers) {
    if (name == "transfer-encoding") return error_response(501, "request bodies are not accepted");
    if (name == "content-length" && value != "0") {
      return error_response(413, "request bodies are not accepted");
    }
  }
  return std::nullopt;
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

// ---------------------------------------------------------------------------------------------

struct HttpServer::Impl {
  // A connection the gate holds until its request head is complete.
  struct Pending {
    int fd = -1;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string peer;
    Clock::time_point accepted;
    Clock::time_point deadline;
    bool got_bytes = false;
    bool overflow = false;  // past a limit: waits for a head to displace an idle connection
    bool ready = false;     // overflow with a complete head, waiting for a place to free up
  };

  Impl(Handler h, HttpLimits l) : handler(std::move(h)), limits(l) {}

  Status start(std::string_view address);
  void stop();

  // The gate (its own thread).
  void gate_loop();
  void accept_all();
  void on_readable(int fd);
  void expire(Clock::time_point now);
  void admit_waiting();
  void hand_over(int fd);
  void refuse(int fd, int status, const std::string& reason);  // answers, drains, closes
  void drop(int fd);                                           // forgets a pending connection
  size_t peer_count(const std::string& peer);
  size_t normal_pending() const { return pending.size() - overflow_pending; }

  // libmicrohttpd callbacks (its thread).
  static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                               const char* version, const char* upload_data,
                               size_t* upload_data_size, void** con_cls);
  static void* on_uri(void* cls, const char* uri, MHD_Connection* c);
  static void on_completed(void* cls, MHD_Connection* c, void** con_cls,
                           MHD_RequestTerminationCode toe);
  static void on_connection(void* cls, MHD_Connection* c, void** socket_context,
                            MHD_ConnectionNotificationCode toe);
  static void on_log(void* cls, const char* fmt, va_list ap);
  MHD_Result respond(MHD_Connection* c, const HttpRequest& req, const HttpResponse& resp);

  Handler handler;
  HttpLimits limits;
  MhdDaemon daemon;
  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::string address;
  std::thread gate;
  std::atomic<bool> stopping{false};

  // Gate thread only.
  std::map<int, Pending> pending;
  size_t overflow_pending = 0;

  // Shared between the gate and the engine thread.
  std::mutex mu;
  std::map<std::string, size_t> peers;  // open connections per peer (gate within limits + engine)
  std::atomic<size_t> engine_open{0}, gate_open{0}, waiting{0};
  std::atomic<size_t> served{0}, refused{0}, timed_out{0}, evicted{0};
};

Status HttpServer::Impl::start(std::string_view where_text) {
  auto addr = parse_listen_address(where_text);
  if (!addr) return addr.error();
  std::string host = addr->host.empty() ? "0.0.0.0" : addr->host;
  if (host == "localhost") host = "127.0.0.1";
  const std::string where = std::string(where_text);

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
    return Error::invalid("listen address '" + where +
                          "': host must be an IP address (e.g. 127.0.0.1 or [::1])");
  }
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
  port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                 : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  address = (family == AF_INET6 ? "[" + host + "]" : host) + ":" + std::to_string(port);

  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    epoll_fd = wake_fd = -1;
    return Error::unavailable("listen " + where + ": " + what + ": " + std::strerror(err));
  };
  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return fail("epoll");
  wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return fail("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) return fail("epoll_ctl");
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) return fail("epoll_ctl");

  // libmicrohttpd never sees the listening socket: the gate hands it complete heads only.
  const unsigned timeout_s =
      static_cast<unsigned>(std::max<long long>(1, (limits.write_timeout.count() + 999) / 1000));
  const size_t memory = std::max<size_t>(32 * 1024, 4 * limits.max_head_bytes);
  const unsigned engine_limit =
      static_cast<unsigned>(limits.max_connections + limits.max_overflow + 1);
  daemon.reset(MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
      nullptr, nullptr, &Impl::on_request, this,                 //
      MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,                  //
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,                //
      MHD_OPTION_CONNECTION_LIMIT, engine_limit,                 //
      MHD_OPTION_URI_LOG_CALLBACK, &Impl::on_uri, this,          //
      MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, this,    //
      MHD_OPTION_NOTIFY_CONNECTION, &Impl::on_connection, this,  //
      MHD_OPTION_EXTERNAL_LOGGER, &Impl::on_log, this,           //
      MHD_OPTION_END));
  if (!daemon) {
    errno = errno ? errno : EINVAL;
    return fail("libmicrohttpd did not start");
  }
  listen_fd = fd;
  stopping = false;
  gate = std::thread([this] { gate_loop(); });
  return {};
}

void HttpServer::Impl::stop() {
  if (!gate.joinable()) return;
  stopping = true;
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  gate.join();
  for (auto& [fd, p] : pending) ::close(fd);
  pending.clear();
  overflow_pending = 0;
  waiting = 0;
  gate_open = 0;
  daemon.reset();  // closes every connection the engine holds
  {
    std::lock_guard lock(mu);
    peers.clear();
  }
  ::close(listen_fd);
  ::close(epoll_fd);
  ::close(wake_fd);
  listen_fd = epoll_fd = wake_fd = -1;
}

size_t HttpServer::Impl::peer_count(const std::string& peer) {
  std::lock_guard lock(mu);
  auto it = peers.find(peer);
  return it == peers.end() ? 0 : it->second;
}

void HttpServer::Impl::gate_loop() {
  epoll_event events[64];
  while (!stopping) {
    auto now = Clock::now();
    auto next = now + std::chrono::seconds(1);
    for (const auto& [fd, p] : pending) next = std::min(next, p.deadline);
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    const int n =
        epoll_wait(epoll_fd, events, 64, static_cast<int>(std::max<long long>(wait, 0)) + 1);
    if (n < 0 && errno != EINTR) {
      log::error(kComponent, "epoll_wait: {}", std::strerror(errno));
      break;
    }
    if (stopping) break;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd) {
        uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(wake_fd, &count, sizeof count);
        continue;
      }
      if (fd == listen_fd) continue;  // accepted below, after the readable ones
      if (pending.count(fd) != 0) on_readable(fd);
    }
    // Requests that are ready are judged before new connections compete for their place.
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == listen_fd) accept_all();
    }
    admit_waiting();
    expire(Clock::now());
  }
}

void HttpServer::Impl::admit_waiting() {
  for (;;) {
    Pending* next = nullptr;
    for (auto& [fd, p] : pending) {
      if (p.ready && (next == nullptr || p.accepted < next->accepted)) next = &p;
    }
    if (next == nullptr) return;
    if (normal_pending() + engine_open.load() >= limits.max_connections ||
        peer_count(next->peer) >= limits.max_connections_per_peer) {
      return;
    }
    next->overflow = next->ready = false;
    --overflow_pending;
    {
      std::lock_guard lock(mu);
      ++peers[next->peer];
    }
    gate_open = normal_pending();
    waiting = overflow_pending;
    hand_over(next->fd);
  }
}

void HttpServer::Impl::accept_all() {
  // Bounded per round so a flood of connects cannot starve the connections already held.
  for (int k = 0; k < 64; ++k) {
    Pending p;
    p.addr_len = sizeof p.addr;
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&p.addr), &p.addr_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    p.fd = fd;
    p.peer = peer_of(reinterpret_cast<const sockaddr*>(&p.addr));
    p.accepted = Clock::now();
    const size_t total = normal_pending() + engine_open.load();
    p.overflow =
        total >= limits.max_connections || peer_count(p.peer) >= limits.max_connections_per_peer;
    if (p.overflow && overflow_pending >= limits.max_overflow) {
      // The newest waiter replaces the oldest one: idle waiters cannot fill the queue against a
      // probe that is about to send its request.
      const Pending* oldest = nullptr;
      for (const auto& [ofd, o] : pending) {
        if (o.overflow && (oldest == nullptr || o.accepted < oldest->accepted)) oldest = &o;
      }
      ++refused;
      if (oldest == nullptr) {
        refuse(fd, 503, "too many connections");
        continue;
      }
      refuse(oldest->fd, 503, "too many connections");
    }
    p.deadline =
        p.accepted + (p.overflow ? limits.overflow_grace
                                 : std::min(limits.first_byte_timeout, limits.read_timeout));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    if (p.overflow) {
      ++overflow_pending;
    } else {
      std::lock_guard lock(mu);
      ++peers[p.peer];
    }
    pending.emplace(fd, std::move(p));
    gate_open = normal_pending();
    waiting = overflow_pending;
    // Data may already be there (a client that sent its request with the connect).
    on_readable(fd);
  }
}

void HttpServer::Impl::drop(int fd) {
  auto it = pending.find(fd);
  if (it == pending.end()) return;
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  if (it->second.overflow) {
    --overflow_pending;
  } else {
    std::lock_guard lock(mu);
    auto pit = peers.find(it->second.peer);
    if (pit != peers.end() && --pit->second == 0) peers.erase(pit);
  }
  pending.erase(it);
  gate_open = normal_pending();
  waiting = overflow_pending;
}

void HttpServer::Impl::refuse(int fd, int status, const std::string& reason) {
  drop(fd);
  // What the client sent is only peeked; read it away first, or close() would reset the
  // connection and the client might lose the answer.
  char buf[4096];
  for (int i = 0; i < 16; ++i) {
    if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
  }
  const std::string out = gate_reply(status, reason);
  [[maybe_unused]] auto w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

void HttpServer::Impl::on_readable(int fd) {
  auto it = pending.find(fd);
  if (it == pending.end()) return;
  Pending& p = it->second;
  std::string buf(limits.max_head_bytes + 1, '\0');
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {  // closed by the client before a request, or reset
    drop(fd);
    ::close(fd);
    return;
  }
  if (!p.got_bytes) {
    p.got_bytes = true;
    if (!p.overflow) p.deadline = p.accepted + limits.read_timeout;
  }
  const HeadCheck check =
      check_request_head(std::string_view(buf.data(), static_cast<size_t>(n)), limits);
  if (check.state == HeadCheck::State::kIncomplete) return;
  if (check.state == HeadCheck::State::kBad) {
    refuse(fd, check.status, check.reason);
    return;
  }
  if (p.overflow) {
    // A request is ready but a limit is reached: it displaces the oldest connection that has not
    // sent a complete head yet (from the same peer when that peer is at its limit).
    const bool peer_full = peer_count(p.peer) >= limits.max_connections_per_peer;
    const Pending* victim = nullptr;
    for (const auto& [vfd, v] : pending) {
      if (v.overflow || (peer_full && v.peer != p.peer)) continue;
      if (victim == nullptr || v.accepted < victim->accepted) victim = &v;
    }
    if (victim == nullptr) {
      // Every place is taken by a request in progress: wait (up to the grace) for one to end.
      p.ready = true;
      return;
    }
    ++evicted;
    refuse(victim->fd, 503, "too many connections: an idle connection gave way to a request");
    p.overflow = false;
    --overflow_pending;
    {
      std::lock_guard lock(mu);
      ++peers[p.peer];
    }
    gate_open = normal_pending();
    waiting = overflow_pending;
  }
  hand_over(fd);
}

void HttpServer::Impl::hand_over(int fd) {
  auto it = pending.find(fd);
  if (it == pending.end()) return;
  const sockaddr_storage addr = it->second.addr;
  const socklen_t len = it->second.addr_len;
  // The engine counts the connection (and its peer) from its start notification; the gate's
  // share goes now. Between the two, the connection is briefly counted by neither: a limit can
  // be passed by the few connections handed over in that instant, never by idle ones.
  drop(fd);
  if (MHD_add_connection(daemon.get(), fd, reinterpret_cast<const sockaddr*>(&addr), len) !=
      MHD_YES) {
    // libmicrohttpd closed the socket already.
    log::warn(kComponent, "HTTP engine refused a connection: {}", std::strerror(errno));
  }
}

void HttpServer::Impl::expire(Clock::time_point now) {
  std::vector<std::pair<int, bool>> due;
  for (const auto& [fd, p] : pending) {
    if (p.deadline <= now) due.emplace_back(fd, p.overflow);
  }
  for (const auto& [fd, overflow] : due) {
    if (overflow) {
      ++refused;
      refuse(fd, 503, "too many connections");
    } else {
      ++timed_out;
      refuse(fd, 408, "request not received in time");
    }
  }
}

namespace {
// Per request: the raw target (before libmicrohttpd decodes it) and whether it was answered.
struct RequestContext {
  std::string target;
  bool answered = false;
};
}  // namespace

void* HttpServer::Impl::on_uri(void*, const char* uri, MHD_Connection*) {
  auto* ctx = new RequestContext;
  ctx->target = uri ? uri : "";
  return ctx;
}

void HttpServer::Impl::on_completed(void*, MHD_Connection*, void** con_cls,
                                    MHD_RequestTerminationCode) {
  delete static_cast<RequestContext*>(*con_cls);
  *con_cls = nullptr;
}

void HttpServer::Impl::on_connection(void* cls, MHD_Connection* c, void** socket_context,
                                     MHD_ConnectionNotificationCode toe) {
  auto* self = static_cast<Impl*>(cls);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    auto* peer = new std::string(info ? peer_of(info->client_addr) : "");
    *socket_context = peer;
    ++self->engine_open;
    std::lock_guard lock(self->mu);
    ++self->peers[*peer];
    return;
  }
  auto* peer = static_cast<std::string*>(*socket_context);
  if (peer == nullptr) return;
  {
    std::lock_guard lock(self->mu);
    auto it = self->peers.find(*peer);
    if (it != self->peers.end() && --it->second == 0) self->peers.erase(it);
  }
  --self->engine_open;
  delete peer;
  *socket_context = nullptr;
  // A place is free: a request waiting past a limit may take it.
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(self->wake_fd, &one, sizeof one);
}

void HttpServer::Impl::on_log(void*, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string_view text(buf);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  log::debug(kComponent, "libmicrohttpd: {}", text);
}

MHD_Result HttpServer::Impl::respond(MHD_Connection* c, const HttpRequest& req,
                                     const HttpResponse& resp) {
  MhdResponse r(MHD_create_response_from_buffer(
      resp.body.size(), const_cast<char*>(resp.body.data()), MHD_RESPMEM_MUST_COPY));
  if (!r) return MHD_NO;
  MHD_add_response_header(r.get(), "Content-Type", resp.content_type.c_str());
  MHD_add_response_header(r.get(), "Cache-Control", "no-store");
  MHD_add_response_header(r.get(), "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r.get(), "Connection", "close");
  for (const auto& [k, v] : resp.headers) {
    if (MHD_add_response_header(r.get(), k.c_str(), v.c_str()) != MHD_YES) {
      log::warn(kComponent, "{}: response header {} refused", req.path, k);
    }
  }
  return MHD_queue_response(c, static_cast<unsigned>(resp.status), r.get());
}

MHD_Result HttpServer::Impl::on_request(void* cls, MHD_Connection* c, const char* /*url*/,
                                        const char* method, const char* version,
                                        const char* /*upload_data*/, size_t* upload_data_size,
                                        void** con_cls) {
  auto* self = static_cast<Impl*>(cls);
  auto* ctx = static_cast<RequestContext*>(*con_cls);
  if (ctx == nullptr) return MHD_NO;  // not from on_uri: cannot happen
  if (ctx->answered) {
    // A body after the answer was queued (the request was refused for having one): drop it.
    *upload_data_size = 0;
    return MHD_YES;
  }

  HttpRequest req;
  req.method = method ? method : "";
  req.version = version ? version : "";
  req.target = ctx->target;
  const size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  if (const MHD_ConnectionInfo* info =
          MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) {
    req.peer = peer_of(info->client_addr);
  }
  MHD_get_connection_values(
      c, MHD_HEADER_KIND,
      [](void* out, MHD_ValueKind, const char* key, const char* value) -> MHD_Result {
        static_cast<HttpRequest*>(out)->headers.emplace_back(lower(key ? key : ""),
                                                             value ? value : "");
        return MHD_YES;
      },
      &req);
  ctx->answered = true;

  HttpResponse resp;
  if (auto refused = check_request(req, self->limits)) {
    resp = std::move(*refused);
  } else {
    try {
      resp = self->handler(req);
    } catch (const std::exception& e) {
      log::error(kComponent, "handler for {} failed: {}", req.path, e.what());
      resp = error_response(500, "internal error");
    }
    ++self->served;
  }
  return self->respond(c, req, resp);
}

// ---------------------------------------------------------------------------------------------

HttpServer::HttpServer(Handler handler, HttpLimits limits)
    : impl_(std::make_unique<Impl>(std::move(handler), limits)) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start(std::string_view address) {
  if (impl_->gate.joinable()) return Error::internal("http server already started");
  return impl_->start(address);
}

void HttpServer::stop() { impl_->stop(); }

int HttpServer::port() const { return impl_->port; }
std::string HttpServer::address() const { return impl_->address; }
size_t HttpServer::open_connections() const {
  return impl_->gate_open.load() + impl_->engine_open.load();
}
size_t HttpServer::requests_served() const { return impl_->served.load(); }
size_t HttpServer::connections_refused() const { return impl_->refused.load(); }
size_t HttpServer::connections_timed_out() const { return impl_->timed_out.load(); }
size_t HttpServer::connections_evicted() const { return impl_->evicted.load(); }
size_t HttpServer::connections_waiting() const { return impl_->waiting.load(); }

}  // namespace ep::ops
