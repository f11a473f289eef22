#pragma once
// HTTP on the source runtime: many requests in flight on one event loop, no thread per request
// or per source. libcurl's multi interface is driven by the loop's fd watches and timers
// (socket/timer callbacks); no curl types here (libcurl stays inside ep_http).
//
// Requests follow the HttpClient contract (errors, redaction, TLS, unix sockets, connection
// reuse). Two shapes:
//  - buffered: the body is kept, up to Options::max_body_bytes (more fails with kInvalid), and
//    request.timeout bounds the whole request;
//  - streaming (etcd's watch): the body goes to `on_chunk` piece by piece as it arrives, with no
//    total timeout; `idle_timeout` (> 0) aborts a stream silent for that long ("no data for
//    <n>ms"); on_chunk returning false ends it and `on_done` gets the status with an empty body.
//
// Threading: everything (start, cancel, the destructor) is called on the loop's thread, and every
// callback runs there. A callback may start or cancel other requests; it must not destroy the
// client.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "core/result.h"
#include "net/http_client.h"
#include "runtime/loop.h"

namespace ep::net {

class AsyncHttpClient {
 public:
  struct Options {
    // Small by default: a 60 MiB reply took 1.7 GB to parse. Sources make it configurable.
    std::size_t max_body_bytes = 8u << 20;
    std::string user_agent = "elasticproxy";
  };
  using RequestId = std::uint64_t;  // 0 is never valid
  using DoneCallback = std::function<void(Result<HttpResponse>)>;
  using ChunkHandler = std::function<bool(long status, std::string_view chunk)>;

  explicit AsyncHttpClient(runtime::Loop& loop);
  AsyncHttpClient(runtime::Loop& loop, Options options);
  // Aborts every request in flight without calling its callbacks.
  ~AsyncHttpClient();
  AsyncHttpClient(const AsyncHttpClient&) = delete;
  AsyncHttpClient& operator=(const AsyncHttpClient&) = delete;

  // Starts a buffered request; `on_done` runs exactly once, later (never inside start), unless
  // the request is cancelled first.
  RequestId start(const HttpRequest& request, DoneCallback on_done);
  // Starts a streaming request (see above).
  RequestId start_stream(const HttpRequest& request, std::chrono::milliseconds idle_timeout,
                         ChunkHandler on_chunk, DoneCallback on_done);
  // Aborts a request: its callbacks never run afterwards. False if it already finished.
  bool cancel(RequestId id);

  size_t in_flight() const;
  // New connections opened by finished requests (a reused kept-alive one does not count).
  std::uint64_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::net
