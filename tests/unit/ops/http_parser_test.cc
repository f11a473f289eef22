// The admission gate's judgement of a request head (check_request_head) and the checks every
// parsed request passes before a handler (check_request). The HTTP parsing itself is
// libmicrohttpd's; http_server_test.cc sends the same bad requests over a socket.

#include <gtest/gtest.h>

#include <random>

#include "ops/http_server.h"

namespace ep::ops {
namespace {

using State = HeadCheck::State;

HttpRequest request(std::string target, std::string version = "HTTP/1.1") {
  HttpRequest r;
  r.method = "GET";
  r.target = std::move(target);
  r.path = r.target.substr(0, r.target.find('?'));
  r.version = std::move(version);
  return r;
}

TEST(HeadCheck, CompleteAtTheBlankLineWithCrLfOrBareLf) {
  EXPECT_EQ(check_request_head("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", {}).state,
            State::kComplete);
  EXPECT_EQ(check_request_head("GET / HTTP/1.0\n\n", {}).state, State::kComplete);
}

TEST(HeadCheck, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(check_request_head("", {}).state, State::kIncomplete);
  EXPECT_EQ(check_request_head("GE", {}).state, State::kIncomplete);
  EXPECT_EQ(check_request_head("GET / HTTP/1.1\r\nHost: a\r\n", {}).state, State::kIncomplete);
}

TEST(HeadCheck, RefusesGarbageBeforeTheLineEnds) {
  // A TLS ClientHello sent to the plain HTTP port is refused at the first bytes.
  auto r = check_request_head(std::string("\x16\x03\x01\x02\x00", 5), {});
  EXPECT_EQ(r.state, State::kBad);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(check_request_head("HELLO\r\n\r\n", {}).status, 400);
  EXPECT_EQ(check_request_head("GET\r\n\r\n", {}).status, 400);
}

TEST(HeadCheck, RefusesFoldingAndControlCharacters) {
  EXPECT_EQ(check_request_head("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", {}).status, 400);
  EXPECT_EQ(check_request_head("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", {}).status, 400);
  EXPECT_EQ(check_request_head(std::string("GET / HTTP/1.1\r\nA: \0b\r\n\r\n", 25), {}).status,
            400);
  EXPECT_EQ(check_request_head("GET /a\x01 HTTP/1.1\r\n\r\n", {}).status, 400);
}

TEST(HeadCheck, LimitsHeadSize) {
  HttpLimits limits;
  limits.max_head_bytes = 1024;
  auto r = check_request_head("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a'), limits);
  EXPECT_EQ(r.state, State::kBad);  // still incomplete, but already too big
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(check_request_head("GET /" + std::string(2000, 'a'), limits).status, 414);
  EXPECT_EQ(
      check_request_head("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", limits)
          .status,
      431);
}

TEST(HeadCheck, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 300, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    if (i % 3 == 0) s = "GET / HTTP/1.1\r\n" + s;
    auto r = check_request_head(s, {});
    if (r.state == State::kBad) {
      EXPECT_GE(r.status, 400);
    }
  }
}

TEST(RequestCheck, AcceptsAPlainGet) {
  auto r = request("/metrics?x=1");
  r.headers = {{"host", "a"}, {"accept", "*/*"}};
  EXPECT_FALSE(check_request(r, {}).has_value());
  EXPECT_FALSE(check_request(request("/", "HTTP/1.0"), {}).has_value());
}

TEST(RequestCheck, BadRequestsGetTheRightStatus) {
  struct Case {
    const char* name;
    HttpRequest req;
    int status;
  };
  auto with_header = [](std::string name, std::string value) {
    auto r = request("/");
    r.headers.emplace_back(std::move(name), std::move(value));
    return r;
  };
  const std::vector<Case> cases = {
      {"absolute form", request("http://x/"), 400},
      {"space in target", request("/ HTTP/1.1"), 400},
      {"control in target", request("/a\x01"), 400},
      {"bad version", request("/", "HTTP/2.0"), 505},
      {"not http", request("/", "FTP/1.0"), 400},
      {"space in header name", with_header("host ", "a"), 400},
      {"empty header name", with_header("", "x"), 400},
      {"body", with_header("content-length", "5"), 413},
      {"chunked", with_header("transfer-encoding", "chunked"), 501},
  };
  for (const auto& c : cases) {
    auto r = check_request(c.req, {});
    ASSERT_TRUE(r.has_value()) << c.name;
    EXPECT_EQ(r->status, c.status) << c.name << ": " << r->body;
  }
}

TEST(RequestCheck, LimitsHeaderCount) {
  HttpLimits limits;
  limits.max_headers = 4;
  auto r = request("/");
  for (int i = 0; i < 5; ++i) r.headers.emplace_back("h" + std::to_string(i), "v");
  auto bad = check_request(r, limits);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status, 431);
}

TEST(ListenAddress, ParsesV4V6AndRefusesNonsense) {
  auto a = parse_listen_address("127.0.0.1:9108");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9108);
  auto b = parse_listen_address("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_FALSE(parse_listen_address("::1:9108").ok());
  EXPECT_FALSE(parse_listen_address("127.0.0.1").ok());
  EXPECT_FALSE(parse_listen_address("127.0.0.1:99999").ok());
  EXPECT_FALSE(parse_listen_address("127.0.0.1:x").ok());
  EXPECT_FALSE(parse_listen_address("[::1:9108").ok());
}

}  // namespace
}  // namespace ep::ops
