#pragma once
// Config-management settings: paths, checks, and where HAProxy is for reloads.

#include <string>

#include "config/settings.h"
#include "core/config_node.h"
#include "haproxy/reload/options.h"

namespace ep::haproxy::manage {

// Template and config paths, relative ones resolved against the settings file's directory.
std::string resolve_path(const ep::config::Settings& settings, const std::string& path);

// Where HAProxy is (binary, config, pidfile, master socket, first admin socket), paths resolved.
haproxy::reload::Target reload_target(const ep::config::Settings& settings);

// Parses haproxy.reload (positions in `diag`).
haproxy::reload::Options reload_options(const ep::config::Settings& settings, Diagnostics& diag);

// Checks the config-management settings: the template parses and matches the managed backends;
// `template` without `config` (or the reverse) is an error; haproxy.reload is valid; `update:
// config` and `bootstrap: true` have a template, a config and (config mode) a reload method.
// Problems go to `diag`.
void check_config_management(const ep::config::Settings& settings, Diagnostics& diag);

}  // namespace ep::haproxy::manage
