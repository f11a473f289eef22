#include "ops/logging.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "core/log.h"

namespace ep::ops {

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
  if (format == "text") {
    log::set_sink(nullptr);
    return true;
  }
  if (format != "json") return false;
  log::set_sink([](log::Level level, std::string_view component, std::string_view message) {
    std::timespec ts{};
    std::timespec_get(&ts, TIME_UTC);
    std::tm tm{};
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1'000'000);
    std::string line = json_log_line(log::to_string(level), component, message, stamp);
    std::fwrite(line.data(), 1, line.size(), stderr);
  });
  return true;
}

}  // namespace ep::ops
