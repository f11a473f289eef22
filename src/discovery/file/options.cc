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

  o.path = std::filesystem::path(path);
  if (o.path.is_relative()) o.path = base_dir / o.path;
  o.path = o.path.lexically_normal();
  if (!o.path.has_filename()) {
    diag.error(node.find("path")->mark, "file.path must name a file, got '" + path + "'");
    return std::nullopt;
  }
  if (format == "json") {
    o.format = Format::kJson;
  } else if (format == "yaml") {
    o.format = Format::kYaml;
  } else {
    o.format = format_for(o.path.string());
    if (o.format == Format::kAuto) {
      diag.error(node.find("path")->mark,
                 "file.path: cannot tell the format from the name '" + o.path.filename().string() +
                     "' (expected .json, .yml or .yaml); set file.format to json or yaml");
      return std::nullopt;
    }
  }
  return o;
}

}  // namespace ep::discovery::file
