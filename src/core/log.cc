#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>

namespace ep::log {
namespace {

std::mutex& sink_mutex() {
  static std::mutex mu;
  return mu;
}
Sink& sink_ref() {
  static Sink sink;
  return sink;
}
std::atomic<Level>& level_ref() {
  static std::atomic<Level> l{Level::kInfo};
  return l;
}

void default_sink(Level level, std::string_view component, std::string_view message) {
  std::timespec ts{};
  std::timespec_get(&ts, TIME_UTC);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[40];
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1'000'000);
  const std::string line = text_line(to_string(level), component, message, stamp);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void append_escaped(std::string& out, std::string_view text) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\n    ";
    } else if (c == '\r') {
      continue;
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
}

}  // namespace

std::string text_line(std::string_view level, std::string_view component, std::string_view message,
                      std::string_view timestamp) {
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.remove_suffix(1);
  }
  std::string out = fmt::format("{} {:<5} ", timestamp, level);
  out.reserve(out.size() + component.size() + message.size() + 4);
  append_escaped(out, component);
  out += ": ";
  append_escaped(out, message);
  out += '\n';
  return out;
}

const char* to_string(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "?";
}

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug")
    out = Level::kDebug;
  else if (text == "info")
    out = Level::kInfo;
  else if (text == "warn" || text == "warning")
    out = Level::kWarn;
  else if (text == "error")
    out = Level::kError;
  else if (text == "off")
    out = Level::kOff;
  else
    return false;
  return true;
}

void set_sink(Sink sink) {
  std::lock_guard lock(sink_mutex());
  sink_ref() = std::move(sink);
}

void set_level(Level l) { level_ref().store(l); }
Level level() { return level_ref().load(std::memory_order_relaxed); }

void write(Level level, std::string_view component, std::string_view message) {
  std::lock_guard lock(sink_mutex());
  if (sink_ref()) {
    sink_ref()(level, component, message);
  } else {
    default_sink(level, component, message);
  }
}

FailureReporter::FailureReporter(std::string component, std::string what,
                                 std::chrono::seconds summary_every)
    : component_(std::move(component)), what_(std::move(what)), summary_every_(summary_every) {}

void FailureReporter::failure(std::string_view message) {
  std::lock_guard lock(mu_);
  ++failures_;
  const auto now = std::chrono::steady_clock::now();
  if (message != last_message_) {
    last_message_ = std::string(message);
    suppressed_ = 0;
    last_logged_ = now;
    warn(component_, "{}: {}", what_, message);
    return;
  }
  ++suppressed_;
  if (now - last_logged_ >= summary_every_) {
    warn(component_, "{}: still failing ({} times in a row, {} not logged): {}", what_, failures_,
         suppressed_, message);
    suppressed_ = 0;
    last_logged_ = now;
  }
}

void FailureReporter::success() {
  std::lock_guard lock(mu_);
  if (failures_ > 0) {
    info(component_, "{}: recovered after {} failure(s)", what_, failures_);
  }
  failures_ = 0;
  suppressed_ = 0;
  last_message_.clear();
}

bool FailureReporter::failing() const {
  std::lock_guard lock(mu_);
  return failures_ > 0;
}

long FailureReporter::consecutive_failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

}  // namespace ep::log
