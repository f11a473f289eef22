#include "net/async_http_client.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "runtime/runtime.h"
#include "support/haproxy/loopback.h"
#include "support/http/loopback_http_server.h"
#include "support/time_scale.h"

namespace ep::net {
namespace {

using test::HttpServerReply;
using test::HttpServerRequest;
using test::LoopbackHttpServer;
using namespace std::chrono_literals;

// Every test drives a manual-mode runtime on the test thread: all the client's work and
// callbacks happen inside run_until(), with a deadline on the test time scale.
class AsyncHttpClientTest : public ::testing::Test {
 protected:
  void serve(LoopbackHttpServer::Handler h) {
    server_ = std::make_unique<LoopbackHttpServer>(std::move(h));
    server_->start();
  }
  bool run_until(const std::function<bool()>& done) {
    return rt_.run_until(done, test::scaled(std::chrono::seconds(10)));
  }
  HttpRequest get(const std::string& path) {
    HttpRequest r;
    r.url = server_->base_url() + path;
    return r;
  }

  runtime::Runtime rt_{{.threads = 0}};
  std::unique_ptr<LoopbackHttpServer> server_;
};

TEST_F(AsyncHttpClientTest, ManyRequestsInFlightAtOnceOnOneLoop) {
  // The server answers nobody until 20 requests are waiting at the same time: only a client
  // that keeps them all in flight together (on the one loop thread) gets any answer.
  constexpr int kN = 20;
  std::mutex mu;
  std::condition_variable cv;
  int waiting = 0;
  serve([&](const HttpServerRequest& req) {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait_for(lock, test::scaled(10s), [&] { return waiting >= kN; });
    return HttpServerReply{200, {{"X-Path", req.path}}, "body of " + req.path};
  });
  AsyncHttpClient client(rt_.loop());
  std::vector<std::optional<Result<HttpResponse>>> results(kN);
  for (int i = 0; i < kN; ++i) {
    client.start(get("/r" + std::to_string(i)),
                 [&results, i](Result<HttpResponse> r) { results[i] = std::move(r); });
  }
  EXPECT_EQ(client.in_flight(), static_cast<size_t>(kN));
  ASSERT_TRUE(run_until([&] { return client.in_flight() == 0; }));
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(results[i].has_value());
    ASSERT_TRUE(results[i]->ok()) << results[i]->error().message;
    EXPECT_EQ((*results[i])->status, 200);
    EXPECT_EQ((*results[i])->body, "body of /r" + std::to_string(i));
    EXPECT_EQ((*results[i])->headers.get("x-path"), "/r" + std::to_string(i));
  }
  EXPECT_EQ(server_->connections_accepted(), static_cast<std::uint64_t>(kN));
}

TEST_F(AsyncHttpClientTest, SequentialRequestsReuseTheConnection) {
  serve([](const HttpServerRequest&) { return HttpServerReply{200, {}, "ok"}; });
  AsyncHttpClient client(rt_.loop());
  int done = 0;
  std::function<void(Result<HttpResponse>)> next = [&](Result<HttpResponse> r) {
    ASSERT_TRUE(r.ok()) << r.error().message;
    if (++done < 3) client.start(get("/again"), next);  // started from a callback
  };
  client.start(get("/first"), next);
  ASSERT_TRUE(run_until([&] { return done == 3; }));
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server_->connections_accepted(), 1u);
}

