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
// The running source is a state machine on one loop of the source runtime (start_on; start()
// uses a private one-thread runtime): calls and the watch stream go through an AsyncHttpClient
// on that loop, retries are loop timers, no thread is its own. fetch_once() lists on the caller's
// thread with a blocking client.

#include <atomic>
#include <memory>

#include "discovery/etcd/options.h"
#include "discovery/source.h"
#include "runtime/runtime.h"

namespace ep::discovery::etcd {

class EtcdSource final : public Source {
 public:
  explicit EtcdSource(Options options);
  ~EtcdSource() override;

  std::string describe() const override;  // "etcd /services/web/ @ http://127.0.0.1:2379"
  Status start_on(runtime::Runtime& runtime, Sink& sink) override;  // fails when already started
  Status start(Sink& sink) override;  // the same on a private one-thread runtime
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }

  // For tests and metrics: how many full listings (Range) succeeded, and watch streams opened.
  std::uint64_t lists() const { return lists_.load(); }
  std::uint64_t watches() const { return watches_.load(); }

 private:
  class Machine;

  Options options_;
  std::unique_ptr<runtime::Runtime> own_runtime_;  // only when started without one
  runtime::Loop* loop_ = nullptr;                  // set while started (starting thread's)
  std::unique_ptr<Machine> machine_;               // created and destroyed on *loop_
  std::atomic<std::uint64_t> lists_{0};
  std::atomic<std::uint64_t> watches_{0};
};

// {"etcd", factory}.
SourceKind source_kind();

}  // namespace ep::discovery::etcd
