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

// The text line for one record (exposed for tests): "<ts> <level> <component>: <message>\n".
// Continuation lines of a multi-line message are indented by four spaces, so they can never be
// mistaken for (or forge) a record of their own.
std::string text_log_line(std::string_view level, std::string_view component,
                          std::string_view message, std::string_view timestamp);

}  // namespace ep::ops
