#include "core/secrets.h"

#include <mutex>
#include <set>

namespace ep::secrets {
namespace {

std::mutex& mu() {
  static std::mutex m;
  return m;
}
// Longest first, so a secret that contains another is masked whole.
struct LongestFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};
std::set<std::string, LongestFirst>& values() {
  static std::set<std::string, LongestFirst> s;
  return s;
}

}  // namespace

void add(std::string_view value) {
  if (value.size() < 4) return;
  std::lock_guard lock(mu());
  values().insert(std::string(value));
}

void clear() {
  std::lock_guard lock(mu());
  values().clear();
}

void mask(std::string& text) {
  constexpr std::string_view kRedacted = "***";
  std::lock_guard lock(mu());
  for (const auto& secret : values()) {
    size_t pos = 0;
    while ((pos = text.find(secret, pos)) != std::string::npos) {
      text.replace(pos, secret.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
}

}  // namespace ep::secrets
