#include "haproxy/runtime/replies.h"

namespace ep::haproxy::reply {

namespace {

// "[4]: text" -> "text" (set severity-output number), so a client that enabled severities still
// gets its warnings accepted.
std::string_view without_severity(std::string_view r) {
  if (r.size() > 4 && r[0] == '[') {
    auto close = r.find("]: ");
    if (close != std::string_view::npos && close <= 8) return r.substr(close + 3);
  }
  return r;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

bool addr_accepted(std::string_view r) {
  r = without_severity(r);
  if (r.find('\n') != std::string_view::npos) return false;
  return r == "nothing changed" || starts_with(r, "IP changed from ") ||
         starts_with(r, "port changed from ") || starts_with(r, "no need to change ");
}

bool empty_accepted(std::string_view r) { return r.empty(); }

bool add_accepted(std::string_view r) { return r == "New server registered."; }

DelOutcome del_outcome(std::string_view r) {
  if (r == "Server deleted.") return DelOutcome::kDeleted;
  if (r == "Server still has connections attached to it, cannot remove it.") {
    return DelOutcome::kHasConnections;
  }
  return DelOutcome::kFailed;
}

bool proxy_disabled(std::string_view r) { return r == "Proxy is disabled."; }

bool static_weight_refused(std::string_view r) {
  return r == "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.";
}

bool backend_missing(std::string_view r) {
  return r == "Can't find backend." || r == "No such proxy." || r == "No such backend.";
}

}  // namespace ep::haproxy::reply
