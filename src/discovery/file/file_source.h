#pragma once
// The `file` source: a Prometheus file_sd list in a local file, watched with inotify.
//
// A handler on the source runtime: the runtime's one inotify instance (runtime::FileWatcher)
// watches the file's DIRECTORY (so atomic rename-over, the recommended way to update the file, is
// seen) and tells the source about events for its file name; the source debounces bursts and
// re-reads the file every refresh_interval as a safety net, all on one loop of the runtime (no
// thread of its own). It publishes the full set after every successful parse
// whose result differs from the last one published (and always the first), and an ep::Error for
// a parse error or a missing/unreadable file (the guard keeps the last good set). A failed read is
// re-checked once ~50ms later before its error is published, so a writer caught mid-rewrite does
// not produce a spurious error.

#include <cstdint>
#include <memory>
#include <optional>

#include "discovery/file/options.h"
#include "discovery/source.h"
#include "runtime/runtime.h"

namespace ep::discovery::file {

// Reads and parses the file once (no watching). Errors name the path.
Snapshot read_file(const Options& options);

class FileSource final : public Source {
 public:
  explicit FileSource(Options options);
  ~FileSource() override;

  std::string describe() const override;
  // Fails only when the runtime's inotify instance cannot be created. A missing file (or even a
  // missing directory) is not a start error: it is published as a failed snapshot and watched.
  // The first read happens on the loop, right after start returns.
  Status start_on(runtime::Runtime& runtime, Sink& sink) override;
  // The same on a private one-thread runtime.
  Status start(Sink& sink) override;
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }

 private:
  // Everything below runs on loop_'s thread.
  void on_change();
  void on_pending();
  void on_refresh();
  void read_and_publish();
  void schedule_read(std::chrono::milliseconds delay);
  void arm_refresh();

  Options options_;
  std::unique_ptr<runtime::Runtime> own_runtime_;  // only when started without one
  // Set by start (before the loop runs anything of ours), cleared by stop (after it no longer can).
  runtime::Runtime* runtime_ = nullptr;
  runtime::Loop* loop_ = nullptr;

  // Loop-thread state.
  Sink* sink_ = nullptr;
  runtime::SubscriptionId subscription_ = 0;
  runtime::TimerId pending_timer_ = 0;  // a debounced (or re-check) read is due
  runtime::TimerId refresh_timer_ = 0;
  bool retrying_ = false;         // the last read failed and one re-check is scheduled
  // The last published set's bytes, as their size and two independent 64-bit hashes (not the
  // bytes: 1,000 files of 10 servers kept ~1 MiB of text).
  struct TextDigest {
    std::size_t size = 0;
    std::uint64_t std_hash = 0;
    std::uint64_t fnv = 0;
    bool operator==(const TextDigest&) const = default;
    static TextDigest of(std::string_view text);
  };
  std::optional<TextDigest> last_text_;
};

// {"file", factory}: options from the node, relative paths against SourceContext::base_dir.
SourceKind source_kind();

}  // namespace ep::discovery::file
