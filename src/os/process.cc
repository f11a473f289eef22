#include "os/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

#include "os/fd.h"

extern char** environ;

namespace ep::os {
namespace {

constexpr std::array<std::string_view, 16> kWithheld = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_AUTH",
    "ETCDCTL_PASSWORD",
    "ETCDCTL_USER",
    "ETCD_PASSWORD",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
};

Result<UniqueFd> temp_file() {
  UniqueFd fd(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd) return Error::unavailable(std::string("temp file: ") + std::strerror(errno));
  return fd;
}

// Reads what the child wrote into `fd`, keeping at most `max` bytes.
std::string read_back(int fd, std::size_t max, bool& truncated) {
  std::string out;
  char buf[8192];
  off_t off = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += n;
    const std::size_t room = max > out.size() ? max - out.size() : 0;
    if (static_cast<std::size_t>(n) > room) truncated = true;
    out.append(buf, std::min(room, static_cast<std::size_t>(n)));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) {
    out.pop_back();
  }
  return out;
}

// Waits for `pid` until `deadline`: a pidfd (Linux >= 5.3) is polled, so the wait ends as the
// child exits; without one, waitpid is polled every 2 ms.
bool wait_child(pid_t pid, std::chrono::steady_clock::time_point deadline, int& status) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) return true;
    if (w < 0 && errno != EINTR) return true;  // not our child any more: nothing to wait for
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (pidfd) {
      pollfd p{pidfd.get(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(left.count()));
    } else {
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(2)));
    }
  }
}

}  // namespace

bool is_withheld_variable(const std::string& name) {
  for (std::string_view w : kWithheld) {
    if (name == w) return true;
  }
  return false;
}

std::vector<std::string> child_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    if (is_withheld_variable(std::string(entry.substr(0, eq)))) continue;
    out.emplace_back(entry);
  }
  return out;
}

std::string describe_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    if (a.empty() || a.find_first_of(" \t'\"") != std::string::npos) {
      out += "'" + a + "'";
    } else {
      out += a;
    }
  }
  return out;
}

Result<StartedProcess> start_process(const std::vector<std::string>& argv,
                                     const ProcessOptions& options) {
  if (argv.empty() || argv[0].empty()) return Error::invalid("empty command");
  StartedProcess started;
  started.options = options;
  auto out = temp_file();
  if (!out) return out.error();
  started.out = std::move(*out);
  if (!options.merge_stderr) {
    auto err = temp_file();
    if (!err) return err.error();
    started.err = std::move(*err);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, started.out.get(), 1);
  posix_spawn_file_actions_adddup2(&fa,
                                   options.merge_stderr ? started.out.get() : started.err.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env = child_environment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error::unavailable("cannot run " + argv[0] + ": " + std::strerror(rc));
  started.pid = pid;
  return started;
}

ProcessResult finish_process(StartedProcess& process, int status, bool timed_out) {
  ProcessResult result;
  result.timed_out = timed_out;
  if (!timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  const auto max = process.options.max_output;
  result.output = read_back(process.out.get(), max, result.output_truncated);
  if (!process.options.merge_stderr) {
    result.error_output = read_back(process.err.get(), max, result.output_truncated);
  }
  return result;
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const ProcessOptions& options) {
  auto started = start_process(argv, options);
  if (!started) return started.error();
  const pid_t pid = started->pid;
  int status = 0;
  bool timed_out = false;
  if (!wait_child(pid, std::chrono::steady_clock::now() + options.timeout, status)) {
    timed_out = true;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  return finish_process(*started, status, timed_out);
}

}  // namespace ep::os