TEST_F(AsyncHttpClientTest, BodyLargerThanTheCapIsInvalid) {
  serve([](const HttpServerRequest&) { return HttpServerReply{200, {}, std::string(5000, 'x')}; });
  AsyncHttpClient client(rt_.loop(), {.max_body_bytes = 1000});
  std::optional<Result<HttpResponse>> result;
  client.start(get("/big"), [&](Result<HttpResponse> r) { result = std::move(r); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  ASSERT_FALSE(result->ok());
  EXPECT_EQ(result->error().kind, ErrorKind::kInvalid);
  EXPECT_NE(result->error().message.find("exceeds 1000 bytes"), std::string::npos);
}

TEST_F(AsyncHttpClientTest, StreamingHandsTheBodyOverInPiecesAndCanStopEarly) {
  const std::string body(200000, 'y');
  serve([&](const HttpServerRequest&) { return HttpServerReply{200, {}, body}; });
  AsyncHttpClient client(rt_.loop(), {.max_body_bytes = 1000});  // the cap is for buffered bodies
  std::string got;
  int chunks = 0;
  std::optional<Result<HttpResponse>> result;
  client.start_stream(
      get("/stream"), 0ms,
      [&](long status, std::string_view chunk) {
        EXPECT_EQ(status, 200);
        got.append(chunk);
        ++chunks;
        return true;
      },
      [&](Result<HttpResponse> r) { result = std::move(r); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->error().message;
  EXPECT_EQ(got, body);
  EXPECT_GT(chunks, 1);

  // The handler says "enough" at the first piece: the stream ends with its status.
  result.reset();
  int calls = 0;
  client.start_stream(
      get("/stream"), 0ms, [&](long, std::string_view) { return ++calls < 1; },
      [&](Result<HttpResponse> r) { result = std::move(r); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->error().message;
  EXPECT_EQ((*result)->status, 200);
  EXPECT_EQ(calls, 1);
}

TEST_F(AsyncHttpClientTest, SilentStreamHitsTheIdleTimeout) {
  serve([](const HttpServerRequest&) {
    HttpServerReply r;
    r.action = HttpServerReply::Action::kHang;
    return r;
  });
  AsyncHttpClient client(rt_.loop());
  std::optional<Result<HttpResponse>> result;
  client.start_stream(
      get("/watch"), 100ms, [](long, std::string_view) { return true; },
      [&](Result<HttpResponse> r) { result = std::move(r); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  ASSERT_FALSE(result->ok());
  EXPECT_EQ(result->error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(result->error().message.find("no data for 100ms"), std::string::npos)
      << result->error().message;
  EXPECT_EQ(client.in_flight(), 0u);
}

TEST_F(AsyncHttpClientTest, CancelledAndDestroyedRequestsNeverCallBack) {
  std::atomic<int> arrived{0};
  serve([&](const HttpServerRequest&) {
    ++arrived;
    HttpServerReply r;
    r.action = HttpServerReply::Action::kHang;
    return r;
  });
  int callbacks = 0;
  {
    AsyncHttpClient client(rt_.loop());
    auto a = client.start(get("/a"), [&](Result<HttpResponse>) { ++callbacks; });
    client.start(get("/b"), [&](Result<HttpResponse>) { ++callbacks; });
    ASSERT_TRUE(run_until([&] { return arrived.load() == 2; }));
    EXPECT_TRUE(client.cancel(a));
    EXPECT_FALSE(client.cancel(a));
    EXPECT_EQ(client.in_flight(), 1u);
  }  // destroyed with /b in flight
  rt_.run_until_idle();
  EXPECT_EQ(callbacks, 0);
  EXPECT_EQ(rt_.loop().watch_count(), 0u);
  EXPECT_EQ(rt_.loop().timer_count(), 0u);
}

TEST_F(AsyncHttpClientTest, RefusedConnectionAndBadRequestsAreErrorsReportedLater) {
  AsyncHttpClient client(rt_.loop());
  HttpRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(test::free_port()) + "/x";
  std::optional<Result<HttpResponse>> refused, bad;
  client.start(r, [&](Result<HttpResponse> res) { refused = std::move(res); });
  HttpRequest b = r;
  b.headers = {{"X-Consul-Token", "secret\r\nInjected: 1"}};
  client.start(b, [&](Result<HttpResponse> res) { bad = std::move(res); });
  EXPECT_FALSE(bad.has_value());  // never from inside start()
  ASSERT_TRUE(run_until([&] { return refused.has_value() && bad.has_value(); }));
  ASSERT_FALSE(refused->ok());
  EXPECT_EQ(refused->error().kind, ErrorKind::kUnavailable);
  ASSERT_FALSE(bad->ok());
  EXPECT_EQ(bad->error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(bad->error().message.find("Injected"), std::string::npos);  // no value echoed
}

}  // namespace
}  // namespace ep::net
