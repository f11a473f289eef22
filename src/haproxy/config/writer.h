#pragma once
// Validation with `haproxy -c -f` and atomic replacement of the live config file.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ep::haproxy::config {

// `<binary> -c -f <path>` (no -q, so HAProxy's own ALERT lines are kept). kInvalid with HAProxy's
// message when the file is rejected; kUnavailable when the binary cannot be run or times out.
Status validate_config(const std::string& binary, const std::string& path,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct WriteOptions {
  std::string binary = "haproxy";  // for validation
  bool validate = true;
  std::chrono::milliseconds validate_timeout{10'000};
  std::string backup_suffix = ".bak";  // the previous file is kept as <path><suffix>; "" = none
};

enum class WriteOutcome { kUnchanged, kWritten };

// Atomically replaces `path` with `content`: when the file already holds exactly these bytes,
// nothing happens (kUnchanged). Otherwise a temp file in the same directory is written and
// fsynced, validated (when asked), the previous file is hard-linked to <path><backup_suffix>,
// the temp file is renamed over `path` and the directory is fsynced. On any failure (read-only
// directory, no space, validation) the live file is untouched, the temp file removed, and the
// error names the path and the reason (strerror, or HAProxy's own message).
Result<WriteOutcome> write_config(const std::string& path, std::string_view content,
                                  const WriteOptions& options = {});

}  // namespace ep::haproxy::config
