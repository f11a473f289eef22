#include "app/commands.h"

#include <csignal>
#include <cstdio>
#include <pthread.h>

#include <fmt/format.h>

#include "app/daemon.h"
#include "app/ops_wiring.h"
#include "app/wiring.h"
#include "core/log.h"
#include "haproxy/runtime/admin_socket.h"
#include "ops/logging.h"
#include "reconcile/diff.h"

namespace ep::app {
namespace {

void apply_log_settings(const config::Settings& s) {
  log::Level level;
  if (log::parse_level(s.log.level, level)) {
    // The command line wins: only apply when it was not set there (see main.cc).
    if (std::getenv("EP_LOG_LEVEL_FROM_CLI") == nullptr) log::set_level(level);
  }
  if (std::getenv("EP_LOG_FORMAT_FROM_CLI") == nullptr) ops::install_log_format(s.log.format);
}

Result<config::Settings> load(const std::string& path) {
  auto s = load_and_check(path);
  if (!s) {
    std::fprintf(stderr, "%s: configuration error:\n%s", path.c_str(), s.error().message.c_str());
    if (!s.error().message.empty() && s.error().message.back() != '\n') std::fputc('\n', stderr);
    return s.error();
  }
  apply_log_settings(*s);
  // How an EP2 ep2.conf was read: keys ignored, behaviour that differs from EP2.
  for (const auto& note : s->notes) log::info("config", "{}", note);
  return s;
}

}  // namespace

int cmd_check(const std::string& path) {
  auto s = load(path);
  if (!s) return kExitConfig;
  size_t sources = 0;
  for (const auto& b : s->backends) sources += b.sources.size();
  std::printf("%s: OK (%zu backend(s), %zu source(s), %zu HAProxy instance(s))\n", path.c_str(),
              s->backends.size(), sources, s->haproxy.sockets.size());
  // What the sources can tell without network (e.g. where aws_asg takes its region from).
  Diagnostics diag;
  for (const auto& bs : build_sources(*s, diag)) {
    for (const auto& src : bs.sources) {
      for (const auto& note : src->check_notes()) std::printf("  %s\n", note.c_str());
    }
  }
  return kExitOk;
}

int cmd_maint(const std::string& path, const std::string& server, const std::string& on_off) {
  const auto slash = server.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == server.size() ||
      server.find_first_of(" \t\r\n;") != std::string::npos) {
    std::fprintf(stderr, "maint: '%s' is not <backend>/<server>\n", server.c_str());
    return kExitConfig;
  }
  auto s = load(path);
  if (!s) return kExitConfig;
  const std::string line = (on_off == "on" ? "disable server " : "enable server ") + server;
  bool ok = true;
  for (const auto& sock : s->haproxy.sockets) {
    haproxy::AdminSocket admin(sock, s->haproxy.timeout);
    auto reply = admin.run({line});
    std::string error = !reply                                      ? reply.error().message
                        : !reply->empty() && !reply->front().empty() ? reply->front()
                                                                     : "";
    if (error.empty()) {
      std::printf("%s: %s: maintenance %s\n", sock.c_str(), server.c_str(), on_off.c_str());
    } else {
      std::fprintf(stderr, "%s: %s failed: %s\n", sock.c_str(), line.c_str(), error.c_str());
      ok = false;
    }
  }
  return ok ? kExitOk : kExitFailed;
}

