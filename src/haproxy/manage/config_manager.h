#pragma once
// Keeps haproxy.cfg in step with what ElasticProxy does, off the reconciler thread.
//
// After every reconciler pass that changed its status (a cheap hook: it renders the template in
// memory) the manager decides what the config file must hold:
//   - follow (update: auto/runtime): the servers HAProxy runs now (disk follows runtime); written
//     without a reload. In slot mode, when desired servers found no free slot and a reload method
//     is configured (update: auto), more slots are rendered (grown_slot_count) and HAProxy is
//     reloaded once; the runtime path then fills them.
//   - config (update: config, EP2's update_by_config): the desired servers; every change is
//     validated, written and reloaded (the reconciler's runtime actions are held back, see
//     wiring.cc).
// Its worker thread debounces (quiet window, max wait), rate-limits reloads (min_interval), runs
// `haproxy -c`, writes atomically and reloads with confirmation and rollback (reload/deploy.h).
// A candidate whose reload failed is not retried for max(60 s, 10 x min_interval) unless the
// rendered text changes (no reload storms); a write that failed on I/O is retried on a later pass.
// After a confirmed reload it asks the reconciler for a full pass at once (request_resync: fresh
// admin connections reach the new worker); it never runs a pass itself.
//
// It is also the reconciler's BulkLoader (update: auto with a reload method and
// haproxy.reload.bulk_threshold not 0): a pass whose additions to one dynamic backend pass the
// rule (bulk_rule(): over the threshold; with `auto`, over 1,000 and predicted faster by reload)
// calls bulk_reload() on the reconciler thread, which renders, validates,
// writes and reloads at once (no debounce: the reconciler waits for it), one write/reload at a
// time with the worker.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/settings.h"
#include "core/result.h"
#include "haproxy/config/template.h"
#include "haproxy/reload/options.h"
#include "haproxy/reload/reloader.h"
#include "reconcile/reconciler.h"

namespace ep::haproxy::manage {

class ConfigManager : public reconcile::BulkLoader {
 public:
  // Null (and no error) when `template` or `config` is not set. `reconciler` may be null (no
  // resync after reloads); it must outlive the manager.
  static Result<std::unique_ptr<ConfigManager>> create(const ep::config::Settings& settings,
                                                       reconcile::Reconciler* reconciler);
  ~ConfigManager() override;

  // reconcile::BulkLoader. 0 after stop() (the reconciler then uses runtime commands).
  reconcile::BulkRule bulk_rule() const override;
  Result<std::string> bulk_reload(const std::vector<std::vector<ActualServer>>& servers,
                                  const std::string& why) override;

  // Hooks the manager into the reconciler's passes and starts the worker thread.
  void start();
  // Stops the worker (waits for a reload in flight). Idempotent.
  void stop();

  // Synchronous, no debounce (for `once` and tests): decide from `status` and write/reload now.
  // Returns true when the file was written.
  Result<bool> sync_now(const std::vector<reconcile::InstanceStatus>& status);

  // Bootstrap: the config for the desired sets in `status` (every backend must be ready), slot
  // counts from the policies (grown when too small). No I/O.
  Result<std::string> render_desired(const std::vector<reconcile::InstanceStatus>& status) const;

  const std::string& config_path() const { return config_path_; }
  const haproxy::reload::Target& target() const { return target_; }
  const haproxy::reload::Options& reload_options() const { return options_; }
  bool config_mode() const { return config_mode_; }
  size_t writes() const;
  size_t reloads() const;

  // The last reload this manager ran (for /status and the dashboard): when, its result
  // (reload::to_string(Outcome): "ok", "rejected", "rolled_back", "failed"), HAProxy's words and
  // how long it took. None before the first one.
  struct ReloadRecord {
    SteadyTime at{};
    std::string result;
    std::string message;
    double seconds = 0;
  };
  std::optional<ReloadRecord> last_reload() const;

 private:
  struct Work {
    std::string text;
    bool reload = false;
    std::string why;    // for the log line
    SteadyTime seen{};  // when a pass first saw the change (the timeline's latency)
  };

  ConfigManager(haproxy::config::Template tpl, const ep::config::Settings& settings,
                haproxy::reload::Options options, reconcile::Reconciler* reconciler);
  // What the file must hold now; nullopt when nothing is known yet (never write a guess).
  std::optional<Work> compute(const std::vector<reconcile::InstanceStatus>& status);
  Result<bool> execute(const Work& work);
  void on_pass(const reconcile::PassReport& report);
  void loop();
  void log_error_once(const std::string& message);
  bool blocked(const std::string& text) const;  // requires mu_

  haproxy::config::Template template_;
  std::string config_path_;
  haproxy::reload::Target target_;
  haproxy::reload::Options options_;
  ep::config::UpdateMode update_;
  bool config_mode_;
  std::vector<reconcile::BackendPolicy> policies_;
  reconcile::Reconciler* reconciler_;
  std::unique_ptr<haproxy::reload::Reloader> reloader_;
  std::atomic<bool> stopped_{false};  // bulk_reload() refuses after stop()

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool hooked_ = false;
  std::optional<Work> pending_;
  std::string seen_text_;  // last computed text (a new one restarts the quiet window)
  std::chrono::steady_clock::time_point first_change_{}, last_change_{}, last_reload_{};
  std::string last_error_;
  std::string growth_warned_;
  size_t writes_ = 0;
  size_t reloads_ = 0;
  std::optional<ReloadRecord> last_reload_record_;
  std::thread thread_;

  std::mutex exec_mu_;        // one write/reload at a time (worker vs sync_now)
  std::string last_written_;  // text this process last wrote
  std::string deployed_;      // text HAProxy was last (re)loaded with, as far as we know
  std::string failed_text_;   // last candidate whose reload failed (retried after a long pause)
  std::chrono::steady_clock::time_point failed_at_{};
};

}  // namespace ep::haproxy::manage
