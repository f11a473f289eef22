#include "discovery/file/options.h"

namespace ep::discovery::file {

std::optional<Options> options_from_node(const ConfigNode& node,
                                         const std::filesystem::path& base_dir, Diagnostics& diag) {
  MapReader r(node, diag, "file");
  if (!r.valid()) return std::nullopt;
  Options o;
  std::string path;
  if (r.string("path", path, true) && path.empty()) {
    diag.error(node.find("path")->mark, "file.path must not be empty");
  }
  std::string format;
  r.one_of("format", format, {"auto", "json", "yaml"});
  r.duration("debounce", o.debounce);
  r.positive_duration("refresh_interval", o.refresh_interval);
  if (!r.finish() || path.empty()) return std::nullopt;

  std::filesystem::path full(path);
  if (full.is_relative()) full = base_dir / full;
  full = full.lexically_normal();
  o.path = full.string();
  if (!full.has_filename()) {
    diag.error(node.find("path")->mark, "file.path must name a file, got '" + path + "'");
    return std::nullopt;
  }
  if (format == "json") {
    o.format = Format::kJson;
  } else if (format == "yaml") {
    o.format = Format::kYaml;
  } else {
    o.format = format_for(o.path);
    if (o.format == Format::kAuto) {
      diag.error(node.find("path")->mark,
                 "file.path: cannot tell the format from the name '" + full.filename().string() +
                     "' (expected .json, .yml or .yaml); set file.format to json or yaml");
      return std::nullopt;
    }
  }
  return o;
}

}  // namespace ep::discovery::file
