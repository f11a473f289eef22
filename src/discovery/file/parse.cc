#include "discovery/file/parse.h"

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "config/settings.h"
#include "core/config_node.h"
#include "discovery/guard.h"
#include "os/json.h"
#include "os/strings.h"

namespace ep::discovery::file {
namespace {

// A file_sd document is three levels deep; anything far deeper is garbage, and refusing it
// up front keeps a hostile file from exhausting the stack in the JSON library.
constexpr int kMaxJsonDepth = os::kMaxJsonDepth;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string where(const std::string& filename, const Mark& mark, const std::string& path) {
  std::string s = mark.line > 0 ? mark.str() : filename;
  s += ": ";
  if (!path.empty()) s += path + ": ";
  return s;
}

std::string quote_text(std::string_view s) { return "'" + os::printable(s, 80) + "'"; }

// nlohmann reports a 1-based byte offset; users want line:col.
Mark mark_at(std::string_view text, size_t byte, const std::string& filename) {
  Mark m{filename, 1, 1};
  const size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 1;
    } else {
      ++m.column;
    }
  }
  return m;
}

ConfigNode from_json(const nlohmann::json& j, const std::string& filename) {
  const Mark mark{filename, 0, 0};
  switch (j.type()) {
    case nlohmann::json::value_t::array: {
      ConfigNode n = ConfigNode::make_sequence(mark);
      for (const auto& item : j) n.items.push_back(from_json(item, filename));
      return n;
    }
    case nlohmann::json::value_t::object: {
      ConfigNode n = ConfigNode::make_map(mark);
      for (const auto& [k, v] : j.items()) n.add(k, from_json(v, filename), mark);
      return n;
    }
    case nlohmann::json::value_t::string:
      return ConfigNode::make_scalar(j.get<std::string>(), mark);
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: {
      ConfigNode n;
      n.mark = mark;
      return n;
    }
    default:  // numbers and booleans: their JSON text
      return ConfigNode::make_scalar(j.dump(), mark);
  }
}

Result<ConfigNode> parse_json(std::string_view text, const std::string& filename) {
  if (os::json_depth(text) > kMaxJsonDepth) {
    return Error::invalid(filename + ": nesting deeper than " + std::to_string(kMaxJsonDepth) +
                          " levels; not a file_sd list");
  }
  try {
    // Duplicate keys in JSON objects: nlohmann keeps the last; acceptable for labels.
    auto j = nlohmann::json::parse(text.begin(), text.end());
    return from_json(j, filename);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." →
    // keep the part after the position, ours goes first.
    auto pos = what.find(": ");
    std::string detail = pos == std::string::npos ? what : what.substr(pos + 2);
    return Error::invalid(mark_at(text, e.byte, filename).str() + ": invalid JSON: " + detail);
  } catch (const std::exception& e) {
    return Error::invalid(filename + ": invalid JSON: " + e.what());
  }
}

bool parse_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "True" || s == "TRUE" || s == "1") {
    out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE" || s == "0") {
    out = false;
    return true;
  }
  return false;
}

