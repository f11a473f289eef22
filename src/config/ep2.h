#pragma once
// EP2 (ElasticPyProxy) compatibility: its INI config file (`ep2.conf`) read as-is and mapped onto
// ElasticProxy's settings tree, so `elasticproxy run -f ep2.conf` runs an EP2 setup unchanged.
// docs/ep2-migration.md lists every key, its mapping, and where we deliberately differ from EP2.

#include <string>
#include <string_view>
#include <vector>

#include "core/config_node.h"
#include "core/result.h"

namespace ep::config {

// Parses INI text the way Python's configparser (EP2's parser) does: `[section]` headers, `key =
// value` or `key: value`, keys case-insensitive (lowered), values trimmed, indented continuation
// lines, full-line `#`/`;` comments (no inline comments), a `[DEFAULT]` section inherited by the
// others, and `%(key)s` / `%%` interpolation. Duplicate sections or keys, a line before the first
// section, a key line without `=`/`:` and a bad interpolation are errors with file:line:col.
// Result: a map of section name (as written) → map of key → scalar, with positions. Pure.
Result<ConfigNode> parse_ini(std::string_view text, const std::string& file);

// True when `text` looks like an INI file: its first line that is neither blank nor a comment is
// a `[section]` header. (A YAML config's root is a map, so it never starts that way.)
bool looks_like_ini(std::string_view text);

// Maps a parsed ep2.conf (parse_ini) onto the settings tree settings_from_node() reads (the same
// shape as the YAML config). EP2's defaults fill missing keys. Values EP2 would reject or misread
// are errors in `diag` with the EP2 key's position; keys EP2 reads but ElasticProxy does not need
// (lock_dir, log_file, ...) and behaviour changes worth knowing go to `notes` (logged at start).
// `conf_dir` is the directory of ep2.conf (for the default template path).
ConfigNode ep2_to_settings_node(const ConfigNode& ini, const std::string& conf_dir,
                                Diagnostics& diag, std::vector<std::string>& notes);

}  // namespace ep::config
