// End-to-end benchmarks with the real `elasticproxy` binary and the real HAProxy on loopback.
// Each subcommand prints one Markdown table on stdout (bench/run.sh puts them in RESULTS.md) and
// writes raw data for the plots into --out DIR.
//
//   ep_bench_e2e convergence [--n 100] [--sources file,consul,etcd] [--out DIR]
//       discovery change made at the source (file rename, Consul register/deregister, etcd
//       put/delete) -> HAProxy lists / no longer lists the server (`show servers state`, polled
//       on the admin socket every 1 ms). Alternates add and remove of one server.
//   ep_bench_e2e churn [--seconds 60] [--interval-ms 100] [--modes runtime,config,naive]
//       wrk through a real HAProxy (master-worker) to loopback backends while the backend set
//       changes every interval. A removed backend is stopped only once HAProxy no longer lists
//       it (drained and removed). Modes: ElasticProxy `update: runtime`, ElasticProxy
//       `update: config` (when this build accepts it), and a naive script: config rewrite +
//       SIGUSR2 to the master on every change, no debounce.
//   ep_bench_e2e bulk [--cases <mode>:<n>,...] [--bootstrap 1000x10] [--bulk-threshold N]
//       N servers added to one backend in one file change, then removed; and B backends x S
//       servers at daemon start. Modes: dynamic, slots, dynamic-reload (config management: an
//       addition over haproxy.reload.bulk_threshold, the default or --bulk-threshold, is one
//       reload); prefixes direct- (no counting proxy) and floor- (a bare client). Commands, bytes and connections are counted by a proxy in front
//       of HAProxy's admin socket.
//   ep_bench_e2e footprint [--idle-seconds 60] [--servers 10000]
//       daemon RSS idle with 1 backend and with 10,000 servers; CPU seconds per hour while idle
//       with file, Consul and etcd sources.
//   ep_bench_e2e scale [--backends 1000] [--servers 10] [--consul 1000] [--changes 200]
//       [--idle-seconds 60] [--out DIR]
//       one daemon with B file backends x S servers and C Consul services on the double (half
//       `watch: service`, half `watch: shared`): threads, inotify instances, start -> first
//       convergence, one-server change latency (against a one-backend daemon in the same run),
//       RSS / private memory and idle CPU.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "support/consul/consul_double.h"
#include "support/etcd/etcd_fixture.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/http_backend.h"

using namespace std::chrono;
using namespace ep::bench;

namespace {

// ---------------------------------------------------------------------------------------------
// Arguments: --key value pairs after the subcommand.
struct Args {
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  int num(const std::string& k, int def) const {
    return std::atoi(get(k, std::to_string(def)).c_str());
  }
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string x;
  while (std::getline(in, x, ',')) {
    if (!x.empty()) out.push_back(x);
  }
  return out;
}

std::string fmt_ms(double v) {
  char b[32];
  std::snprintf(b, sizeof b, v < 10 ? "%.2f" : (v < 100 ? "%.1f" : "%.0f"), v);
  return b;
}

// ---------------------------------------------------------------------------------------------
// HAProxy: `haproxy -db -f cfg` or, with a master socket, `-W -S master.sock` (master-worker, as
// systemd runs it) so that reloads and old workers can be observed.
class Haproxy {
 public:
  Haproxy(std::string dir, bool master_worker)
      : dir_(std::move(dir)), master_worker_(master_worker) {}

  std::string admin() const { return dir_ + "/a.sock"; }
  std::string master() const { return dir_ + "/m.sock"; }
  std::string cfg() const { return dir_ + "/haproxy.cfg"; }
  std::string pidfile() const { return dir_ + "/haproxy.pid"; }
  pid_t pid() const { return child_.pid(); }
  bool running() { return child_.running(); }
  const std::string& how_ended() const { return child_.how_ended(); }

  // Writes the config (`@ADMIN@` replaced) and starts HAProxy; waits for the admin socket.
  bool start(const std::string& config) {
    std::string text = config;
    for (size_t p; (p = text.find("@ADMIN@")) != std::string::npos;) text.replace(p, 7, admin());
    write_file(cfg(), text);
    std::vector<std::string> argv = {ep::test::haproxy_binary(), "-db"};
    if (master_worker_) {
      argv.insert(argv.end(), {"-W", "-S", master(), "-p", pidfile()});
    }
    argv.insert(argv.end(), {"-f", cfg()});
    if (!child_.start(argv, dir_ + "/haproxy.log")) return false;
    return wait_until(
        [&] {
          auto r = admin_query(admin(), "show info", Ms(500));
          return r && r->find("Pid:") != std::string::npos;
        },
        Ms(60000), Ms(10));
  }
  void reload() { child_.signal(SIGUSR2); }
  std::string log() const { return child_.log(); }
  void stop() { child_.stop(); }

  // From the master CLI's `show proc`: reloads so far and old workers still alive.
  struct Procs {
    bool ok = false;
    int reloads = 0;
    int workers = 0;
    int old_workers = 0;
  };
  Procs procs() const {
    Procs p;
    auto r = admin_query(master(), "show proc", Ms(2000), /*half_close=*/true);
    if (!r) return p;
    std::istringstream in(*r);
    std::string line;
    int section = 0;  // 0 master, 1 workers, 2 old workers
    while (std::getline(in, line)) {
      if (line.rfind("# workers", 0) == 0) {
        section = 1;
        continue;
      }
      if (line.rfind("# old workers", 0) == 0) {
        section = 2;
        continue;
      }
      if (line.empty() || line[0] == '#') {
        if (line.rfind("# programs", 0) == 0) section = 3;
        continue;
      }
      std::istringstream w(line);
      std::string pid, type, reloads;
      w >> pid >> type >> reloads;
      if (type == "master") {
        p.ok = true;
        p.reloads = std::atoi(reloads.c_str());
      } else if (section == 1) {
        ++p.workers;
      } else if (section == 2) {
        ++p.old_workers;
      }
    }
    return p;
  }

 private:
  std::string dir_;
  bool master_worker_;
  Child child_;
};

const char* kDefaults = R"(defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  retries 3
  option redispatch
)";

// A running elasticproxy daemon with its config in `dir`.
class Daemon {
 public:
  bool start(const std::string& dir, const std::string& yaml, std::string level = "warn") {
    dir_ = dir;
    if (const char* l = std::getenv("EP_BENCH_LOG_LEVEL"); l != nullptr && *l != '\0') level = l;
    write_file(dir + "/ep.yaml", yaml);
    std::vector<std::string> argv;
    if (const char* w = std::getenv("EP_BENCH_WRAP"); w != nullptr) {
      std::istringstream words(w);
      for (std::string word; words >> word;) argv.push_back(word);
    }
    for (std::string a : {elasticproxy_binary(), std::string("run"), std::string("-c"),
                          dir + "/ep.yaml", std::string("--log-level"), level})
      argv.push_back(a);
    return child_.start(argv, dir + "/ep.log");
  }
  pid_t pid() const { return child_.pid(); }
  bool running() { return child_.running(); }
  std::string log() const { return child_.log(); }
  int stop() { return child_.stop(); }

 private:
  std::string dir_;
  Child child_;
};

// `elasticproxy check -c <yaml>`: exit code and output.
std::pair<int, std::string> check_config(const std::string& dir, const std::string& yaml) {
  const std::string path = dir + "/check.yaml";
  write_file(path, yaml);
  Child c;
  c.start({elasticproxy_binary(), "check", "-c", path}, dir + "/check.log");
  int rc = c.wait(Ms(15000));
  if (rc < 0) rc = c.stop();
  return {rc, read_file(dir + "/check.log")};
}

std::string yaml_haproxy(const std::string& socket, const std::string& extra = "") {
  return "haproxy:\n  sockets: [" + socket + "]\n  binary: " + ep::test::haproxy_binary() + "\n" +
         extra;
}

// ---------------------------------------------------------------------------------------------
// 1. Convergence latency.

struct Probe {
  std::string socket;
  std::string backend;
  // True when a server with address:port `target` is listed.
  std::optional<bool> has(const std::string& target) const {
    auto s = servers(socket, backend, /*active_only=*/true);
    if (!s) return std::nullopt;
    for (const auto& [name, addr] : *s) {
      if (addr == target) return true;
    }
    return false;
  }
};

struct ConvergenceResult {
  std::string source;
  std::vector<double> ms;
  std::string error;
};

// Runs `n` changes: even i adds `extra`, odd i removes it. `change(add)` makes the change at the
// source. Times from just before the change to HAProxy confirming it.
bool measure_changes(int n, const Probe& probe, const std::string& extra,
                     const std::function<bool(bool)>& change, ConvergenceResult& out,
                     int gap_ms = 0) {
  for (int i = 0; i < n; ++i) {
    const bool add = i % 2 == 0;
    const auto t0 = steady_clock::now();
    if (!change(add)) {
      out.error = "change " + std::to_string(i) + " failed at the source";
      return false;
    }
    bool ok = wait_until(
        [&] {
          auto h = probe.has(extra);
          return h && *h == add;
        },
        Ms(10000), Ms(1));
    const double ms = ms_since(t0);
    if (!ok) {
      out.error = "change " + std::to_string(i) + " did not converge in 10 s";
      return false;
    }
    out.ms.push_back(ms);
    // Spread the changes (and let any trailing work finish) so each sample is independent.
    std::this_thread::sleep_for(gap_ms > 0 ? Ms(gap_ms) : Ms(15 + (i * 7) % 20));
  }
  return true;
}

const char* kOneBackend = R"(global
  stats socket @ADMIN@ level admin
)";

std::string backend_block(const std::string& name) {
  return "backend " + name + "\n  balance roundrobin\n";
}

