#include "haproxy/reload/deploy.h"

#include <unistd.h>

#include <chrono>

#include "core/metrics.h"
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

void describe_metrics() {
  auto& m = Metrics::global();
  m.describe("elasticproxy_reloads_total", Metrics::Type::kCounter,
             "HAProxy reloads by result: ok (confirmed), rolled_back (failed, previous config "
             "restored), failed (candidate rejected by haproxy -c or not writable, or rollback "
             "failed).");
  m.describe("elasticproxy_reload_duration_seconds", Metrics::Type::kHistogram,
             "Time to write, reload and confirm a new HAProxy config.",
             {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  m.describe("elasticproxy_last_reload_timestamp_seconds", Metrics::Type::kGauge,
             "Unix time of the last confirmed HAProxy reload.");
}

DeployReport deploy(const std::string& path, std::string_view text, Reloader& reloader,
                    const config::WriteOptions& write_options) {
  describe_metrics();
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
    Metrics::global().inc("elasticproxy_reloads_total", {{"result", result}});
    Metrics::global().observe("elasticproxy_reload_duration_seconds", {}, report.seconds);
    if (outcome == DeployReport::Outcome::kOk) {
      const double unix_now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      Metrics::global().set("elasticproxy_last_reload_timestamp_seconds", {}, unix_now);
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
