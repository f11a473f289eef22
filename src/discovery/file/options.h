#pragma once
// Options of the `file` source:
//   file: {path: web.json, format: auto, debounce: 0ms, refresh_interval: 5m}

#include <chrono>
#include <filesystem>
#include <optional>

#include "core/config_node.h"
#include "discovery/file/parse.h"

namespace ep::discovery::file {

struct Options {
  // Absolute after from_node (relative → base_dir). A string, not a std::filesystem::path: a
  // path keeps its components too (~250 bytes more per source).
  std::string path;
  Format format = Format::kAuto;  // resolved to kJson/kYaml by extension when auto
  std::chrono::milliseconds debounce{0};
  std::chrono::milliseconds refresh_interval{std::chrono::minutes(5)};
};

// Reads and checks the options; errors (with positions) go to `diag`, and nullopt is returned.
// `format: auto` is resolved here: .json → json, .yml/.yaml → yaml, anything else is an error.
std::optional<Options> options_from_node(const ConfigNode& node,
                                         const std::filesystem::path& base_dir, Diagnostics& diag);

}  // namespace ep::discovery::file
