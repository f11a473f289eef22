#pragma once
// Turns Settings into running parts: the explicit table of source kinds, one RuntimeInstance per
// admin socket, one guard pipeline and one reconciler.

#include <memory>
#include <vector>

#include "config/settings.h"
#include "core/result.h"
#include "discovery/pipeline.h"
#include "discovery/source.h"
#include "reconcile/reconciler.h"

namespace ep::app {

// Every source kind ElasticProxy knows, by config key. Adding a source = one line here.
const std::vector<discovery::SourceKind>& source_table();

// Builds every backend's sources from the settings. Unknown kinds and bad options are reported
// in `diag` with their positions. `server_states` (the daemon's reconciler; null elsewhere) goes
// into every SourceContext; it must outlive the sources.
std::vector<discovery::BackendSources> build_sources(
    const config::Settings& settings, Diagnostics& diag,
    const ServerStateView* server_states = nullptr);

std::vector<std::unique_ptr<reconcile::Instance>> build_instances(const config::Settings& settings);

std::vector<reconcile::BackendPolicy> policies(const config::Settings& settings);

// Loads a config file (YAML) and validates everything, including source options. The returned
// error lists every problem, one per line.
Result<config::Settings> load_and_check(const std::string& path);

}  // namespace ep::app