Result<std::vector<Endpoint>> from_tree(const ConfigNode& root, const std::string& filename) {
  if (root.kind == ConfigNode::Kind::kNull) {
    return Error::invalid(where(filename, root.mark, "") +
                          "file is empty (write [] for an explicit empty list)");
  }
  if (root.kind != ConfigNode::Kind::kSequence) {
    return Error::invalid(where(filename, root.mark, "") +
                          "expected a list of target groups, got " + root.kind_name());
  }
  std::vector<Endpoint> out;
  for (size_t g = 0; g < root.items.size(); ++g) {
    const ConfigNode& group = root.items[g];
    const std::string gpath = "[" + std::to_string(g) + "]";
    if (group.kind != ConfigNode::Kind::kMap) {
      return Error::invalid(where(filename, group.mark, gpath) +
                            "a target group must be a map with 'targets', got " +
                            group.kind_name());
    }
    for (size_t k = 0; k < group.keys.size(); ++k) {
      if (group.keys[k] != "targets" && group.keys[k] != "labels") {
        return Error::invalid(where(filename, group.key_marks[k], gpath) + "unknown key " +
                              quote_text(group.keys[k]) + " (expected targets, labels)");
      }
    }
    const ConfigNode* targets = group.find("targets");
    if (targets == nullptr) {
      return Error::invalid(where(filename, group.mark, gpath) + "missing 'targets'");
    }
    if (targets->kind != ConfigNode::Kind::kSequence) {
      return Error::invalid(where(filename, targets->mark, gpath + ".targets") +
                            "must be a list of \"host:port\" strings, got " + targets->kind_name());
    }

    Endpoint proto;
    std::optional<std::string> id;
    if (const ConfigNode* labels = group.find("labels");
        labels != nullptr && labels->kind != ConfigNode::Kind::kNull) {
      if (labels->kind != ConfigNode::Kind::kMap) {
        return Error::invalid(where(filename, labels->mark, gpath + ".labels") +
                              "must be a map of strings, got " + labels->kind_name());
      }
      for (size_t i = 0; i < labels->keys.size(); ++i) {
        const std::string& key = labels->keys[i];
        const ConfigNode& value = labels->values[i];
        const std::string lpath = gpath + ".labels." + key;
        if (value.kind != ConfigNode::Kind::kScalar) {
          return Error::invalid(
              where(filename, value.mark.line > 0 ? value.mark : labels->key_marks[i], lpath) +
              "label values must be strings, got " + value.kind_name());
        }
        if (key == "weight") {
          const std::string& s = value.scalar;
          char* end = nullptr;
          errno = 0;
          long w = std::strtol(s.c_str(), &end, 10);
          if (s.empty() || *end != '\0' || errno != 0) {
            return Error::invalid(where(filename, value.mark, lpath) +
                                  "weight must be an integer, got " + quote_text(s));
          }
          proto.weight = w;  // range is the guard's business (per endpoint)
        } else if (key == "backup") {
          if (!parse_bool(value.scalar, proto.backup)) {
            return Error::invalid(where(filename, value.mark, lpath) +
                                  "backup must be true or false, got " + quote_text(value.scalar));
          }
        } else if (key == "id") {
          id = value.scalar;
        } else {
          proto.labels[key] = value.scalar;
        }
      }
    }
    if (id && targets->items.size() != 1) {
      return Error::invalid(where(filename, group.mark, gpath) +
                            "label 'id' names one endpoint, but the group has " +
                            std::to_string(targets->items.size()) + " targets");
    }
    for (size_t t = 0; t < targets->items.size(); ++t) {
      const ConfigNode& target = targets->items[t];
      if (target.kind != ConfigNode::Kind::kScalar) {
        return Error::invalid(
            where(filename, target.mark, gpath + ".targets[" + std::to_string(t) + "]") +
            "a target must be a \"host:port\" string, got " + target.kind_name());
      }
      Endpoint e = endpoint_from_text(target.scalar);
      e.weight = proto.weight;
      e.backup = proto.backup;
      e.labels = proto.labels;
      if (id) e.id = *id;
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace

Format format_for(std::string_view filename) {
  if (ends_with(filename, ".json")) return Format::kJson;
  if (ends_with(filename, ".yml") || ends_with(filename, ".yaml")) return Format::kYaml;
  return Format::kAuto;
}

Result<std::vector<Endpoint>> parse_file_sd(std::string_view text, Format format,
                                            const std::string& filename) {
  if (format == Format::kAuto) {
    format = format_for(filename);
    if (format == Format::kAuto) format = Format::kYaml;  // YAML also reads JSON
  }
  bool blank = true;
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      blank = false;
      break;
    }
  }
  // A writer truncates before it writes: an empty file is far more likely half-written than meant.
  if (blank) {
    return Error::invalid(filename + ": file is empty (write [] for an explicit empty list)");
  }
  auto tree =
      format == Format::kJson ? parse_json(text, filename) : config::parse_yaml(text, filename);
  if (!tree) return tree.error();
  return from_tree(*tree, filename);
}

}  // namespace ep::discovery::file
