#include "app/ops_wiring.h"

#include <algorithm>
#include <cstdio>

#include "app/commands.h"
#include "app/daemon.h"
#include "config/settings.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/secrets.h"
#include "ops/redact.h"
#include "ops/status_client.h"
#include "ops/systemd_notify.h"
#include "os/file.h"

namespace ep::app {
namespace {

constexpr const char* kComponent = "ops";

std::string& lock_override() {
  static std::string path;
  return path;
}

std::chrono::milliseconds stuck_after(const config::Settings& s) {
  // A pass talks to every instance with several bounded operations; allow ten timeouts per
  // instance, and never less than 30 s.
  const auto per_pass =
      s.haproxy.timeout * 10 * static_cast<long>(std::max<size_t>(1, s.haproxy.sockets.size()));
  return std::max<std::chrono::milliseconds>(std::chrono::seconds(30), per_pass);
}

}  // namespace

void set_lock_file_override(std::string path) { lock_override() = std::move(path); }

void register_config_secrets(const config::Settings& settings) {
  for (const auto& b : settings.backends) {
    for (const auto& src : b.sources) ops::register_secrets_in(src.options);
  }
  ops::register_secrets_in(settings.haproxy.reload);
}

OpsRuntime::OpsRuntime() = default;

OpsRuntime::~OpsRuntime() {
  {
    std::lock_guard lock(wd_mu_);
    wd_stop_ = true;
  }
  wd_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
  if (http_) http_->stop();
}

namespace {

Status take_lock_for(const config::Settings& settings, ops::InstanceLock& out) {
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> what;
  if (!lock_override().empty()) {
    paths.emplace_back(lock_override());
    what.push_back("this daemon (--lock-file)");
  } else {
    auto dir = ops::default_lock_dir();
    if (!dir) return dir.error();
    for (const auto& sock : settings.haproxy.sockets) {
      paths.push_back(ops::lock_path_for_socket(*dir, sock));
      what.push_back("HAProxy admin socket " + sock);
    }
  }
  auto lock = ops::InstanceLock::acquire(paths, what);
  if (!lock) return lock.error();
  out = std::move(*lock);
  return {};
}

}  // namespace

Status OpsRuntime::take_lock(const config::Settings& settings, ops::InstanceLock& out) {
  return take_lock_for(settings, out);
}

int lock_instances(const config::Settings& settings, ops::InstanceLock& out) {
  if (Status st = take_lock_for(settings, out); !st) {
    log::error(kComponent, "{}", st.error().message);
    return st.error().kind == ErrorKind::kRefused ? kExitLocked : kExitFailed;
  }
  return 0;
}

namespace {

// The dashboard token from metrics.token_file / token_env ("" when none is configured),
// registered with core/secrets so that it is masked everywhere. An error names the file or
// variable (never the value).
Result<std::string> read_token(const config::Settings& settings) {
  const auto& m = settings.metrics;
  std::string token;
  if (!m.token_file.empty()) {
    std::filesystem::path p(m.token_file);
    if (p.is_relative() && !settings.file.empty()) p = settings.file.parent_path() / p;
    auto text = os::read_file(p.string());
    if (!text)
      return Error::invalid("metrics.token_file " + p.string() + ": " + text.error().message);
    token = *text;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty()) return Error::invalid("metrics.token_file " + p.string() + " is empty");
  } else if (!m.token_env.empty()) {
    const char* v = std::getenv(m.token_env.c_str());
    if (v == nullptr || *v == '\0') {
      return Error::invalid("metrics.token_env: environment variable " + m.token_env +
                            " is not set or empty");
    }
    token = v;
  }
  if (!token.empty()) secrets::add(token);
  return token;
}

}  // namespace

void OpsRuntime::start_http(const config::Settings& settings) {
  if (http_) http_->stop();
  http_.reset();
  if (!settings.metrics.enabled) return;
  endpoint_options_.allowed_hosts = settings.metrics.allowed_hosts;
  endpoint_options_.exposed = !ops::listen_is_loopback(settings.metrics.listen);
  endpoint_options_.token_for_metrics = settings.metrics.token_for_metrics;
  endpoint_options_.token.clear();
  if (auto token = read_token(settings); !token) {
    // Fail closed: the dashboard, /status and the action answer 403 until the token is readable.
    log::error(kComponent, "{}: the dashboard, /status and its action are refused",
               token.error().message);
    endpoint_options_.exposed = true;
  } else {
    endpoint_options_.token = *token;
    if (endpoint_options_.exposed && token->empty()) {
      log::warn(kComponent,
                "metrics.listen {} is not on loopback and no token is configured "
                "(metrics.token_file or metrics.token_env): the dashboard and /status answer 403",
                settings.metrics.listen);
    }
  }
  endpoint_options_.on_status = [this] { status_read(); };
  http_ = std::make_unique<ops::HttpServer>(ops::make_ops_handler(
      [this] { return snapshot(/*with_journal=*/true); }, endpoint_options_,
      [this](const std::string& backend, bool confirm) { return resolve_hold(backend, confirm); }));
  if (Status st = http_->start(settings.metrics.listen); !st) {
    // Keeping HAProxy in step matters more than the endpoint: run on, loudly.
    log::error(kComponent, "metrics/health endpoint disabled: {}", st.error().message);
    http_.reset();
    return;
  }
  log::info(kComponent, "serving the dashboard and /metrics /healthz /readyz /status on http://{}/",
            http_->address());
}

