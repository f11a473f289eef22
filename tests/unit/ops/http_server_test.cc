// The ops HTTP server under good and hostile clients, on loopback (v4 and v6).

#include "ops/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "ops/status_client.h"
#include "support/eventually.h"
#include "support/time_scale.h"

namespace ep::ops {
namespace {

using namespace std::chrono_literals;

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  return test::eventually(pred, timeout);
}

// A raw client: connect, send bytes, read what comes back until close or timeout.
class Raw {
 public:
  explicit Raw(int port, bool v6 = false) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET6, "::1", &a.sin6_addr);
      connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
  }
  ~Raw() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  std::string read_all(std::chrono::milliseconds timeout = 5s) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

int status_of(const std::string& reply) {
  if (reply.size() < 12 || reply.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::atoi(reply.substr(9, 3).c_str());
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}, const std::string& address = "127.0.0.1:0") {
    server_ = std::make_unique<HttpServer>(
        [](const HttpRequest& req) {
          HttpResponse r;
          if (req.path == "/healthz") {
            r.body = "ok\n";
          } else if (req.path != "/hello") {
            r.status = 404;
            r.body = "nope\n";
          } else {
            r.body = "hello " + req.method + "\n";
          }
          return r;
        },
        limits);
    ASSERT_TRUE(server_->start(address).ok());
    ASSERT_GT(server_->port(), 0);
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  // The server still answers a normal request promptly.
  void expect_alive() {
    auto r = http_get(addr(), "/hello", 2s);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello GET\n");
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesAGetAndReportsItsPort) {
  start();
  expect_alive();
  EXPECT_EQ(server_->requests_served(), 1u);
}

TEST_F(HttpServerTest, ServesIpv6Loopback) {
  start({}, "[::1]:0");
  Raw c(server_->port(), true);
  if (!c.connected()) GTEST_SKIP() << "no IPv6 loopback here";
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string reply = c.read_all();
  EXPECT_EQ(status_of(reply), 200) << reply;
  EXPECT_NE(reply.find("hello GET"), std::string::npos);
  auto r = http_get("[::1]:" + std::to_string(server_->port()), "/hello", 2s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, HeadGetsNoBody) {
  start();
  Raw c(server_->port());
  ASSERT_TRUE(c.send("HEAD /hello HTTP/1.1\r\n\r\n"));
  std::string reply = c.read_all();
  EXPECT_EQ(status_of(reply), 200);
  EXPECT_NE(reply.find("Content-Length: 11\r\n"), std::string::npos);
  EXPECT_EQ(reply.find("hello HEAD"), std::string::npos);
}

TEST_F(HttpServerTest, RefusesAnAddressInUseAndNonIpHosts) {
  start();
  HttpServer other([](const HttpRequest&) { return HttpResponse{}; });
  Status st = other.start(addr());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(addr()), std::string::npos) << st.error().message;
  EXPECT_FALSE(other.start("example.com:80").ok());
}

TEST_F(HttpServerTest, HugeHeadersGet431AndTheServerStaysUp) {
  HttpLimits limits;
  limits.max_head_bytes = 4096;
  start(limits);
  Raw c(server_->port());
  c.send("GET /hello HTTP/1.1\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n");
  std::string reply = c.read_all();
  // The server answers 431 and closes; the client may see the reset after its big write instead.
  if (!reply.empty()) {
    EXPECT_EQ(status_of(reply), 431) << reply.substr(0, 200);
  }
  Raw d(server_->port());
  std::string many = "GET /hello HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) many += "H" + std::to_string(i) + ": v\r\n";
  d.send(many + "\r\n");
  EXPECT_EQ(status_of(d.read_all()), 431);
  expect_alive();
}

TEST_F(HttpServerTest, GarbageGets400) {
  start();
  for (std::string junk :
       {std::string("\x16\x03\x01\x00\xa5\x01\x00", 7), std::string("HELLO\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\n: x\r\n\r\n")}) {
    Raw c(server_->port());
    c.send(junk);
    EXPECT_EQ(status_of(c.read_all()), 400);
  }
  expect_alive();
}

TEST_F(HttpServerTest, SlowClientsAreCutOffAtTheReadDeadline) {
  HttpLimits limits;
  limits.read_timeout = 300ms;
  start(limits);
  Raw slow(server_->port());
  ASSERT_TRUE(slow.send("GET /hello HTTP/1.1\r\n"));  // never finishes the head
  const auto t0 = std::chrono::steady_clock::now();
  // Meanwhile others are served.
  expect_alive();
  // One byte at a time does not extend the deadline either.
  Raw dribble(server_->port());
  for (int i = 0; i < 3; ++i) {
    dribble.send("X");
    std::this_thread::sleep_for(50ms);  // kept: the slow client's own pace, not a wait
  }
  std::string reply = slow.read_all(3s);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(status_of(reply), 408) << reply;
  EXPECT_LT(took, 2s);
  EXPECT_EQ(status_of(dribble.read_all(3s)), 408);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
  EXPECT_GE(server_->connections_timed_out(), 2u);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheCapGet503AndOthersAreStillServedLater) {
  HttpLimits limits;
  limits.max_connections = 8;
  limits.read_timeout = 2s;
  start(limits);
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 8; ++i) {
    idle.push_back(std::make_unique<Raw>(server_->port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  ASSERT_TRUE(wait_until([&] { return server_->open_connections() == 8; }));
  Raw extra(server_->port());
  EXPECT_EQ(status_of(extra.read_all()), 503);
  EXPECT_GE(server_->connections_refused(), 1u);
  idle.clear();  // clients go away
  ASSERT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
  expect_alive();
}

TEST_F(HttpServerTest, ManyConnectionsAtOnceAllGetAnAnswer) {
  HttpLimits limits;
  limits.max_connections = 256;
  limits.max_connections_per_peer = 256;  // every client here is 127.0.0.1
  start(limits);
  std::vector<std::unique_ptr<Raw>> cs;
  for (int i = 0; i < 200; ++i) {
    cs.push_back(std::make_unique<Raw>(server_->port()));
    cs.back()->send("GET /hello HTTP/1.1\r\n\r\n");
  }
  int ok = 0;
  for (auto& c : cs) ok += status_of(c->read_all()) == 200 ? 1 : 0;
  EXPECT_EQ(ok, 200);
}

TEST_F(HttpServerTest, StopClosesOpenConnections) {
  start();
  Raw idle(server_->port());
  ASSERT_TRUE(wait_until([&] { return server_->open_connections() == 1; }));
  server_->stop();
  EXPECT_EQ(idle.read_all(2s), "");  // closed, not hanging
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpServerTest, BadRequestsOverTheWireGetTheRightStatus) {
  struct Case {
    const char* name;
    std::string bytes;
    int status;
  };
  const std::vector<Case> cases = {
      {"no target", "GET\r\n\r\n", 400},
      {"extra word", "GET / HTTP/1.1 x\r\n\r\n", 400},
      {"absolute form", "GET http://x/ HTTP/1.1\r\n\r\n", 400},
      {"control in target", "GET /a\x01 HTTP/1.1\r\n\r\n", 400},
      {"bad version", "GET / HTTP/2.0\r\n\r\n", 505},
      {"not http", "GET / FTP/1.0\r\n\r\n", 400},
      {"header no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
      {"body", "POST /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413},
      {"chunked", "POST /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"nul in header", std::string("GET / HTTP/1.1\r\nA: \0b\r\n\r\n", 25), 400},
  };
  start();
  for (const auto& c : cases) {
    Raw raw(server_->port());
    ASSERT_TRUE(raw.send(c.bytes)) << c.name;
    const std::string reply = raw.read_all();
    EXPECT_EQ(status_of(reply), c.status) << c.name << ": " << reply.substr(0, 200);
  }
  expect_alive();
}

TEST_F(HttpServerTest, EveryAnswerSaysNosniffAndNoStore) {
  start();
  for (std::string req :
       {std::string("GET /hello HTTP/1.1\r\n\r\n"), std::string("GET /nothing HTTP/1.1\r\n\r\n"),
        std::string("HELLO\r\n\r\n")}) {
    Raw c(server_->port());
    ASSERT_TRUE(c.send(req));
    const std::string reply = c.read_all();
    EXPECT_NE(reply.find("\r\nX-Content-Type-Options: nosniff\r\n"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\r\nCache-Control: no-store\r\n"), std::string::npos) << reply;
  }
}

// Issue #14, point 2: idle connections from a local process (the same peer address as the
// supervisor's probes) must not make /healthz fail or hang while they are held.
TEST_F(HttpServerTest, IdleConnectionsHeldOpenDoNotStarveHealthProbes) {
  HttpLimits limits;  // the daemon's caps: 64 connections, 32 per peer
  // Hold the idle connections for the whole test: only the gate's displacement may help here.
  limits.first_byte_timeout = 60s;
  limits.read_timeout = 60s;
  start(limits);
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 80; ++i) {
    idle.push_back(std::make_unique<Raw>(server_->port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  ASSERT_TRUE(wait_until([&] { return server_->open_connections() >= 32; }));
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(addr(), "/healthz", test::scaled(2000ms));
    ASSERT_TRUE(r.ok()) << "probe " << i << ": " << r.error().message;
    EXPECT_EQ(r->status, 200) << "probe " << i << ": " << r->body;
    ok += r->status == 200 ? 1 : 0;
  }
  EXPECT_EQ(ok, 20);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, test::scaled(10s));
  EXPECT_GE(server_->connections_evicted(), 1u);
  EXPECT_LE(server_->open_connections(), limits.max_connections);
}

TEST_F(HttpServerTest, PerPeerLimitRefusesIdleExtrasButServesARequest) {
  HttpLimits limits;
  limits.max_connections_per_peer = 4;
  limits.read_timeout = 30s;
  limits.first_byte_timeout = 30s;
  start(limits);
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<Raw>(server_->port()));
  ASSERT_TRUE(wait_until([&] { return server_->open_connections() == 4; }));
  Raw extra(server_->port());  // says nothing: refused once the grace is over
  EXPECT_EQ(status_of(extra.read_all()), 503);
  EXPECT_EQ(server_->open_connections(), 4u);
  expect_alive();  // a request displaces the oldest idle connection
  EXPECT_EQ(status_of(idle.front()->read_all()), 503);
  EXPECT_EQ(server_->connections_evicted(), 1u);
}

TEST(HttpServerWaiting, ARequestPastALimitWaitsForAPlaceInsteadOfFailing) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  bool in_handler = false;
  HttpLimits limits;
  limits.max_connections_per_peer = 1;
  limits.overflow_grace = test::scaled(std::chrono::milliseconds(5000));
  HttpServer server(
      [&](const HttpRequest& req) {
        HttpResponse r;
        if (req.path == "/slow") {
          std::unique_lock lock(mu);
          in_handler = true;
          cv.wait_for(lock, test::scaled(std::chrono::milliseconds(5000)), [&] { return release; });
        }
        r.body = req.path + "\n";
        return r;
      },
      limits);
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  Raw slow(server.port());
  ASSERT_TRUE(slow.send("GET /slow HTTP/1.1\r\n\r\n"));
  // In the handler, so the engine holds (and counts) it: open_connections() == 1 alone can be
  // the gate's count before the hand-over, and a connection accepted in that instant is let in.
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(mu);
    return in_handler;
  }));
  ASSERT_EQ(server.open_connections(), 1u);
  Raw waiting(server.port());  // the same peer, past its limit, nothing idle to displace
  ASSERT_TRUE(waiting.send("GET /next HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return server.connections_waiting() == 1; }));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(status_of(slow.read_all()), 200);
  const std::string reply = waiting.read_all();
  EXPECT_EQ(status_of(reply), 200) << reply;
  EXPECT_NE(reply.find("/next"), std::string::npos);
  EXPECT_EQ(server.connections_refused(), 0u);
}

TEST_F(HttpServerTest, StatusClientIgnoresProxiesAndNamesTheAddressWhenNothingListens) {
  start();
  // An operator's shell often has http_proxy set: the daemon's own address is never proxied.
  ::setenv("http_proxy", "http://127.0.0.1:1", 1);
  ::setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
  auto r = http_get(addr(), "/hello", test::scaled(2000ms));
  ::unsetenv("http_proxy");
  ::unsetenv("ALL_PROXY");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  const std::string where = addr();
  server_->stop();
  auto gone = http_get(where, "/status", test::scaled(2000ms));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(gone.error().message.find(where), std::string::npos) << gone.error().message;
  EXPECT_FALSE(http_get("example.com:9108", "/status", 1s).ok());
}

}  // namespace
}  // namespace ep::ops
