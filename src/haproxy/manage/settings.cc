#include "haproxy/manage/settings.h"

#include <filesystem>

#include "haproxy/config/template.h"

namespace ep::haproxy::manage {

namespace hc = haproxy::config;
namespace hr = haproxy::reload;

std::string resolve_path(const ep::config::Settings& settings, const std::string& path) {
  std::filesystem::path p(path);
  if (path.empty() || p.is_absolute() || settings.file.empty()) return path;
  return (settings.file.parent_path() / p).lexically_normal().string();
}

hr::Target reload_target(const ep::config::Settings& settings) {
  const auto& h = settings.haproxy;
  hr::Target t;
  t.binary = h.binary;
  t.config = resolve_path(settings, h.config);
  t.pidfile = resolve_path(settings, h.pidfile);
  t.master_socket = h.master_socket;
  t.admin_socket = h.sockets.empty() ? "" : h.sockets.front();
  return t;
}

hr::Options reload_options(const ep::config::Settings& settings, Diagnostics& diag) {
  return hr::parse_options(settings.haproxy.reload, reload_target(settings), diag);
}

void check_config_management(const ep::config::Settings& settings, Diagnostics& diag) {
  const auto& h = settings.haproxy;
  const Mark where{settings.file.string(), 0, 0};
  const hr::Options reload = reload_options(settings, diag);
  // `config` alone is the file HAProxy runs from, used as it is: reloads (slot growth) and
  // bootstrap start HAProxy from it; ElasticProxy never writes it. `template` needs `config` (the
  // rendered text needs a destination).
  if (!h.template_path.empty() && h.config.empty()) {
    diag.error(where,
               "haproxy.template is set but haproxy.config is not: the rendered config needs a "
               "destination");
    return;
  }
  if (h.template_path.empty()) {
    if (h.update == ep::config::UpdateMode::kConfig) {
      diag.error(where, "haproxy.update: config needs haproxy.template and haproxy.config");
    }
    if (h.bootstrap && h.config.empty()) {
      diag.error(where,
                 "haproxy.bootstrap needs haproxy.config (the file HAProxy is started from; "
                 "with haproxy.template it is rendered first)");
    }
    return;
  }
  if (h.update == ep::config::UpdateMode::kConfig && reload.method == hr::Method::kNone) {
    diag.error(where,
               "haproxy.update: config needs a way to reload HAProxy: set "
               "haproxy.master_socket, haproxy.pidfile or haproxy.reload.method");
  }
  auto tpl = hc::load_template(resolve_path(settings, h.template_path));
  if (!tpl) {
    diag.error(where, tpl.error().message);
    return;
  }
  std::vector<std::string> names;
  for (const auto& b : settings.backends) names.push_back(b.policy.name);
  hc::check_template(*tpl, names, diag);
}

}  // namespace ep::haproxy::manage