int OpsRuntime::begin(const config::Settings& settings) {
  register_config_secrets(settings);
  if (Status st = take_lock(settings, lock_); !st) {
    log::error(kComponent, "{}", st.error().message);
    return st.error().kind == ErrorKind::kRefused ? kExitLocked : kExitFailed;
  }
  sockets_ = settings.haproxy.sockets;
  metrics_ = settings.metrics;
  endpoint_options_.version = EP_VERSION;
  endpoint_options_.metrics = &Metrics::global();
  endpoint_options_.stuck_after = stuck_after(settings);
  start_http(settings);
  ops::notify_status("starting: waiting for the first convergence");
  notifier_ = std::thread([this] { notifier_loop(); });
  return 0;
}

void OpsRuntime::attach(Daemon* daemon) {
  {
    std::lock_guard lock(mu_);
    daemon_ = daemon;
  }
  // Listeners cannot be removed: this one reports only while its daemon is the attached one.
  daemon->reconciler().add_on_pass(
      [this, daemon](const reconcile::PassReport& r) { on_pass(daemon, r.status_changed); });
  on_pass(daemon, true);
}

void OpsRuntime::detach() {
  std::lock_guard lock(mu_);
  daemon_ = nullptr;
}

std::optional<ops::OpsSnapshot> OpsRuntime::snapshot(bool with_journal) {
  std::lock_guard lock(mu_);
  if (daemon_ == nullptr) return std::nullopt;
  ops::OpsSnapshot s;
  s.instances = daemon_->reconciler().status();
  s.guards = daemon_->pipeline().status();
  s.last_loop = daemon_->reconciler().last_loop();
  s.now = SystemClock::instance().now();
  s.sources_ready = daemon_->pipeline().ready();
  s.converged = daemon_->reconciler().converged();
  if (with_journal) s.journal = daemon_->reconciler().journal();
  if (const auto* cm = daemon_->config_manager()) {
    ops::ConfigStatus c;
    c.instance = cm->target().admin_socket;
    c.path = cm->config_path();
    c.config_mode = cm->config_mode();
    c.reloads = cm->reloads();
    if (auto r = cm->last_reload()) {
      c.last_reload = ops::ConfigStatus::Reload{r->at, r->result, r->message, r->seconds};
    }
    s.config = std::move(c);
  }
  return s;
}

void OpsRuntime::status_read() {
  std::lock_guard lock(mu_);
  if (daemon_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_observe_ < std::chrono::seconds(1)) return;
  last_observe_ = now;
  daemon_->reconciler().request_resync();
}

Result<std::string> OpsRuntime::resolve_hold(const std::string& backend, bool confirm) {
  // Holding mu_ keeps the daemon attached (a reload detaches under mu_) while the pipeline's loop
  // does the work; the wait is bounded.
  std::lock_guard lock(mu_);
  if (daemon_ == nullptr) return Error::unavailable("starting or reloading: try again");
  auto r = daemon_->pipeline().resolve_hold(backend, confirm, std::chrono::seconds(5));
  if (r) log::warn(kComponent, "dashboard action: {}", *r);
  return r;
}

void OpsRuntime::on_pass(const Daemon* from, bool changed) {
  // Runs on the reconciler thread after each pass, and only decides: the snapshot copies every
  // backend's status (milliseconds at 2,000 backends), so the notifier thread computes it and
  // a change arriving meanwhile does not wait for it. After the first convergence (every source
  // has delivered) only the reconciler's status feeds the STATUS line, so a pass that did not
  // change it is skipped.
  {
    std::lock_guard lock(mu_);
    if (daemon_ != from) return;
    if (!changed && ready_sent_ && !refresh_status_) return;
    // Once ready, at most one recomputation a second (it also holds the reconciler's status
    // lock while it copies). A deferred one runs at a later pass (the liveness probe runs one
    // every second).
    const auto now = std::chrono::steady_clock::now();
    if (ready_sent_ && now - last_refresh_ < std::chrono::seconds(1)) {
      refresh_status_ = true;
      return;
    }
    last_refresh_ = now;
    refresh_status_ = false;
  }
  {
    std::lock_guard lock(wd_mu_);
    status_due_ = true;
  }
  wd_cv_.notify_all();
}

void OpsRuntime::update_status() {
  auto snap = snapshot();
  if (!snap) return;
  const ops::Health ready = ops::check_ready(snap);
  size_t servers = 0;
  for (const auto& g : snap->guards) servers += g.desired;
  std::string status;
  if (ready.ok) {
    status = "converged: " + std::to_string(snap->guards.size()) + " backend(s), " +
             std::to_string(servers) + " server(s), " + std::to_string(snap->instances.size()) +
             " HAProxy instance(s)";
  } else {
    std::string why = ready.reason.substr(0, ready.reason.find('\n'));
    status = "not converged: " + why;
  }
  std::lock_guard lock(mu_);
  if (ready.ok && !ready_sent_) {
    ready_sent_ = true;
    last_status_ = status;
    ops::notify_ready(status);
    log::info(kComponent, "first convergence reached ({})", status);
    return;
  }
  if (status != last_status_) {
    last_status_ = status;
    ops::notify_status(status);
  }
}