ConvergenceResult convergence_file(int n, const std::string& base) {
  ConvergenceResult r{"file (inotify)", {}, {}};
  TempDir dir("conv");
  Haproxy hp(dir.path(), false);
  if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("web"))) {
    r.error = "haproxy did not start: " + hp.log();
    return r;
  }
  const std::string file = dir.path() + "/web.json";
  const auto targets = fake_targets(3, 20000, 0);
  write_file(file, file_sd({targets[0], targets[1]}));
  Daemon d;
  d.start(dir.path(), yaml_haproxy(hp.admin()) +
                          "metrics: {enabled: false}\nbackends:\n  - name: web\n"
                          "    drain_timeout: 0s\n    safety: {max_remove_fraction: 1.0}\n"
                          "    sources:\n      - file: {path: " +
                          file + "}\n");
  Probe probe{hp.admin(), "web"};
  if (!wait_until([&] { return probe.has(targets[1]).value_or(false); }, Ms(10000))) {
    r.error = "daemon did not converge: " + d.log();
    return r;
  }
  measure_changes(
      n, probe, targets[2],
      [&](bool add) {
        std::vector<std::string> t = {targets[0], targets[1]};
        if (add) t.push_back(targets[2]);
        write_file_atomic(file, file_sd(t));
        return true;
      },
      r);
  (void)base;
  return r;
}

ep::test::ConsulService consul_instance(const std::string& id, int port) {
  ep::test::ConsulService s;
  s.id = id;
  s.name = "web";
  s.node = "node-" + id;
  s.address = "127.0.0.1";
  s.port = port;
  return s;
}

// paced = the source's default rate limit (min_interval 100 ms + jitter, burst 5, one more per
// second) with changes 1.1 s apart; otherwise the rate limit relaxed so that back-to-back changes
// measure the event path alone.
ConvergenceResult convergence_consul(int n, bool paced) {
  ConvergenceResult r{
      paced ? "Consul (blocking query, double), default rate limit, changes 1.1 s apart"
            : "Consul (blocking query, double), rate limit relaxed",
      {},
      {}};
  TempDir dir("conv");
  Haproxy hp(dir.path(), false);
  if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("web"))) {
    r.error = "haproxy did not start";
    return r;
  }
  ep::test::ConsulDouble consul;
  consul.start();
  consul.set_no_jitter(true);
  consul.register_service(consul_instance("c0", 21000));
  consul.register_service(consul_instance("c1", 21001));
  Daemon d;
  d.start(dir.path(),
          yaml_haproxy(hp.admin()) +
              "metrics: {enabled: false}\nbackends:\n  - name: web\n"
              "    drain_timeout: 0s\n    safety: {max_remove_fraction: 1.0}\n"
              "    sources:\n      - consul: {address: \"" +
              consul.address() + "\", service: web" +
              (paced ? std::string() : ", min_interval: 0s, jitter: 0s, burst: 1000, refill: 1ms") +
              "}\n");
  Probe probe{hp.admin(), "web"};
  if (!wait_until([&] { return probe.has("127.0.0.1:21001").value_or(false); }, Ms(15000))) {
    r.error = "daemon did not converge: " + d.log();
    return r;
  }
  measure_changes(
      n, probe, "127.0.0.1:21002",
      [&](bool add) {
        if (add) {
          consul.register_service(consul_instance("c2", 21002));
          return true;
        }
        return consul.deregister_service("c2", "node-c2");
      },
      r, paced ? 1100 : 0);
  d.stop();
  consul.stop();
  return r;
}

ConvergenceResult convergence_etcd(int n) {
  ConvergenceResult r{"etcd (watch, real etcd)", {}, {}};
  TempDir dir("conv");
  Haproxy hp(dir.path(), false);
  if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("web"))) {
    r.error = "haproxy did not start";
    return r;
  }
  ep::test::EtcdFixture etcd;
  if (auto st = etcd.start(); !st.ok()) {
    r.error = "etcd did not start: " + st.error().message;
    return r;
  }
  auto value = [](int port) {
    return R"({"address":"127.0.0.1","port":)" + std::to_string(port) + "}";
  };
  (void)etcd.put("/svc/web/e0", value(22000));
  (void)etcd.put("/svc/web/e1", value(22001));
  Daemon d;
  d.start(dir.path(), yaml_haproxy(hp.admin()) +
                          "metrics: {enabled: false}\nbackends:\n  - name: web\n"
                          "    drain_timeout: 0s\n    safety: {max_remove_fraction: 1.0}\n"
                          "    sources:\n      - etcd: {endpoints: [" +
                          etcd.url() + "], prefix: /svc/web/}\n");
  Probe probe{hp.admin(), "web"};
  if (!wait_until([&] { return probe.has("127.0.0.1:22001").value_or(false); }, Ms(15000))) {
    r.error = "daemon did not converge: " + d.log();
    return r;
  }
  measure_changes(
      n, probe, "127.0.0.1:22002",
      [&](bool add) {
        return add ? etcd.put("/svc/web/e2", value(22002)).ok() : etcd.del("/svc/web/e2").ok();
      },
      r);
  d.stop();
  return r;
}

int cmd_convergence(const Args& a) {
  const int n = a.num("n", 100);
  const int n_paced = a.num("n-paced", 30);
  const std::string out = a.get("out", ".");
  std::printf(
      "| source | n | min ms | p50 ms | p99 ms | max ms | target p50 ≤ 5 ms, p99 ≤ 50 ms |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  int rc = 0;
  for (const auto& src : split_list(a.get("sources", "file,consul,etcd"))) {
    ConvergenceResult r = src == "file"           ? convergence_file(n, out)
                          : src == "consul"       ? convergence_consul(n, false)
                          : src == "consul-paced" ? convergence_consul(n_paced, true)
                          : src == "etcd"         ? convergence_etcd(n)
                                                  : ConvergenceResult{src, {}, "unknown source"};
    if (!r.error.empty() && r.ms.empty()) {
      std::printf("| %s | 0 | – | – | – | – | FAILED: %s |\n", r.source.c_str(),
                  r.error.substr(0, 120).c_str());
      std::fprintf(stderr, "%s: %s\n", src.c_str(), r.error.c_str());
      rc = 1;
      continue;
    }
    const double p50 = percentile(r.ms, 50), p99 = percentile(r.ms, 99);
    std::printf("| %s | %zu | %s | %s | %s | %s | %s%s |\n", r.source.c_str(), r.ms.size(),
                fmt_ms(percentile(r.ms, 0)).c_str(), fmt_ms(p50).c_str(), fmt_ms(p99).c_str(),
                fmt_ms(percentile(r.ms, 100)).c_str(), p50 <= 5 && p99 <= 50 ? "met" : "**missed**",
                r.error.empty() ? "" : (" (stopped early: " + r.error + ")").c_str());
    // CDF data for gnuplot: sorted latency, cumulative fraction.
    std::vector<double> v = r.ms;
    std::sort(v.begin(), v.end());
    std::string dat;
    for (size_t i = 0; i < v.size(); ++i) {
      dat += std::to_string(v[i]) + " " + std::to_string(double(i + 1) / double(v.size())) + "\n";
    }
    write_file(out + "/convergence_" + src + ".dat", dat);
  }
  return rc;
}

// ---------------------------------------------------------------------------------------------
// 2. Churn under load.

struct ChurnResult {
  std::string mode;
  std::string note;  // "not available in this build: ..." when skipped
  int changes = 0;
  WrkResult wrk;
  int reloads = 0;
  int old_workers_max = 0;
  int old_workers_end = 0;
  int stopped_backends = 0;
  int daemon_reloads_seen = 0;
};

std::string churn_haproxy_cfg(int fe_port, const std::vector<int>& ports, int slots = 0) {
  std::string s = R"(global
  stats socket @ADMIN@ level admin expose-fd listeners
)";
  s += kDefaults;
  s += "frontend fe\n  bind 127.0.0.1:" + std::to_string(fe_port) + "\n  default_backend web\n";
  s += "backend web\n  balance roundrobin\n";
  for (int p : ports) {
    s += "  server s" + std::to_string(p) + " 127.0.0.1:" + std::to_string(p) +
         " check inter 300ms rise 1 fall 2\n";
  }
  if (slots > 0) {
    s += "  server-template ep- " + std::to_string(slots) +
         " 127.0.0.1:1 check inter 300ms rise 1 fall 2 disabled\n";
  }
  return s;
}

std::string churn_template(int fe_port) {
  std::string s = R"(global
  stats socket @ADMIN@ level admin expose-fd listeners
)";
  s += kDefaults;
  s += "frontend fe\n  bind 127.0.0.1:" + std::to_string(fe_port) + "\n  default_backend web\n";
  s += "backend web\n  balance roundrobin\n  {{ servers \"web\" }}\n";
  return s;
}

// Frontend `fe`'s 5xx responses so far and backend `web`'s active servers (show stat).
std::pair<long, long> fe_5xx_and_active(const std::string& socket) {
  auto st = admin_query(socket, "show stat -1 3 -1", Ms(2000));
  if (!st || st->rfind("# ", 0) != 0) return {-1, -1};
  std::istringstream in(*st);
  std::string header, line;
  std::getline(in, header);
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    std::stringstream ss(l);
    for (std::string c; std::getline(ss, c, ',');) f.push_back(c);
    return f;
  };
  const auto cols = split(header.substr(2));
  auto col = [&](const char* name) {
    return static_cast<size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
  };
  const size_t h5 = col("hrsp_5xx"), act = col("act");
  long e = -1, a = -1;
  while (std::getline(in, line)) {
    auto f = split(line);
    if (f.size() < 2) continue;
    if (f[0] == "fe" && f[1] == "FRONTEND" && h5 < f.size()) e = std::atol(f[h5].c_str());
    if (f[0] == "web" && f[1] == "BACKEND" && act < f.size()) a = std::atol(f[act].c_str());
  }
  return {e, a};
}

