#include "integration/daemon/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/eventually.h"

namespace ep::test {

std::string elasticproxy_binary() { return std::string(EP_BINARY_DIR) + "/src/app/elasticproxy"; }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return eventually(pred, timeout);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  write_file(tmp, text);
  std::filesystem::rename(tmp, path);
}

namespace {

// Every daemon a test binary starts keeps its instance locks in one private directory of that
// test process (RUNTIME_DIRECTORY, as systemd would set it), removed when the process exits: the
// suite leaves no lock file behind, and two daemons of one test still see each other's locks.
class LockDirectory {
 public:
  LockDirectory() {
    char tmpl[] = "/tmp/ep-test-run-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~LockDirectory() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string& lock_directory() {
  static LockDirectory dir;
  return dir.path();
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  const std::string& lock_dir = lock_directory();  // created before the fork
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (!lock_dir.empty()) ::setenv("RUNTIME_DIRECTORY", lock_dir.c_str(), 1);
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  // Signals blocked by the test runner must not leak into the child.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> argv;
  std::string bin = elasticproxy_binary();
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(bin.c_str(), argv.data());
  std::_Exit(127);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  if (!eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout)) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

CommandResult run_elasticproxy(const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout) {
  char tmpl[] = "/tmp/ep-cmd-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  pid_t pid = spawn(args, tmpl);
  CommandResult r;
  r.exit_code = wait_pid(pid, timeout);
  if (r.exit_code == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  r.output = read_all(tmpl);
  ::unlink(tmpl);
  return r;
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool DaemonProcess::start(const std::vector<std::string>& args, const std::string& log_path) {
  log_path_ = log_path;
  pid_ = spawn(args, log_path);
  return pid_ > 0;
}

void DaemonProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int DaemonProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  int code = wait_pid(pid_, timeout);
  if (code != -1) pid_ = -1;
  return code;
}

bool DaemonProcess::running() {
  if (pid_ <= 0) return false;
  return ::kill(pid_, 0) == 0 && wait_pid(pid_, std::chrono::milliseconds(0)) == -1;
}

std::string DaemonProcess::log() const { return read_all(log_path_); }

}  // namespace ep::test
