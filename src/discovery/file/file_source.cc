#include "discovery/file/file_source.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace ep::discovery::file {
namespace {

constexpr size_t kMaxFileSize = 16 * 1024 * 1024;
// While the directory cannot be watched (it does not exist yet), try again this often.
constexpr std::chrono::milliseconds kWatchRetry{1000};
constexpr const char* kComponent = "source.file";
// A failed read is checked again after this long before the error is published.
constexpr std::chrono::milliseconds kErrorRecheck{50};

using SteadyClock = std::chrono::steady_clock;

Result<std::string> read_all(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return Error::unavailable("cannot read " + path.string() + ": " + std::strerror(err));
  }
  std::string text;
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Error::unavailable("cannot read " + path.string() + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize) {
      ::close(fd);
      return Error::invalid(path.string() + ": file is larger than " +
                            std::to_string(kMaxFileSize) + " bytes");
    }
  }
  ::close(fd);
  return text;
}

bool same(const Snapshot& a, const Snapshot& b) { return a.ok() && b.ok() && *a == *b; }

}  // namespace

Snapshot read_file(const Options& options) {
  auto text = read_all(options.path);
  if (!text) return text.error();
  return parse_file_sd(*text, options.format, options.path.string());
}

FileSource::FileSource(Options options) : options_(std::move(options)) {}

FileSource::~FileSource() { stop(); }

std::string FileSource::describe() const { return "file " + options_.path.string(); }

Snapshot FileSource::fetch_once(std::chrono::milliseconds /*timeout*/) {
  return read_file(options_);  // a local file read; no network wait to bound
}

Status FileSource::start(Sink& sink) {
  if (thread_.joinable()) return Error::internal(describe() + ": already started");
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    const int err = errno;
    return Error::unavailable(describe() + ": eventfd: " + std::strerror(err));
  }
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    const int err = errno;
    ::close(stop_fd_);
    stop_fd_ = -1;
    return Error::unavailable(describe() + ": inotify_init1: " + std::strerror(err));
  }
  thread_ = std::thread([this, &sink] { run(sink); });
  return {};
}

void FileSource::stop() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(stop_fd_, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
}

void FileSource::run(Sink& sink) {
  const std::string dir = options_.path.parent_path().string();
  const std::string name = options_.path.filename().string();
  constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                             IN_DELETE_SELF | IN_MOVE_SELF;
  int wd = -1;
  bool watch_warned = false;
  auto add_watch = [&] {
    wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kMask);
    if (wd < 0 && !watch_warned) {
      log::warn(kComponent, "{}: cannot watch directory {}: {} (retrying)", describe(), dir,
                std::strerror(errno));
      watch_warned = true;
    } else if (wd >= 0 && watch_warned) {
      log::info(kComponent, "{}: watching directory {} again", describe(), dir);
      watch_warned = false;
    }
    return wd >= 0;
  };

  std::optional<Snapshot> last;  // last published
  bool retrying = false;         // the last read failed and one re-check is scheduled
  bool pending = false;          // a debounced read is due at pending_at
  SteadyClock::time_point pending_at = SteadyClock::now();
  auto read_and_publish = [&] {
    Snapshot snap = read_file(options_);
    if (!snap.ok()) {
      // A writer that rewrites in place (truncate, write) can be caught half-way: look once
      // more a moment later before calling the file broken.
      if (!retrying) {
        retrying = true;
        pending = true;
        pending_at = SteadyClock::now() + std::max(options_.debounce, kErrorRecheck);
        return;
      }
      retrying = false;
      log::debug(kComponent, "{}: {}", describe(), snap.error().message);
      sink.publish(snap);
      last = std::move(snap);
      return;
    }
    retrying = false;
    if (last && same(*last, snap)) return;
    log::debug(kComponent, "{}: {} endpoints", describe(), snap->size());
    sink.publish(snap);
    last = std::move(snap);
  };

  // Watch first, read second: a change between the two is then seen as an event, not lost.
  add_watch();
  read_and_publish();
  auto next_refresh = SteadyClock::now() + options_.refresh_interval;
  auto next_watch_retry = SteadyClock::now() + kWatchRetry;

  alignas(inotify_event) char buf[64 * 1024];
  for (;;) {
    auto now = SteadyClock::now();
    auto deadline = next_refresh;
    if (pending && pending_at < deadline) deadline = pending_at;
    if (wd < 0 && next_watch_retry < deadline) deadline = next_watch_retry;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    const int timeout_ms = wait.count() <= 0       ? 0
                           : wait.count() > 60'000 ? 60'000
                                                   : static_cast<int>(wait.count()) + 1;
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const int rc = ::poll(fds, 2, timeout_ms);
    if (rc < 0 && errno != EINTR) {
      log::error(kComponent, "{}: poll: {}", describe(), std::strerror(errno));
      return;
    }
    if (rc > 0 && (fds[0].revents & POLLIN)) return;
    now = SteadyClock::now();

    if (rc > 0 && (fds[1].revents & POLLIN)) {
      bool relevant = false;
      for (;;) {
        const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
        if (n <= 0) break;
        for (char* p = buf; p < buf + n;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          if (ev->mask & IN_Q_OVERFLOW) relevant = true;  // events lost: re-read to be sure
          if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
            // The directory itself went away (or moved): watch it again once it is back.
            if (wd >= 0 && ev->wd == wd) {
              if (!(ev->mask & IN_IGNORED)) ::inotify_rm_watch(inotify_fd_, wd);
              wd = -1;
              next_watch_retry = now + kWatchRetry;
              relevant = true;
            }
            continue;
          }
          if (ev->len > 0 && name == ev->name) relevant = true;
        }
      }
      if (relevant && !pending) {
        pending = true;
        pending_at = now + options_.debounce;
      }
    }

    if (wd < 0 && now >= next_watch_retry) {
      next_watch_retry = now + kWatchRetry;
      // The directory appeared: the file may have appeared with it, read now.
      if (add_watch()) {
        pending = true;
        pending_at = now;
      }
    }
    if (pending && now >= pending_at) {
      pending = false;
      read_and_publish();
      next_refresh = now + options_.refresh_interval;
    } else if (now >= next_refresh) {
      read_and_publish();
      next_refresh = now + options_.refresh_interval;
    }
  }
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