ChurnResult run_churn(const std::string& mode, int seconds, int interval_ms, int threads,
                      int connections, const std::string& out) {
  ChurnResult r;
  r.mode = mode;
  TempDir dir("churn");
  const int fe_port = free_port();
  std::vector<std::unique_ptr<ep::test::HttpBackend>> live;
  for (int i = 0; i < 4; ++i) live.push_back(std::make_unique<ep::test::HttpBackend>("b"));
  auto ports_of = [&] {
    std::vector<int> p;
    for (const auto& b : live) p.push_back(b->port());
    return p;
  };
  auto targets_of = [&] {
    std::vector<std::string> t;
    for (const auto& b : live) t.push_back("127.0.0.1:" + std::to_string(b->port()));
    return t;
  };
  Haproxy hp(dir.path(), true);
  const std::string file = dir.path() + "/web.json";
  const std::string backend_yaml =
      "backends:\n  - name: web\n    server_options: \"check inter 300ms rise 1 fall 2\"\n"
      "    drain_timeout: 5s\n    safety: {max_remove_fraction: 1.0}\n"
      "    sources:\n      - file: {path: " +
      file + "}\n";
  std::string yaml;
  // Slot mode: enough slots for the live set plus the servers still draining.
  const int kSlots = 64;
  if (mode == "runtime") {
    yaml = yaml_haproxy(dir.path() + "/a.sock", "  update: runtime\n") +
           "metrics: {enabled: false}\n" + backend_yaml;
  } else if (mode == "slots") {
    yaml = yaml_haproxy(dir.path() + "/a.sock", "  update: runtime\n") +
           "metrics: {enabled: false}\n" + backend_yaml +
           "    mode: slots\n    slots: " + std::to_string(kSlots) + "\n";
  } else if (mode == "config") {
    std::string tmpl = churn_template(fe_port);
    for (size_t p; (p = tmpl.find("@ADMIN@")) != std::string::npos;)
      tmpl.replace(p, 7, dir.path() + "/a.sock");
    write_file(dir.path() + "/haproxy.cfg.tmpl", tmpl);
    yaml = yaml_haproxy(dir.path() + "/a.sock", "  update: config\n  template: " + dir.path() +
                                                    "/haproxy.cfg.tmpl\n  config: " + hp.cfg() +
                                                    "\n  master_socket: " + hp.master() +
                                                    "\n  pidfile: " + hp.pidfile() +
                                                    "\n  reload: {method: master-cli}\n") +
           "metrics: {enabled: false}\n" + backend_yaml;
    write_file(file, file_sd(targets_of()));
    write_file(hp.cfg(), churn_haproxy_cfg(fe_port, {}));
    auto [rc, out] = check_config(dir.path(), yaml);
    if (rc != 0) {
      // The first diagnostic (the line after the "configuration error:" header).
      std::string first;
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.find("configuration error:") == std::string::npos) {
          first = line.substr(line.find(": ") == std::string::npos ? 0 : line.find(": ") + 2);
          break;
        }
      }
      r.note = "not available in this build (`elasticproxy check` exit " + std::to_string(rc) +
               ": " + first.substr(0, 160) + ")";
      return r;
    }
  } else if (mode != "naive") {
    r.note = "unknown mode";
    return r;
  }

  // The naive script starts with its servers in the config; ElasticProxy (both modes) adds its
  // own (it never touches servers it did not create).
  if (!hp.start(churn_haproxy_cfg(fe_port, mode == "naive" ? ports_of() : std::vector<int>{},
                                  mode == "slots" ? kSlots : 0))) {
    r.note = "haproxy did not start: " + hp.log().substr(0, 300);
    return r;
  }
  Daemon d;
  if (mode != "naive") {
    write_file(file, file_sd(targets_of()));
    d.start(dir.path(), yaml, "info");  // the daemon's default level
  }
  auto listed = [&]() -> std::optional<std::set<int>> {
    // Slots: a freed slot is in maintenance (no traffic) whatever address it still holds.
    auto s = servers(hp.admin(), "web", /*active_only=*/mode == "slots");
    if (!s) return std::nullopt;
    std::set<int> ports;
    for (const auto& [name, addr] : *s) {
      ports.insert(std::atoi(addr.substr(addr.rfind(':') + 1).c_str()));
    }
    return ports;
  };
  if (!wait_until(
          [&] {
            auto l = listed();
            return l && l->size() == live.size();
          },
          Ms(15000), Ms(20))) {
    r.note = "did not converge before the load: " + d.log().substr(0, 300);
    return r;
  }
  std::this_thread::sleep_for(Ms(700));  // first health checks

  // The load.
  Child wrk;
  const std::string url = "http://127.0.0.1:" + std::to_string(fe_port) + "/";
  wrk.start({"wrk", "-t" + std::to_string(threads), "-c" + std::to_string(connections),
             "-d" + std::to_string(seconds) + "s", "--latency", "--timeout", "5s", url},
            dir.path() + "/wrk.out");
  std::atomic<bool> monitoring{true};
  // Timeline for the plots and for diagnosis: time, 5xx so far, active servers, old workers.
  std::string timeline = "# seconds fe_5xx web_active_servers old_workers\n";
  const auto t_load = steady_clock::now();
  std::thread monitor([&] {
    while (monitoring) {
      auto p = hp.procs();
      if (p.ok) r.old_workers_max = std::max(r.old_workers_max, p.old_workers);
      auto [e, act] = fe_5xx_and_active(hp.admin());
      char line[128];
      std::snprintf(line, sizeof line, "%.2f %ld %ld %d\n", ms_since(t_load) / 1000.0, e, act,
                    p.ok ? p.old_workers : -1);
      timeline += line;
      std::this_thread::sleep_for(Ms(100));
    }
  });

  // The churn: one backend in or out per tick, the live set between 3 and 6.
  std::vector<std::unique_ptr<ep::test::HttpBackend>> retiring;
  const auto start = steady_clock::now();
  auto next = start;
  int i = 0;
  while (steady_clock::now() - start < seconds * 1s - 300ms) {
    next += Ms(interval_ms);
    const bool add = live.size() <= 3 || (live.size() < 6 && i % 2 == 0);
    if (add) {
      live.push_back(std::make_unique<ep::test::HttpBackend>("b"));
    } else {
      retiring.push_back(std::move(live.front()));
      live.erase(live.begin());
    }
    ++i;
    if (mode == "naive") {
      std::string cfg = churn_haproxy_cfg(fe_port, ports_of());
      for (size_t p; (p = cfg.find("@ADMIN@")) != std::string::npos;) cfg.replace(p, 7, hp.admin());
      write_file_atomic(hp.cfg(), cfg);
      hp.reload();
    } else {
      write_file_atomic(file, file_sd(targets_of()));
    }
    ++r.changes;
    // Stop the backends HAProxy no longer lists (drained and removed), like an instance
    // terminated after deregistration.
    if (!retiring.empty()) {
      if (auto l = listed()) {
        for (auto it = retiring.begin(); it != retiring.end();) {
          if (l->count((*it)->port()) == 0) {
            it = retiring.erase(it);
            ++r.stopped_backends;
          } else {
            ++it;
          }
        }
      }
    }
    std::this_thread::sleep_until(next);
  }
  wait_until([&] { return !wrk.running(); }, Ms(15000), Ms(20));
  monitoring = false;
  monitor.join();
  r.wrk = parse_wrk(read_file(dir.path() + "/wrk.out"));
  auto p = hp.procs();
  r.reloads = p.reloads;
  r.old_workers_end = p.old_workers;
  r.old_workers_max = std::max(r.old_workers_max, p.old_workers);
  if (!r.wrk.ok) r.note = "wrk output not understood: " + r.wrk.raw.substr(0, 200);
  write_file(out + "/churn_" + mode + "_timeline.dat", timeline);
  // Failed requests: keep the daemon's and HAProxy's logs next to the results for diagnosis
  // (run.sh compresses them).
  if (r.wrk.ok && r.wrk.non2xx + r.wrk.socket_errors() > 0) {
    if (mode != "naive") write_file(out + "/churn_" + mode + "_elasticproxy.log", d.log());
    write_file(out + "/churn_" + mode + "_haproxy.log", hp.log());
  }
  if (mode != "naive") d.stop();
  hp.stop();
  return r;
}

