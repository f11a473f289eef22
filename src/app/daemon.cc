#include "app/daemon.h"

#include <algorithm>
#include <thread>

#include "app/wiring.h"
#include "core/log.h"
#include "core/metrics.h"
#include "haproxy/config/writer.h"
#include "haproxy/manage/settings.h"
#include "haproxy/reload/reloader.h"

namespace ep::app {

namespace {
// Bootstrap waits at most this long for every source's first good snapshot.
constexpr std::chrono::seconds kBootstrapDiscoveryWait{60};
}  // namespace

Daemon::Daemon(config::Settings settings) : settings_(std::move(settings)) {
  reconcile::ReconcilerOptions options;
  options.resync_interval = settings_.haproxy.resync_interval;
  options.metrics = &Metrics::global();  // the registry /metrics renders
  reconciler_ = std::make_unique<reconcile::Reconciler>(
      policies(settings_), build_instances(settings_), SystemClock::instance(), options);
  Diagnostics diag;  // options were validated by load_and_check; rebuild the sources here
  // Lifecycle hooks (aws_asg) read HAProxy's server states through the reconciler's view.
  auto sources = build_sources(settings_, diag, reconciler_.get());
  // Built: the sources' option trees are not read again (a reload builds a new daemon from a new
  // file; secrets were registered from them before), so do not keep a copy for the process's life.
  for (auto& b : settings_.backends) {
    for (auto& src : b.sources) src.options = ConfigNode();
  }
  reconcile::Reconciler* rec = reconciler_.get();
  pipeline_ = std::make_unique<discovery::Pipeline>(
      std::move(sources), SystemClock::instance(),
      [rec](size_t b, const SharedList<ServerSpec>& servers, bool ready, SteadyTime seen) {
        rec->publish_shared(b, servers, ready, seen);
      });
  if (settings_.state.enabled) {
    discovery::StateOptions so;
    so.path = settings_.state.file.empty()
                  ? discovery::default_state_path()
                  : haproxy::manage::resolve_path(settings_, settings_.state.file);
    so.max_age = std::chrono::duration_cast<std::chrono::seconds>(settings_.state.max_age);
    so.restore_after = settings_.state.restore_after;
    if (so.path.empty()) {
      log::info("state", "no state file (set state.file, or STATE_DIRECTORY, or create "
                         "/var/lib/elasticproxy)");
    }
    const bool with_file = !so.path.empty();
    pipeline_->set_state(std::move(so));
    if (with_file) {
      // The operator's maintenance outlives our restart: read it before the first pass, and
      // write it whenever it changes.
      pipeline_->load_state();
      reconciler_->seed_operator_maint(pipeline_->loaded_operator_maint());
      pipeline_->set_operator_maint_provider([rec] {
        discovery::OperatorMaint out;
        for (const auto& inst : rec->status()) {
          for (const auto& b : inst.backends) {
            for (const auto& n : b.operator_maint) {
              auto& v = out[b.backend];
              if (std::find(v.begin(), v.end(), n) == v.end()) v.push_back(n);
            }
          }
        }
        return out;
      });
      auto last = std::make_shared<discovery::OperatorMaint>();
      discovery::Pipeline* pipe = pipeline_.get();
      reconciler_->add_on_pass([rec, pipe, last](const reconcile::PassReport& report) {
        // Only when a pass changed some backend's maintenance marks: the scan below copies
        // every backend's status, which at 2,000 backends costs the reconciler thread
        // milliseconds that the next change would wait for.
        if (!report.operator_maint_changed) return;
        discovery::OperatorMaint now;
        for (const auto& inst : rec->status()) {
          for (const auto& b : inst.backends) {
            if (!b.operator_maint.empty()) now[b.backend] = b.operator_maint;
          }
        }
        if (now != *last) {
          *last = std::move(now);
          pipe->request_state_write();
        }
      });
    }
  }
  if (auto manager = haproxy::manage::ConfigManager::create(settings_, reconciler_.get());
      !manager) {
    log::error("config", "{}", manager.error().message);
  } else if (*manager) {
    config_manager_ = std::move(*manager);
  }
  // Everything per backend now lives in the parts built from it (reconciler, pipeline, config
  // manager): a reload builds a new daemon from a new file, so the settings' copy of every
  // backend's policy and sources is not kept for the process's life (~1 MiB at 2,000 backends).
  backend_count_ = settings_.backends.size();
  std::vector<config::BackendSettings>().swap(settings_.backends);
}

Daemon::~Daemon() { stop(); }

Status Daemon::start() {
  if (config_manager_) config_manager_->start();
  reconciler_->start();
  Status st = pipeline_->start();
  if (!st) {
    stop();
    return st;
  }
  if (settings_.haproxy.bootstrap) {
    if (Status b = bootstrap(); !b) {
      stop();
      return b;
    }
  }
  started_ = true;
  log::info(
      "daemon", "running: {} backend(s), {} HAProxy instance(s), update: {}{}",
      backend_count_, settings_.haproxy.sockets.size(),
      config::to_string(settings_.haproxy.update),
      config_manager_ && config_manager_->reload_options().method != haproxy::reload::Method::kNone
          ? std::string(", reload: ") +
                haproxy::reload::to_string(config_manager_->reload_options().method)
          : std::string());
  return {};
}

Status Daemon::bootstrap() {
  namespace hr = haproxy::reload;
  if (settings_.haproxy.config.empty()) {
    return Error::invalid("haproxy.bootstrap needs haproxy.config");
  }
  // With a template the config manager owns target and options; with `config` alone the file is
  // started as it is (ElasticProxy never writes it) and the servers come at runtime.
  Diagnostics diag;
  const hr::Options options = config_manager_ ? config_manager_->reload_options()
                                              : haproxy::manage::reload_options(settings_, diag);
  const hr::Target target =
      config_manager_ ? config_manager_->target() : haproxy::manage::reload_target(settings_);
  if (auto pid = hr::worker_pid(target.admin_socket, settings_.haproxy.timeout)) {
    log::info("bootstrap", "HAProxy answers on {} (pid {}): reconciling at runtime, no reload",
              target.admin_socket, *pid);
    return {};
  }
  if (!config_manager_) {
    if (Status v = haproxy::config::validate_config(target.binary, target.config, options.timeout);
        !v) {
      return Error(v.error().kind, "bootstrap: " + v.error().message);
    }
    auto started = hr::start_haproxy(options, target);
    if (!started) return Error(started.error().kind, "bootstrap: " + started.error().message);
    log::info("bootstrap", "started {} from {} as it is (no haproxy.template)", *started,
              target.config);
    (void)reconciler_->submit_pass(true).get();
    return {};
  }
  log::info("bootstrap", "HAProxy does not answer on {}: waiting for discovery to start it",
            target.admin_socket);
  const auto deadline = std::chrono::steady_clock::now() + kBootstrapDiscoveryWait;
  while (!pipeline_->ready()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error::unavailable("bootstrap: no good discovery snapshot for every backend within " +
                                std::to_string(kBootstrapDiscoveryWait.count()) +
                                " s; HAProxy not started");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The loop runs: ask it for a pass (one writer) and wait; it publishes the desired sets into
  // status().
  (void)reconciler_->submit_pass(false).get();
  auto text = config_manager_->render_desired(reconciler_->status());
  if (!text) return Error::invalid("bootstrap: " + text.error().message);
  haproxy::config::WriteOptions wo;
  wo.binary = target.binary;
  wo.validate_timeout = options.timeout;
  auto w = haproxy::config::write_config(target.config, *text, wo);
  if (!w) return Error(w.error().kind, "bootstrap: " + w.error().message);
  auto started = hr::start_haproxy(options, target);
  if (!started) return Error(started.error().kind, "bootstrap: " + started.error().message);
  log::info("bootstrap", "wrote {} and {}", target.config, *started);
  (void)reconciler_->submit_pass(true).get();
  return {};
}

void Daemon::stop() {
  if (pipeline_) {
    pipeline_->stop();
    pipeline_->write_state_now();
  }
  if (reconciler_) reconciler_->stop();
  if (config_manager_) config_manager_->stop();
  started_ = false;
}

reconcile::PassReport Daemon::once(std::chrono::milliseconds fetch_timeout) {
  pipeline_->fetch_once(fetch_timeout);
  // No loop runs in `once`: the synchronous pass, on this thread.
  reconcile::PassReport report = reconciler_->run_pass(true);
  if (config_manager_) {
    if (auto w = config_manager_->sync_now(reconciler_->status()); !w) {
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
