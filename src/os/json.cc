#include "os/json.h"

#include "os/strings.h"

namespace ep::os {

int json_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

Result<nlohmann::json> parse_json(std::string_view text, std::string_view what, int max_depth) {
  if (int depth = json_depth(text); depth > max_depth) {
    return Error::invalid(std::string(what) + ": JSON nested deeper than " +
                          std::to_string(max_depth) + " levels (" + std::to_string(depth) + ")");
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // Not only parse_error: a number beyond double's range (1e999) throws out_of_range (406).
    return Error::invalid(std::string(what) + ": not valid JSON (" + e.what() + ")");
  }
}

std::string json_brief(const nlohmann::json& value, std::size_t max_chars) {
  using T = nlohmann::json::value_t;
  switch (value.type()) {
    case T::array:
      return "an array of " + std::to_string(value.size()) + " items";
    case T::object:
      return "an object with " + std::to_string(value.size()) + " keys";
    case T::string:
      return "\"" + printable(value.get_ref<const std::string&>(), max_chars) + "\"";
    case T::discarded:
      return "an invalid value";
    default:  // null, boolean, numbers: dump() of a scalar does not recurse and is short
      return printable(value.dump(), max_chars);
  }
}

}  // namespace ep::os