int cmd_churn(const Args& a) {
  const int seconds = a.num("seconds", 60);
  const int interval = a.num("interval-ms", 100);
  const int threads = a.num("threads", 2);
  const int conns = a.num("connections", 16);
  const std::string out = a.get("out", ".");
  std::vector<ChurnResult> results;
  for (const auto& mode : split_list(a.get("modes", "runtime,slots,config,naive"))) {
    results.push_back(run_churn(mode, seconds, interval, threads, conns, out));
  }
  std::printf(
      "| mode | changes | backends stopped after removal | requests | non-2xx | socket errors "
      "(connect/read/write/timeout) | reloads | old HAProxy processes max / at end | p50 ms | p99 "
      "ms | max ms |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::string dat = "# mode errors p99_ms reloads old_max requests\n";
  for (const auto& r : results) {
    const std::string label =
        r.mode == "runtime"  ? "ElasticProxy `update: runtime` (dynamic servers)"
        : r.mode == "slots"  ? "ElasticProxy `update: runtime` (slot mode, `server-template`)"
        : r.mode == "config" ? "ElasticProxy `update: config` (debounced)"
                             : "naive: rewrite + reload per change";
    if (!r.note.empty() && !r.wrk.ok) {
      std::printf("| %s | – | – | – | – | – | – | – | – | – | %s |\n", label.c_str(),
                  r.note.c_str());
      continue;
    }
    const auto& w = r.wrk;
    std::printf(
        "| %s | %d | %d | %ld | %ld | %ld (%ld/%ld/%ld/%ld) | %d | %d / %d | %s | %s | %s |\n",
        label.c_str(), r.changes, r.stopped_backends, w.requests, w.non2xx, w.socket_errors(),
        w.connect_errors, w.read_errors, w.write_errors, w.timeouts, r.reloads, r.old_workers_max,
        r.old_workers_end, fmt_ms(w.p50_ms).c_str(), fmt_ms(w.p99_ms).c_str(),
        fmt_ms(w.max_ms).c_str());
    dat += "\"" + r.mode + "\" " + std::to_string(w.non2xx + w.socket_errors()) + " " +
           std::to_string(w.p99_ms) + " " + std::to_string(r.reloads) + " " +
           std::to_string(r.old_workers_max) + " " + std::to_string(w.requests) + "\n";
  }
  write_file(out + "/churn.dat", dat);
  // Headline lines (same run): failed requests, latency, reloads and throughput across modes.
  std::map<std::string, const ChurnResult*> by;
  for (const auto& r : results) {
    if (r.wrk.ok) by[r.mode] = &r;
  }
  auto errors = [](const ChurnResult* r) { return r->wrk.non2xx + r->wrk.socket_errors(); };
  std::string headline;
  char b[512];
  std::string e;
  for (const char* m : {"runtime", "slots", "config", "naive"}) {
    if (by.count(m))
      e += (e.empty() ? "" : ", ") + std::string(m) + " " + std::to_string(errors(by[m]));
  }
  if (!e.empty()) {
    headline += "Churn under wrk load, failed requests (non-2xx + socket errors): " + e + "\n";
  }
  if (by.count("runtime") && by.count("naive")) {
    const auto* rt = by["runtime"];
    const auto* nv = by["naive"];
    std::snprintf(b, sizeof b,
                  "Churn p99 latency: naive / runtime = %.1fx (%s ms vs %s ms); reloads: runtime "
                  "%d, naive %d (most old HAProxy processes alive at once: %d)\n",
                  rt->wrk.p99_ms > 0 ? nv->wrk.p99_ms / rt->wrk.p99_ms : 0.0,
                  fmt_ms(nv->wrk.p99_ms).c_str(), fmt_ms(rt->wrk.p99_ms).c_str(), rt->reloads,
                  nv->reloads, nv->old_workers_max);
    headline += b;
  }
  if (by.count("naive")) {
    std::string t;
    for (const char* m : {"runtime", "slots", "config"}) {
      if (!by.count(m) || by["naive"]->wrk.requests == 0) continue;
      std::snprintf(b, sizeof b, "%s%s / naive = %.2fx", t.empty() ? "" : ", ", m,
                    double(by[m]->wrk.requests) / double(by["naive"]->wrk.requests));
      t += b;
    }
    if (!t.empty()) {
      headline += "Churn throughput (requests served in the same time): " + t +
                  " (HAProxy 2.6 servers added with `add server` do not reuse backend "
                  "connections: table 2b)\n";
    }
  }
  write_file(out + "/churn_headline.txt", headline);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// 3. Bulk scale.

struct BulkRow {
  std::string what;
  double wall_ms = 0;  // change -> last admin-socket byte of the apply (or median)
  std::string spread;  // direct rows: min / max over the repeats
  CountingProxy::Counts c;
  bool ok = false;
  std::string target;
  // Timed rows (direct and floor): "<mode> <add|remove> <n> <ep|floor>", for --summary.
  std::string key;
};

std::string kinds(const CountingProxy::Counts& c) {
  std::string s;
  for (const auto& [k, v] : c.by_kind) s += (s.empty() ? "" : ", ") + k + " " + std::to_string(v);
  return s;
}

BulkRow apply_and_count(const std::string& what, CountingProxy& proxy,
                        const std::function<void()>& change, const std::function<bool()>& converged,
                        double target_ms) {
  BulkRow row;
  row.what = what;
  proxy.reset();
  const auto t0 = steady_clock::now();
  change();
  // Let the apply run undisturbed (a 10,000-row `show servers state` poll would compete with it
  // for HAProxy's CPU): wait for the daemon's traffic to start and stop, then confirm.
  wait_until([&] { return proxy.counts().bytes_out > 0; }, Ms(30000), Ms(1));
  proxy.wait_quiet(Ms(300), Ms(60000));
  row.ok = wait_until(converged, Ms(60000), Ms(20));
  proxy.wait_quiet(Ms(300), Ms(60000));
  row.c = proxy.counts();
  row.wall_ms = duration<double, std::milli>(row.c.last_activity - t0).count();
  if (target_ms > 0) {
    row.target = "≤ " + fmt_ms(target_ms) +
                 " ms: " + (row.ok && row.wall_ms <= target_ms ? "met" : "**missed**");
  }
  return row;
}

// The bulk floor: what the change costs HAProxy alone, sent by a bare client (no discovery, no
// reads, no checks of the replies), timed like the daemon's direct rows (from the first byte
// until the bench's 5 ms poll of the BACKEND row's `act` sees every server). Slots: `set server
// <b>/<s> addr <ip> port <p>` + `state ready` per server, removal `state maint`. Dynamic: `add
// server` + `state ready`, removal `state maint` + `del server`.
void rows_floor(std::vector<BulkRow>& rows, Haproxy& hp, int n, bool slots, int repeat) {
  const auto targets = fake_targets(n, 20000, 1);
  auto count = [&] { return static_cast<int>(active_servers(hp.admin(), "web").value_or(-1)); };
  std::vector<double> ms[2];
  bool ok[2] = {true, true};
  for (int rep = 0; rep < repeat; ++rep) {
    for (const bool add : {true, false}) {
      std::vector<std::string> lines;
      lines.reserve(static_cast<size_t>(2 * n));
      for (int i = 0; i < n; ++i) {
        const std::string& t = targets[static_cast<size_t>(i)];
        const std::string s = "web/" + std::string(slots ? "ep-" : "f") + std::to_string(i + 1);
        const std::string ip = t.substr(0, t.find(':')), port = t.substr(t.find(':') + 1);
        if (add) {
          lines.push_back(slots ? "set server " + s + " addr " + ip + " port " + port
                                : "add server " + s + " " + t);
          lines.push_back("set server " + s + " state ready");
        } else {
          lines.push_back("set server " + s + " state maint");
          if (!slots) lines.push_back("del server " + s);
        }
      }
      const auto t0 = steady_clock::now();
      ok[add] = bare_pipeline(hp.admin(), lines) >= 0 && ok[add];
      ok[add] = wait_until([&] { return count() == (add ? n : 0); }, Ms(60000), Ms(5)) && ok[add];
      ms[add].push_back(ms_since(t0));
      std::this_thread::sleep_for(Ms(300));
    }
  }
  for (const bool add : {true, false}) {
    BulkRow row;
    row.what =
        "floor: bare client, " + std::to_string(n) +
        (add ? std::string(" servers added") +
                   (slots ? " (set server addr+port, state ready)" : " (add server, state ready)")
             : std::string(" servers removed") +
                   (slots ? " (state maint)" : " (state maint, del server)")) +
        ", 500 commands per write";
    row.ok = ok[add];
    row.wall_ms = percentile(ms[add], 50);
    row.spread = ms[add].size() > 1 ? " (min " + fmt_ms(percentile(ms[add], 0)) + ", max " +
                                          fmt_ms(percentile(ms[add], 100)) + ", n " +
                                          std::to_string(ms[add].size()) + ")"
                                    : "";
    row.c.commands = -1;
    row.key = std::string(slots ? "slots " : "dynamic ") + (add ? "add " : "remove ") +
              std::to_string(n) + " floor";
    rows.push_back(row);
  }
}

int cmd_bulk(const Args& a) {
  std::vector<BulkRow> rows;
  // Cases "<mode>:<n>": dynamic (add/del server) or slots (server-template re-addressed).
  const std::string cases = a.get("cases", "direct-dynamic:1000,dynamic:1000");
  const int repeat = std::max(1, a.num("repeat", 1));
  for (const auto& c : split_list(cases == "none" ? "" : cases)) {
    // "direct-<mode>": no counting proxy; wall = until the bench's own poll (every 5 ms) sees
    // the result, to show what the proxy hop costs.
    // "floor-<mode>": no daemon; the bare admin-socket client (bare_pipeline) sends the minimum
    // commands for the same change, 500 per write on one connection, timed the same way.
    const bool floor = c.rfind("floor-", 0) == 0;
    const bool direct = c.rfind("direct-", 0) == 0;
    const size_t skip = direct ? 7 : (floor ? 6 : 0);
    const std::string mode = c.substr(skip, c.find(':') - skip);
    const int n = std::atoi(c.substr(c.find(':') + 1).c_str());
    const bool slots = mode == "slots";
    // "dynamic-reload": dynamic mode with config management (template, config, master CLI;
    // update: auto) and the default haproxy.reload.bulk_threshold: an addition over it is one
    // rendered, validated, confirmed reload instead of `add server` per server.
    const bool reload = mode == "dynamic-reload";
    TempDir dir("bulk");
    Haproxy hp(dir.path(), reload);
    std::string be = backend_block("web");
    if (slots) be += "  server-template ep- " + std::to_string(n + 1) + " 127.0.0.1:1 disabled\n";
    if (!hp.start(std::string(kOneBackend) + kDefaults + be)) {
      std::fprintf(stderr, "haproxy: %s\n", hp.log().c_str());
      return 1;
    }
    std::string managed;
    if (reload) {
      std::string tmpl = std::string(kOneBackend) + kDefaults + be + "  {{ servers \"web\" }}\n";
      for (size_t p; (p = tmpl.find("@ADMIN@")) != std::string::npos;) tmpl.replace(p, 7, hp.admin());
      write_file(dir.path() + "/haproxy.cfg.tmpl", tmpl);
      managed = "  template: " + dir.path() + "/haproxy.cfg.tmpl\n  config: " + hp.cfg() +
                "\n  master_socket: " + hp.master() + "\n  pidfile: " + hp.pidfile() +
                "\n  reload: {method: master-cli" +
                (a.get("bulk-threshold", "").empty()
                     ? std::string()
                     : ", bulk_threshold: " + a.get("bulk-threshold", "")) +
                "}\n";
    }
    if (floor) {
      rows_floor(rows, hp, n, slots, repeat);
      continue;
    }
    CountingProxy proxy(dir.path() + "/p.sock", hp.admin());
    const std::string file = dir.path() + "/web.json";
    const auto one = fake_targets(1, 30000, 0);
    write_file(file, file_sd(one));
    Daemon d;
    d.start(dir.path(),
            yaml_haproxy(direct ? hp.admin() : dir.path() + "/p.sock",
                         "  resync_interval: 10m\n" + managed) +
                "metrics: {enabled: false}\nbackends:\n  - name: web\n"
                "    drain_timeout: 0s\n" +
                (slots ? "    mode: slots\n    slots: " + std::to_string(n + 1) + "\n"
                       : std::string("    mode: dynamic\n")) +
                "    safety: {max_remove_fraction: 1.0}\n"
                "    sources:\n      - file: {path: " +
                file + "}\n");
    // The BACKEND row's active-server count: one short row however large the backend (a
    // 10,000-row `show servers state` every few ms would slow HAProxy down and skew the figure).
    auto count = [&] {
      auto m = active_servers(hp.admin(), "web");
      return m ? static_cast<int>(*m) : -1;
    };
    if (!wait_until([&] { return count() == 1; }, Ms(30000), Ms(20))) {
      std::fprintf(stderr, "daemon did not start: %s\n", d.log().c_str());
      return 1;
    }
    proxy.wait_quiet(Ms(300), Ms(5000));
    const double target = n <= 1000 ? 100 : (n <= 10000 ? 1000 : 0);
    auto many = fake_targets(n, 20000, 1);
    many.push_back(one[0]);
    const std::string how =
        std::string(slots    ? " (slots: set server addr)"
                    : reload ? " (dynamic, config management: one reload over bulk_threshold)"
                             : " (dynamic: add server)") +
        (direct ? ", no counting proxy" : "");
    if (direct) {
      // Repeated add / remove cycles on the same daemon and HAProxy: median (min–max).
      std::vector<double> ms[2];
      bool ok[2] = {true, true};
      // A removal is timed until HAProxy stops counting the servers active, but the daemon may
      // still be sending the rest of each server's steps (slots: `shutdown sessions`, the
      // placeholder address; dynamic: `del server`): on 2.6 that tail outlasted the pause below
      // and the next addition's time included it. So, untimed, wait for the whole removal: the
      // next addition starts from a quiet daemon, as the first one does.
      auto removed_whole = [&] {
        auto s = servers(hp.admin(), "web");
        if (!s) return false;
        if (!slots) return s->size() == 1;
        return std::count_if(s->begin(), s->end(), [](const auto& kv) {
                 return kv.second != "127.0.0.1:1";
               }) == 1;
      };
      for (int rep = 0; rep < repeat; ++rep) {
        for (const bool add : {true, false}) {
          const auto t0 = steady_clock::now();
          write_file_atomic(file, file_sd(add ? many : one));
          ok[add] =
              wait_until([&] { return count() == (add ? n + 1 : 1); }, Ms(60000), Ms(5)) && ok[add];
          ms[add].push_back(ms_since(t0));
          if (!add) ok[add] = wait_until(removed_whole, Ms(60000), Ms(20)) && ok[add];
          std::this_thread::sleep_for(Ms(300));
        }
      }
      for (const bool add : {true, false}) {
        BulkRow row;
        row.what = std::to_string(n) +
                   (add ? " servers added to one backend" + how
                        : std::string(" servers removed") +
                              (slots ? " (slots freed)" : " (del server)") + ", no counting proxy");
        row.ok = ok[add];
        row.wall_ms = percentile(ms[add], 50);
        row.spread = ms[add].size() > 1 ? " (min " + fmt_ms(percentile(ms[add], 0)) + ", max " +
                                              fmt_ms(percentile(ms[add], 100)) + ", n " +
                                              std::to_string(ms[add].size()) + ")"
                                        : "";
        row.c.commands = -1;
        row.key = std::string(slots ? "slots " : reload ? "dynamic-reload " : "dynamic ") +
                  (add ? "add " : "remove ") + std::to_string(n) + " ep";
        row.target = "≤ " + fmt_ms(target) +
                     " ms: " + (row.ok && row.wall_ms <= target ? "met" : "**missed**");
        rows.push_back(row);
      }
      if (const char* k = std::getenv("EP_BENCH_DUMP_LOG")) write_file(k, d.log());
      d.stop();
      continue;
    }
    rows.push_back(apply_and_count(
        std::to_string(n) + " servers added to one backend" + how, proxy,
        [&] { write_file_atomic(file, file_sd(many)); }, [&] { return count() == n + 1; }, 0));
    rows.push_back(apply_and_count(
        std::to_string(n) + " servers removed" + (slots ? " (slots freed)" : " (del server)"),
        proxy, [&] { write_file_atomic(file, file_sd(one)); }, [&] { return count() == 1; }, 0));
    d.stop();
  }
  const std::string boot = a.get("bootstrap", "1000x10");
  if (boot != "none") {
    const int nb = std::atoi(boot.c_str());
    const int ns = std::atoi(boot.substr(boot.find('x') + 1).c_str());
    for (const bool direct : {true, false}) {
      TempDir dir("boot");
      Haproxy hp(dir.path(), false);
      std::string cfg = std::string(kOneBackend) + kDefaults;
      std::string yaml =
          yaml_haproxy(direct ? hp.admin() : dir.path() + "/p.sock", "  resync_interval: 10m\n") +
          "metrics: {enabled: false}\nbackends:\n";
      for (int b = 0; b < nb; ++b) {
        char name[16];
        std::snprintf(name, sizeof name, "b%04d", b);
        cfg += backend_block(name);
        yaml += std::string("  - name: ") + name + "\n    sources:\n      - static: {servers: [";
        auto t = fake_targets(ns, 20000, b * ns);
        for (int k = 0; k < ns; ++k) yaml += (k ? ", " : "") + t[static_cast<size_t>(k)];
        yaml += "]}\n";
      }
      if (!hp.start(cfg)) {
        std::fprintf(stderr, "haproxy: %s\n", hp.log().c_str());
        return 1;
      }
      auto all_in = [&] {
        auto c = active_servers(hp.admin(), "-1");
        return c && *c == static_cast<long>(nb) * ns;
      };
      const std::string what =
          std::to_string(nb) + " backends × " + std::to_string(ns) + " servers at daemon start";
      Daemon d;
      if (direct) {
        BulkRow row;
        row.what = what + " (dynamic), no counting proxy";
        const auto t0 = steady_clock::now();
        d.start(dir.path(), yaml);
        row.ok = wait_until(all_in, Ms(60000), Ms(5));
        row.wall_ms = ms_since(t0);
        row.c.commands = -1;
        rows.push_back(row);
      } else {
        CountingProxy proxy(dir.path() + "/p.sock", hp.admin());
        rows.push_back(apply_and_count(
            what + " (dynamic)", proxy, [&] { d.start(dir.path(), yaml); }, all_in, 0));
      }
      d.stop();
    }
  }
  // --summary <file>: one line per timed row, "<mode> <add|remove> <n> <ep|floor> <ms> <ok>"
  // (bench/run.sh puts HAProxy 2.6 and 3.0 side by side from it).
  if (const std::string sum = a.get("summary", ""); !sum.empty()) {
    std::string text;
    for (const auto& r : rows) {
      if (!r.key.empty()) text += r.key + " " + fmt_ms(r.wall_ms) + " " + (r.ok ? "1" : "0") + "\n";
    }
    write_file(sum, text);
  }
  std::printf(
      "| change | wall ms | runtime commands | commands by kind | bytes sent / received | "
      "connections | target |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  int rc = 0;
  for (const auto& r : rows) {
    if (r.c.commands < 0) {
      std::printf("| %s | %s%s%s (until the bench's poll sees it) | – | – | – | – | %s |\n",
                  r.what.c_str(), r.ok ? "" : "FAILED ", fmt_ms(r.wall_ms).c_str(),
                  r.spread.c_str(), r.target.c_str());
      if (!r.ok) rc = 1;
      continue;
    }
    std::printf(
        "| %s | %s%s (to the last admin-socket byte, via the proxy) | %ld | %s | %ld / %ld | %ld | "
        "%s |\n",
        r.what.c_str(), r.ok ? "" : "FAILED ", fmt_ms(r.wall_ms).c_str(), r.c.commands,
        kinds(r.c).c_str(), r.c.bytes_out, r.c.bytes_in, r.c.connections, r.target.c_str());
    if (!r.ok) rc = 1;
  }
  return rc;
}

// ---------------------------------------------------------------------------------------------
// 3b. HAProxy's own cost and limit for dynamic servers in one backend, without ElasticProxy:
// `add server` in batches of 100 (one connection each) straight to the admin socket.

int cmd_haproxy_limit(const Args& a) {
  const int max = a.num("max", 10000);
  TempDir dir("limit");
  Haproxy hp(dir.path(), false);
  if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("web"))) return 1;
  std::printf("| dynamic servers already in the backend | ms for the next 100 `add server` |\n");
  std::printf("|---|---|\n");
  int added = 0;
  std::string end;
  const auto t0 = steady_clock::now();
  const auto targets = fake_targets(max, 20000, 0);
  for (int k = 0; k < max; k += 100) {
    std::string line;
    for (int i = k; i < std::min(k + 100, max); ++i) {
      line += (line.empty() ? "" : ";") + std::string("add server web/s") + std::to_string(i) +
              " " + targets[static_cast<size_t>(i)];
    }
    const auto t = steady_clock::now();
    auto r = admin_query(hp.admin(), line, Ms(30000));
    const double ms = ms_since(t);
    if (!r || !hp.running()) {
      end = hp.running() ? "HAProxy stopped answering" : "HAProxy died: " + hp.how_ended();
      break;
    }
    added = std::min(k + 100, max);
    if (k == 0 || (k + 100) % 1000 == 0) std::printf("| %d | %s |\n", k, fmt_ms(ms).c_str());
  }
  auto s = servers(hp.admin(), "web");
  std::printf("\n%s after %d servers were added (%s ms in total); HAProxy %s.\n",
              end.empty() ? "All added" : ("**" + end + "**").c_str(), added,
              fmt_ms(ms_since(t0)).c_str(),
              s ? ("lists " + std::to_string(s->size()) + " servers").c_str() : "does not answer");
  return 0;
}

// ---------------------------------------------------------------------------------------------
// 2b. Throughput through one config-declared server vs one server added with `add server`, to
// the same loopback backend: explains the throughput column of the churn table.

int cmd_server_kinds(const Args& a) {
  const int seconds = a.num("seconds", 5);
  TempDir dir("kinds");
  ep::test::HttpBackend backend("b");
  const int fe1 = free_port(), fe2 = free_port(), fe3 = free_port();
  const std::string target = "127.0.0.1:" + std::to_string(backend.port());
  Haproxy hp(dir.path(), false);
  if (!hp.start(
          std::string(kOneBackend) + kDefaults +
          "frontend f1\n  bind 127.0.0.1:" + std::to_string(fe1) +
          "\n  default_backend declared\nfrontend f2\n  bind 127.0.0.1:" + std::to_string(fe2) +
          "\n  default_backend dynamic\nfrontend f3\n  bind 127.0.0.1:" + std::to_string(fe3) +
          "\n  default_backend slots\n" + backend_block("declared") + "  server s1 " + target +
          " check inter 300ms rise 1 fall 2\n" + backend_block("dynamic") + backend_block("slots") +
          "  server-template ep- 4 127.0.0.1:1 check inter 300ms rise 1 fall 2 disabled\n")) {
    return 1;
  }
  admin_query(hp.admin(), "add server dynamic/d1 " + target + " check inter 300ms rise 1 fall 2");
  admin_query(hp.admin(), "enable health dynamic/d1;set server dynamic/d1 state ready");
  admin_query(hp.admin(), "set server slots/ep-1 addr 127.0.0.1 port " +
                              std::to_string(backend.port()) +
                              ";set server slots/ep-1 state ready");
  std::this_thread::sleep_for(Ms(700));
  std::printf(
      "| HAProxy server | requests/s | p50 ms | p99 ms | errors | backend connections (show stat "
      "`connect`) | reused (`reuse`) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& [label, port, be, srv] :
       std::vector<std::tuple<std::string, int, std::string, std::string>>{
           {"declared in haproxy.cfg", fe1, "declared", "s1"},
           {"added at runtime (`add server`)", fe2, "dynamic", "d1"},
           {"slot (`server-template`) re-addressed at runtime", fe3, "slots", "ep-1"}}) {
    Child wrk;
    wrk.start({"wrk", "-t2", "-c16", "-d" + std::to_string(seconds) + "s", "--latency",
               "http://127.0.0.1:" + std::to_string(port) + "/"},
              dir.path() + "/wrk-" + be + ".out");
    wrk.wait(Ms((seconds + 10) * 1000));
    WrkResult w = parse_wrk(read_file(dir.path() + "/wrk-" + be + ".out"));
    std::string connect = "?", reuse = "?";
    if (auto st = admin_query(hp.admin(), "show stat " + be + " -1 -1")) {
      std::istringstream in(*st);
      std::string header, line;
      std::getline(in, header);
      std::vector<std::string> cols;
      std::stringstream hs(header.substr(2));
      for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
      while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::stringstream ls(line);
        for (std::string c; std::getline(ls, c, ',');) f.push_back(c);
        if (f.size() < 2 || f[1] != srv) continue;
        for (size_t i = 0; i < cols.size() && i < f.size(); ++i) {
          if (cols[i] == "connect") connect = f[i];
          if (cols[i] == "reuse") reuse = f[i];
        }
      }
    }
    std::printf("| %s | %.0f | %s | %s | %ld | %s | %s |\n", label.c_str(),
                w.seconds > 0 ? double(w.requests) / w.seconds : 0.0, fmt_ms(w.p50_ms).c_str(),
                fmt_ms(w.p99_ms).c_str(), w.non2xx + w.socket_errors(), connect.c_str(),
                reuse.c_str());
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// 4. Footprint.

int cmd_footprint(const Args& a) {
  const int idle_s = a.num("idle-seconds", 60);
  const int n = a.num("servers", 10000);
  long rss_idle = -1, rss_big = -1;
  bool big_ok = false;
  double cpu_s = -1;
  std::string cpu_note;
  {
    TempDir dir("foot");
    Haproxy hp(dir.path(), false);
    if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("web"))) return 1;
    const std::string file = dir.path() + "/web.json";
    write_file(file, file_sd(fake_targets(2, 20000, 0)));
    Daemon d;
    d.start(dir.path(), yaml_haproxy(hp.admin()) +
                            "metrics: {listen: \"127.0.0.1:" + std::to_string(free_port()) +
                            "\"}\nbackends:\n  - name: web\n    drain_timeout: 0s\n"
                            "    safety: {max_remove_fraction: 1.0}\n"
                            "    sources:\n      - file: {path: " +
                            file + "}\n");
    wait_until(
        [&] {
          return servers(hp.admin(), "web").value_or(std::map<std::string, std::string>{}).size() ==
                 2;
        },
        Ms(10000));
    std::this_thread::sleep_for(Ms(1000));
    rss_idle = rss_kib(d.pid());
    d.stop();
  }
  {
    // 10,000 servers: slot mode (HAProxy 2.6's `add server` slows down with the backend's size,
    // see the haproxy-limit table; either mode ends with the same servers in the daemon).
    TempDir dir("foot");
    Haproxy hp(dir.path(), false);
    if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("web") +
                  "  server-template ep- " + std::to_string(n) + " 127.0.0.1:1 disabled\n")) {
      return 1;
    }
    const std::string file = dir.path() + "/web.json";
    write_file(file, file_sd(fake_targets(n, 20000, 0)));
    Daemon d;
    d.start(dir.path(),
            yaml_haproxy(hp.admin(), "  timeout: 30s\n") +
                "metrics: {listen: \"127.0.0.1:" + std::to_string(free_port()) +
                "\"}\nbackends:\n  - name: web\n    mode: slots\n    slots: " + std::to_string(n) +
                "\n    sources:\n      - file: {path: " + file + "}\n");
    big_ok = wait_until([&] { return active_servers(hp.admin(), "web").value_or(-1) == n; },
                        Ms(120000), Ms(50));
    std::this_thread::sleep_for(Ms(1000));
    rss_big = rss_kib(d.pid());
    d.stop();
  }
  {
    // Idle CPU with event sources: file (inotify), Consul (blocking query), etcd (watch).
    TempDir dir("idle");
    Haproxy hp(dir.path(), false);
    if (!hp.start(std::string(kOneBackend) + kDefaults + backend_block("f") + backend_block("c") +
                  backend_block("e"))) {
      return 1;
    }
    ep::test::ConsulDouble consul;
    consul.start();
    consul.register_service(consul_instance("c0", 21000));
    ep::test::EtcdFixture etcd;
    const bool have_etcd = etcd.start().ok();
    if (have_etcd) (void)etcd.put("/svc/e/e0", R"({"address":"127.0.0.1","port":22000})");
    const std::string file = dir.path() + "/f.json";
    write_file(file, file_sd(fake_targets(1, 20000, 0)));
    std::string yaml =
        yaml_haproxy(hp.admin()) + "metrics: {listen: \"127.0.0.1:" + std::to_string(free_port()) +
        "\"}\nbackends:\n" + "  - name: f\n    sources:\n      - file: {path: " + file + "}\n" +
        "  - name: c\n    sources:\n      - consul: {address: \"" + consul.address() +
        "\", service: web}\n";
    if (have_etcd) {
      yaml += "  - name: e\n    sources:\n      - etcd: {endpoints: [" + etcd.url() +
              "], prefix: /svc/e/}\n";
    } else {
      cpu_note = " (etcd did not start: file + Consul only)";
    }
    Daemon d;
    d.start(dir.path(), yaml);
    wait_until(
        [&] {
          auto c = server_counts(hp.admin());
          return c && (*c)["f"] == 1 && (*c)["c"] == 1 && (!have_etcd || (*c)["e"] == 1);
        },
        Ms(15000), Ms(20));
    std::this_thread::sleep_for(Ms(1000));
    const double c0 = cpu_seconds(d.pid());
    const auto t0 = steady_clock::now();
    std::this_thread::sleep_for(seconds(idle_s));
    const double c1 = cpu_seconds(d.pid());
    const double wall = ms_since(t0) / 1000.0;
    cpu_s = (c1 - c0) / wall * 3600.0;
    d.stop();
  }
  std::printf("| figure | value | target |\n|---|---|---|\n");
  std::printf(
      "| daemon RSS idle, 1 backend (file source, metrics on) | %.1f MiB | ≤ 10 MiB: %s |\n",
      rss_idle / 1024.0, rss_idle > 0 && rss_idle <= 10 * 1024 ? "met" : "**missed**");
  std::printf(
      "| daemon RSS with %d servers in one backend (slot mode)%s | %.1f MiB | ≤ 40 MiB: %s |\n", n,
      big_ok ? "" : " — **did not converge**", rss_big / 1024.0,
      rss_big > 0 && rss_big <= 40 * 1024 ? "met" : "**missed**");
  std::printf(
      "| CPU while idle with file + Consul + etcd sources, measured over %d s, scaled | %.2f "
      "CPU-s/hour%s | ≈ 0 (no busy polling) |\n",
      idle_s, cpu_s, cpu_note.c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------
// 6. Scale: B file backends x S servers and C Consul services on the double (half `watch:
// service`, half `watch: shared`, one instance each), all in one daemon against one HAProxy.

struct Scene {
  std::string label;
  int file_backends = 0;
  int servers = 10;
  int consul = 0;
  int changes = 100;
  int idle_s = 0;               // 0: no idle window
  std::string watch = "mixed";  // Consul: service, shared, or mixed (even service, odd shared)
};

struct SceneResult {
  std::string error;
  double start_file_ms = -1;  // daemon spawned -> HAProxy has every file server active
  double start_all_ms = -1;   // ... and every Consul one
  int threads = -1;
  int threads_idle = -1;  // again after the idle window
  int inotify = -1;
  MemoryKib mem;
  double idle_cpu_h = -1;     // daemon, CPU-s per hour
  double haproxy_cpu_h = -1;  // HAProxy over the same window
  double idle_wall_s = 0;
  std::vector<double> change_ms;
  std::vector<double> change_at_s;  // when each change was made (Unix time, s): to match logs
  double first_change_ms = -1;  // the one change made at once after convergence (not in change_ms)
};

FILE* g_scale_log = stderr;
// A time-stamped progress line (wall clock, ms since the epoch) in the step's log.
__attribute__((format(printf, 1, 2))) void scale_log(const char* format, ...) {
  std::fprintf(g_scale_log, "[%lld] ",
               static_cast<long long>(
                   duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()));
  va_list args;
  va_start(args, format);
  std::vfprintf(g_scale_log, format, args);
  va_end(args);
  std::fprintf(g_scale_log, "\n");
  std::fflush(g_scale_log);
}

// Active servers summed over the BACKEND rows of `show stat -1 2 -1`, by the first letter of the
// backend's name ('f' file, 'c' Consul). One row per backend whatever the number of servers.
std::optional<std::map<char, long>> active_by_kind(const std::string& socket) {
  auto reply = admin_query(socket, "show stat -1 2 -1", Ms(20000));
  if (!reply || reply->rfind("# ", 0) != 0) return std::nullopt;
  std::map<char, long> out;
  size_t pos = reply->find('\n');
  while (pos != std::string::npos && pos + 1 < reply->size()) {
    const size_t end = reply->find('\n', pos + 1);
    const std::string line = reply->substr(pos + 1, end - pos - 1);
    pos = end;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) f.push_back(c);
    // show stat CSV: act is column 19 (0-based) in every HAProxy 2.x.
    if (f.size() > 19 && f[1] == "BACKEND" && !f[0].empty())
      out[f[0][0]] += std::atol(f[19].c_str());
  }
  return out;
}

