#pragma once
// A child process for tests (RAII): fork/exec with stdout+stderr to a log file, SIGTERM then
// SIGKILL on stop, always reaped. Shared by the etcd and dnsmasq fixtures.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/result.h"

namespace ep::test {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  Status start(const std::vector<std::string>& argv, const std::string& log_file);
  // SIGTERM, wait up to `grace`, then SIGKILL. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL at once.
  void kill();
  bool running();
  Status signal(int sig);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A fresh temporary directory under /tmp, removed (recursively) by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_text(const std::string& path);

}  // namespace ep::test
