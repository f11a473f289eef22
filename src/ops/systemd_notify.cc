#include "ops/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <string>

#include "ops/redact.h"

namespace ep::ops {
namespace {

// STATUS= is one line: a message with a newline would end the field early.
std::string one_line(std::string_view s) {
  std::string out = redact(s.substr(0, 400));  // STATUS= is world-readable (systemctl status)
  for (auto& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

bool notify_enabled() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s != nullptr && *s != '\0';
}

bool notify(std::string_view state) {
  if (!notify_enabled()) return false;
  // unset_environment = 0: the variable stays for later notifications (watchdog, stopping).
  return sd_notify(0, std::string(state).c_str()) > 0;
}

bool notify_ready(std::string_view status) { return notify("READY=1\nSTATUS=" + one_line(status)); }
bool notify_status(std::string_view status) { return notify("STATUS=" + one_line(status)); }
bool notify_watchdog() { return notify("WATCHDOG=1"); }
bool notify_stopping() { return notify("STOPPING=1\nSTATUS=stopping"); }
bool notify_reloading() { return notify("RELOADING=1\nSTATUS=reloading the configuration"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace ep::ops
