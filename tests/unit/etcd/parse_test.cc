#include "discovery/etcd/parse.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/settings.h"
#include "discovery/etcd/options.h"

namespace ep::discovery::etcd {
namespace {

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(EP_TESTDATA_DIR) + "/etcd/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(EtcdBase64, RoundTripsAllLengthsAndBinary) {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "/svc/web/",
                                                std::string("\0\xff\x01", 3)}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.ok()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("/svc/web/a"), "L3N2Yy93ZWIvYQ==");
  EXPECT_FALSE(base64_decode("ab$d").ok());
  EXPECT_FALSE(base64_decode("a").ok());
}

TEST(EtcdRangeEnd, IncrementsLastByteAndHandlesFf) {
  EXPECT_EQ(prefix_range_end("foo"), "fop");
  EXPECT_EQ(prefix_range_end("/svc/web/"), "/svc/web0");
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdRangeReply, ParsesSavedReplyWithThreeKeys) {
  auto r = parse_range_reply(testdata("range_three.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->revision, 4);
  EXPECT_EQ(r->count, 3);
  EXPECT_FALSE(r->more);
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].key, "/svc/web/a");
  EXPECT_EQ(r->kvs[1].value, "10.0.0.2:8080");
  EXPECT_EQ(r->kvs[2].mod_revision, 4);
}

