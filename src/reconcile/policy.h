#pragma once
// Per-backend policy: how its servers are managed and how suspicious snapshots are treated.

#include <chrono>
#include <optional>
#include <string>

namespace ep::reconcile {

enum class BackendMode {
  kAuto,     // dynamic on HAProxy >= 2.6 with a dynamic balance algorithm, else slots
  kDynamic,  // add server / del server
  kSlots,    // server-template slots re-addressed with set server
};
const char* to_string(BackendMode mode);

struct SafetyPolicy {
  // A snapshot that removes more than this fraction of a backend's servers at once is held back.
  double max_remove_fraction = 0.5;
  // An empty snapshot is held back unless this is true.
  bool allow_empty = false;
  // A held-back snapshot that every source keeps reporting unchanged for this long is applied
  // anyway (empty snapshots only if allow_empty). 0 = never; the operator must act.
  std::chrono::milliseconds confirm_after{std::chrono::minutes(2)};
  // A set larger than this is held back (never applied by waiting): a hostile or broken source
  // cannot grow a backend without bound. 0 = no limit.
  std::size_t max_servers = 20'000;
};

struct BackendPolicy {
  std::string name;  // the HAProxy backend
  BackendMode mode = BackendMode::kAuto;
  std::string name_prefix = "ep-";  // managed servers' names start with this (slots: <prefix>N)
  int slots = 0;                    // slot mode: number of slots the config declares
  std::string server_options;       // appended to every server line / add server
  std::optional<int> port;          // overrides the port of every endpoint
  std::optional<int> weight;        // default weight for endpoints that carry none
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds debounce{0};
  SafetyPolicy safety;

  // True when server_options has the `check` keyword (health-gated enable).
  bool checks() const;
  bool agent_checks() const;
};

// Slot placeholder address: a real, unroutable-to-strangers IP (haproxy-runtime.md 6).
inline constexpr const char* kSlotPlaceholderAddr = "127.0.0.1";
inline constexpr int kSlotPlaceholderPort = 1;

}  // namespace ep::reconcile
