// The request-head parser: what it accepts, and the status every kind of bad input gets.

#include <gtest/gtest.h>

#include <random>

#include "ops/http_server.h"

namespace ep::ops {
namespace {

using State = ParseResult::State;

TEST(HttpParser, ParsesAGetWithHeadersAndQuery) {
  auto r = parse_http_request("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", {});
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.request.method, "GET");
  EXPECT_EQ(r.request.path, "/metrics");
  EXPECT_EQ(r.request.target, "/metrics?x=1");
  ASSERT_EQ(r.request.headers.size(), 2u);
  EXPECT_EQ(r.request.headers[0].first, "host");
  EXPECT_EQ(r.request.headers[1].second, "*/*");
}

TEST(HttpParser, AcceptsBareLineFeedsAndHttp10) {
  auto r = parse_http_request("GET / HTTP/1.0\n\n", {});
  EXPECT_EQ(r.state, State::kComplete);
}

TEST(HttpParser, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(parse_http_request("", {}).state, State::kIncomplete);
  EXPECT_EQ(parse_http_request("GE", {}).state, State::kIncomplete);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\n", {}).state, State::kIncomplete);
}

TEST(HttpParser, RefusesGarbageBeforeTheLineEnds) {
  // A TLS ClientHello sent to the plain HTTP port is refused at the first bytes.
  auto r = parse_http_request(std::string("\x16\x03\x01\x02\x00", 5), {});
  EXPECT_EQ(r.state, State::kBad);
  EXPECT_EQ(r.status, 400);
}

struct BadCase {
  const char* name;
  std::string bytes;
  int status;
};

TEST(HttpParser, BadRequestsGetTheRightStatus) {
  const std::vector<BadCase> cases = {
      {"no target", "GET\r\n\r\n", 400},
      {"extra word", "GET / HTTP/1.1 x\r\n\r\n", 400},
      {"absolute form", "GET http://x/ HTTP/1.1\r\n\r\n", 400},
      {"control in target", "GET /a\x01 HTTP/1.1\r\n\r\n", 400},
      {"bad version", "GET / HTTP/2.0\r\n\r\n", 505},
      {"not http", "GET / FTP/1.0\r\n\r\n", 400},
      {"header no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
      {"body", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413},
      {"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"nul in header", std::string("GET / HTTP/1.1\r\nA: \0b\r\n\r\n", 25), 400},
  };
  for (const auto& c : cases) {
    auto r = parse_http_request(c.bytes, {});
    EXPECT_EQ(r.state, State::kBad) << c.name;
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.reason;
  }
}

TEST(HttpParser, LimitsHeadSizeAndHeaderCount) {
  HttpLimits limits;
  limits.max_head_bytes = 1024;
  limits.max_headers = 4;
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a');
  auto r = parse_http_request(huge, limits);  // still incomplete, but already too big
  EXPECT_EQ(r.state, State::kBad);
  EXPECT_EQ(r.status, 431);
  auto line = parse_http_request("GET /" + std::string(2000, 'a'), limits);
  EXPECT_EQ(line.status, 414);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 5; ++i) many += "H" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  EXPECT_EQ(parse_http_request(many, limits).status, 431);
}

TEST(HttpParser, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 300, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    if (i % 3 == 0) s = "GET / HTTP/1.1\r\n" + s;
    auto r = parse_http_request(s, {});
    if (r.state == State::kBad) {
      EXPECT_GE(r.status, 400);
    }
  }
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
