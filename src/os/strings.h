#pragma once
// String helpers shared by every part (one of each: docs/architecture.md).

#include <cstddef>
#include <string>
#include <string_view>

namespace ep::os {

// `s` without leading and trailing ASCII white space (space, \t, \n, \r, \f, \v).
std::string_view trim(std::string_view s);

// Text from outside (config, discovery, replies) made safe for one log line or terminal: \n, \r
// and \t as those escapes, other control bytes (including ESC, so no terminal escape sequence
// passes) and DEL as \xNN. Cut to `max_chars` input bytes with "..." appended when longer.
std::string printable(std::string_view s, std::size_t max_chars = std::string_view::npos);

}  // namespace ep::os
