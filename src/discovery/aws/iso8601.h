#pragma once
// ISO 8601 / RFC 3339 timestamps as AWS writes them (credential expirations, event times).

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::aws {

using SystemTime = std::chrono::system_clock::time_point;

// Accepts "2026-03-02T10:15:30Z", fractional seconds ("…30.123Z", truncated to whole seconds),
// a numeric offset ("+02:00", "-0500") and a lower-case 't'/'z'. Anything else (missing zone,
// out-of-range fields, trailing text) is kInvalid with the text quoted.
Result<SystemTime> parse_iso8601(std::string_view text);

// "2026-03-02T10:15:30Z" (UTC, whole seconds).
std::string format_iso8601(SystemTime time);

}  // namespace ep::aws
