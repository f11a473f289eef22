#include "runtime/file_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "core/log.h"

namespace ep::runtime {
namespace {

constexpr const char* kComponent = "runtime.inotify";
constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF;

std::string dir_key(const std::filesystem::path& file) {
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  return dir.lexically_normal().string();
}

}  // namespace

FileWatcher::FileWatcher(Loop& home) : home_(home) {}

FileWatcher::~FileWatcher() {
  std::lock_guard lock(mu_);
  if (retry_timer_ != 0) home_.cancel(retry_timer_);
  if (fd_watch_ != 0) home_.unwatch_fd(fd_watch_);
  if (fd_ >= 0) ::close(fd_);
}

Status FileWatcher::ensure_fd() {
  if (fd_ >= 0) return {};
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Error::unavailable(std::string("inotify_init1: ") + std::strerror(err));
  }
  auto watch = home_.watch_fd(fd, EPOLLIN, [this](std::uint32_t) { on_readable(); });
  if (!watch) {
    ::close(fd);
    return watch.error();
  }
  fd_ = fd;
  fd_watch_ = *watch;
  return {};
}

bool FileWatcher::add_watch(const std::string& key, Dir& dir) {
  dir.wd = ::inotify_add_watch(fd_, key.c_str(), kMask);
  if (dir.wd < 0 && !dir.warned) {
    log::warn(kComponent, "cannot watch directory {}: {} (retrying)", key, std::strerror(errno));
    dir.warned = true;
  } else if (dir.wd >= 0 && dir.warned) {
    log::info(kComponent, "watching directory {} again", key);
    dir.warned = false;
  }
  return dir.wd >= 0;
}

void FileWatcher::release_wd(int wd) {
  if (wd < 0) return;
  for (const auto& [key, d] : dirs_) {
    if (d.wd == wd) return;  // another spelling of the same directory still uses it
  }
  ::inotify_rm_watch(fd_, wd);
}

void FileWatcher::arm_retry() {
  if (retry_timer_ != 0) return;
  retry_timer_ = home_.after(kWatchRetry, [this] { on_retry(); });
}

Result<SubscriptionId> FileWatcher::subscribe(const std::filesystem::path& file, Loop& loop,
                                              std::function<void()> on_change) {
  std::lock_guard lock(mu_);
  if (Status st = ensure_fd(); !st) return st.error();
  const std::string key = dir_key(file);
  auto [it, inserted] = dirs_.try_emplace(key);
  Dir& dir = it->second;
  if (dir.wd < 0 && !add_watch(key, dir)) arm_retry();
  const SubscriptionId id = next_id_++;
  const std::string name = file.filename().string();
  dir.by_name[name].push_back(id);
  subs_.emplace(
      id, Sub{key, name, &loop, std::make_shared<std::function<void()>>(std::move(on_change))});
  return id;
}

void FileWatcher::unsubscribe(SubscriptionId id) {
  std::shared_ptr<std::function<void()>> dead;
  std::lock_guard lock(mu_);
  auto it = subs_.find(id);
  if (it == subs_.end()) return;
  dead = std::move(it->second.cb);
  auto d = dirs_.find(it->second.dir);
  if (d != dirs_.end()) {
    auto& ids = d->second.by_name[it->second.name];
    std::erase(ids, id);
    if (ids.empty()) d->second.by_name.erase(it->second.name);
    if (d->second.by_name.empty()) {
      const int wd = d->second.wd;
      dirs_.erase(d);
      release_wd(wd);
    }
  }
  subs_.erase(it);
}

void FileWatcher::notify(const std::vector<SubscriptionId>& ids) {
  for (SubscriptionId id : ids) {
    auto it = subs_.find(id);
    if (it == subs_.end()) continue;
    it->second.loop->post([this, id] {
      std::shared_ptr<std::function<void()>> cb;
      {
        std::lock_guard lock(mu_);
        auto s = subs_.find(id);
        if (s == subs_.end()) return;  // unsubscribed since
        cb = s->second.cb;
      }
      (*cb)();
    });
  }
}

void FileWatcher::notify_dir(const Dir& dir) {
  for (const auto& [name, ids] : dir.by_name) notify(ids);
}

void FileWatcher::on_readable() {
  alignas(inotify_event) char buf[64 * 1024];
  std::set<SubscriptionId> changed;
  bool overflow = false;
  std::lock_guard lock(mu_);
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) overflow = true;  // events lost: everyone re-reads
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        // The directory itself went away (or moved): watch it again once it is back.
        bool dropped = false;
        for (auto& [key, dir] : dirs_) {
          if (dir.wd < 0 || dir.wd != ev->wd) continue;
          dir.wd = -1;
          dropped = true;
          for (const auto& [name, ids] : dir.by_name) changed.insert(ids.begin(), ids.end());
        }
        if (dropped && !(ev->mask & IN_IGNORED)) ::inotify_rm_watch(fd_, ev->wd);
        if (dropped) arm_retry();
        continue;
      }
      if (ev->len == 0) continue;
      for (auto& [key, dir] : dirs_) {
        if (dir.wd != ev->wd) continue;
        auto s = dir.by_name.find(ev->name);
        if (s != dir.by_name.end()) changed.insert(s->second.begin(), s->second.end());
      }
    }
  }
  if (overflow) {
    for (const auto& [id, sub] : subs_) changed.insert(id);
  }
  notify(std::vector<SubscriptionId>(changed.begin(), changed.end()));
}

void FileWatcher::on_retry() {
  std::lock_guard lock(mu_);
  retry_timer_ = 0;
  bool missing = false;
  for (auto& [key, dir] : dirs_) {
    if (dir.wd >= 0) continue;
    // The directory appeared: its files may have appeared with it, have them read now.
    if (add_watch(key, dir)) {
      notify_dir(dir);
    } else {
      missing = true;
    }
  }
  if (missing) arm_retry();
}

int FileWatcher::fd() const {
  std::lock_guard lock(mu_);
  return fd_;
}

size_t FileWatcher::watched_directories() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, dir] : dirs_) n += dir.wd >= 0 ? 1 : 0;
  return n;
}

size_t FileWatcher::subscriptions() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace ep::runtime
