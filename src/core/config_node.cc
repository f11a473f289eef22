#include "core/config_node.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace ep {

std::string Mark::str() const {
  if (line <= 0) return file.empty() ? std::string("<config>") : file;
  return (file.empty() ? std::string("<config>") : file) + ":" + std::to_string(line) + ":" +
         std::to_string(column);
}

ConfigNode ConfigNode::make_scalar(std::string value, Mark mark) {
  ConfigNode n;
  n.kind = Kind::kScalar;
  n.scalar = std::move(value);
  n.mark = std::move(mark);
  return n;
}

ConfigNode ConfigNode::make_map(Mark mark) {
  ConfigNode n;
  n.kind = Kind::kMap;
  n.mark = std::move(mark);
  return n;
}

ConfigNode ConfigNode::make_sequence(Mark mark) {
  ConfigNode n;
  n.kind = Kind::kSequence;
  n.mark = std::move(mark);
  return n;
}

void ConfigNode::add(std::string key, ConfigNode value, Mark key_mark) {
  keys.push_back(std::move(key));
  key_marks.push_back(std::move(key_mark));
  values.push_back(std::move(value));
}

const ConfigNode* ConfigNode::find(std::string_view key) const {
  if (kind != Kind::kMap) return nullptr;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &values[i];
  }
  return nullptr;
}

const char* ConfigNode::kind_name() const {
  switch (kind) {
    case Kind::kNull:
      return "nothing";
    case Kind::kScalar:
      return "a scalar";
    case Kind::kSequence:
      return "a list";
    case Kind::kMap:
      return "a map";
  }
  return "?";
}

void Diagnostics::error(const Mark& mark, std::string_view message) {
  errors_.push_back(mark.str() + ": " + std::string(message));
}

std::string Diagnostics::joined() const {
  std::string out;
  for (const auto& e : errors_) {
    out += e;
    out += '\n';
  }
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || errno != 0 || !std::isfinite(v) || v < 0) return std::nullopt;
  std::string_view unit(end);
  double ms = 0;
  if (unit.empty() || unit == "s")
    ms = v * 1000;
  else if (unit == "ms")
    ms = v;
  else if (unit == "us")
    ms = v / 1000;
  else if (unit == "m")
    ms = v * 60'000;
  else if (unit == "h")
    ms = v * 3'600'000;
  else if (unit == "d")
    ms = v * 86'400'000;
  else
    return std::nullopt;
  if (ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

MapReader::MapReader(const ConfigNode& node, Diagnostics& diag, std::string_view what)
    : node_(node), diag_(diag), what_(what), errors_at_start_(diag.errors().size()) {
  if (node.kind == ConfigNode::Kind::kMap) {
    used_.assign(node.keys.size(), false);
  } else if (node.kind != ConfigNode::Kind::kNull) {
    diag_.error(node.mark, what_ + " must be a map, got " + node.kind_name());
    valid_ = false;
  }
}

bool MapReader::has(std::string_view key) const { return node_.find(key) != nullptr; }

const ConfigNode* MapReader::get(std::string_view key) {
  if (node_.kind != ConfigNode::Kind::kMap) return nullptr;
  for (size_t i = 0; i < node_.keys.size(); ++i) {
    if (node_.keys[i] == key) {
      used_[i] = true;
      return &node_.values[i];
    }
  }
  return nullptr;
}

namespace {
std::string key_name(const std::string& what, std::string_view key) {
  return what + "." + std::string(key);
}
}  // namespace

bool MapReader::string(std::string_view key, std::string& out, bool required) {
  const ConfigNode* n = get(key);
  if (n == nullptr || n->kind == ConfigNode::Kind::kNull) {
    if (required) {
      diag_.error(node_.mark, key_name(what_, key) + " is required");
      return false;
    }
    return n == nullptr;
  }
  if (n->kind != ConfigNode::Kind::kScalar) {
    diag_.error(n->mark, key_name(what_, key) + " must be a string, got " + n->kind_name());
    return false;
  }
  out = n->scalar;
  return true;
}

bool MapReader::integer(std::string_view key, long& out, long min, long max, bool required) {
  const ConfigNode* n = get(key);
  if (n == nullptr) {
    if (required) {
      diag_.error(node_.mark, key_name(what_, key) + " is required");
      return false;
    }
    return true;
  }
  if (n->kind != ConfigNode::Kind::kScalar) {
    diag_.error(n->mark, key_name(what_, key) + " must be an integer, got " + n->kind_name());
    return false;
  }
  const std::string& s = n->scalar;
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) {
    diag_.error(n->mark, key_name(what_, key) + " must be an integer, got '" + s + "'");
    return false;
  }
  if (v < min || v > max) {
    diag_.error(n->mark, key_name(what_, key) + " must be between " + std::to_string(min) +
                             " and " + std::to_string(max) + ", got " + s);
    return false;
  }
  out = v;
  return true;
}

