#include "haproxy/manage/config_manager.h"

#include "core/log.h"
#include "haproxy/config/render.h"
#include "haproxy/config/servers.h"
#include "haproxy/config/writer.h"
#include "haproxy/manage/settings.h"
#include "haproxy/reload/deploy.h"
#include "os/file.h"

namespace ep::haproxy::manage {

namespace hc = haproxy::config;
namespace hr = haproxy::reload;
using SteadyClock = std::chrono::steady_clock;

namespace {
constexpr const char* kLog = "config";

// The instance whose view is rendered: the first that answered and whose backends have all been
// observed this run (the instances run the same config).
const reconcile::InstanceStatus* observed_instance(
    const std::vector<reconcile::InstanceStatus>& status, size_t backends) {
  for (const auto& s : status) {
    if (!s.reachable || s.backends.size() != backends) continue;
    bool observed = true;
    for (const auto& b : s.backends) {
      if (b.mode == reconcile::BackendMode::kAuto) observed = false;
    }
    if (observed) return &s;
  }
  return nullptr;
}

reconcile::BackendMode assumed_mode(const reconcile::BackendPolicy& p) {
  if (p.mode != reconcile::BackendMode::kAuto) return p.mode;
  return p.slots > 0 ? reconcile::BackendMode::kSlots : reconcile::BackendMode::kDynamic;
}

}  // namespace

Result<std::unique_ptr<ConfigManager>> ConfigManager::create(const ep::config::Settings& settings,
                                                             reconcile::Reconciler* reconciler) {
  const auto& h = settings.haproxy;
  if (h.template_path.empty() || h.config.empty()) return std::unique_ptr<ConfigManager>();
  Diagnostics diag;
  check_config_management(settings, diag);  // includes haproxy.reload
  if (!diag.ok()) return Error::invalid(diag.joined());
  hr::Options options = manage::reload_options(settings, diag);
  auto tpl = hc::load_template(resolve_path(settings, h.template_path));
  if (!tpl) return tpl.error();
  return std::unique_ptr<ConfigManager>(
      new ConfigManager(std::move(*tpl), settings, std::move(options), reconciler));
}

ConfigManager::ConfigManager(hc::Template tpl, const ep::config::Settings& settings,
                             hr::Options options, reconcile::Reconciler* reconciler)
    : template_(std::move(tpl)),
      config_path_(resolve_path(settings, settings.haproxy.config)),
      target_(reload_target(settings)),
      options_(std::move(options)),
      update_(settings.haproxy.update),
      config_mode_(settings.haproxy.update == ep::config::UpdateMode::kConfig),
      reconciler_(reconciler) {
  for (const auto& b : settings.backends) policies_.push_back(b.policy);
  // Runtime-only mode never reloads; the others may (config mode always, auto for slot growth).
  if (update_ != ep::config::UpdateMode::kRuntime) reloader_ = hr::make_reloader(options_, target_);
  (void)hr::reload_stats();  // HELP/TYPE of the reload metrics before the first reload
  if (auto current = os::read_file(config_path_)) deployed_ = last_written_ = *current;
  if (reconciler_ != nullptr) {
    reconciler_->add_on_pass([this](const reconcile::PassReport& r) { on_pass(r); });
    // Bulk additions by reload: only where ElasticProxy may reload (update: auto; config mode
    // reloads for every change anyway) and with one HAProxy to reload.
    if (update_ == ep::config::UpdateMode::kAuto && reloader_ && options_.bulk_threshold != 0) {
      reconciler_->set_bulk_loader(this);
    }
  }
}

reconcile::BulkRule ConfigManager::bulk_rule() const {
  if (stopped_) return {};
  if (options_.bulk_threshold == hr::Options::kAuto) {
    return {static_cast<size_t>(hr::Options::kAutoFloor), true};
  }
  return {static_cast<size_t>(options_.bulk_threshold), false};
}

Result<std::string> ConfigManager::bulk_reload(
    const std::vector<std::vector<ActualServer>>& servers, const std::string& why) {
  if (stopped_ || !reloader_) return Error::unavailable("config management is stopped");
  if (servers.size() != policies_.size()) {
    return Error::invalid("bulk reload: " + std::to_string(servers.size()) + " backends for " +
                          std::to_string(policies_.size()));
  }
  std::vector<hc::RenderBackend> in;
  in.reserve(policies_.size());
  for (size_t i = 0; i < policies_.size(); ++i) {
    // Explicit ids (render.h: HAProxy's parse of thousands of servers without them is
    // quadratic), unless server_options sets one itself.
    const std::string& options = policies_[i].server_options;
    const bool own_id = (" " + options + " ").find(" id ") != std::string::npos;
    in.push_back({policies_[i].name, options, servers[i], own_id ? 0 : hc::kBulkFirstId});
  }
  auto text = hc::render(template_, in);
  if (!text) return text.error();
  std::lock_guard exec(exec_mu_);
  hc::WriteOptions wo;
  wo.binary = target_.binary;
  wo.validate_timeout = options_.timeout;
  log::info(kLog, "reloading HAProxy ({}): bulk addition: {}", hr::to_string(reloader_->method()),
            why);
  hr::DeployReport report = hr::deploy(config_path_, *text, *reloader_, wo);
  {
    std::lock_guard lock(mu_);
    last_reload_ = SteadyClock::now();
    last_reload_record_ =
        ReloadRecord{last_reload_, hr::to_string(report.outcome), report.message, report.seconds};
  }
  if (report.outcome != hr::DeployReport::Outcome::kOk) {
    // deploy() put the previous file back (or never replaced it): HAProxy and the disk keep the
    // last good state. The reconciler falls back to runtime commands.
    if (auto current = os::read_file(config_path_)) last_written_ = *current;
    return Error::refused(report.message);
  }
  last_written_ = *text;
  {
    std::lock_guard lock(mu_);
    deployed_ = *text;
    failed_text_.clear();
    ++reloads_;
    ++writes_;
  }
  log::info(kLog, "{} in {:.3f} s: {}", config_path_, report.seconds, report.message);
  return report.message;
}

ConfigManager::~ConfigManager() { stop(); }

void ConfigManager::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  hooked_ = true;
  thread_ = std::thread([this] { loop(); });
}

