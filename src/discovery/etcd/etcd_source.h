#pragma once
// The `etcd` source: every key under a prefix of an etcd v3 cluster, read through etcd's
// HTTP/JSON gateway (/v3/kv/range, /v3/watch).
//
// Algorithm (level-triggered, list then watch): Range the prefix (paginated, pinned to the first
// page's revision) → publish the whole set → watch from revision+1 with progress notifications →
// apply PUT/DELETE events to the key → endpoint map and publish the whole set after each change.
// The source re-lists (and publishes the new whole set) after anything that may have lost events:
// a cancelled watch (compaction: compact_revision), a watch error, a dropped connection, a stream
// silent for idle_timeout. An expired auth token is renewed once per failure. Requests go to
// the current endpoint; an unavailable endpoint makes the source try the next one, in order.
// Failures (no endpoint answers, auth refused, garbage) are published as errors and retried with
// exponential backoff; the guard keeps the last good set. A prefix with no keys after a successful
// Range is published as an empty set (an explicit "no servers").
// Keys whose value cannot be decoded are skipped (logged once per distinct message); the rest of
// the set is kept.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "discovery/etcd/options.h"
#include "discovery/source.h"

namespace ep::net {
class CurlHttpClient;
class CurlHttpStream;
}  // namespace ep::net

namespace ep::discovery::etcd {

class EtcdSource final : public Source {
 public:
  explicit EtcdSource(Options options);
  ~EtcdSource() override;

  std::string describe() const override;  // "etcd /services/web/ @ http://127.0.0.1:2379"
  Status start(Sink& sink) override;      // fails only when already started
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }

  // For tests and metrics: how many full listings (Range) succeeded, and watch streams opened.
  std::uint64_t lists() const { return lists_.load(); }
  std::uint64_t watches() const { return watches_.load(); }

 private:
  void run(Sink& sink);

  Options options_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  net::CurlHttpClient* client_ = nullptr;  // owned by run(); guarded by mutex_
  net::CurlHttpStream* stream_ = nullptr;  // owned by run(); guarded by mutex_
  std::atomic<std::uint64_t> lists_{0};
  std::atomic<std::uint64_t> watches_{0};
};

// {"etcd", factory}.
SourceKind source_kind();

}  // namespace ep::discovery::etcd
