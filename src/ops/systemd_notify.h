#pragma once
// systemd service notifications (sd_notify): READY=1, WATCHDOG=1, STATUS=…, STOPPING=1,
// RELOADING=1. Does nothing when the process was not started by systemd with Type=notify
// (NOTIFY_SOCKET unset). libsystemd stays inside ep_ops. STATUS= text is one line, at most 400
// characters, secrets masked (anyone can read it with `systemctl status`).

#include <chrono>
#include <optional>
#include <string_view>

namespace ep::ops {

// True when NOTIFY_SOCKET is set (notifications go somewhere).
bool notify_enabled();

// Sends `state` ("READY=1\nSTATUS=…"). Returns false when it could not be sent (or nowhere to).
bool notify(std::string_view state);

bool notify_ready(std::string_view status);
bool notify_status(std::string_view status);
bool notify_watchdog();
bool notify_stopping();
bool notify_reloading();

// The watchdog interval systemd expects pings within (WATCHDOG_USEC for this pid), or nullopt
// when the watchdog is off.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace ep::ops
