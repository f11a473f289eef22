#pragma once
// Pure parser of the Prometheus file_sd format (a list of target groups), JSON or YAML:
//   [{"targets": ["10.0.0.5:8080", "[2001:db8::7]:8080", "10.0.0.9"],
//     "labels": {"weight": "10", "backup": "false", "id": "web-1", "zone": "a"}}]

#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace ep::discovery::file {

enum class Format { kAuto, kJson, kYaml };

// By extension: .json → kJson, .yml/.yaml → kYaml, else kAuto (unknown).
Format format_for(std::string_view filename);

// Parses the whole file. Structural errors (not a list, a group without `targets`, a target that
// is not a string, a bad `weight`/`backup` label, `id` on a group with several targets, unknown
// group keys, an empty file) fail the whole file with a message naming the file and the position
// (YAML: line:col; JSON syntax errors: line:col; JSON structure: the group/target index).
// Addresses are NOT validated here (hostnames pass through; the guard rejects them per endpoint).
// `[]` is a valid empty list. kAuto picks the format from `filename`, defaulting to YAML.
Result<std::vector<Endpoint>> parse_file_sd(std::string_view text, Format format,
                                            const std::string& filename);

}  // namespace ep::discovery::file
