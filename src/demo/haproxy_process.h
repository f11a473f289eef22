#pragma once
// A foreground HAProxy (`haproxy -db -f <config>`) for the demo, its output in a log file.
// Stopped (SIGTERM, then SIGKILL after 2 s) by stop() or the destructor.

#include <sys/types.h>

#include <string>

namespace ep::demo {

class HaproxyProcess {
 public:
  HaproxyProcess() = default;
  ~HaproxyProcess();
  HaproxyProcess(const HaproxyProcess&) = delete;
  HaproxyProcess& operator=(const HaproxyProcess&) = delete;

  // False when the fork failed (a missing binary shows as !alive() soon after).
  bool start(const std::string& config, const std::string& log);
  bool alive();
  void stop();

 private:
  pid_t pid_ = -1;
};

}  // namespace ep::demo
