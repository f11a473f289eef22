#include "ops/logging.h"

#include <fmt/format.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "core/log.h"
#include "ops/redact.h"

namespace ep::ops {
namespace {

std::string timestamp_now() {
  std::timespec ts{};
  std::timespec_get(&ts, TIME_UTC);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[40];
  std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1'000'000);
  return stamp;
}

}  // namespace

std::string json_log_line(std::string_view level, std::string_view component,
                          std::string_view message, std::string_view timestamp) {
  nlohmann::json j;
  j["ts"] = timestamp;
  j["level"] = level;
  j["component"] = component;
  j["msg"] = message;
  // Invalid UTF-8 (e.g. echoed hostile input) is replaced, never allowed to throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

bool install_log_format(std::string_view format) {
  if (format != "text" && format != "json") return false;
  const bool json = format == "json";
  log::set_sink([json](log::Level level, std::string_view component, std::string_view message) {
    const std::string c = redact(component);
    const std::string m = redact(message);
    const std::string ts = timestamp_now();
    std::string line = json ? json_log_line(log::to_string(level), c, m, ts)
                            : log::text_line(log::to_string(level), c, m, ts);
    std::fwrite(line.data(), 1, line.size(), stderr);
  });
  return true;
}

}  // namespace ep::ops
