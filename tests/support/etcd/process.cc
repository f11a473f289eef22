#include "etcd/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/eventually.h"

namespace ep::test {

Status ChildProcess::start(const std::vector<std::string>& argv, const std::string& log_file) {
  if (pid_ > 0) return Error::internal("process already started");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Error::unavailable("cannot open " + log_file);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Error::unavailable(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
  return {};
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

Status ChildProcess::signal(int sig) {
  if (pid_ <= 0) return Error::internal("process not running");
  if (::kill(pid_, sig) != 0) return Error::unavailable(std::strerror(errno));
  return {};
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const bool reaped = eventually(
      [&] {
        int status = 0;
        return ::waitpid(pid_, &status, WNOHANG) == pid_;
      },
      grace);
  if (reaped) {
    pid_ = -1;
    return;
  }
  kill();
}

void ChildProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

TempDir::TempDir(const std::string& tag) {
  std::string pattern = "/tmp/ep-" + tag + "-XXXXXX";
  char* p = ::mkdtemp(pattern.data());
  path_ = p != nullptr ? std::string(p) : std::string();
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ep::test
