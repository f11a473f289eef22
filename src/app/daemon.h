#pragma once
// The running daemon: sources -> guards -> reconciler -> HAProxy, plus the status surface.

#include <memory>

#include "app/config_wiring.h"
#include "config/settings.h"
#include "core/result.h"
#include "discovery/pipeline.h"
#include "reconcile/reconciler.h"

namespace ep::app {

class Daemon {
 public:
  explicit Daemon(config::Settings settings);
  ~Daemon();

  // Starts the reconciler and the sources. Returns once they run.
  Status start();
  // Stops sources first (no new snapshots), then the reconciler. Idempotent.
  void stop();

  // One-shot: fetch every source once, reconcile once. Converged = report.converged.
  reconcile::PassReport once(std::chrono::milliseconds fetch_timeout);

  reconcile::Reconciler& reconciler() { return *reconciler_; }
  discovery::Pipeline& pipeline() { return *pipeline_; }
  const config::Settings& settings() const { return settings_; }

 private:
  config::Settings settings_;
  std::unique_ptr<reconcile::Reconciler> reconciler_;
  std::unique_ptr<discovery::Pipeline> pipeline_;
  std::unique_ptr<ConfigFollower> config_follower_;  // disk follows runtime (optional)
  bool started_ = false;
};

}  // namespace ep::app
