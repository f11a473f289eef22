#include "app/config_wiring.h"

#include <filesystem>

#include "core/log.h"
#include "haproxy/config/render.h"
#include "haproxy/config/writer.h"

namespace ep::app {

namespace hc = haproxy::config;

std::string resolve_path(const config::Settings& settings, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || settings.file.empty()) return path;
  return (settings.file.parent_path() / p).lexically_normal().string();
}

void check_config_management(const config::Settings& settings, Diagnostics& diag) {
  const auto& h = settings.haproxy;
  const Mark where{settings.file.string(), 0, 0};
  if (h.template_path.empty() != h.config.empty()) {
    diag.error(where, h.template_path.empty()
                          ? "haproxy.config is set but haproxy.template is not: set both to keep "
                            "the config file in step with the runtime"
                          : "haproxy.template is set but haproxy.config is not: the rendered "
                            "config needs a destination");
    return;
  }
  if (h.template_path.empty()) return;
  auto tpl = hc::load_template(resolve_path(settings, h.template_path));
  if (!tpl) {
    diag.error(where, tpl.error().message);
    return;
  }
  std::vector<std::string> names;
  for (const auto& b : settings.backends) names.push_back(b.policy.name);
  hc::check_template(*tpl, names, diag);
}

Result<std::unique_ptr<ConfigFollower>> ConfigFollower::create(const config::Settings& settings) {
  const auto& h = settings.haproxy;
  if (h.template_path.empty() || h.config.empty()) return std::unique_ptr<ConfigFollower>();
  Diagnostics diag;
  check_config_management(settings, diag);
  if (!diag.ok()) return Error::invalid(diag.joined());
  auto tpl = hc::load_template(resolve_path(settings, h.template_path));
  if (!tpl) return tpl.error();
  return std::unique_ptr<ConfigFollower>(
      new ConfigFollower(std::move(*tpl), resolve_path(settings, h.config), settings));
}

ConfigFollower::ConfigFollower(hc::Template tpl, std::string config_path,
                               const config::Settings& settings)
    : template_(std::move(tpl)),
      config_path_(std::move(config_path)),
      binary_(settings.haproxy.binary) {
  for (const auto& b : settings.backends) {
    backends_.emplace_back(b.policy.name, b.policy.server_options);
  }
}

size_t ConfigFollower::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

Result<bool> ConfigFollower::sync(const std::vector<reconcile::InstanceStatus>& status) {
  // One instance is the source of truth (they run the same config); the first one that answered
  // and whose backends have all been observed (mode resolved) this run.
  const reconcile::InstanceStatus* inst = nullptr;
  for (const auto& s : status) {
    if (!s.reachable || s.backends.size() != backends_.size()) continue;
    bool observed = true;
    for (const auto& b : s.backends) {
      if (b.mode == reconcile::BackendMode::kAuto) observed = false;
    }
    if (observed) {
      inst = &s;
      break;
    }
  }
  if (inst == nullptr) return false;  // nothing known yet: never write a guess
  std::vector<hc::RenderBackend> render_in;
  for (size_t i = 0; i < backends_.size(); ++i) {
    render_in.push_back(
        {backends_[i].first, backends_[i].second, inst->backends[i].actual_servers});
  }
  auto text = hc::render(template_, render_in);
  if (!text) return text.error();
  std::lock_guard lock(mu_);
  if (*text == last_written_) return false;
  hc::WriteOptions options;
  options.binary = binary_;
  auto w = hc::write_config(config_path_, *text, options);
  if (!w) return w.error();
  last_written_ = std::move(*text);
  if (*w == hc::WriteOutcome::kWritten) ++writes_;
  return *w == hc::WriteOutcome::kWritten;
}

void ConfigFollower::attach(reconcile::Reconciler& reconciler) {
  reconcile::Reconciler* rec = &reconciler;
  reconciler.add_on_pass([this, rec](const reconcile::PassReport&) {
    auto r = sync(rec->status());
    std::lock_guard lock(mu_);
    if (!r) {
      if (r.error().message != last_error_) {
        log::error("config", "{}", r.error().message);
        last_error_ = r.error().message;
      }
      return;
    }
    last_error_.clear();
    if (*r) log::info("config", "wrote {} (follows the runtime state)", config_path_);
  });
}

}  // namespace ep::app