std::string scene_name(char kind, int i) {
  char name[16];
  std::snprintf(name, sizeof name, "%c%04d", kind, i);
  return name;
}

// One scene, alive from its constructor to finish(): HAProxy, the Consul double and the daemon,
// converged, then measured in blocks (measure()), so that two scenes can be measured in turns
// and share whatever the machine does meanwhile.
class SceneRun {
 public:
  SceneRun(Scene sc, std::string out)
      : sc_(std::move(sc)), out_(std::move(out)), dir_("scale"), hp_(dir_.path(), false) {
    start();
  }
  ~SceneRun() { finish(); }
  SceneRun(const SceneRun&) = delete;
  SceneRun& operator=(const SceneRun&) = delete;

  SceneResult& result() { return r_; }

  // While the other scene is measured this one is stopped (SIGSTOP to its daemon and HAProxy),
  // so that its own work (a resync every 10 s: tens of ms of both at 2,000 backends) does not
  // fall in the other's samples. Resumed, it gets a second for what fell due meanwhile (an
  // overdue resync) before its next block, like the second after convergence.
  void pause() { signal_all(SIGSTOP); }
  void resume() {
    signal_all(SIGCONT);
    std::this_thread::sleep_for(seconds(1));
  }

  // `n` more one-server changes in the probe backend (alternately an addition and its removal).
  void measure(int n) {
    if (!r_.error.empty() || finished_) return;
    for (int k = 0; k < n && r_.error.empty(); ++k, ++made_) {
      const double at = std::chrono::duration<double>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
      const auto ms = change(/*add=*/made_ % 2 == 0);
      if (!ms) {
        r_.error = "change " + std::to_string(made_) + " not visible in 10 s";
        break;
      }
      r_.change_ms.push_back(*ms);
      r_.change_at_s.push_back(at);
      std::this_thread::sleep_for(Ms(15 + (made_ * 7) % 20));
    }
  }

