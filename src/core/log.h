#pragma once
// Logging facade. Parts log through these functions; ops installs the real sink (text or JSON).
// The default sink writes text lines to stderr. Thread-safe.

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace ep::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

const char* to_string(Level level);
bool parse_level(std::string_view text, Level& out);

using Sink = std::function<void(Level, std::string_view component, std::string_view message)>;

void set_sink(Sink sink);  // nullptr restores the default stderr sink
void set_level(Level level);
Level level();
inline bool enabled(Level l) { return l >= level(); }
void write(Level level, std::string_view component, std::string_view message);

// The text line for one record: "<timestamp> <level> <component>: <message>\n". Continuation
// lines of a multi-line message are indented by four spaces, so they can never be mistaken for
// (or forge) a record of their own; \r is dropped, and every other control character (ESC
// included, so no terminal escape sequence passes) and DEL are written as \xNN. Tabs stay.
std::string text_line(std::string_view level, std::string_view component, std::string_view message,
                      std::string_view timestamp);

template <typename... A>
void debug(std::string_view c, fmt::format_string<A...> f, A&&... a) {
  if (enabled(Level::kDebug)) write(Level::kDebug, c, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void info(std::string_view c, fmt::format_string<A...> f, A&&... a) {
  if (enabled(Level::kInfo)) write(Level::kInfo, c, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void warn(std::string_view c, fmt::format_string<A...> f, A&&... a) {
  if (enabled(Level::kWarn)) write(Level::kWarn, c, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void error(std::string_view c, fmt::format_string<A...> f, A&&... a) {
  if (enabled(Level::kError)) write(Level::kError, c, fmt::format(f, std::forward<A>(a)...));
}

// Says a failure once, not every poll: the first failure is logged at warn level, identical
// repeats are counted and summarised at most every `summary_every`, a different message is logged
// at once, and recovery is logged once ("recovered after N failures"). Thread-safe.
class FailureReporter {
 public:
  FailureReporter(std::string component, std::string what,
                  std::chrono::seconds summary_every = std::chrono::seconds(60));
  void failure(std::string_view message);
  void success();
  bool failing() const;
  long consecutive_failures() const;

 private:
  mutable std::mutex mu_;
  std::string component_;
  std::string what_;
  std::chrono::seconds summary_every_;
  std::string last_message_;
  long failures_ = 0;
  long suppressed_ = 0;
  std::chrono::steady_clock::time_point last_logged_{};
};

}  // namespace ep::log
