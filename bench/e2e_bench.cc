// End-to-end figures with the real binary and the real HAProxy on loopback:
//  1. convergence: file rewritten (atomic rename) -> HAProxy shows the change via `show servers
//     state` (polled on the admin socket), over N changes alternating add and remove;
//  2. bulk: 1,000 servers added in one file change -> all present in HAProxy;
//  3. footprint: the daemon's RSS while idle with one backend.
// Prints a Markdown table. Usage: ep_bench_e2e [changes=60] [bulk=1000]

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/daemon/daemon_process.h"
#include "support/haproxy/haproxy_fixture.h"

using namespace std::chrono;
using ep::test::HaproxyFixture;

namespace {

int count_servers(const HaproxyFixture& hp) {
  std::string reply = hp.admin("show servers state web");
  int n = 0;
  std::istringstream in(reply);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" web ") != std::string::npos && line.find(" ep-") != std::string::npos) ++n;
  }
  return n;
}

std::string targets(int n, int first_port = 20000) {
  std::string t;
  for (int i = 0; i < n; ++i) {
    // Distinct loopback addresses; nothing listens there (no checks configured): never contacted.
    t += (t.empty() ? "\"" : ", \"") + std::string("127.0.") + std::to_string(1 + i / 250) + "." +
         std::to_string(1 + i % 250) + ":" + std::to_string(first_port) + "\"";
  }
  return "[{\"targets\": [" + t + "]}]\n";
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}


}  // namespace

int main(int argc, char** argv) {
  const int changes = argc > 1 ? std::atoi(argv[1]) : 60;
  const int bulk = argc > 2 ? std::atoi(argv[2]) : 1000;
  HaproxyFixture hp(R"(global
  stats socket @SOCKET@ level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
backend web
  balance roundrobin
)");
  if (auto st = hp.start(); !st.ok()) {
    std::fprintf(stderr, "haproxy: %s\n%s\n", st.error().message.c_str(), hp.log().c_str());
    return 1;
  }
  const std::string dir = hp.dir();
  const std::string file = dir + "/web.json";
  ep::test::write_file(file, targets(2));
  ep::test::write_file(dir + "/ep.yaml", "haproxy:\n  sockets: [" + hp.socket_path() +
                                             "]\nbackends:\n  - name: web\n    drain_timeout: 0s\n"
                                             "    safety: {max_remove_fraction: 1.0}\n"
                                             "    sources:\n      - file: {path: web.json}\n");
  ep::test::DaemonProcess daemon;
  daemon.start({"run", "-c", dir + "/ep.yaml", "--log-level", "warn"}, dir + "/ep.log");
  if (!ep::test::wait_until([&] { return count_servers(hp) == 2; }, seconds(10))) {
    std::fprintf(stderr, "daemon did not converge:\n%s\n", daemon.log().c_str());
    return 1;
  }

  // 1. Convergence over `changes` single-server changes (add one, remove it, ...).
  std::vector<double> ms;
  for (int i = 0; i < changes; ++i) {
    const int want = (i % 2 == 0) ? 3 : 2;
    const auto t0 = steady_clock::now();
    ep::test::write_file_atomic(file, targets(want));
    while (count_servers(hp) != want) {
      if (steady_clock::now() - t0 > seconds(5)) {
        std::fprintf(stderr, "change %d did not converge\n%s\n", i, daemon.log().c_str());
        return 1;
      }
    }
    ms.push_back(duration<double, std::milli>(steady_clock::now() - t0).count());
    std::this_thread::sleep_for(milliseconds(20));
  }

  // 3. Idle RSS (before the bulk step grows the heap).
  std::this_thread::sleep_for(milliseconds(500));
  // The daemon is our only child named elasticproxy: find it through /proc.
  long rss_idle = -1;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(e.path() / "cmdline");
    std::string c((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (c.find("elasticproxy") != std::string::npos && c.find(dir) != std::string::npos) {
      rss_idle = rss_kb(std::stoi(name));
    }
  }

  // 2. Bulk: `bulk` servers in one change.
  const auto t0 = steady_clock::now();
  ep::test::write_file_atomic(file, targets(bulk));
  bool ok = ep::test::wait_until([&] { return count_servers(hp) == bulk; }, seconds(30));
  const double bulk_ms = duration<double, std::milli>(steady_clock::now() - t0).count();

  daemon.signal(SIGTERM);
  daemon.wait();
  std::printf("| figure | value |\n|---|---|\n");
  std::printf("| file change -> HAProxy, n | %d |\n", changes);
  std::printf("| convergence min / p50 / p99 / max (ms) | %.2f / %.2f / %.2f / %.2f |\n", pct(ms, 0),
              pct(ms, 50), pct(ms, 99), pct(ms, 100));
  std::printf("| %d servers added in one change (ms, file write -> all in HAProxy) | %s%.1f |\n",
              bulk, ok ? "" : "FAILED ", bulk_ms);
  std::printf("| daemon RSS idle, 1 backend (KiB) | %ld |\n", rss_idle);
  return ok ? 0 : 1;
}
