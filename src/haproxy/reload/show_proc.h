#pragma once
// Parser for the master CLI's `show proc` (HAProxy 2.6, haproxy-runtime.md 7.2). Pure.
//
//   #<PID>          <type>          <reloads>       <uptime>        <version>
//   25975           master          2 [failed: 1]   0d00h00m10s     2.6.12-1+deb12u4
//   # workers
//   26124           worker          1               0d00h00m06s     2.6.12-1+deb12u4
//   # old workers
//   ...
//   # programs

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ep::haproxy::reload {

struct ProcRow {
  long pid = 0;
  std::string type;  // "master", "worker"
  int reloads = 0;
};

struct ProcTable {
  long master_pid = 0;
  int master_reloads = 0;
  int failed = -1;                   // `[failed: N]` (2.5+); -1 when absent (older HAProxy)
  std::vector<ProcRow> workers;      // current workers
  std::vector<ProcRow> old_workers;  // still finishing their connections
};

// kInvalid (with the offending line) when the text is not a `show proc` table with a master row.
Result<ProcTable> parse_show_proc(std::string_view text);

}  // namespace ep::haproxy::reload