bool MapReader::number(std::string_view key, double& out, double min, double max) {
  const ConfigNode* n = get(key);
  if (n == nullptr) return true;
  if (n->kind != ConfigNode::Kind::kScalar) {
    diag_.error(n->mark, key_name(what_, key) + " must be a number, got " + n->kind_name());
    return false;
  }
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(n->scalar.c_str(), &end);
  if (n->scalar.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) {
    diag_.error(n->mark, key_name(what_, key) + " must be a number, got '" + n->scalar + "'");
    return false;
  }
  if (v < min || v > max) {
    diag_.error(n->mark, key_name(what_, key) + " must be between " + std::to_string(min) +
                             " and " + std::to_string(max) + ", got " + n->scalar);
    return false;
  }
  out = v;
  return true;
}

bool MapReader::boolean(std::string_view key, bool& out) {
  const ConfigNode* n = get(key);
  if (n == nullptr) return true;
  if (n->kind == ConfigNode::Kind::kScalar) {
    std::string s;
    for (char c : n->scalar) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true" || s == "yes" || s == "on" || s == "1") {
      out = true;
      return true;
    }
    if (s == "false" || s == "no" || s == "off" || s == "0") {
      out = false;
      return true;
    }
  }
  diag_.error(n->mark, key_name(what_, key) + " must be true or false, got " +
                           (n->kind == ConfigNode::Kind::kScalar ? "'" + n->scalar + "'"
                                                                 : std::string(n->kind_name())));
  return false;
}

bool MapReader::duration(std::string_view key, std::chrono::milliseconds& out) {
  const ConfigNode* n = get(key);
  if (n == nullptr) return true;
  if (n->kind == ConfigNode::Kind::kScalar) {
    if (auto d = parse_duration(n->scalar)) {
      out = *d;
      return true;
    }
    if (!n->scalar.empty() && n->scalar.front() == '-') {
      diag_.error(n->mark, key_name(what_, key) + " must not be negative, got '" + n->scalar + "'");
      return false;
    }
  }
  diag_.error(n->mark, key_name(what_, key) + " must be a duration such as 500ms, 2s or 1m, got " +
                           (n->kind == ConfigNode::Kind::kScalar ? "'" + n->scalar + "'"
                                                                 : std::string(n->kind_name())));
  return false;
}

bool MapReader::byte_size(std::string_view key, std::size_t& out, std::size_t min,
                          std::size_t max) {
  const ConfigNode* n = get(key);
  if (n == nullptr) return true;
  if (n->kind == ConfigNode::Kind::kScalar) {
    const std::string& s = n->scalar;
    std::size_t i = 0;
    unsigned long long value = 0;
    bool digits = false, overflow = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (value > (1ull << 50)) overflow = true;
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      digits = true;
      ++i;
    }
    const std::string_view unit = std::string_view(s).substr(i);
    unsigned long long scale = 0;
    if (unit.empty() || unit == "B")
      scale = 1;
    else if (unit == "KiB")
      scale = 1ull << 10;
    else if (unit == "MiB")
      scale = 1ull << 20;
    else if (unit == "GiB")
      scale = 1ull << 30;
    else if (unit == "KB" || unit == "kB")
      scale = 1000;
    else if (unit == "MB")
      scale = 1000 * 1000;
    else if (unit == "GB")
      scale = 1000 * 1000 * 1000;
    if (digits && !overflow && scale != 0) {
      const unsigned long long bytes = value * scale;
      if (bytes >= min && bytes <= max) {
        out = static_cast<std::size_t>(bytes);
        return true;
      }
      diag_.error(n->mark, key_name(what_, key) + " must be between " + std::to_string(min) +
                               " and " + std::to_string(max) + " bytes, got '" + s + "'");
      return false;
    }
  }
  diag_.error(n->mark, key_name(what_, key) +
                           " must be a size such as 4096, 512KiB or 16MiB, got " +
                           (n->kind == ConfigNode::Kind::kScalar ? "'" + n->scalar + "'"
                                                                 : std::string(n->kind_name())));
  return false;
}

