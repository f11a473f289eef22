#pragma once
// The `file` source: a Prometheus file_sd list in a local file, watched with inotify.
//
// The source watches the file's DIRECTORY (so atomic rename-over, the recommended way to update
// the file, is seen), filters events to the file name, debounces bursts and re-reads the file
// every refresh_interval as a safety net. It publishes the full set after every successful parse
// whose result differs from the last one published (and always the first), and an ep::Error for
// a parse error or a missing/unreadable file (the guard keeps the last good set). A failed read is
// re-checked once ~50ms later before its error is published, so a writer caught mid-rewrite does
// not produce a spurious error.

#include <atomic>
#include <memory>
#include <thread>

#include "discovery/file/options.h"
#include "discovery/source.h"

namespace ep::discovery::file {

// Reads and parses the file once (no watching). Errors name the path.
Snapshot read_file(const Options& options);

class FileSource final : public Source {
 public:
  explicit FileSource(Options options);
  ~FileSource() override;

  std::string describe() const override;
  // Fails only when the inotify/eventfd descriptors cannot be created. A missing file (or even a
  // missing directory) is not a start error: it is published as a failed snapshot and watched.
  Status start(Sink& sink) override;
  void stop() override;
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  const Options& options() const { return options_; }

 private:
  void run(Sink& sink);

  Options options_;
  int stop_fd_ = -1;
  int inotify_fd_ = -1;
  std::thread thread_;
};

// {"file", factory}: options from the node, relative paths against SourceContext::base_dir.
SourceKind source_kind();

}  // namespace ep::discovery::file
