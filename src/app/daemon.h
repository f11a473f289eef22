#pragma once
// The running daemon: sources -> guards -> reconciler -> HAProxy, plus config management
// (disk follows runtime, config mode, slot growth, bootstrap) and the status surface.

#include <memory>

#include "config/settings.h"
#include "core/result.h"
#include "discovery/pipeline.h"
#include "haproxy/manage/config_manager.h"
#include "reconcile/reconciler.h"

namespace ep::app {

class Daemon {
 public:
  explicit Daemon(config::Settings settings);
  ~Daemon();

  // Starts the reconciler, the sources and config management. With haproxy.bootstrap and no
  // HAProxy answering, first waits (bounded) for discovery, renders, writes and starts HAProxy.
  // Returns once they run.
  Status start();
  // Stops sources first (no new snapshots), then the reconciler and config management.
  // Idempotent.
  void stop();

  // One-shot: fetch every source once, reconcile once. Converged = report.converged.
  reconcile::PassReport once(std::chrono::milliseconds fetch_timeout);

  reconcile::Reconciler& reconciler() { return *reconciler_; }
  discovery::Pipeline& pipeline() { return *pipeline_; }
  haproxy::manage::ConfigManager* config_manager() { return config_manager_.get(); }

 private:
  Status bootstrap();

  config::Settings settings_;  // without its backends once built (see the constructor)
  std::size_t backend_count_ = 0;
  std::unique_ptr<reconcile::Reconciler> reconciler_;
  std::unique_ptr<discovery::Pipeline> pipeline_;
  std::unique_ptr<haproxy::manage::ConfigManager>
      config_manager_;  // config file management (optional)
  bool started_ = false;
};

}  // namespace ep::app
