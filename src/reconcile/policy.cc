#include "reconcile/policy.h"

#include <algorithm>
#include <string_view>

namespace ep::reconcile {

const char* to_string(BackendMode mode) {
  switch (mode) {
    case BackendMode::kAuto: return "auto";
    case BackendMode::kDynamic: return "dynamic";
    case BackendMode::kSlots: return "slots";
  }
  return "?";
}

namespace {
// Whitespace-separated words, as HAProxy splits a server line. Asked at every diff: no stream.
bool has_word(std::string_view options, std::string_view word) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  size_t pos = options.find_first_not_of(kSpace);
  while (pos != std::string_view::npos) {
    const size_t end = std::min(options.find_first_of(kSpace, pos), options.size());
    if (options.substr(pos, end - pos) == word) return true;
    pos = options.find_first_not_of(kSpace, end);
  }
  return false;
}
}  // namespace

bool BackendPolicy::checks() const { return has_word(server_options, "check"); }
bool BackendPolicy::agent_checks() const { return has_word(server_options, "agent-check"); }

}  // namespace ep::reconcile
