#include "haproxy/reload/deploy.h"

#include <unistd.h>

#include <chrono>

#include "os/file.h"

namespace ep::haproxy::reload {

const char* to_string(DeployReport::Outcome outcome) {
  switch (outcome) {
    case DeployReport::Outcome::kOk:
      return "ok";
    case DeployReport::Outcome::kRejected:
      return "rejected";
    case DeployReport::Outcome::kRolledBack:
      return "rolled_back";
    case DeployReport::Outcome::kFailed:
      return "failed";
  }
  return "?";
}

const ReloadStats& reload_stats() {
  static const ReloadStats stats(Metrics::global());
  return stats;
}

DeployReport deploy(const std::string& path, std::string_view text, Reloader& reloader,
                    const config::WriteOptions& write_options) {
  const ReloadStats& stats = reload_stats();
  const auto started = std::chrono::steady_clock::now();
  DeployReport report;
  auto finish = [&](DeployReport::Outcome outcome, std::string message) {
    report.outcome = outcome;
    report.message = std::move(message);
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const char* result = outcome == DeployReport::Outcome::kOk           ? "ok"
                         : outcome == DeployReport::Outcome::kRolledBack ? "rolled_back"
                                                                         : "failed";
    stats.reloads_total.inc({result});
    stats.reload_duration_seconds.observe(report.seconds);
    if (outcome == DeployReport::Outcome::kOk) {
      const double unix_now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      stats.last_reload_timestamp_seconds.set(unix_now);
    }
    return report;
  };

  // The rollback target: what is on disk now (validated when it was written, or what HAProxy
  // was started with).
  auto previous = os::read_file(path);
  const bool had_previous = previous.ok();

  auto w = config::write_config(path, text, write_options);
  if (!w) return finish(DeployReport::Outcome::kRejected, w.error().message);

  auto r = reloader.reload();
  if (r) return finish(DeployReport::Outcome::kOk, "reloaded (" + *r + ")");

  const std::string why =
      "reload (" + std::string(to_string(reloader.method())) + ") failed: " + r.error().message;
  if (!had_previous) {
    ::unlink(path.c_str());
    return finish(DeployReport::Outcome::kRolledBack,
                  why + "\n" + path + " removed (there was no previous file)");
  }
  config::WriteOptions back = write_options;
  back.validate = false;  // it was valid (and running) before
  back.backup_suffix = ".rejected";
  auto restored = config::write_config(path, *previous, back);
  if (!restored) {
    return finish(DeployReport::Outcome::kFailed,
                  why + "\nand rolling back failed too: " + restored.error().message);
  }
  return finish(DeployReport::Outcome::kRolledBack,
                why + "\n" + path +
                    " rolled back to the last good config (the candidate is kept "
                    "as " +
                    path + ".rejected)");
}

}  // namespace ep::haproxy::reload
