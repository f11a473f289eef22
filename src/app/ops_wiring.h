#pragma once
// Operations around the daemon, kept out of commands.cc: the single-instance lock, secret
// registration for log/status redaction, the metrics/health/status HTTP endpoint, and systemd
// notifications (READY=1 after the first convergence, WATCHDOG=1 while the reconciler loop is
// alive, STATUS=, RELOADING=1, STOPPING=1).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/settings.h"
#include "core/result.h"
#include "ops/endpoints.h"
#include "ops/http_server.h"
#include "ops/instance_lock.h"

namespace ep::app {

class Daemon;

// Exit code when another daemon already manages the same HAProxy.
inline constexpr int kExitLocked = 3;

// `run --lock-file PATH`: one explicit lock file instead of one per admin socket.
void set_lock_file_override(std::string path);

// Takes the single-instance lock for `settings`' admin sockets (for `once`, which changes
// HAProxy too). Logs why on failure and returns the exit code (kExitLocked on a conflict); 0 = ok.
int lock_instances(const config::Settings& settings, ops::InstanceLock& out);

// Registers every secret-looking value in the configuration (source options, reload options)
// so that log lines and /status mask it.
void register_config_secrets(const config::Settings& settings);

class OpsRuntime {
 public:
  OpsRuntime();
  ~OpsRuntime();

  // Before the daemon starts: registers secrets, takes the lock (returns kExitLocked on a
  // conflict, kExitFailed if the lock cannot be taken at all, after logging why), starts the
  // HTTP endpoint (a listen failure is logged and the daemon runs on without it) and the
  // notifier thread. Returns 0 to go on.
  int begin(const config::Settings& settings);

  // The daemon whose state the endpoints and notifications report. Not owned. attach() before
  // the daemon's start() (it adds a reconciler pass listener); detach() before it is destroyed.
  void attach(Daemon* daemon);
  void detach();

  // SIGHUP: before switching to `next`. Re-takes the lock if the sockets changed and restarts
  // the endpoint if its address changed. An error means: refuse the new configuration.
  Status reconfigure(const config::Settings& next);
  void reloading();
  void reload_finished(bool applied, const std::string& why);
  void stopping();

 private:
  // `with_journal`: the reconciler's timeline too (for /status; the notifications skip it).
  std::optional<ops::OpsSnapshot> snapshot(bool with_journal = false);
  // The dashboard's action (on the HTTP thread): hands it to the attached daemon's pipeline.
  Result<std::string> resolve_hold(const std::string& backend, bool confirm);
  // `changed`: the pass changed the reconciler's status (PassReport::status_changed). Decides
  // on the reconciler thread whether the STATUS line is due; update_status() computes it on the
  // notifier thread.
  void on_pass(const Daemon* from, bool changed);
  void update_status();
  // /status was read (the dashboard polls it): asks the reconciler for a full pass, at most one
  // a second, so HAProxy's own changes reach the page within a poll or two.
  void status_read();
  // The notifier thread: STATUS=/READY=1 when due, WATCHDOG=1 pings when systemd asks for them.
  void notifier_loop();
  Status take_lock(const config::Settings& settings, ops::InstanceLock& out);
  void start_http(const config::Settings& settings);

  std::mutex mu_;  // daemon_, ready_sent_, refresh_status_
  Daemon* daemon_ = nullptr;
  bool ready_sent_ = false;
  bool refresh_status_ = false;  // recompute the STATUS line at the next pass (after a reload)
  std::chrono::steady_clock::time_point last_refresh_{};  // last STATUS recomputation
  std::chrono::steady_clock::time_point last_observe_{};  // last pass asked for by status_read()
  std::string last_status_;
  ops::EndpointOptions endpoint_options_;
  config::MetricsSettings metrics_;
  std::vector<std::string> sockets_;
  ops::InstanceLock lock_;
  std::unique_ptr<ops::HttpServer> http_;

  std::mutex wd_mu_;  // wd_stop_, status_due_
  std::condition_variable wd_cv_;
  bool wd_stop_ = false;
  bool status_due_ = false;
  std::thread notifier_;
};

// `elasticproxy status`: fetches /status from the running daemon and prints it as a table (or
// raw JSON). The address is `address` when given, else metrics.listen from `config_path` when
// that file loads, else 127.0.0.1:9108. Exit 0 when the daemon is ready, 1 when it is not or
// cannot be reached.
int cmd_status(const std::string& address, const std::string& config_path, bool json);

}  // namespace ep::app
