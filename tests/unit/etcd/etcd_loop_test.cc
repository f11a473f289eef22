// The etcd source's list/watch loop against a scripted gateway (a loopback HTTP server replaying
// saved etcd payloads): the paths a real etcd does not produce on demand.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "discovery/etcd/etcd_source.h"
#include "discovery/etcd/parse.h"
#include "support/eventually.h"
#include "support/http/loopback_http_server.h"
#include "support/recording_sink.h"

namespace ep::discovery::etcd {
namespace {

using namespace std::chrono_literals;
using test::HttpServerReply;
using test::HttpServerRequest;

using test::RecordingSink;

std::string kv(const std::string& key, const std::string& value, int rev) {
  return nlohmann::json{{"key", base64_encode(key)},
                        {"value", base64_encode(value)},
                        {"mod_revision", std::to_string(rev)}}
      .dump();
}

std::string range(int revision, const std::vector<std::string>& kvs) {
  std::string out = R"({"header":{"revision":")" + std::to_string(revision) + R"("},"kvs":[)";
  for (size_t i = 0; i < kvs.size(); ++i) out += (i ? "," : "") + kvs[i];
  return out + "]}";
}

size_t count_addresses(const Snapshot& s) { return s.ok() ? s->size() : 0; }

// Scripted gateway: each call of a path takes the next reply; the last one repeats.
struct Script {
  std::mutex mu;
  std::vector<HttpServerReply> ranges, watches;
  std::vector<std::string> range_bodies, watch_bodies;
  size_t range_calls = 0, watch_calls = 0;

  HttpServerReply handle(const HttpServerRequest& req) {
    std::lock_guard lock(mu);
    if (req.path == "/v3/kv/range") {
      range_bodies.push_back(req.body);
      return ranges[std::min(range_calls++, ranges.size() - 1)];
    }
    if (req.path == "/v3/watch") {
      watch_bodies.push_back(req.body);
      return watches[std::min(watch_calls++, watches.size() - 1)];
    }
    return HttpServerReply{404, {}, "{}"};
  }
};

Options options_for(const test::LoopbackHttpServer& server) {
  Options o;
  o.endpoints = {server.base_url()};
  o.prefix = "/svc/web/";
  o.retry_interval = 50ms;
  o.max_retry_interval = 200ms;
  o.timeout = 2s;
  return o;
}

std::string start_revision(const std::string& body) {
  return nlohmann::json::parse(body)["create_request"]["start_revision"].get<std::string>();
}

TEST(EtcdLoop, CompactedWatchTriggersARelistAndAWatchFromTheNewRevision) {
  Script script;
  script.ranges = {
      {200, {}, range(4, {kv("/svc/web/a", "10.0.0.1:80", 2)})},
      {200,
       {},
       range(9, {kv("/svc/web/a", "10.0.0.1:80", 2), kv("/svc/web/b", "10.0.0.2:80", 8)})}};
  script.watches = {{200,
                     {},
                     R"({"result":{"header":{"revision":"9"},"created":true}})"
                     "\n"
                     R"({"result":{"header":{},"canceled":true,"compact_revision":"7"}})"
                     "\n"},
                    {200, {}, "", HttpServerReply::Action::kHang}};
  test::LoopbackHttpServer server([&](const HttpServerRequest& r) { return script.handle(r); });
  server.start();
  EtcdSource source(options_for(server));
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last([](const Snapshot& s) { return count_addresses(s) == 2; }));
  // The second watch follows the re-list: wait until the gateway has seen it.
  EXPECT_TRUE(test::eventually([&] {
    std::lock_guard lock(script.mu);
    return script.watch_calls >= 2;
  }));
  source.stop();
  server.stop();
  EXPECT_EQ(source.lists(), 2u);
  ASSERT_GE(script.watch_bodies.size(), 2u);
  EXPECT_EQ(start_revision(script.watch_bodies[0]), "5");
  EXPECT_EQ(start_revision(script.watch_bodies[1]), "10");
  // The Range asks for the prefix: key /svc/web/, range_end /svc/web0.
  auto first = nlohmann::json::parse(script.range_bodies[0]);
  EXPECT_EQ(first["key"], base64_encode("/svc/web/"));
  EXPECT_EQ(first["range_end"], base64_encode("/svc/web0"));
}

TEST(EtcdLoop, EventsUpdateTheSetAndGarbageInTheStreamForcesARelistNotAnEmptySet) {
  Script script;
  script.ranges = {{200, {}, range(4, {kv("/svc/web/a", "10.0.0.1:80", 2)})}};
  const std::string put_b = R"({"result":{"header":{"revision":"5"},"events":[{"kv":)" +
                            kv("/svc/web/b", R"({"Addr":"10.0.0.2:80"})", 5) + "}]}}\n";
  script.watches = {
      {200,
       {},
       R"({"result":{"header":{"revision":"4"},"created":true}})" + put_b + "this is not json\n"},
      {200, {}, "", HttpServerReply::Action::kHang}};
  test::LoopbackHttpServer server([&](const HttpServerRequest& r) { return script.handle(r); });
  server.start();
  EtcdSource source(options_for(server));
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  // b is added by the event, then the garbage makes the source re-list: the listing (a only) is
  // the truth again. Never an error-free empty set.
  ASSERT_TRUE(sink.wait_any([](const Snapshot& s) { return count_addresses(s) == 2; }));
  ASSERT_TRUE(sink.wait_last(
      [&](const Snapshot& s) { return count_addresses(s) == 1 && source.lists() >= 2; }));
  source.stop();
}

TEST(EtcdLoop, HttpErrorsArePublishedAsErrors) {
  Script script;
  script.ranges = {{503, {}, R"({"error":"etcdserver: leader changed","code":14})"}};
  script.watches = {{200, {}, "", HttpServerReply::Action::kHang}};
  test::LoopbackHttpServer server([&](const HttpServerRequest& r) { return script.handle(r); });
  server.start();
  EtcdSource source(options_for(server));
  RecordingSink sink;
  ASSERT_TRUE(source.start(sink).ok());
  ASSERT_TRUE(sink.wait_last([](const Snapshot& s) {
    return !s.ok() && s.error().message.find("leader changed") != std::string::npos &&
           s.error().message.find("HTTP 503") != std::string::npos;
  }));
  source.stop();
}

}  // namespace
}  // namespace ep::discovery::etcd
