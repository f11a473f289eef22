#pragma once
// Deploy a new config: validate + atomic write, reload, confirm; roll back on failure.

#include <string>
#include <string_view>

#include "haproxy/config/writer.h"
#include "haproxy/reload/reloader.h"
#include "haproxy/reload/stats.h"

namespace ep::haproxy::reload {

struct DeployReport {
  enum class Outcome {
    kOk,          // written, reloaded, confirmed
    kRejected,    // never reached HAProxy: `haproxy -c` refused it or it could not be written
    kRolledBack,  // the reload failed or was not confirmed; the previous file is back in place
    kFailed,      // the reload failed and the previous file could not be put back either
  };
  Outcome outcome = Outcome::kOk;
  std::string message;  // what confirmed it, or why not (HAProxy's own words where possible)
  double seconds = 0;   // write + reload + confirm
};
const char* to_string(DeployReport::Outcome outcome);

// Writes `text` to `path` through config::write_config (temp file, `haproxy -c`, fsync, rename,
// previous file kept as <path>.bak), then reloads with `reloader` and waits for confirmation. When
// the reload fails, the previous content of `path` is written back (the candidate is kept as
// <path>.rejected for inspection) so that a later reload or restart runs the last good config,
// and the report says why, with HAProxy's message. Records elasticproxy_reloads_total{result},
// elasticproxy_reload_duration_seconds and elasticproxy_last_reload_timestamp_seconds. Blocking.
DeployReport deploy(const std::string& path, std::string_view text, Reloader& reloader,
                    const config::WriteOptions& write_options);

}  // namespace ep::haproxy::reload