void ConfigManager::stop() {
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    hooked_ = false;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

size_t ConfigManager::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

std::optional<ConfigManager::ReloadRecord> ConfigManager::last_reload() const {
  std::lock_guard lock(mu_);
  return last_reload_record_;
}

size_t ConfigManager::reloads() const {
  std::lock_guard lock(mu_);
  return reloads_;
}

void ConfigManager::log_error_once(const std::string& message) {
  std::lock_guard lock(mu_);
  if (message != last_error_) log::error(kLog, "{}", message);
  last_error_ = message;
}

std::optional<ConfigManager::Work> ConfigManager::compute(
    const std::vector<reconcile::InstanceStatus>& status) {
  const reconcile::InstanceStatus* inst = observed_instance(status, policies_.size());
  if (inst == nullptr) return std::nullopt;
  Work work;
  std::vector<hc::RenderBackend> in;
  for (size_t i = 0; i < policies_.size(); ++i) {
    const auto& p = policies_[i];
    const auto& bs = inst->backends[i];
    hc::RenderBackend rb{p.name, p.server_options, bs.actual_servers};
    if (config_mode_) {
      if (!bs.ready) return std::nullopt;  // a source has not delivered: keep the file
      bool grew = false;
      rb.servers =
          hc::config_mode_servers(bs.desired_servers, bs.actual_servers, p, bs.mode, &grew);
      work.reload = true;
      work.why = "update: config";
      if (grew) {
        work.why += "; " + p.name + " grows to " + std::to_string(rb.servers.size()) + " slots";
      }
    } else if (bs.mode == reconcile::BackendMode::kSlots && bs.missing_slots > 0) {
      const int have = static_cast<int>(bs.actual_servers.size());
      const int total = hc::grown_slot_count(have, bs.desired);
      const std::string what = p.name + ": " + std::to_string(bs.desired) + " desired servers, " +
                               std::to_string(have) + " slots (" +
                               std::to_string(bs.missing_slots) + " without a slot)";
      if (reloader_) {
        rb.servers = hc::with_free_slots(bs.actual_servers, p, total);
        work.reload = true;
        work.why += (work.why.empty() ? "" : "; ") + std::string("slot growth: ") + what + " -> " +
                    std::to_string(total) + " slots";
      } else {
        std::lock_guard lock(mu_);
        if (growth_warned_ != what) {
          log::warn(kLog,
                    "slot mode is out of free slots: {}; no reload {} so the slots cannot grow: "
                    "add slots to the server-template by hand; serving the servers that fit",
                    what,
                    update_ == ep::config::UpdateMode::kRuntime
                        ? "(update: runtime never reloads)"
                        : "method is configured (haproxy.master_socket, pidfile or reload.method)");
          growth_warned_ = what;
        }
      }
    }
    in.push_back(std::move(rb));
  }
  auto text = hc::render(template_, in);
  if (!text) {
    log_error_once(text.error().message);
    return std::nullopt;
  }
  work.text = std::move(*text);
  return work;
}

Result<std::string> ConfigManager::render_desired(
    const std::vector<reconcile::InstanceStatus>& status) const {
  if (status.empty()) return Error::invalid("no HAProxy instance configured");
  const auto& inst = status.front();
  std::vector<hc::RenderBackend> in;
  for (size_t i = 0; i < policies_.size() && i < inst.backends.size(); ++i) {
    const auto& p = policies_[i];
    const auto& bs = inst.backends[i];
    if (!bs.ready) return Error::not_yet("backend '" + p.name + "' has no discovery data yet");
    in.push_back({p.name, p.server_options,
                  hc::config_mode_servers(bs.desired_servers, {}, p, assumed_mode(p))});
  }
  return hc::render(template_, in);
}

bool ConfigManager::blocked(const std::string& text) const {
  // requires mu_. The candidate whose reload failed is retried only after a long pause (a
  // transient failure heals, a bad config does not cause a reload storm).
  return text == failed_text_ &&
         SteadyClock::now() <
             failed_at_ + std::max<std::chrono::steady_clock::duration>(std::chrono::seconds(60),
                                                                        options_.min_interval * 10);
}

void ConfigManager::on_pass(const reconcile::PassReport& report) {
  // Reconciler thread: status copy + in-memory render only; the slow work is the worker's.
  {
    std::lock_guard lock(mu_);
    if (!hooked_) return;
    // Nothing in status() changed: the last decision stands (its cost would grow with the number
    // of backends on every pass), unless a failed write or reload waits for a retry.
    if (!report.status_changed && !seen_text_.empty() && failed_text_.empty() &&
        last_error_.empty()) {
      return;
    }
  }
  auto work = compute(reconciler_->status());
  if (!work) return;
  std::lock_guard lock(mu_);
  if (work->text == seen_text_ && (pending_ || !work->reload)) return;
  if (work->reload && (work->text == deployed_ || blocked(work->text))) return;
  const auto now = SteadyClock::now();
  if (work->text != seen_text_) {
    if (!pending_) first_change_ = now;
    last_change_ = now;
    seen_text_ = work->text;
  }
  work->seen = first_change_;
  pending_ = std::move(*work);
  cv_.notify_all();
}

void ConfigManager::loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (!pending_) {
      cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
      continue;
    }
    auto due = std::min(last_change_ + options_.quiet, first_change_ + options_.max_wait);
    if (pending_->reload) due = std::max(due, last_reload_ + options_.min_interval);
    if (SteadyClock::now() < due) {
      cv_.wait_until(lock, due);
      continue;  // re-evaluate: more changes may have come in, or stop
    }
    Work work = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    (void)execute(work);
    lock.lock();
  }
}