  // The idle window (if the scene has one), memory and threads, then everything stops.
  void finish() {
    if (finished_) return;
    finished_ = true;
    if (!started_) return;
    signal_all(SIGCONT);  // if paused
    scale_log("scene %s: %zu changes measured", sc_.label.c_str(), r_.change_ms.size());
    if (sc_.idle_s > 0 && r_.error.empty()) {
      // Let the follow-up polls of the last change finish, then measure a quiet window.
      std::this_thread::sleep_for(Ms(2000));
      const double d0 = cpu_seconds(d_.pid()), h0 = cpu_seconds(hp_.pid());
      const auto w0 = steady_clock::now();
      std::this_thread::sleep_for(seconds(sc_.idle_s));
      const double d1 = cpu_seconds(d_.pid()), h1 = cpu_seconds(hp_.pid());
      r_.idle_wall_s = ms_since(w0) / 1000.0;
      r_.idle_cpu_h = (d1 - d0) / r_.idle_wall_s * 3600.0;
      r_.haproxy_cpu_h = (h1 - h0) / r_.idle_wall_s * 3600.0;
      scale_log("idle %.1f s: daemon %.3f CPU-s, haproxy %.3f CPU-s", r_.idle_wall_s, d1 - d0,
                h1 - h0);
    }
    r_.mem = memory_kib(d_.pid());
    r_.threads_idle = thread_count(d_.pid());
    if (!d_.running() && r_.error.empty()) r_.error = "daemon exited: " + d_.log().substr(0, 300);
    d_.stop();
    write_file(out_ + "/scale_" + sc_.label + "_daemon.log", d_.log());
    std::string dat;
    for (size_t i = 0; i < r_.change_ms.size(); ++i) {
      char line[64];
      std::snprintf(line, sizeof line, "%.6f %.3f\n", r_.change_ms[i], r_.change_at_s[i]);
      dat += line;
    }
    write_file(out_ + "/scale_" + sc_.label + "_changes.dat", dat);
    if (sc_.consul > 0) consul_.stop();
  }