TEST(EtcdRangeReply, PageHasMore) {
  auto r = parse_range_reply(testdata("range_page1.json"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->more);
  EXPECT_EQ(r->kvs.size(), 2u);
}

TEST(EtcdRangeReply, EmptyPrefixIsAnEmptyListNotAnError) {
  auto r = parse_range_reply(testdata("range_empty.json"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->revision, 4);
}

TEST(EtcdRangeReply, ServerErrorsKeepTheirMessage) {
  auto c = parse_range_reply(testdata("range_compacted.json"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("required revision has been compacted"), std::string::npos);
  auto t = parse_range_reply(testdata("range_invalid_token.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(is_auth_error(t.error().message));
  auto u = parse_range_reply(testdata("range_no_token.json"));
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(is_auth_error(u.error().message));
  EXPECT_FALSE(is_auth_error(c.error().message));
}

TEST(EtcdRangeReply, GarbageIsAnErrorNotACrash) {
  for (std::string bad :
       {"", "not json", "[]", "{\"header\":{}}", "{\"header\":5}",
        "{\"header\":{\"revision\":\"x\"}}", "{\"header\":{\"revision\":\"3\"},\"kvs\":{}}",
        "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"%%%\"}]}",
        "{\"header\":{\"revision\":\"3\"},\"kvs\":[5]}"}) {
    auto r = parse_range_reply(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  // int64 as numbers are accepted too (proto3 JSON allows both).
  auto n = parse_range_reply(
      "{\"header\":{\"revision\":7},\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Yg==\"}]}");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->revision, 7);
}

// Found by fuzz/etcd_json_fuzzer: a number beyond double's range made nlohmann throw
// out_of_range (not parse_error), which escaped the parser and terminated the process.
TEST(EtcdRangeReply, NumberOverflowIsAnErrorNotACrash) {
  const std::string huge = "{\"header\":{\"cluster_id\":1e999,\"revision\":\"3\"}}";
  auto r = parse_range_reply(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_auth_reply(huge).ok());
  EXPECT_FALSE(parse_watch_message("{\"result\":{\"header\":{\"revision\":-1e999}}}").ok());
  EXPECT_FALSE(parse_value("/svc/a", "{\"address\":\"10.0.0.1\",\"port\":1e400}", "a").ok());
}

TEST(EtcdAuthReply, TokenOrRefusal) {
  auto ok = parse_auth_reply(testdata("auth_ok.json"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "JHlsnhXAGFjxCJwE.14");
  auto bad = parse_auth_reply(testdata("auth_bad_password.json"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kRefused);
  EXPECT_NE(bad.error().message.find("invalid user ID or password"), std::string::npos);
  EXPECT_FALSE(parse_auth_reply(testdata("auth_disabled.json")).ok());
}

std::vector<WatchMessage> split_and_parse(const std::string& stream, size_t chunk) {
  JsonObjectSplitter splitter;
  std::vector<WatchMessage> out;
  for (size_t i = 0; i < stream.size(); i += chunk) {
    auto objs = splitter.feed(std::string_view(stream).substr(i, chunk));
    EXPECT_FALSE(splitter.error().has_value());
    for (const auto& o : objs) {
      auto m = parse_watch_message(o);
      EXPECT_TRUE(m.ok()) << o;
      if (m.ok()) out.push_back(std::move(*m));
    }
  }
  return out;
}

TEST(EtcdWatch, SavedStreamInAnyChunkingGivesTheSameMessages) {
  const std::string stream = testdata("watch_stream.txt");
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{100}, stream.size()}) {
    auto msgs = split_and_parse(stream, chunk);
    ASSERT_EQ(msgs.size(), 6u) << "chunk " << chunk;
    EXPECT_TRUE(msgs[0].created);
    ASSERT_EQ(msgs[1].events.size(), 3u);
    EXPECT_FALSE(msgs[1].events[0].is_delete);
    EXPECT_EQ(msgs[1].events[0].kv.key, "/svc/web/a");
    ASSERT_EQ(msgs[2].events.size(), 1u);
    EXPECT_TRUE(msgs[2].events[0].is_delete);
    EXPECT_EQ(msgs[2].events[0].kv.key, "/svc/web/b");
    EXPECT_EQ(msgs[2].revision, 5);
    EXPECT_TRUE(msgs[4].is_progress());
    EXPECT_EQ(msgs[4].revision, 6);
  }
}

TEST(EtcdWatch, CompactedWatchIsCancelledWithCompactRevision) {
  auto msgs = split_and_parse(testdata("watch_compacted.txt"), 64);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_TRUE(msgs[0].created);
  EXPECT_TRUE(msgs[1].canceled);
  EXPECT_EQ(msgs[1].compact_revision, 5);
}

TEST(EtcdWatch, InvalidTokenCancelsWithAuthReason) {
  auto msgs = split_and_parse(testdata("watch_invalid_token.txt"), 1000);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].canceled);
  EXPECT_TRUE(is_auth_error(msgs[0].cancel_reason));
}

TEST(EtcdWatch, ErrorMessagesAreErrors) {
  auto bad = parse_watch_message(testdata("watch_bad_request.txt"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("invalid character"), std::string::npos);
  auto obj = parse_watch_message(
      R"({"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token"}})");
  ASSERT_FALSE(obj.ok());
  EXPECT_TRUE(is_auth_error(obj.error().message));
  EXPECT_FALSE(parse_watch_message(R"({"result":{"events":[{"type":"BOGUS","kv":{}}]}})").ok());
  EXPECT_FALSE(parse_watch_message(R"({"result":{"events":[{}]}})").ok());
}

TEST(EtcdSplitter, StringsWithBracesAndGarbageBetweenObjects) {
  JsonObjectSplitter s;
  auto a = s.feed(R"({"a":"}{\"x"} )");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], R"({"a":"}{\"x"})");
  auto b = s.feed("\n{\"b\":[1,{\"c\":2}]}{");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(s.buffered(), 1u);
  EXPECT_FALSE(s.error().has_value());
  JsonObjectSplitter g;
  auto before = g.feed("{\"ok\":1}\njunk{\"late\":2}");
  EXPECT_EQ(before.size(), 1u) << "objects before the garbage are kept";
  ASSERT_TRUE(g.error().has_value());
  EXPECT_NE(g.error()->message.find("junk"), std::string::npos);
  EXPECT_TRUE(g.feed("{\"x\":1}").empty());
}

TEST(EtcdValue, GrpcNamingConvention) {
  auto v =
      parse_value("/svc/web/a", R"({"Op":0,"Addr":"10.0.0.1:8080","Metadata":{"weight":10}})", "a");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_FALSE(v->remove);
  EXPECT_EQ(v->endpoint.address, "10.0.0.1");
  EXPECT_EQ(v->endpoint.port, 8080u);
  EXPECT_EQ(v->endpoint.weight, 10);
  EXPECT_EQ(v->endpoint.id, "a");
  // Op omitted = add; Metadata of any shape ignored; IPv6.
  auto w = parse_value("k", R"({"Addr":"[2001:db8::7]:443","Metadata":"free text"})", "");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->endpoint.address, "2001:db8::7");
  EXPECT_EQ(w->endpoint.port, 443u);
  EXPECT_FALSE(w->endpoint.weight.has_value());
  auto del = parse_value("k", R"({"Op":1,"Addr":"10.0.0.1:8080"})", "");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(del->remove);
  auto bare = parse_value("k", R"({"Addr":"10.0.0.9"})", "");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->endpoint.port, 0u);
}

TEST(EtcdValue, PlainAndObjectShapes) {
  auto p = parse_value("k", " 10.0.0.2:8080\n", "");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->endpoint.address, "10.0.0.2");
  EXPECT_EQ(p->endpoint.port, 8080u);
  auto o = parse_value("k", R"({"address":"10.0.0.3","port":9090,"weight":5,"backup":true})", "");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->endpoint.address, "10.0.0.3");
  EXPECT_EQ(o->endpoint.port, 9090u);
  EXPECT_EQ(o->endpoint.weight, 5);
  EXPECT_TRUE(o->endpoint.backup);
  auto s = parse_value("k", R"({"host":"10.0.0.4","port":"81","weight":"7","backup":"false"})", "");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->endpoint.port, 81u);
  EXPECT_EQ(s->endpoint.weight, 7);
}