Result<bool> ConfigManager::sync_now(const std::vector<reconcile::InstanceStatus>& status) {
  auto work = compute(status);
  if (!work) return false;
  work->seen = SteadyClock::now();
  return execute(*work);
}

Result<bool> ConfigManager::execute(const Work& work) {
  std::lock_guard exec(exec_mu_);
  hc::WriteOptions wo;
  wo.binary = target_.binary;
  wo.validate_timeout = options_.timeout;
  if (!work.reload || !reloader_) {
    if (work.text == last_written_) return false;
    auto w = hc::write_config(config_path_, work.text, wo);
    if (!w) {
      log_error_once(w.error().message);
      if (w.error().kind == ErrorKind::kUnavailable) {
        // An I/O problem (read-only or full filesystem) may go away: let a later pass retry.
        std::lock_guard lock(mu_);
        seen_text_.clear();
      }
      return w.error();
    }
    last_written_ = work.text;
    {
      std::lock_guard lock(mu_);
      last_error_.clear();
      if (*w == hc::WriteOutcome::kWritten) ++writes_;
    }
    if (*w == hc::WriteOutcome::kWritten) {
      log::info(kLog, "wrote {} (follows the runtime state)", config_path_);
    }
    return *w == hc::WriteOutcome::kWritten;
  }
  {
    std::lock_guard lock(mu_);
    if (work.text == deployed_) return false;
    // The same candidate as the one that failed: wait until the rendered text changes.
    if (blocked(work.text)) return false;
  }
  log::info(kLog, "reloading HAProxy ({}): {}", hr::to_string(reloader_->method()), work.why);
  hr::DeployReport report = hr::deploy(config_path_, work.text, *reloader_, wo);
  {
    std::lock_guard lock(mu_);
    last_reload_ = SteadyClock::now();
    last_reload_record_ =
        ReloadRecord{last_reload_, hr::to_string(report.outcome), report.message, report.seconds};
  }
  if (reconciler_ != nullptr) {
    // On the dashboard's timeline with the reconciler's own actions: the whole config ("*"),
    // its result and, when it failed, HAProxy's words.
    const bool ok = report.outcome == hr::DeployReport::Outcome::kOk;
    reconcile::ActionRecord r;
    r.at = last_reload_;
    r.instance = target_.admin_socket;
    r.backend = "*";
    r.server = "-";
    r.action = "reload";
    r.reason = work.why;
    r.ok = ok;
    if (!ok) r.error = hr::to_string(report.outcome) + std::string(": ") + report.message;
    r.latency_s = work.seen == SteadyTime{}
                      ? report.seconds
                      : std::chrono::duration<double>(last_reload_ - work.seen).count();
    reconciler_->record_action(std::move(r));
  }
  if (report.outcome != hr::DeployReport::Outcome::kOk) {
    {
      std::lock_guard lock(mu_);
      failed_text_ = work.text;
      failed_at_ = SteadyClock::now();
    }
    if (report.outcome == hr::DeployReport::Outcome::kRejected) {
      log_error_once(report.message);
    } else {
      log::error(kLog, "{}", report.message);
      std::lock_guard lock(mu_);
      last_error_ = report.message;
    }
    // Whatever is on disk now is what the next attempt compares against.
    if (auto current = os::read_file(config_path_)) last_written_ = *current;
    return Error::refused(report.message);
  }
  last_written_ = work.text;
  {
    std::lock_guard lock(mu_);
    deployed_ = work.text;
    failed_text_.clear();
    ++reloads_;
    ++writes_;
    last_error_.clear();
  }
  log::info(kLog, "{} in {:.3f} s: {}", config_path_, report.seconds, report.message);
  // The reconcile loop would notice the new worker within probe_interval; ask it for a full pass
  // now, on fresh connections (RuntimeInstance opens one per batch, so none can reach the old
  // worker). Fire and forget through its mailbox: the reconciler thread alone talks to HAProxy.
  if (reconciler_ != nullptr) reconciler_->request_resync();
  return true;
}

}  // namespace ep::haproxy::manage
