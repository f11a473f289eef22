// elasticproxy: keeps HAProxy's backend servers equal to what service discovery says is alive.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>


#include "app/commands.h"
#include "app/ops_wiring.h"
#include "core/config_node.h"
#include "core/log.h"
#include "os/memory.h"
#include "ops/logging.h"

namespace {

std::chrono::milliseconds duration_or_exit(const std::string& text, const char* what) {
  auto d = ep::parse_duration(text);
  if (!d) {
    std::fprintf(stderr, "%s: not a duration: '%s' (use e.g. 500ms, 10s, 1m)\n", what, text.c_str());
    std::exit(ep::app::kExitConfig);
  }
  return *d;
}

}  // namespace

int main(int argc, char** argv) {
  ep::os::tune_malloc();  // before any thread (os/memory.h)
  CLI::App app{
      "ElasticProxy keeps HAProxy's backend servers equal to what service discovery says is "
      "alive, through HAProxy's runtime API, without reloads."};
  app.require_subcommand(0, 1);
  app.fallthrough();  // global options are accepted after the subcommand too
  app.set_version_flag("--version", std::string("elasticproxy ") + EP_VERSION);

  std::string log_level;
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "debug, info, warn or error (overrides the config)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text or json")->check(CLI::IsMember({"text", "json"}));

  std::string config_path = "/etc/elasticproxy/elasticproxy.yaml";
  std::string timeout_text = "10s";

  auto* run = app.add_subcommand("run", "Run the daemon: watch sources, keep HAProxy in step.");
  run->add_option("-c,-f,--config", config_path, "configuration file (YAML, or an EP2 ep2.conf)")->capture_default_str();
  std::string lock_file;
  run->add_option("--lock-file", lock_file,
                  "single-instance lock file (default: one per admin socket in "
                  "$RUNTIME_DIRECTORY, /run/elasticproxy or /tmp)");

  auto* once = app.add_subcommand(
      "once", "Fetch every source once, reconcile once and exit (non-zero if not converged).");
  once->add_option("-c,-f,--config", config_path, "configuration file (YAML, or an EP2 ep2.conf)")->capture_default_str();
  once->add_option("--timeout", timeout_text, "per-source fetch timeout")->capture_default_str();

  auto* plan = app.add_subcommand("plan", "Print what would change in HAProxy; change nothing.");
  plan->add_option("-c,-f,--config", config_path, "configuration file (YAML, or an EP2 ep2.conf)")->capture_default_str();
  plan->add_option("--timeout", timeout_text, "per-source fetch timeout")->capture_default_str();

  auto* check = app.add_subcommand("check", "Validate the configuration and exit (2 if invalid).");
  check->add_option("-c,-f,--config", config_path, "configuration file (YAML, or an EP2 ep2.conf)")->capture_default_str();

  std::string maint_server, maint_on_off;
  auto* maint = app.add_subcommand(
      "maint",
      "Put a server in maintenance (on) or take it out (off) on every HAProxy of the config. "
      "The daemon leaves a managed server an operator put in maintenance there until it is "
      "taken out again.");
  maint->add_option("server", maint_server, "<backend>/<server>")->required();
  maint->add_option("state", maint_on_off, "on or off")
      ->required()
      ->check(CLI::IsMember({"on", "off"}));
  maint->add_option("-c,-f,--config", config_path, "configuration file (YAML, or an EP2 ep2.conf)")->capture_default_str();

  app.add_subcommand("version", "Print the version.");

  std::string status_address;
  bool status_json = false;
  auto* status = app.add_subcommand(
      "status", "Print the running daemon's status (backends desired/actual, sources) as a table.");
  status->add_option("--address", status_address,
                     "the daemon's metrics.listen address (default: from -c, else 127.0.0.1:9108)");
  status->add_option("-c,-f,--config", config_path, "configuration file (YAML, or an EP2 ep2.conf)")->capture_default_str();
  status->add_flag("--json", status_json, "print the raw /status JSON");

  ep::app::DemoOptions demo_options;
  std::string demo_duration = "24s";
  auto* demo = app.add_subcommand(
      "demo",
      "Start a real HAProxy on loopback with local backends and a load, and let ElasticProxy "
      "scale the backend in and out through the file source; prints requests sent/failed.");
  demo->add_option("--duration", demo_duration, "how long to run")->capture_default_str();
  demo->add_option("--backends", demo_options.backends, "local HTTP backends (2..50)")
      ->check(CLI::Range(2, 50))
      ->capture_default_str();
  demo->add_flag("--keep", demo_options.keep, "keep the demo's temporary directory");

  CLI11_PARSE(app, argc, argv);

  if (!log_level.empty()) {
    ep::log::Level level;
    ep::log::parse_level(log_level, level);
    ep::log::set_level(level);
    setenv("EP_LOG_LEVEL_FROM_CLI", "1", 1);
  }
  ep::ops::install_log_format(log_format);
  if (app.get_option("--log-format")->count() > 0) setenv("EP_LOG_FORMAT_FROM_CLI", "1", 1);

  if (app.got_subcommand(run)) {
    ep::app::set_lock_file_override(lock_file);
    return ep::app::cmd_run(config_path);
  }
  if (app.got_subcommand(status)) return ep::app::cmd_status(status_address, config_path, status_json);
  if (app.got_subcommand(once)) {
    return ep::app::cmd_once(config_path, duration_or_exit(timeout_text, "--timeout"));
  }
  if (app.got_subcommand(plan)) {
    return ep::app::cmd_plan(config_path, duration_or_exit(timeout_text, "--timeout"));
  }
  if (app.got_subcommand(check)) return ep::app::cmd_check(config_path);
  if (app.got_subcommand(maint)) {
    return ep::app::cmd_maint(config_path, maint_server, maint_on_off);
  }
  if (app.got_subcommand(demo)) {
    demo_options.duration = duration_or_exit(demo_duration, "--duration");
    return ep::app::cmd_demo(demo_options);
  }
  if (app.got_subcommand("version")) {
    std::printf("elasticproxy %s\n", EP_VERSION);
    return 0;
  }
  std::fputs(app.help().c_str(), stdout);
  return 0;
}
