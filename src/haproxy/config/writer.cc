#include "haproxy/config/writer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace ep::haproxy::config {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string trim_output(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) {
  if (argv.empty()) return Error::invalid("empty command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::unavailable("pipe: " + errno_text(errno));
  Fd rd(fds[0]), wr(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::unavailable("cannot run " + argv[0] + ": " + errno_text(rc));
  wr.reset();

  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd p{rd.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;  // timeout re-checked above
    const ssize_t got = ::read(rd.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (result.output.size() < (1u << 20)) result.output.append(buf, static_cast<size_t>(got));
  }
  if (result.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

Status validate_config(const std::string& binary, const std::string& path,
                       std::chrono::milliseconds timeout) {
  auto r = run_command({binary, "-c", "-f", path}, timeout);
  if (!r.ok()) return r.error();
  if (r->timed_out) {
    return Error::unavailable(binary + " -c -f " + path + " did not finish within " +
                              std::to_string(timeout.count()) + " ms");
  }
  if (r->exit_code != 0) {
    return Error::invalid("haproxy rejected the config (" + binary + " -c -f " + path + ", exit " +
                          std::to_string(r->exit_code) + "):\n" + trim_output(r->output));
  }
  return {};
}

Result<std::string> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Error::unavailable("cannot read " + path + ": " + errno_text(errno));
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::unavailable("cannot read " + path + ": " + errno_text(errno));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<WriteOutcome> write_config(const std::string& path, std::string_view content,
                                  const WriteOptions& options) {
  namespace fs = std::filesystem;
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists) {
    auto current = read_file(path);
    if (current.ok() && *current == content) return WriteOutcome::kUnchanged;
  }
  const fs::path live(path);
  const fs::path dir = live.has_parent_path() ? live.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + live.filename().string() + ".ep-XXXXXX")).string();
  const mode_t mode = exists ? (st.st_mode & 07777) : 0644;
  Fd fd(::mkstemp(tmp.data()));
  if (fd.get() < 0) {
    return Error::unavailable("cannot write " + path + ": cannot create a temp file in " +
                              dir.string() + ": " + errno_text(errno) +
                              " (the live file is unchanged)");
  }
  auto fail = [&](const std::string& what, int err) -> Error {
    ::unlink(tmp.c_str());
    return Error::unavailable("cannot write " + path + ": " + what + ": " + errno_text(err) +
                              " (the live file is unchanged)");
  };
  ::fchmod(fd.get(), mode);
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write to " + tmp, errno);
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync " + tmp, errno);
  if (::close(fd.release()) != 0) return fail("close " + tmp, errno);

  if (options.validate) {
    Status v = validate_config(options.binary, tmp, options.validate_timeout);
    if (!v.ok()) {
      ::unlink(tmp.c_str());
      Error e = v.error();
      // HAProxy names the temp file; name the file the user knows (same content, same lines).
      for (size_t at = e.message.find(tmp); at != std::string::npos;
           at = e.message.find(tmp, at + path.size())) {
        e.message.replace(at, tmp.size(), path);
      }
      e.message = "not writing " + path + ": " + e.message + "\n(the live file is unchanged)";
      return e;
    }
  }
  if (exists && !options.backup_suffix.empty()) {
    const std::string bak = path + options.backup_suffix;
    ::unlink(bak.c_str());
    if (::link(path.c_str(), bak.c_str()) != 0) {
      return fail("keep the previous file as " + bak, errno);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename " + tmp, errno);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
  return WriteOutcome::kWritten;
}

}  // namespace ep::haproxy::config