bool MapReader::positive_duration(std::string_view key, std::chrono::milliseconds& out) {
  std::chrono::milliseconds value = out;
  if (!duration(key, value)) return false;
  if (const ConfigNode* n = get(key); n != nullptr && value.count() <= 0) {
    diag_.error(n->mark, key_name(what_, key) + " must be greater than 0, got '" + n->scalar + "'");
    return false;
  }
  out = value;
  return true;
}

bool MapReader::string_list(std::string_view key, std::vector<std::string>& out, bool required) {
  const ConfigNode* n = get(key);
  if (n == nullptr || n->kind == ConfigNode::Kind::kNull) {
    if (required) {
      diag_.error(node_.mark, key_name(what_, key) + " is required");
      return false;
    }
    return true;
  }
  if (n->kind == ConfigNode::Kind::kScalar) {
    out = {n->scalar};
    return true;
  }
  if (n->kind != ConfigNode::Kind::kSequence) {
    diag_.error(n->mark,
                key_name(what_, key) + " must be a list of strings, got " + n->kind_name());
    return false;
  }
  std::vector<std::string> result;
  bool ok = true;
  for (const auto& item : n->items) {
    if (item.kind != ConfigNode::Kind::kScalar) {
      diag_.error(item.mark,
                  key_name(what_, key) + " items must be strings, got " + item.kind_name());
      ok = false;
      continue;
    }
    result.push_back(item.scalar);
  }
  if (ok) out = std::move(result);
  return ok;
}

bool MapReader::one_of(std::string_view key, std::string& out,
                       std::initializer_list<std::string_view> allowed) {
  std::string value;
  const bool present = has(key);
  if (!string(key, value)) return false;
  if (!present) return true;
  for (auto a : allowed) {
    if (value == a) {
      out = value;
      return true;
    }
  }
  std::string list;
  for (auto a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  diag_.error(node_.find(key)->mark,
              key_name(what_, key) + " must be one of " + list + ", got '" + value + "'");
  return false;
}

bool MapReader::one_spelling(std::initializer_list<std::string_view> spellings) {
  if (node_.kind != ConfigNode::Kind::kMap) return true;
  long first = -1;
  bool ok = true;
  for (size_t i = 0; i < node_.keys.size(); ++i) {
    bool listed = false;
    for (auto s : spellings) listed = listed || node_.keys[i] == s;
    if (!listed) continue;
    if (first < 0) {
      first = static_cast<long>(i);
      continue;
    }
    const auto f = static_cast<size_t>(first);
    diag_.error(node_.key_marks[i], what_ + ": '" + node_.keys[i] + "' and '" + node_.keys[f] +
                                        "' (at " + node_.key_marks[f].str() +
                                        ") are two spellings of one option; give only one");
    ok = false;
  }
  return ok;
}

bool MapReader::finish() {
  if (node_.kind == ConfigNode::Kind::kMap) {
    for (size_t i = 0; i < node_.keys.size(); ++i) {
      if (!used_[i]) {
        diag_.error(node_.key_marks[i], "unknown key '" + node_.keys[i] + "' in " + what_);
      }
    }
  }
  return valid_ && diag_.errors().size() == errors_at_start_;
}

}  // namespace ep
