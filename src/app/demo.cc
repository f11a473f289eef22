// `elasticproxy demo`: a real HAProxy on loopback, local HTTP backends, a steady load through
// HAProxy, and ElasticProxy on the file source scaling the backend in and out. Removed backends
// are stopped only after ElasticProxy has drained and removed them, as a real deployment would
// terminate an instance after deregistration. The point: zero failed requests.

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "app/commands.h"
#include "app/daemon.h"
#include "app/wiring.h"
#include "core/log.h"
#include "core/metrics.h"
#include "net/curl_http_client.h"
#include "ops/http_server.h"

namespace ep::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int listen_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 512) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

int free_port() {
  int port = 0;
  int fd = listen_loopback(port);
  if (fd >= 0) ::close(fd);
  return port;
}

// A local backend: the project's HTTP server answering 200 with its name. Its port is fixed
// once chosen, so a restarted backend keeps its address.
class Backend {
 public:
  explicit Backend(int index) : index_(index) {}
  ~Backend() { stop(); }

  bool start() {
    if (server_) return true;
    if (port_ == 0) port_ = free_port();
    ops::HttpLimits limits;
    // HAProxy is one peer holding many connections (health checks, load): no per-peer cap.
    limits.max_connections = 1024;
    limits.max_connections_per_peer = 1024;
    const std::string body = fmt::format("backend-{}\n", index_);
    auto server = std::make_unique<ops::HttpServer>(
        [body](const ops::HttpRequest&) {
          ops::HttpResponse r;
          r.body = body;
          return r;
        },
        limits);
    if (Status st = server->start(target()); !st) {
      std::fprintf(stderr, "demo: backend %d: %s\n", index_, st.error().message.c_str());
      return false;
    }
    server_ = std::move(server);
    running_ = true;
    return true;
  }

  void stop() {
    running_ = false;
    if (server_) server_->stop();
    server_.reset();
  }

  int port() const { return port_; }
  bool running() const { return running_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int index_;
  int port_ = 0;
  std::atomic<bool> running_{false};
  std::unique_ptr<ops::HttpServer> server_;
};

struct LoadStats {
  std::atomic<long> sent{0};
  std::atomic<long> ok{0};
  std::atomic<long> failed{0};
  std::mutex mu;
  std::map<std::string, long> by_backend;
  std::map<std::string, long> failures;
};

// One request on a new connection (as many real clients do: `Connection: close`), through the
// project's HTTP client; returns "" on success, else why.
std::string request_once(net::HttpClient& client, int port, std::string& backend) {
  net::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  req.headers = {{"Host", "demo"}, {"Connection", "close"}};
  req.timeout = std::chrono::seconds(5);
  req.direct = true;  // HAProxy on loopback, whatever http_proxy says
  auto resp = client.perform(req);
  if (!resp) return resp.error().message;
  if (resp->status != 200) return "status " + std::to_string(resp->status);
  backend = resp->body;
  while (!backend.empty() && backend.back() == '\n') backend.pop_back();
  return "";
}

class HaproxyProcess {
 public:
  ~HaproxyProcess() { stop(); }
  bool start(const fs::path& config, const fs::path& log) {
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execlp("haproxy", "haproxy", "-db", "-f", config.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    return true;
  }
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) != 0) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  fs::rename(tmp, path);
}

std::string file_sd(const std::vector<const Backend*>& live) {
  std::string targets;
  for (const auto* b : live) targets += (targets.empty() ? "\"" : ", \"") + b->target() + "\"";
  return "[{\"targets\": [" + targets + "], \"labels\": {\"env\": \"demo\"}}]\n";
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
  const int fe_port = free_port();
  std::printf("ElasticProxy demo in %s\n", dir.c_str());

  // Local backends (their ports are fixed once chosen, so a restarted backend keeps its address).
  std::vector<std::unique_ptr<Backend>> backends;
  for (int i = 0; i < options.backends; ++i) {
    backends.push_back(std::make_unique<Backend>(i + 1));
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
  HaproxyProcess haproxy;
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
  std::vector<const Backend*> live;
  for (int i = 0; i < schedule[0]; ++i) live.push_back(backends[i].get());
  write_atomically(targets, file_sd(live));

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

  LoadStats stats;
  std::atomic<bool> loading{true};
  std::vector<std::thread> load;
  for (int t = 0; t < options.load_threads; ++t) {
    load.emplace_back([&] {
      net::CurlHttpClient client;
      while (loading) {
        std::string backend;
        std::string err = request_once(client, fe_port, backend);
        stats.sent++;
        if (err.empty()) {
          stats.ok++;
          std::lock_guard lock(stats.mu);
          stats.by_backend[backend]++;
        } else {
          stats.failed++;
          std::lock_guard lock(stats.mu);
          stats.failures[err]++;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  std::printf("[%s] load started: %d clients, a new connection per request\n",
              elapsed(start).c_str(), options.load_threads);

  // Scale in and out on a schedule. A backend leaving discovery is stopped only once
  // ElasticProxy has removed it from HAProxy; a joining one is started before it is announced.
  const auto step = options.duration / static_cast<long>(schedule.size());
  std::set<const Backend*> retiring;
  auto in_haproxy = [&](const Backend* b) {
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
          const_cast<Backend*>(*it)->stop();
          std::printf("[%s] backend %s removed from HAProxy; instance stopped\n",
                      elapsed(start).c_str(), (*it)->target().c_str());
          it = retiring.erase(it);
        } else {
          ++it;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (i == schedule.size()) break;
    const int want = schedule[i];
    if (want == 0) {
      std::printf("[%s] discovery has a bad minute: %s now lists no backend at all\n",
                  elapsed(start).c_str(), targets.filename().c_str());
      std::fflush(stdout);
      write_atomically(targets, "[]\n");
      continue;  // `live` stays what it was: those instances are still alive
    }
    std::vector<const Backend*> next;
    for (int b = 0; b < want; ++b) {
      Backend* be = backends[b].get();
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
    write_atomically(targets, file_sd(live));
  }
  loading = false;
  for (auto& t : load) t.join();
  daemon.stop();
  const bool haproxy_ok = haproxy.alive();
  haproxy.stop();
  for (auto& b : backends) b->stop();

  const double changes = Metrics::global().total("elasticproxy_changes_applied_total");
  std::printf("\n== ElasticProxy demo result\n");
  std::printf("requests sent: %ld, ok: %ld, failed: %ld\n", stats.sent.load(), stats.ok.load(),
              stats.failed.load());
  std::printf("runtime changes applied: %.0f, HAProxy reloads: 0\n", changes);
  for (const auto& [name, n] : stats.by_backend) std::printf("  %-12s %ld\n", name.c_str(), n);
  for (const auto& [why, n] : stats.failures) std::printf("  failed: %s x%ld\n", why.c_str(), n);
  if (!options.keep) fs::remove_all(dir);
  if (!haproxy_ok) std::printf("HAProxy died during the demo\n");
  return stats.failed.load() == 0 && stats.sent.load() > 0 && haproxy_ok ? kExitOk : kExitFailed;
}

}  // namespace ep::app