int cmd_once(const std::string& path, std::chrono::milliseconds timeout) {
  auto s = load(path);
  if (!s) return kExitConfig;
  ops::InstanceLock lock;  // `once` changes HAProxy too: never next to a running daemon
  if (int rc = lock_instances(*s, lock); rc != 0) return rc;
  Daemon daemon(std::move(*s));
  reconcile::PassReport r = daemon.once(timeout);
  for (const auto& e : r.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
  std::printf("%zu change(s) applied, %zu failed, %zu drain(s) in progress: %s\n", r.actions_done,
              r.actions_failed, r.waiting_drains, r.converged ? "converged" : "NOT converged");
  return r.converged ? kExitOk : kExitFailed;
}

int cmd_plan(const std::string& path, std::chrono::milliseconds timeout) {
  auto s = load(path);
  if (!s) return kExitConfig;
  Daemon daemon(*s);
  daemon.pipeline().fetch_once(timeout);
  bool ok = true;
  auto guards = daemon.pipeline().status();
  for (const auto& g : guards) {
    for (const auto& src : g.sources) {
      if (src.failing || !src.delivered) {
        std::printf("source %s (%s): %s\n", src.source.c_str(), g.backend.c_str(),
                    src.last_error.empty() ? "no snapshot" : src.last_error.c_str());
        ok = false;
      }
    }
    if (g.hold != discovery::Hold::kNone) {
      std::printf("backend %s: snapshot held back by the guard (%s)\n", g.backend.c_str(),
                  discovery::to_string(g.hold));
    }
  }
  // Observe and diff directly: nothing is applied.
  auto instances = build_instances(*s);
  for (auto& inst : instances) {
    auto info = inst->info();
    if (!info) {
      std::printf("HAProxy %s: unreachable: %s\n", inst->name().c_str(), info.error().message.c_str());
      ok = false;
      continue;
    }
    std::vector<std::string> names;
    for (const auto& b : s->backends) names.push_back(b.policy.name);
    auto actual = inst->observe_all(names);  // every backend: one whole read
    if (!actual) {
      std::printf("HAProxy %s: %s\n", inst->name().c_str(), actual.error().message.c_str());
      ok = false;
      continue;
    }
    std::printf("HAProxy %s (%s, pid %ld):\n", inst->name().c_str(), info->version.c_str(), info->pid);
    for (size_t b = 0; b < s->backends.size(); ++b) {
      const auto& policy = s->backends[b].policy;
      const auto& act = (*actual)[b];
      if (!act.exists) {
        std::printf("  backend %s: does not exist in HAProxy\n", policy.name.c_str());
        ok = false;
        continue;
      }
      if (!guards[b].ready) {
        std::printf("  backend %s: not ready (a source has not delivered); would not touch it\n",
                    policy.name.c_str());
        continue;
      }
      DesiredBackend want;
      want.backend = policy.name;
      want.servers = daemon.pipeline().desired(b);
      auto mode = reconcile::resolve_mode(policy, info->major, info->minor, act.algorithm);
      reconcile::Plan plan = reconcile::diff(want, act, policy, mode, {}, SystemClock::instance().now());
      std::printf("  backend %s (%s mode): %zu desired, %zu action(s)\n", policy.name.c_str(),
                  reconcile::to_string(mode), want.servers.size(), plan.actions.size());
      for (const auto& a : plan.actions) {
        std::printf("    %-11s %s%s  (%s)\n", reconcile::to_string(a.kind), a.server.c_str(),
                    a.kind == reconcile::ActionKind::kAssignSlot ? (" <- " + a.spec.address_port()).c_str() : "",
                    reconcile::reason_text(a).c_str());
      }
      for (const auto& w : plan.waiting) std::printf("    waiting     %s  (draining)\n", w.c_str());
      if (plan.missing_slots > 0) {
        std::printf("    !! %d server(s) have no free slot\n", plan.missing_slots);
        ok = false;
      }
    }
  }
  return ok ? kExitOk : kExitFailed;
}

int cmd_run(const std::string& path) {
  // Block the signals we handle in every thread; the main thread waits for them below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto s = load(path);
  if (!s) return kExitConfig;
  OpsRuntime ops;  // lock, endpoint, systemd notify; outlives the daemon
  if (int rc = ops.begin(*s); rc != 0) return rc;
  auto daemon = std::make_unique<Daemon>(std::move(*s));
  ops.attach(daemon.get());  // before start(): pass listeners are added before the loop runs
  if (Status st = daemon->start(); !st) {
    log::error("daemon", "{}", st.error().message);
    ops.detach();
    return kExitFailed;
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      log::info("daemon", "SIGHUP: re-reading {}", path);
      ops.reloading();
      auto next = load_and_check(path);
      if (!next) {
        log::error("daemon", "new configuration rejected, still running on the old one:\n{}",
                   next.error().message);
        ops.reload_finished(false, next.error().message);
        continue;
      }
      if (Status st = ops.reconfigure(*next); !st) {
        log::error("daemon", "new configuration rejected, still running on the old one: {}",
                   st.error().message);
        ops.reload_finished(false, st.error().message);
        continue;
      }
      apply_log_settings(*next);
      ops.detach();
      // HAProxy holds the state; a new daemon observes it and converges on the new settings.
      daemon->stop();
      daemon = std::make_unique<Daemon>(std::move(*next));
      ops.attach(daemon.get());
      if (Status st = daemon->start(); !st) {
        log::error("daemon", "{}", st.error().message);
        ops.detach();
        return kExitFailed;
      }
      ops.reload_finished(true, "");
      log::info("daemon", "configuration reloaded");
      continue;
    }
    log::info("daemon", "{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ops.stopping();
    ops.detach();
    daemon->stop();
    log::info("daemon", "stopped");
    return kExitOk;
  }
}

}  // namespace ep::app