 private:
  void start() {
    scale_log("scene %s: %d file backends x %d servers, %d Consul services", sc_.label.c_str(),
              sc_.file_backends, sc_.servers, sc_.consul);
    std::string cfg = std::string(kOneBackend) + kDefaults;
    for (int b = 0; b < sc_.file_backends; ++b) cfg += backend_block(scene_name('f', b));
    for (int c = 0; c < sc_.consul; ++c) cfg += backend_block(scene_name('c', c));
    if (!hp_.start(cfg)) {
      r_.error = "haproxy did not start: " + hp_.log().substr(0, 300);
      return;
    }
    if (sc_.consul > 0) {
      consul_.start();
      consul_.set_no_jitter(true);
      for (int c = 0; c < sc_.consul; ++c) {
        ep::test::ConsulService s = consul_instance("i" + std::to_string(c), 30000 + c);
        s.name = scene_name('s', c);
        consul_.register_service(s);
      }
    }
    // The backend whose server changes: the middle file backend; drain_timeout 0 so that a
    // removal is one pass (as in the convergence section).
    const int probe_b = sc_.file_backends / 2;
    probe_name_ = scene_name('f', probe_b);
    const std::string files = dir_.path() + "/sd";
    std::filesystem::create_directories(files);
    std::string yaml = yaml_haproxy(hp_.admin()) +
                       "metrics: {listen: \"127.0.0.1:" + std::to_string(free_port()) +
                       "\"}\nbackends:\n";
    for (int b = 0; b < sc_.file_backends; ++b) {
      const std::string name = scene_name('f', b);
      write_file(files + "/" + name + ".json",
                 file_sd(fake_targets(sc_.servers, 20000, b * sc_.servers)));
      yaml += "  - name: " + name + "\n";
      if (b == probe_b) yaml += "    drain_timeout: 0s\n";
      yaml += "    sources:\n      - file: {path: " + files + "/" + name + ".json}\n";
    }
    for (int c = 0; c < sc_.consul; ++c) {
      yaml += "  - name: " + scene_name('c', c) + "\n    sources:\n      - consul: {address: \"" +
              consul_.address() + "\", service: " + scene_name('s', c) + ", watch: " +
              (sc_.watch != "mixed" ? sc_.watch
               : c % 2 == 0         ? "service"
                                    : "shared") +
              "}\n";
    }
    const long want_f = static_cast<long>(sc_.file_backends) * sc_.servers;
    const long want_c = sc_.consul;
    const auto t0 = steady_clock::now();
    if (!d_.start(dir_.path(), yaml)) {
      r_.error = "elasticproxy did not start";
      return;
    }
    started_ = true;
    const auto deadline = t0 + seconds(60);
    while (steady_clock::now() < deadline && (r_.start_file_ms < 0 || r_.start_all_ms < 0)) {
      if (!d_.running()) break;
      if (auto a = active_by_kind(hp_.admin())) {
        const double ms = ms_since(t0);
        if (r_.start_file_ms < 0 && (*a)['f'] >= want_f) r_.start_file_ms = ms;
        if (r_.start_all_ms < 0 && (*a)['f'] >= want_f && (*a)['c'] >= want_c)
          r_.start_all_ms = ms;
      }
      std::this_thread::sleep_for(Ms(5));
    }
    if (r_.start_all_ms < 0) {
      r_.error =
          d_.running() ? "did not converge in 60 s" : "daemon exited: " + d_.log().substr(0, 300);
      return;
    }
    scale_log("converged: file servers after %.0f ms, all after %.0f ms", r_.start_file_ms,
              r_.start_all_ms);
    r_.threads = thread_count(d_.pid());
    r_.inotify = inotify_instances(d_.pid());

    base_ = fake_targets(sc_.servers, 20000, probe_b * sc_.servers);
    extra_ = fake_targets(1, 40000, 0)[0];
    file_ = files + "/" + probe_name_ + ".json";
    // The figure is the steady state's. Right after convergence the daemon still reads once
    // more every backend it changed at start (follow-up reads, in passes of a few backends, for
    // a few hundred ms at this scale): one change is made at once and reported on its own, then
    // the measured changes start a second after convergence, in every scene alike.
    const auto converged_at = steady_clock::now();
    if (auto first = change(true)) {
      r_.first_change_ms = *first;
      if (!change(false)) r_.error = "the change back after the first change not visible in 10 s";
    } else {
      r_.error = "the first change after convergence not visible in 10 s";
    }
    std::this_thread::sleep_until(converged_at + seconds(1));
  }