TEST(EtcdValue, BadValuesNameTheKey) {
  for (std::string bad :
       {"", "   ", "{", "[::1]x", R"({"Addr":5})", R"({"Op":2,"Addr":"1.2.3.4:1"})",
        R"({"foo":"bar"})", R"({"address":"1.2.3.4","port":0})",
        R"({"address":"1.2.3.4","port":70000})", "1.2.3.4:99999", "1.2.3.4:", "[::1",
        R"({"Addr":"1.2.3.4:80","Metadata":{"weight":300}})",
        R"({"address":"1.2.3.4","backup":"maybe"})"}) {
    auto v = parse_value("/svc/web/x", bad, "x");
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_NE(v.error().message.find("/svc/web/x"), std::string::npos) << v.error().message;
  }
}

Result<Options> options(const std::string& yaml) {
  auto node = config::parse_yaml(yaml, "ep.yaml");
  if (!node) return node.error();
  Diagnostics diag;
  auto o = options_from_node(*node, "/etc/ep", diag);
  if (!o) return Error::invalid(diag.joined());
  return *o;
}

TEST(EtcdOptions, DefaultsAndResolution) {
  auto o = options(
      "endpoints: [http://10.0.0.1:2379/, https://10.0.0.2:2379]\nprefix: /svc/web/\n"
      "username: ep\npassword_file: pw\ntls: {ca_file: ca.pem}\nallow_insecure: true\n");
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(o->allow_insecure) << "a password over http to 10.0.0.1 needs the opt-in";
  EXPECT_FALSE(options("endpoints: [http://10.0.0.1:2379]\nprefix: /a/\nusername: ep\n"
                       "password_file: pw\n")
                   .ok());
  EXPECT_EQ(o->endpoints[0], "http://10.0.0.1:2379");
  EXPECT_EQ(o->password_file, "/etc/ep/pw");
  EXPECT_EQ(o->ca_file, "/etc/ep/ca.pem");
  EXPECT_EQ(o->idle_timeout, std::chrono::minutes(15));
  EXPECT_EQ(o->page_size, 1000);
}

