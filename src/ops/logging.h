#pragma once
// Log output formats: human-readable text lines or one JSON object per line for log shippers.
// Both sinks pass every message (and component) through ops::redact() first, so no registered
// secret and no secret-looking value (AWS key ids, `token=…`, `password: …`, URL passwords) is
// ever written.

#include <string>
#include <string_view>

namespace ep::ops {

// Installs the sink for `format` ("text" or "json"). Returns false for an unknown format.
bool install_log_format(std::string_view format);

// The JSON line for one record (exposed for tests): exactly one line, one JSON object, newline-
// terminated; embedded newlines and control characters are escaped, invalid UTF-8 replaced.
std::string json_log_line(std::string_view level, std::string_view component,
                          std::string_view message, std::string_view timestamp);

}  // namespace ep::ops
