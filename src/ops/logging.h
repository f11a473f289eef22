#pragma once
// Log output formats: human-readable text (the default sink in core/log) or one JSON object per
// line for log shippers.

#include <string_view>

namespace ep::ops {

// Installs the sink for `format` ("text" or "json"). Returns false for an unknown format.
bool install_log_format(std::string_view format);

// The JSON line for one record (exposed for tests).
std::string json_log_line(std::string_view level, std::string_view component,
                          std::string_view message, std::string_view timestamp);

}  // namespace ep::ops