TEST(EtcdOptions, ErrorsHavePositions) {
  auto missing = options("endpoints: [http://a:1]\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("prefix"), std::string::npos);
  auto scheme = options("endpoints: [a:2379]\nprefix: /x/\n");
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.error().message.find("ep.yaml:1:"), std::string::npos) << scheme.error().message;
  EXPECT_FALSE(options("endpoints: [http://a:1]\nprefix: ''\n").ok());
  EXPECT_FALSE(options("endpoints: [http://a:1]\nprefix: /x/\nusername: u\n").ok());
  EXPECT_FALSE(options("endpoints: [http://a:1]\nprefix: /x/\npassword: p\n").ok());
  EXPECT_FALSE(options("endpoints: [http://a:1]\nprefix: /x/\nbogus: 1\n").ok());
  EXPECT_FALSE(options("endpoints: [http://a:1]\nprefix: /x/\nidle_timeout: 0s\n").ok());
  EXPECT_FALSE(options("endpoints: [http://a:1]\nprefix: /x/\ntls: {cert_file: c}\n").ok());
  EXPECT_FALSE(options("endpoints: [http://a:1/v3]\nprefix: /x/\n").ok());
}

}  // namespace
}  // namespace ep::discovery::etcd

namespace ep::discovery::etcd {
namespace {

// Issue #14 point 1: a value with a field nested 80,000 deep (160 KB, far under etcd's 1.5 MiB
// value limit) crashed the daemon (recursive dump() in the error message) in `once` and `run`,
// and again after every restart. Every etcd JSON parser now refuses it with a clear error.
std::string deep(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(EtcdHostile, DeeplyNestedFieldsAreErrorsNotCrashes) {
  for (const char* field : {"port", "weight", "backup", "address"}) {
    const std::string value =
        std::string(R"({"address":"10.0.0.1","port":80,")") + field + "\":" + deep(80'000) + "}";
    auto r = parse_value("/svc/web/evil", value, "evil");
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_NE(r.error().message.find("etcd key '/svc/web/evil'"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("nested deeper than"), std::string::npos) << r.error().message;
    EXPECT_LT(r.error().message.size(), 200u) << "the message never carries the payload";
  }
  auto op =
      parse_value("/svc/web/evil", R"({"Addr":"10.0.0.1:80","Op":)" + deep(80'000) + "}", "evil");
  EXPECT_FALSE(op.ok());
  EXPECT_FALSE(parse_range_reply(R"({"header":{"revision":)" + deep(80'000) + "}}").ok());
  EXPECT_FALSE(parse_watch_message(R"({"result":{"watch_id":)" + deep(80'000) + "}}").ok());
  EXPECT_FALSE(parse_watch_message(R"({"error":)" + deep(80'000) + "}").ok());
  EXPECT_FALSE(parse_auth_reply(R"({"error":)" + deep(80'000) + "}").ok());
}

// Below the depth limit, wrong types are still described by kind, never serialised.
TEST(EtcdHostile, WrongTypesAreNamedByKind) {
  auto r = parse_value("/svc/web/a", R"({"address":"10.0.0.1","port":[[1,2],[3]]})", "a");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("port must be 1..65535, got an array of 2 items"),
            std::string::npos)
      << r.error().message;
  auto w = parse_value("/svc/web/a", R"({"address":"10.0.0.1","weight":{"x":{"y":1}}})", "a");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("got an object with 1 keys"), std::string::npos)
      << w.error().message;
  auto e = parse_watch_message(R"({"error":{"grpc_code":[1]}})");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("an object with 1 keys without a message"), std::string::npos)
      << e.error().message;
}

}  // namespace
}  // namespace ep::discovery::etcd
