#pragma once
// Runs the real `elasticproxy` binary for end-to-end tests: writes files into a directory, spawns
// the binary with arguments, captures its stderr/stdout into a log file, signals and reaps it.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ep::test {

std::string elasticproxy_binary();

// eventually(pred, timeout) (support/eventually.h): polls `pred` until it is true or the scaled
// `timeout` passes; returns the last value.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

void write_file(const std::string& path, const std::string& text);
// Writes to a temp file in the same directory and renames it over `path` (what producers should
// do).
void write_file_atomic(const std::string& path, const std::string& text);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};
// Runs elasticproxy with `args` to completion (bounded by `timeout`; killed after it).
CommandResult run_elasticproxy(const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

class DaemonProcess {
 public:
  DaemonProcess() = default;
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Starts `elasticproxy <args>`; output goes to `log_path`.
  bool start(const std::vector<std::string>& args, const std::string& log_path);
  // Sends a signal.
  void signal(int sig);
  // Waits for exit; returns the exit code (128+signal if killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool running();
  std::string log() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

}  // namespace ep::test
