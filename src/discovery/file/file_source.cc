#include "discovery/file/file_source.h"

#include "core/log.h"
#include "os/file.h"

namespace ep::discovery::file {
namespace {

constexpr size_t kMaxFileSize = 16 * 1024 * 1024;
constexpr const char* kComponent = "source.file";
// A failed read is checked again after this long before the error is published.
constexpr std::chrono::milliseconds kErrorRecheck{50};

Result<std::string> read_all(const std::filesystem::path& path) {
  // Non-blocking: a FIFO put at the path must not block the source's loop.
  return os::read_file(path.string(), kMaxFileSize, /*nonblocking=*/true);
}

}  // namespace

Snapshot read_file(const Options& options) {
  auto text = read_all(options.path);
  if (!text) return text.error();
  return parse_file_sd(*text, options.format, options.path);
}

FileSource::FileSource(Options options) : options_(std::move(options)) {}

FileSource::~FileSource() { stop(); }

std::string FileSource::describe() const { return "file " + options_.path; }

Snapshot FileSource::fetch_once(std::chrono::milliseconds /*timeout*/) {
  return read_file(options_);  // a local file read; no network wait to bound
}

Status FileSource::start(Sink& sink) {
  if (loop_ != nullptr) return Error::internal(describe() + ": already started");
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status FileSource::start_on(runtime::Runtime& runtime, Sink& sink) {
  if (loop_ != nullptr) return Error::internal(describe() + ": already started");
  runtime::Loop& loop = runtime.loop();
  // Set before anything runs on the loop (its callbacks use them); cleared by stop() only after
  // the loop can no longer run any of them.
  runtime_ = &runtime;
  loop_ = &loop;
  Status status;
  loop.run_sync([&] {
    sink_ = &sink;
    last_text_.reset();
    retrying_ = false;
    // Watch first, read second: a change between the two is then seen as an event, not lost.
    auto sub = runtime.files().subscribe(options_.path, loop, [this] { on_change(); });
    if (!sub) {
      status = Error::unavailable(describe() + ": " + sub.error().message);
      sink_ = nullptr;
      return;
    }
    subscription_ = *sub;
    pending_timer_ = loop.after(Duration::zero(), [this] { on_pending(); });
  });
  if (!status) {
    runtime_ = nullptr;
    loop_ = nullptr;
    return status;
  }
  return {};
}

void FileSource::stop() {
  if (loop_ == nullptr) return;
  loop_->run_sync([this] {
    // On the loop thread: after this, none of this source's callbacks can run.
    runtime_->files().unsubscribe(subscription_);
    loop_->cancel(pending_timer_);
    loop_->cancel(refresh_timer_);
    subscription_ = pending_timer_ = refresh_timer_ = 0;
    sink_ = nullptr;
  });
  loop_ = nullptr;
  runtime_ = nullptr;
  if (own_runtime_) {
    own_runtime_->stop();
    own_runtime_.reset();
  }
}

void FileSource::schedule_read(std::chrono::milliseconds delay) {
  if (pending_timer_ != 0) loop_->cancel(pending_timer_);
  pending_timer_ = loop_->after(delay, [this] { on_pending(); });
}

void FileSource::arm_refresh() {
  if (refresh_timer_ != 0) loop_->cancel(refresh_timer_);
  refresh_timer_ = loop_->after(options_.refresh_interval, [this] { on_refresh(); });
}

void FileSource::on_change() {
  if (pending_timer_ == 0) schedule_read(options_.debounce);  // a burst makes one read
}

void FileSource::on_pending() {
  pending_timer_ = 0;
  read_and_publish();
  arm_refresh();
}

void FileSource::on_refresh() {
  refresh_timer_ = 0;
  read_and_publish();
  arm_refresh();
}

FileSource::TextDigest FileSource::TextDigest::of(std::string_view text) {
  std::uint64_t fnv = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : text) {
    fnv ^= c;
    fnv *= 1099511628211ULL;
  }
  return {text.size(), std::hash<std::string_view>{}(text), fnv};
}

void FileSource::read_and_publish() {
  auto text = read_all(options_.path);
  // The same bytes as the last published set: nothing to say. (Comparing the text's digest, not
  // the parsed endpoints, keeps a few bytes per source instead of every endpoint; a file
  // rewritten with other bytes but the same servers is published and the guard finds no change.)
  if (text && last_text_ && *last_text_ == TextDigest::of(*text)) {
    retrying_ = false;
    return;
  }
  Snapshot snap = text ? parse_file_sd(*text, options_.format, options_.path)
                       : Snapshot(text.error());
  if (!snap.ok()) {
    // A writer that rewrites in place (truncate, write) can be caught half-way: look once more a
    // moment later before calling the file broken.
    if (!retrying_) {
      retrying_ = true;
      schedule_read(std::max(options_.debounce, kErrorRecheck));
      return;
    }
    retrying_ = false;
    log::debug(kComponent, "{}: {}", describe(), snap.error().message);
    sink_->publish(snap);
    last_text_.reset();
    return;
  }
  retrying_ = false;
  log::debug(kComponent, "{}: {} endpoints", describe(), snap->size());
  sink_->publish(snap);
  last_text_ = TextDigest::of(*text);
}

SourceKind source_kind() {
  return SourceKind{"file",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = options_from_node(node, context.base_dir, diag);
                      if (!options) return nullptr;
                      return std::make_unique<FileSource>(std::move(*options));
                    }};
}

}  // namespace ep::discovery::file
