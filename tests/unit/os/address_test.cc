#include "os/address.h"

#include <gtest/gtest.h>

namespace ep::os {
namespace {

TEST(SplitHostPort, Shapes) {
  auto a = split_host_port("10.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = split_host_port("[2001:db8::7]:443");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "2001:db8::7");
  EXPECT_EQ(b->port, 443);
  EXPECT_TRUE(b->bracketed);
  auto c = split_host_port("2001:db8::7");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "2001:db8::7");
  EXPECT_FALSE(c->port.has_value());
  auto d = split_host_port("consul.internal");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "consul.internal");
  EXPECT_FALSE(d->port.has_value());
}

TEST(SplitHostPort, ErrorsNameTheText) {
  for (const char* bad :
       {"[::1", "[::1]x", "host:", ":80", "host:0", "host:65536", "host:8a", ""}) {
    auto r = split_host_port(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(r.error().message.find("'" + std::string(bad) + "'"), std::string::npos)
        << r.error().message;
  }
}

TEST(SplitUrl, PartsAndUserinfo) {
  auto u = split_url("HTTPS://root:s3cr,et@etcd.internal:2379/v3?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->userinfo, "root:s3cr,et");
  EXPECT_EQ(u->authority.host, "etcd.internal");
  EXPECT_EQ(u->authority.port, 2379);
  EXPECT_EQ(u->path, "/v3?x=1");
  auto bad = split_url("http://root:s3cr,et@host:99999");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("s3cr"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(split_url("etcd.internal:2379").ok());
}

TEST(IsLoopbackHost, OnlyLoopback) {
  for (const char* yes : {"localhost", "LOCALHOST", "a.localhost", "127.0.0.1", "127.1.2.3", "::1",
                          "[::1]", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_loopback_host(yes)) << yes;
  }
  for (const char* no : {"10.0.0.1", "169.254.169.254", "::", "[2001:db8::1]", "localhost.evil",
                         "128.0.0.1", "consul", ""}) {
    EXPECT_FALSE(is_loopback_host(no)) << no;
  }
}

}  // namespace
}  // namespace ep::os
