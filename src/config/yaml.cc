// YAML → ConfigNode. yaml-cpp stays inside this file: every other part reads ConfigNode trees.
#include <yaml-cpp/yaml.h>

#include <set>

#include "config/settings.h"

namespace ep::config {
namespace {

// Aliases let a small file expand into a huge tree ("billion laughs"); refuse beyond this.
constexpr size_t kMaxNodes = 1'000'000;
constexpr int kMaxDepth = 200;

Mark to_mark(const YAML::Mark& m, const std::string& filename, const Mark& fallback) {
  // yaml-cpp marks are 0-based and -1 when unknown (e.g. some null nodes).
  if (m.line < 0 || m.column < 0) return fallback;
  return Mark{filename, m.line + 1, m.column + 1};
}

struct Converter {
  const std::string& filename;
  size_t nodes = 0;

  Result<ConfigNode> convert(const YAML::Node& node, const Mark& fallback, int depth) {
    const Mark mark = to_mark(node.Mark(), filename, fallback);
    if (++nodes > kMaxNodes) {
      return Error::invalid(mark.str() + ": document too large (more than " +
                            std::to_string(kMaxNodes) + " nodes after alias expansion)");
    }
    if (depth > kMaxDepth) return Error::invalid(mark.str() + ": nesting too deep");
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null: {
        ConfigNode n;
        n.mark = mark;
        return n;
      }
      case YAML::NodeType::Scalar:
        return ConfigNode::make_scalar(node.Scalar(), mark);
      case YAML::NodeType::Sequence: {
        ConfigNode n = ConfigNode::make_sequence(mark);
        for (const auto& item : node) {
          auto child = convert(item, mark, depth + 1);
          if (!child) return child.error();
          n.items.push_back(std::move(*child));
        }
        return n;
      }
      case YAML::NodeType::Map: {
        ConfigNode n = ConfigNode::make_map(mark);
        std::set<std::string> seen;
        for (const auto& kv : node) {
          const Mark key_mark = to_mark(kv.first.Mark(), filename, mark);
          if (!kv.first.IsScalar()) {
            return Error::invalid(key_mark.str() + ": map keys must be plain strings");
          }
          const std::string key = kv.first.Scalar();
          if (!seen.insert(key).second) {
            return Error::invalid(key_mark.str() + ": duplicate key '" + key + "'");
          }
          auto child = convert(kv.second, key_mark, depth + 1);
          if (!child) return child.error();
          n.add(key, std::move(*child), key_mark);
        }
        return n;
      }
    }
    return Error::internal(mark.str() + ": unknown YAML node type");
  }
};

}  // namespace

Result<ConfigNode> parse_yaml(std::string_view text, const std::string& filename) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    Mark m{filename, e.mark.line >= 0 ? e.mark.line + 1 : 0,
           e.mark.column >= 0 ? e.mark.column + 1 : 0};
    return Error::invalid(m.str() + ": " + (e.msg.empty() ? std::string("invalid YAML") : e.msg));
  } catch (const std::exception& e) {
    return Error::invalid(filename + ": " + e.what());
  }
  try {
    Converter c{filename};
    return c.convert(root, Mark{filename, 1, 1}, 0);
  } catch (const std::exception& e) {
    // yaml-cpp may throw while walking (e.g. bad conversions); keep it a value.
    return Error::invalid(filename + ": " + e.what());
  }
}

}  // namespace ep::config
