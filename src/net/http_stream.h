#pragma once
// A streaming HTTP request over libcurl for never-ending responses (etcd's watch stream): the
// body is handed to a callback chunk by chunk as it arrives, and a stream that goes silent for
// longer than an idle timeout is aborted. No curl types here (libcurl stays inside ep_http).

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "core/result.h"
#include "net/http_client.h"

namespace ep::net {

class CurlHttpStream {
 public:
  // Called for every received piece of the body with the response's status code. Return false to
  // end the stream (perform() then returns the status).
  using ChunkHandler = std::function<bool(long status, std::string_view chunk)>;

  CurlHttpStream();
  ~CurlHttpStream();
  CurlHttpStream(const CurlHttpStream&) = delete;
  CurlHttpStream& operator=(const CurlHttpStream&) = delete;

  // Sends `request` (its `timeout` is ignored: a stream has no total timeout; connect_timeout and
  // TLS options apply) and feeds the body to `on_chunk` until the peer closes (returns the status),
  // the handler returns false (returns the status), or an error:
  //  - kUnavailable: cannot connect, connection reset, TLS failure, cancelled, or no byte received
  //    for `idle_timeout` (> 0; 0 = never) — the message says "no data for <n>ms".
  //  - kInvalid: malformed request (no URL, a header with a line break).
  // Not thread-safe except cancel(); one stream at a time per instance.
  Result<long> perform(const HttpRequest& request, std::chrono::milliseconds idle_timeout,
                       const ChunkHandler& on_chunk);

  // Thread-safe. Aborts the stream in progress at once and makes every later perform() fail.
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::net
