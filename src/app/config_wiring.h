#pragma once
// Disk follows runtime: with `haproxy.template` and `haproxy.config` set, after every reconciler
// pass the template is rendered with the managed servers HAProxy runs now (reconciler status)
// and, when the text changed, validated with `haproxy -c` and atomically written (no reload).

#include <memory>
#include <mutex>
#include <string>

#include "config/settings.h"
#include "core/result.h"
#include "haproxy/config/template.h"
#include "reconcile/reconciler.h"

namespace ep::app {

// Template and config paths, relative ones resolved against the settings file's directory.
std::string resolve_path(const config::Settings& settings, const std::string& path);

// Checks the config-management settings: the template parses and matches the managed backends;
// `template` without `config` (or the reverse) is an error. Problems go to `diag`.
void check_config_management(const config::Settings& settings, Diagnostics& diag);

class ConfigFollower {
 public:
  // Null (and no error) when `template` or `config` is not set.
  static Result<std::unique_ptr<ConfigFollower>> create(const config::Settings& settings);

  // Renders from `status` (first reachable instance whose backends were all observed) and
  // writes when the text differs from the last written one. Returns true when the file was
  // written. Thread-safe. An error keeps the live file (and HAProxy) untouched.
  Result<bool> sync(const std::vector<reconcile::InstanceStatus>& status);

  // Hooks sync() into the reconciler loop (after every pass). Errors are logged once per distinct
  // message, successes logged at info with the path.
  void attach(reconcile::Reconciler& reconciler);

  const std::string& config_path() const { return config_path_; }
  size_t writes() const;

 private:
  ConfigFollower(haproxy::config::Template tpl, std::string config_path,
                 const config::Settings& settings);

  haproxy::config::Template template_;
  std::string config_path_;
  std::string binary_;
  std::vector<std::pair<std::string, std::string>> backends_;  // name, server_options
  mutable std::mutex mu_;
  std::string last_written_;
  std::string last_error_;
  size_t writes_ = 0;
};

}  // namespace ep::app