  void signal_all(int sig) {
    if (d_.pid() > 0) ::kill(d_.pid(), sig);
    if (hp_.pid() > 0) ::kill(hp_.pid(), sig);
  }

  // The probe file rewritten by rename, then `show servers state <backend>` polled every 0.2 ms
  // until the extra server is listed (active) / gone.
  std::optional<double> change(bool add) {
    std::vector<std::string> t = base_;
    if (add) t.push_back(extra_);
    const auto c0 = steady_clock::now();
    write_file_atomic(file_, file_sd(t));
    while (steady_clock::now() - c0 < seconds(10)) {
      auto s = servers(hp_.admin(), probe_name_, /*active_only=*/true);
      if (s) {
        bool has = false;
        for (const auto& [n, addr] : *s) has = has || addr == extra_;
        if (has == add) return ms_since(c0);
      }
      std::this_thread::sleep_for(microseconds(200));
    }
    return std::nullopt;
  }

  const Scene sc_;
  const std::string out_;
  TempDir dir_;
  Haproxy hp_;
  ep::test::ConsulDouble consul_;
  Daemon d_;
  SceneResult r_;
  std::string probe_name_, file_, extra_;
  std::vector<std::string> base_;
  int made_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

int cmd_scale(const Args& a) {
  const int nb = a.num("backends", 1000);
  const int ns = a.num("servers", 10);
  const int nc = a.num("consul", 1000);
  const int changes = a.num("changes", 200);
  const int idle_s = a.num("idle-seconds", 60);
  const std::string watch = a.get("consul-watch", "mixed");
  const std::string out = a.get("out", ".");
  FILE* log = std::fopen((out + "/scale.log").c_str(), "w");
  if (log != nullptr) g_scale_log = log;
  const long inotify_limit =
      std::atol(read_file("/proc/sys/fs/inotify/max_user_instances").c_str());

  // A small scene first (the thread count "at 10"; 100 changes, not in the table). Then the
  // one-backend reference and the big scene, both alive, measured in turns (kBlocks blocks
  // each), so that what the machine does during the run (another VM's load, its frequency)
  // weighs on both figures of the ratio alike; the scene not measured is stopped meanwhile.
  SceneResult small;
  {
    SceneRun run({"small", 10, ns, 10, changes, 0, watch}, out);
    run.measure(std::min(changes, 100));  // its figures are not in the table
    run.finish();
    small = run.result();
  }
  SceneResult one, big;
  {
    SceneRun one_run({"one", 1, ns, 0, changes, 0, watch}, out);
    SceneRun big_run({"big", nb, ns, nc, changes, idle_s, watch}, out);
    constexpr int kBlocks = 4;
    big_run.pause();
    for (int block = 0; block < kBlocks; ++block) {
      const int n = changes / kBlocks + (block < changes % kBlocks ? 1 : 0);
      if (block > 0) one_run.resume();
      one_run.measure(n);
      one_run.pause();
      big_run.resume();
      big_run.measure(n);
      big_run.pause();
    }
    big_run.resume();
    one_run.finish();  // before the big scene's idle window, which then has the machine alone
    big_run.finish();
    one = one_run.result();
    big = big_run.result();
  }
  if (log != nullptr) std::fclose(log);
  for (const auto* s : {&one, &small, &big}) {
    if (!s->error.empty()) std::fprintf(stderr, "scene: %s\n", s->error.c_str());
  }

  auto yes = [](bool ok) { return ok ? "yes" : "**no**"; };
  auto ms = [](double v) { return v < 0 ? std::string("–") : fmt_ms(v); };
  const double p50 = percentile(big.change_ms, 50), p99 = percentile(big.change_ms, 99);
  const double p50_1 = percentile(one.change_ms, 50), p99_1 = percentile(one.change_ms, 99);
  const bool have_changes = big.change_ms.size() >= 100 && !one.change_ms.empty();
  const int threads_big = std::max(big.threads, big.threads_idle);
  const int threads_small = small.threads;
  std::printf("| figure | target | measured | met |\n|---|---|---|---|\n");
  std::printf(
      "| daemon threads (/proc/<pid>/task) | ≤ 16, the same at 10 and at %d backends | %d "
      "with %d file backends + %d Consul services (%d after the idle window); %d with 10 "
      "+ 10; %d with one backend | %s |\n",
      nb, threads_big, nb, nc, big.threads_idle, threads_small, one.threads,
      yes(threads_big > 0 && threads_big <= 16 && threads_big == threads_small));
  std::printf(
      "| start with the kernel's default inotify limit | works | %s; %d inotify "
      "instance(s) for %d file sources; fs.inotify.max_user_instances = %ld%s | %s |\n",
      big.start_all_ms >= 0 ? "converged" : "**did not converge**", big.inotify, nb, inotify_limit,
      inotify_limit == 128 ? " (the kernel's default)" : " (**not the default**)",
      yes(big.start_all_ms >= 0 && big.inotify == 1 && inotify_limit <= 128));
  std::printf(
      "| start → first convergence, %ld file servers (HAProxy `show stat` reports every "
      "one active) | ≤ 3 s | %s ms (all %ld servers incl. Consul: %s ms) | %s |\n",
      static_cast<long>(nb) * ns, ms(big.start_file_ms).c_str(), static_cast<long>(nb) * ns + nc,
      ms(big.start_all_ms).c_str(), yes(big.start_file_ms >= 0 && big.start_file_ms <= 3000));
  std::printf(
      "| one-server change → visible in HAProxy, p50 / p99 (n = %zu, from 1 s after "
      "convergence) | ≤ 3 ms / ≤ 5 ms | %s / %s ms (max %s; the one change made at once after "
      "convergence: %s ms, one backend: %s ms) | %s |\n",
      big.change_ms.size(), ms(p50).c_str(), ms(p99).c_str(),
      ms(percentile(big.change_ms, 100)).c_str(), ms(big.first_change_ms).c_str(),
      ms(one.first_change_ms).c_str(),
      yes(have_changes && p50 <= 3 && p99 <= 5));
  std::printf(
      "| … against one backend in the same run (n = %zu): p50 / p99 | within 1.5× | "
      "%s / %s ms: %.2f× / %.2f× | %s |\n",
      one.change_ms.size(), ms(p50_1).c_str(), ms(p99_1).c_str(), p50_1 > 0 ? p50 / p50_1 : 0.0,
      p99_1 > 0 ? p99 / p99_1 : 0.0, yes(have_changes && p50 <= 1.5 * p50_1 && p99 <= 1.5 * p99_1));
  std::printf(
      "| RSS / private memory (smaps_rollup, after the idle window) | report both; ≤ 40 "
      "MiB RSS | %.1f / %.1f MiB (peak RSS %.1f MiB) | %s |\n",
      big.mem.rss / 1024.0, big.mem.private_kib / 1024.0, big.mem.peak_rss / 1024.0,
      yes(big.mem.rss > 0 && big.mem.rss <= 40 * 1024));
  std::printf(
      "| idle CPU (utime+stime over %.0f s, × 3600 / window) | ≤ 10 CPU-s per hour | "
      "%.2f CPU-s/hour (HAProxy over the same window: %.2f) | %s |\n",
      big.idle_wall_s, big.idle_cpu_h, big.haproxy_cpu_h,
      yes(big.idle_cpu_h >= 0 && big.idle_cpu_h <= 10));
  int rc = 0;
  for (const auto* s : {&one, &small, &big}) {
    if (!s->error.empty()) {
      std::printf("\n*(a scene stopped early: %s)*\n", s->error.substr(0, 200).c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    std::fprintf(stderr, "usage: ep_bench_e2e convergence|churn|bulk|footprint [--key value]...\n");
    return 2;
  }
  const std::string cmd = argv[1];
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      std::fprintf(stderr, "expected --key value, got %s\n", k.c_str());
      return 2;
    }
    a.kv[k.substr(2)] = argv[i + 1];
  }
  if (cmd == "convergence") return cmd_convergence(a);
  if (cmd == "churn") return cmd_churn(a);
  if (cmd == "bulk") return cmd_bulk(a);
  if (cmd == "footprint") return cmd_footprint(a);
  if (cmd == "haproxy-limit") return cmd_haproxy_limit(a);
  if (cmd == "server-kinds") return cmd_server_kinds(a);
  if (cmd == "scale") return cmd_scale(a);
  std::fprintf(stderr, "unknown subcommand %s\n", cmd.c_str());
  return 2;
}
