// `elasticproxy demo`: a real HAProxy on loopback, local HTTP backends, a steady load through
// HAProxy, and ElasticProxy on the file source scaling the backend in and out. Removed backends
// are stopped only after ElasticProxy has drained and removed them, as a real deployment would
// terminate an instance after deregistration. The point: zero failed requests.

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "app/commands.h"
#include "app/daemon.h"
#include "app/wiring.h"
#include "core/log.h"
#include "demo/haproxy_process.h"
#include "demo/load_generator.h"
#include "demo/local_backend.h"
#include "haproxy/runtime/admin_socket.h"
#include "haproxy/runtime/parsers.h"

namespace ep::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// HAProxy's process identity from `show info` (Pid, Start_time_sec): a reload or restart of this
// foreground HAProxy is a new process, so the number of identities seen minus one is the number
// of reloads. Nullopt when the admin socket does not answer.
std::optional<std::pair<long, long>> haproxy_identity(const fs::path& admin_socket) {
  haproxy::AdminSocket sock(admin_socket.string(), std::chrono::seconds(2));
  auto reply = sock.run({"show info"});
  if (!reply || reply->empty()) return std::nullopt;
  auto info = haproxy::parse_show_info(reply->front());
  if (!info) return std::nullopt;
  return std::make_pair(info->pid, info->start_time_sec);
}

std::string elapsed(Clock::time_point start) {
  return fmt::format("{:6.1f}s", std::chrono::duration<double>(Clock::now() - start).count());
}

}  // namespace

