#include "app/daemon.h"

#include "app/aws_wiring.h"
#include "app/wiring.h"
#include "core/log.h"

namespace ep::app {

Daemon::Daemon(config::Settings settings) : settings_(std::move(settings)) {
  reconcile::ReconcilerOptions options;
  options.resync_interval = settings_.haproxy.resync_interval;
  reconciler_ = std::make_unique<reconcile::Reconciler>(
      policies(settings_), build_instances(settings_), SystemClock::instance(), options);
  Diagnostics diag;  // options were validated by load_and_check; rebuild the sources here
  auto sources = build_sources(settings_, diag);
  reconcile::Reconciler* rec = reconciler_.get();
  pipeline_ = std::make_unique<discovery::Pipeline>(
      std::move(sources), SystemClock::instance(),
      [rec](size_t b, const std::vector<ServerSpec>& servers, bool ready, SteadyTime seen) {
        rec->publish(b, servers, ready, seen);
      });
  if (auto follower = ConfigFollower::create(settings_); !follower) {
    log::error("config", "{}", follower.error().message);
  } else if (*follower) {
    config_follower_ = std::move(*follower);
    config_follower_->attach(*reconciler_);
  }
}

Daemon::~Daemon() { stop(); }

Status Daemon::start() {
  reconciler_->start();
  install_aws_probe(reconciler_.get());  // lifecycle hooks read HAProxy state through it
  Status st = pipeline_->start();
  if (!st) {
    reconciler_->stop();
    return st;
  }
  started_ = true;
  log::info("daemon", "running: {} backend(s), {} HAProxy instance(s)", settings_.backends.size(),
            settings_.haproxy.sockets.size());
  return {};
}

void Daemon::stop() {
  if (pipeline_) pipeline_->stop();
  install_aws_probe(nullptr);
  if (reconciler_) reconciler_->stop();
  started_ = false;
}

reconcile::PassReport Daemon::once(std::chrono::milliseconds fetch_timeout) {
  pipeline_->fetch_once(fetch_timeout);
  reconcile::PassReport report = reconciler_->run_pass(true);
  if (config_follower_) {
    if (auto w = config_follower_->sync(reconciler_->status()); !w) {
      report.converged = false;
      report.errors.push_back(w.error().message);
    }
  }
  if (!pipeline_->ready()) {
    report.converged = false;
    for (const auto& g : pipeline_->status()) {
      for (const auto& s : g.sources) {
        if (!s.delivered) {
          report.errors.push_back(g.backend + ": " + s.source + ": no good snapshot" +
                                  (s.last_error.empty() ? "" : ": " + s.last_error));
        }
      }
    }
  }
  return report;
}

}  // namespace ep::app
