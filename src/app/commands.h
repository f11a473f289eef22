#pragma once
// The CLI's commands. Each returns the process exit code:
// 0 success, 1 could not converge / runtime failure, 2 configuration error.

#include <chrono>
#include <string>

namespace ep::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitConfig = 2;

int cmd_run(const std::string& config_path);
int cmd_once(const std::string& config_path, std::chrono::milliseconds timeout);
int cmd_plan(const std::string& config_path, std::chrono::milliseconds timeout);
int cmd_check(const std::string& config_path);
// `maint <backend>/<server> on|off`: `disable server` / `enable server` on every admin socket of
// the config. A managed server put in maintenance this way (or by hand) is left there by the
// daemon until it is enabled again; then the daemon manages it again.
int cmd_maint(const std::string& config_path, const std::string& server, const std::string& on_off);

struct DemoOptions {
  std::chrono::milliseconds duration{std::chrono::seconds(24)};
  int backends = 6;
  int load_threads = 4;
  bool keep = false;  // keep the temp directory
};
int cmd_demo(const DemoOptions& options);

}  // namespace ep::app
