#include "net/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "net/curl_http_client.h"
#include "support/eventually.h"
#include "support/http/loopback_http_server.h"

namespace ep::net {
namespace {

using test::HttpServerReply;
using test::HttpServerRequest;
using test::LoopbackHttpServer;
using namespace std::chrono_literals;

TEST(HttpHeaders, CaseInsensitiveLookup) {
  HttpHeaders h;
  h.add("X-Consul-Index", "42");
  h.add("Set-Cookie", "a");
  h.add("set-cookie", "b");
  EXPECT_EQ(h.get("x-consul-index"), "42");
  EXPECT_EQ(h.get("X-CONSUL-INDEX"), "42");
  EXPECT_FALSE(h.get("X-Consul-Knownleader").has_value());
  EXPECT_EQ(h.get_all("SET-COOKIE"), (std::vector<std::string>{"a", "b"}));
}

TEST(HttpHelpers, RedactUrlAndSecretHeaders) {
  EXPECT_EQ(redact_url("http://u:p@host:1/v1/x?token=abc&dc=dc1"),
            "http://REDACTED@host:1/v1/x?token=REDACTED&dc=dc1");
  EXPECT_EQ(redact_url("http://h/v1/health/service/web?index=3&wait=5m"),
            "http://h/v1/health/service/web?index=3&wait=5m");
  EXPECT_TRUE(is_secret_header("X-Consul-Token"));
  EXPECT_TRUE(is_secret_header("authorization"));
  EXPECT_FALSE(is_secret_header("Accept"));
  EXPECT_EQ(url_encode("a b/c:\"d\""), "a%20b%2Fc%3A%22d%22");
}

class HttpClientTest : public ::testing::Test {
 protected:
  void start(LoopbackHttpServer::Handler h) {
    server_ = std::make_unique<LoopbackHttpServer>(std::move(h));
    server_->start();
  }
  std::unique_ptr<LoopbackHttpServer> server_;
};

TEST_F(HttpClientTest, StatusHeadersBodyAndRequestHeaders) {
  std::string seen_header, seen_method, seen_body;
  start([&](const HttpServerRequest& r) {
    seen_header = r.header("x-consul-token");
    seen_method = r.method;
    seen_body = r.body;
    HttpServerReply reply;
    reply.status = 200;
    reply.headers = {{"X-Consul-Index", "17"}, {"X-Consul-KnownLeader", "true"}};
    reply.body = R"([{"a":1}])";
    return reply;
  });
  CurlHttpClient client;
  HttpRequest req;
  req.url = server_->base_url() + "/v1/health/service/web?passing=1";
  req.headers = {{"X-Consul-Token", "tok"}};
  auto r = client.perform(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers.get("x-consul-index"), "17");
  EXPECT_EQ(r->body, R"([{"a":1}])");
  EXPECT_EQ(seen_header, "tok");
  EXPECT_EQ(seen_method, "GET");

  req.method = "PUT";
  req.body = R"({"Name":"web"})";
  r = client.perform(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(seen_method, "PUT");
  EXPECT_EQ(seen_body, R"({"Name":"web"})");
}

TEST_F(HttpClientTest, ErrorStatusIsAResponseNotAnError) {
  start([](const HttpServerRequest&) {
    HttpServerReply r;
    r.status = 500;
    r.body = "No cluster leader";
    return r;
  });
  CurlHttpClient client;
  auto r = client.perform({.url = server_->base_url() + "/x"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "No cluster leader");
}

TEST_F(HttpClientTest, ReusesOneConnectionAcrossRequests) {
  start([](const HttpServerRequest&) { return HttpServerReply{200, {}, "[]"}; });
  CurlHttpClient client;
  for (int i = 0; i < 20; ++i) {
    auto r = client.perform(
        {.url = server_->base_url() + "/v1/health/service/web?i=" + std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(server_->requests_served(), 20u);
  EXPECT_EQ(server_->connections_accepted(), 1u);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpClientTest, TimeoutIsUnavailableAndNamesTheUrlButNoSecret) {
  start([](const HttpServerRequest&) {
    HttpServerReply r;
    r.action = HttpServerReply::Action::kHang;
    return r;
  });
  CurlHttpClient client;
  HttpRequest req;
  req.url = server_->base_url() + "/v1/health/service/web?token=supersecret";
  req.headers = {{"X-Consul-Token", "supersecret"}, {"Authorization", "Bearer supersecret"}};
  req.timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client.perform(req);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("/v1/health/service/web"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("curl error 28"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("supersecret"), std::string::npos) << r.error().message;
  EXPECT_LT(took, 3s);
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  start([](const HttpServerRequest&) { return HttpServerReply{}; });
  const std::string url = server_->base_url() + "/v1/status/leader";
  server_->stop();
  CurlHttpClient client;
  auto r = client.perform({.url = url, .headers = {{"X-Consul-Token", "supersecret"}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find(url), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("supersecret"), std::string::npos);
}

TEST_F(HttpClientTest, BodyCapIsEnforced) {
  start([](const HttpServerRequest&) {
    return HttpServerReply{200, {}, std::string(100000, 'x')};
  });
  CurlHttpClient client(CurlHttpClient::Options{.max_body_bytes = 1000});
  auto r = client.perform({.url = server_->base_url() + "/big"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("exceeds 1000 bytes"), std::string::npos) << r.error().message;
}

TEST_F(HttpClientTest, CloseMidBodyIsAnError) {
  start([](const HttpServerRequest&) {
    HttpServerReply r;
    r.body = std::string(4000, '[');
    r.action = HttpServerReply::Action::kCloseMidBody;
    return r;
  });
  CurlHttpClient client;
  auto r = client.perform({.url = server_->base_url() + "/x"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
}

TEST_F(HttpClientTest, CancelAbortsALongPollAtOnceAndStaysCancelled) {
  start([](const HttpServerRequest&) {
    HttpServerReply r;
    r.action = HttpServerReply::Action::kHang;
    return r;
  });
  CurlHttpClient client;
  std::thread canceller([&] {
    // Cancel once the request is in flight (observed at the server).
    test::eventually([&] { return server_->requests_served() != 0; }, 5s);
    client.cancel();
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client.perform({.url = server_->base_url() + "/poll", .timeout = 60s});
  const auto took = std::chrono::steady_clock::now() - t0;
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cancelled"), std::string::npos);
  EXPECT_LT(took, 2s);
  auto again = client.perform({.url = server_->base_url() + "/poll"});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("cancelled"), std::string::npos);
}

TEST(HttpClientUnix, TalksOverAUnixSocketWithTheUrlHost) {
  std::string host;
  LoopbackHttpServer server([&](const HttpServerRequest& r) {
    host = r.header("host");
    return HttpServerReply{200, {}, "\"127.0.0.1:8300\""};
  });
  const std::string path = "/tmp/ep-http-" + std::to_string(::getpid()) + ".sock";
  server.start_unix(path);
  CurlHttpClient client;
  for (int i = 0; i < 3; ++i) {
    auto r = client.perform({.url = "http://localhost/v1/status/leader", .unix_socket_path = path});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->body, "\"127.0.0.1:8300\"");
  }
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST_F(HttpClientTest, HttpsToAPlainServerFailsAsUnavailable) {
  start([](const HttpServerRequest&) { return HttpServerReply{}; });
  CurlHttpClient client;
  auto r = client.perform(
      {.url = "https://127.0.0.1:" + std::to_string(server_->port()) + "/x", .timeout = 1s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
}

TEST(HttpClientBadInput, HeaderInjectionIsRefused) {
  CurlHttpClient client;
  auto r = client.perform(
      {.url = "http://127.0.0.1:1/x", .headers = {{"X-Consul-Token", "a\r\nX-Evil: 1"}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(r.error().message.find("X-Evil"), std::string::npos);
}

}  // namespace
}  // namespace ep::net

// TLS against a real `openssl s_server` with a throw-away self-signed certificate (skipped when
// the openssl binary is missing).
namespace ep::net {
namespace {

class OpensslServer {
 public:
  bool start() {
    char tmpl[] = "/tmp/ep-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return false;
    dir_ = tmpl;
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + dir_ +
                            "/key.pem -out " + dir_ +
                            "/cert.pem -days 1 -subj /CN=127.0.0.1 -addext "
                            "subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return false;
    // A free port: bind 0, read it, release it (s_server binds it right after).
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      return false;
    }
    port_ = ntohs(addr.sin_port);
    ::close(fd);
    const std::string accept = "127.0.0.1:" + std::to_string(port_);
    const std::string cert = dir_ + "/cert.pem", key = dir_ + "/key.pem";
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execlp("openssl", "openssl", "s_server", "-accept", accept.c_str(), "-cert", cert.c_str(),
               "-key", key.c_str(), "-www", "-quiet", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid_ < 0) return false;
    // Ready when it accepts connections.
    return test::eventually(
        [&] {
          int c = ::socket(AF_INET, SOCK_STREAM, 0);
          sockaddr_in to{};
          to.sin_family = AF_INET;
          to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          to.sin_port = htons(port_);
          const bool ok = ::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
          ::close(c);
          return ok;
        },
        10s);
  }
  ~OpensslServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/"; }
  std::string ca() const { return dir_ + "/cert.pem"; }

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST(HttpClientTls, VerifiesTheServerCertificate) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl binary";
  OpensslServer server;
  ASSERT_TRUE(server.start());
  {
    CurlHttpClient client;
    auto r = client.perform({.url = server.url(), .timeout = 5s});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_NE(r.error().message.find("certificate"), std::string::npos) << r.error().message;
  }
  {
    CurlHttpClient client;
    auto r = client.perform({.url = server.url(), .timeout = 5s, .tls = {.ca_file = server.ca()}});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
  }
  {
    CurlHttpClient client;
    auto r = client.perform({.url = server.url(), .timeout = 5s, .tls = {.verify = false}});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
  }
}

}  // namespace
}  // namespace ep::net
