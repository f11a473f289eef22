#include "reconcile/policy.h"

#include <sstream>

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
bool has_word(const std::string& options, std::string_view word) {
  std::istringstream in(options);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}
}  // namespace

bool BackendPolicy::checks() const { return has_word(server_options, "check"); }
bool BackendPolicy::agent_checks() const { return has_word(server_options, "agent-check"); }

}  // namespace ep::reconcile