void OpsRuntime::notifier_loop() {
  // Ping twice per watchdog interval, and only while the reconciler loop is alive: a stuck loop
  // stops the pings and systemd restarts the service.
  const auto interval = ops::watchdog_interval();
  std::optional<std::chrono::milliseconds> period;
  if (interval) period = std::chrono::duration_cast<std::chrono::milliseconds>(*interval / 2);
  auto next_ping = std::chrono::steady_clock::now();
  std::unique_lock lock(wd_mu_);
  while (!wd_stop_) {
    // The ping first: status updates can be due after every pass while the daemon converges,
    // and must not starve the pings (systemd would kill a daemon that is working).
    if (period && std::chrono::steady_clock::now() >= next_ping) {
      lock.unlock();
      auto snap = snapshot();
      // No daemon attached = starting or between the two daemons of a reload: alive.
      if (!snap || ops::check_health(snap, endpoint_options_).ok) ops::notify_watchdog();
      lock.lock();
      next_ping = std::chrono::steady_clock::now() + *period;
      continue;
    }
    if (status_due_) {
      status_due_ = false;
      lock.unlock();
      update_status();
      lock.lock();
      continue;
    }
    const auto until_ping = [&] { return wd_stop_ || status_due_; };
    if (period) {
      wd_cv_.wait_until(lock, next_ping, until_ping);
    } else {
      wd_cv_.wait(lock, until_ping);
    }
  }
}

Status OpsRuntime::reconfigure(const config::Settings& next) {
  register_config_secrets(next);
  if (next.haproxy.sockets != sockets_) {
    // flock() conflicts between two open files of one process too, so sockets kept across the
    // reload cannot be locked twice: release, take the new set, and put the old one back if the
    // new one is refused. (The gap is a few system calls long.)
    ops::InstanceLock fresh;
    lock_.release();
    if (Status st = take_lock(next, fresh); !st) {
      // Put the old locks back; if even that fails the old daemon runs unlocked: say so.
      config::Settings old;
      old.haproxy.sockets = sockets_;
      if (Status back = take_lock(old, lock_); !back) {
        log::error(kComponent, "could not re-take the instance lock: {}", back.error().message);
      }
      return st;
    }
    lock_ = std::move(fresh);
    sockets_ = next.haproxy.sockets;
  }
  endpoint_options_.stuck_after = stuck_after(next);
  if (next.metrics.enabled != metrics_.enabled || next.metrics.listen != metrics_.listen ||
      next.metrics.allowed_hosts != metrics_.allowed_hosts ||
      next.metrics.token_file != metrics_.token_file ||
      next.metrics.token_env != metrics_.token_env ||
      next.metrics.token_for_metrics != metrics_.token_for_metrics) {
    metrics_ = next.metrics;
    start_http(next);
  }
  return {};
}

void OpsRuntime::reloading() { ops::notify_reloading(); }

void OpsRuntime::reload_finished(bool applied, const std::string& why) {
  std::lock_guard lock(mu_);
  // READY=1 ends the RELOADING=1 state in systemd, whatever the outcome.
  last_status_ = applied ? "configuration reloaded" : "new configuration rejected: " + why;
  refresh_status_ = true;  // the next pass replaces this line with the daemon's own status
  if (ready_sent_) {
    ops::notify_ready(last_status_);
  } else {
    ops::notify_status(last_status_);  // READY=1 still waits for the first convergence
  }
}

void OpsRuntime::stopping() { ops::notify_stopping(); }

int cmd_status(const std::string& address, const std::string& config_path, bool json) {
  std::string where = address;
  if (where.empty()) {
    where = "127.0.0.1:9108";
    if (auto s = config::load_file(config_path); s) where = s->metrics.listen;
  }
  auto reply = ops::http_get(where, "/status", std::chrono::seconds(5));
  if (!reply) {
    std::fprintf(stderr, "elasticproxy status: %s (is the daemon running, with metrics enabled?)\n",
                 reply.error().message.c_str());
    return kExitFailed;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "elasticproxy status: %s answered HTTP %d\n", where.c_str(),
                 reply->status);
    return kExitFailed;
  }
  if (json) {
    std::fwrite(reply->body.data(), 1, reply->body.size(), stdout);
  } else {
    auto table = ops::render_status_table(reply->body);
    if (!table) {
      std::fprintf(stderr, "elasticproxy status: %s: %s\n", where.c_str(),
                   table.error().message.c_str());
      return kExitFailed;
    }
    std::fputs(table->c_str(), stdout);
  }
  return reply->body.find("\"ready\": true") != std::string::npos ? kExitOk : kExitFailed;
}

}  // namespace ep::app