int cmd_demo(const DemoOptions& options) {
  std::signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/ep-demo-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "demo: cannot create a temporary directory: %s\n", std::strerror(errno));
    return kExitFailed;
  }
  const fs::path dir = tmpl;
  const int fe_port = demo::free_port();
  std::printf("ElasticProxy demo in %s\n", dir.c_str());

  // Local backends (their ports are fixed once chosen, so a restarted backend keeps its address).
  std::vector<std::unique_ptr<demo::LocalBackend>> backends;
  for (int i = 0; i < options.backends; ++i) {
    backends.push_back(std::make_unique<demo::LocalBackend>(i + 1));
    if (!backends.back()->start()) {
      std::fprintf(stderr, "demo: cannot start a local backend\n");
      return kExitFailed;
    }
  }

  const fs::path haproxy_cfg = dir / "haproxy.cfg";
  {
    std::ofstream out(haproxy_cfg);
    out << "global\n"
        << "  stats socket " << (dir / "admin.sock").string() << " level admin\n"
        << "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n"
        << "  timeout server 10s\n  retries 3\n  option redispatch\n"
        << "frontend fe\n  bind 127.0.0.1:" << fe_port << "\n  default_backend web\n"
        << "backend web\n  balance roundrobin\n";
  }
  demo::HaproxyProcess haproxy;
  if (!haproxy.start(haproxy_cfg, dir / "haproxy.log")) {
    std::fprintf(stderr, "demo: cannot start haproxy\n");
    return kExitFailed;
  }

  // Initial discovery: two backends.
  // Sizes of the discovered set over time; 0 is "discovery has a bad minute": the file suddenly
  // lists nothing, which the guard holds back instead of emptying the backend.
  std::vector<int> schedule = {2, 4, options.backends, 3, 5, 0, 4, options.backends, 3, 2};
  for (int& n : schedule) n = n == 0 ? 0 : std::clamp(n, 2, options.backends);
  const fs::path targets = dir / "web.json";
  std::vector<const demo::LocalBackend*> live;
  for (int i = 0; i < schedule[0]; ++i) live.push_back(backends[i].get());
  demo::write_atomically(targets, demo::file_sd(live));

  const fs::path config = dir / "elasticproxy.yaml";
  {
    std::ofstream out(config);
    out << "# Written by `elasticproxy demo`.\n"
        << "haproxy:\n  sockets: [" << (dir / "admin.sock").string() << "]\n"
        << "backends:\n  - name: web\n    server_options: \"check inter 300ms rise 1 fall 2\"\n"
        << "    drain_timeout: 5s\n"
        << "    sources:\n      - file: {path: web.json}\n";
  }
  // Wait for HAProxy's admin socket.
  for (int i = 0; i < 300 && !fs::exists(dir / "admin.sock"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!haproxy.alive()) {
    std::fprintf(stderr, "demo: haproxy exited; see %s\n", (dir / "haproxy.log").c_str());
    return kExitFailed;
  }
  auto settings = load_and_check(config.string());
  if (!settings) {
    std::fprintf(stderr, "demo: %s\n", settings.error().message.c_str());
    return kExitFailed;
  }
  std::printf("HAProxy on 127.0.0.1:%d, %d local backends, config %s\n", fe_port, options.backends,
              config.c_str());
  Daemon daemon(std::move(*settings));
  if (Status st = daemon.start(); !st) {
    std::fprintf(stderr, "demo: %s\n", st.error().message.c_str());
    return kExitFailed;
  }
  const auto start = Clock::now();
  // Wait for the first convergence (and the first health checks) before loading.
  while (!daemon.reconciler().converged() && Clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));

  demo::LoadGenerator load;
  load.start(fe_port, options.load_threads);
  std::printf("[%s] load started: %d clients, a new connection per request\n",
              elapsed(start).c_str(), options.load_threads);

  // Scale in and out on a schedule. A backend leaving discovery is stopped only once
  // ElasticProxy has removed it from HAProxy; a joining one is started before it is announced.
  const auto step = options.duration / static_cast<long>(schedule.size());
  std::set<std::pair<long, long>> identities;  // HAProxy processes seen (reloads = size - 1)
  int identity_failures = 0;
  auto sample_identity = [&] {
    if (auto id = haproxy_identity(dir / "admin.sock")) {
      identities.insert(*id);
    } else {
      ++identity_failures;
    }
  };
  sample_identity();
  std::set<const demo::LocalBackend*> retiring;
  auto in_haproxy = [&](const demo::LocalBackend* b) {
    const std::string name = "ep-" + b->target();
    for (const auto& inst : daemon.reconciler().status()) {
      for (const auto& be : inst.backends) {
        for (const auto& s : be.actual_servers) {
          if (s.name == name) return true;
        }
      }
    }
    return false;
  };
  for (size_t i = 1; i <= schedule.size(); ++i) {
    const auto until = start + std::chrono::milliseconds(700) + step * static_cast<long>(i);
    while (Clock::now() < until) {
      for (auto it = retiring.begin(); it != retiring.end();) {
        if (!in_haproxy(*it)) {
          const_cast<demo::LocalBackend*>(*it)->stop();
          std::printf("[%s] backend %s removed from HAProxy; instance stopped\n",
                      elapsed(start).c_str(), (*it)->target().c_str());
          it = retiring.erase(it);
        } else {
          ++it;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    sample_identity();
    if (i == schedule.size()) break;
    const int want = schedule[i];
    if (want == 0) {
      std::printf("[%s] discovery has a bad minute: %s now lists no backend at all\n",
                  elapsed(start).c_str(), targets.filename().c_str());
      std::fflush(stdout);
      demo::write_atomically(targets, "[]\n");
      continue;  // `live` stays what it was: those instances are still alive
    }
    std::vector<const demo::LocalBackend*> next;
    for (int b = 0; b < want; ++b) {
      demo::LocalBackend* be = backends[b].get();
      retiring.erase(be);
      if (!be->running()) be->start();
      next.push_back(be);
    }
    for (const auto* b : live) {
      if (std::find(next.begin(), next.end(), b) == next.end()) retiring.insert(b);
    }
    std::printf("[%s] discovery: %zu -> %d backends (file %s rewritten)\n", elapsed(start).c_str(),
                live.size(), want, targets.filename().c_str());
    std::fflush(stdout);
    live = next;
    demo::write_atomically(targets, demo::file_sd(live));
  }
  load.stop();
  sample_identity();
  const demo::LoadTotals stats = load.totals();
  daemon.stop();
  const bool haproxy_ok = haproxy.alive();
  haproxy.stop();
  for (auto& b : backends) b->stop();

  const double changes = daemon.reconciler().stats().changes_applied_total.total();
  std::printf("\n== ElasticProxy demo result\n");
  std::printf("requests sent: %ld, ok: %ld, failed: %ld\n", stats.sent, stats.ok, stats.failed);
  std::printf("runtime changes applied: %.0f\n", changes);
  if (identities.empty()) {
    std::printf("HAProxy reloads: unknown (`show info` never answered)\n");
  } else {
    std::string pids;
    for (const auto& [pid, started] : identities) {
      pids += (pids.empty() ? "" : ", ") + std::to_string(pid) + " started " +
              std::to_string(started);
    }
    std::printf("HAProxy reloads: %zu (from `show info` at every step: process %s%s)\n",
                identities.size() - 1, pids.c_str(),
                identity_failures ? fmt::format(", {} unanswered", identity_failures).c_str()
                                  : "");
  }
  for (const auto& [name, n] : stats.by_backend) std::printf("  %-12s %ld\n", name.c_str(), n);
  for (const auto& [why, n] : stats.failures) std::printf("  failed: %s x%ld\n", why.c_str(), n);
  if (!options.keep) fs::remove_all(dir);
  if (!haproxy_ok) std::printf("HAProxy died during the demo\n");
  return stats.failed == 0 && stats.sent > 0 && haproxy_ok ? kExitOk : kExitFailed;
}

}  // namespace ep::app
