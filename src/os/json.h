#pragma once
// Parsing untrusted JSON safely. nlohmann's parser is iterative, but copying, comparing and
// dump() recurse: a value nested 80,000 deep (160 KB, well under any discovery system's value
// limit) overflows the stack in any of them. So every parser of discovery data goes through
// parse_json(), which refuses deep nesting before nlohmann sees the text, and error messages
// describe a value with json_brief() instead of serialising it.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::os {

// Deeper than any wire format we read (Consul health entries nest 4 levels, AWS 5).
inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of '[' / '{' outside strings, counted on the raw text in one pass
// (no allocation, no recursion). Malformed text gives a number too; the parser rejects it later.
int json_depth(std::string_view text);

// Parses `text`. Errors (kInvalid) start with `what`: nesting deeper than `max_depth`, syntax
// errors (nlohmann's message, with the byte position), numbers out of range. Never throws.
Result<nlohmann::json> parse_json(std::string_view text, std::string_view what,
                                  int max_depth = kMaxJsonDepth);

// A bounded description of a value for error messages, safe on any input: scalars as their JSON
// text cut to `max_chars` (control characters escaped), containers by kind and size
// ("an array of 3 items", "an object with 2 keys"). Never recurses.
std::string json_brief(const nlohmann::json& value, std::size_t max_chars = 40);

}  // namespace ep::os
