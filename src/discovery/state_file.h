#pragma once
// The state file (docs/operations.md, "State file"): each source's last good set, so that a
// restart while a source is down brings the last good servers back without waiting for it.
//
// One JSON file per daemon, written atomically (temp file in the same directory, fsync, rename,
// fsync of the directory) a short while after a source's good set changes. Per source it keeps
// the endpoints (address, port, weight, backup, id) and when they were last confirmed by the
// source (unix seconds). At start a source that has not delivered (it fails, or says nothing
// within restore_after) gets its saved set, if that is younger than max_age; it is marked
// `from_state` in /status and elasticproxy_source_from_state until the source delivers itself.
// An unreadable, malformed or stale file (or entry) is reported (log + counter) and ignored.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace ep::discovery {

struct StateOptions {
  std::string path;  // "" = no state file
  std::chrono::seconds max_age{std::chrono::hours(24)};
  std::chrono::milliseconds restore_after{std::chrono::seconds(2)};
  std::chrono::milliseconds write_delay{std::chrono::seconds(1)};
};

struct SavedSource {
  std::vector<Endpoint> endpoints;
  std::int64_t saved_at = 0;  // unix seconds: when the source last delivered this set
};
// backend name -> source description -> saved set
using SavedState = std::map<std::string, std::map<std::string, SavedSource>>;

// backend name -> managed servers an operator put in maintenance (the reconciler's memory of
// them, so that a restarted daemon leaves them there).
using OperatorMaint = std::map<std::string, std::vector<std::string>>;

std::string render_state(const SavedState& state, std::int64_t now,
                         const OperatorMaint* operator_maint = nullptr);
// Errors (kInvalid) name `where` and what is wrong. `operator_maint` (optional) receives the
// operator's maintenance marks.
Result<SavedState> parse_state(std::string_view text, const std::string& where,
                               OperatorMaint* operator_maint = nullptr);
Result<SavedState> load_state(const std::string& path, OperatorMaint* operator_maint = nullptr);
// Temp file + fsync + rename + directory fsync. Errors name the path and the reason.
Status write_state(const std::string& path, const std::string& text);

// The default path: $STATE_DIRECTORY/state.json (systemd StateDirectory=), else
// /var/lib/elasticproxy/state.json when that directory exists, else "" (no state file).
std::string default_state_path();

std::int64_t unix_now();

}  // namespace ep::discovery
