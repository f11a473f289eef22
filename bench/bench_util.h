#pragma once
// Helpers for the end-to-end benchmarks (bench/e2e_bench.cc): child processes (the real
// elasticproxy and haproxy binaries), raw admin-socket queries, a counting Unix-socket proxy in
// front of HAProxy's admin socket, /proc readings, wrk output parsing and small statistics.
// Everything runs on loopback and under a private /tmp directory.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ep::bench {

using Ms = std::chrono::milliseconds;

double ms_since(std::chrono::steady_clock::time_point t0);

// Polls `pred` every `step` until true or `timeout`; returns the last value.
bool wait_until(const std::function<bool()>& pred, Ms timeout, Ms step = Ms(1));

void write_file(const std::string& path, const std::string& text);
// Temp file in the same directory + rename (what discovery producers do).
void write_file_atomic(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

// A private directory under /tmp (short: unix socket paths must be < 108 bytes); removed on
// destruction unless EP_BENCH_KEEP is set in the environment.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int free_port();

// A child process with stdout+stderr in a log file. The destructor SIGKILLs and reaps it.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool start(const std::vector<std::string>& argv, const std::string& log_path);
  pid_t pid() const { return pid_; }
  bool running();
  // How it ended once running() returned false: "exit 3", "signal 11 (Segmentation fault)".
  const std::string& how_ended() const { return ended_; }
  void signal(int sig);
  // SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit status code (or 128+signal).
  int stop(Ms timeout = Ms(5000));
  // Waits for the child to exit by itself; its exit code (128+signal), or -1 after `timeout`.
  int wait(Ms timeout);
  std::string log() const { return read_file(log_path_); }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::string ended_;
};

std::string elasticproxy_binary();

// One line to a Unix stream socket in HAProxy's non-interactive mode; the reply up to the close.
// nullopt when the socket cannot be reached.
// `half_close` shuts the write side after the line (the master CLI waits for it, like socat does).
std::optional<std::string> admin_query(const std::string& socket_path, const std::string& line,
                                       Ms timeout = Ms(5000), bool half_close = false);

// The bare admin-socket client of the bulk floor: one prompt-mode connection, every line sent
// in writes of `batch` lines (read while writing, so neither side blocks), one prompt read per
// `;`-separated command. Returns the number of replies that were not empty (HAProxy's errors and
// notices), or -1 when the socket fails or the replies stop before `timeout`.
long bare_pipeline(const std::string& socket_path, const std::vector<std::string>& lines,
                   size_t batch = 500, Ms timeout = Ms(60000));

// `show servers state <backend>`: server name -> "addr:port", read by the header's columns.
// `active_only` skips servers in maintenance (srv_admin_state & 0x23: free slots, servers being
// added or removed). nullopt when HAProxy does not answer or the reply has no header.
std::optional<std::map<std::string, std::string>> servers(const std::string& socket_path,
                                                          const std::string& backend,
                                                          bool active_only = false);
// Active (UP, not in maintenance) servers from the BACKEND rows of `show stat <backend> 2 -1`
// (`act` column; "-1" = every backend, summed). A cheap probe: one row per backend, whatever the
// number of servers. nullopt when HAProxy does not answer.
std::optional<long> active_servers(const std::string& socket_path, const std::string& backend);
// `show servers state` for every backend: backend -> number of servers.
std::optional<std::map<std::string, int>> server_counts(const std::string& socket_path);

// A Unix-socket proxy in front of HAProxy's admin socket that counts what goes through:
// connections, bytes each way and commands (split on unescaped `;` and newlines, "prompt" and
// "quit" excluded) by their first two words. One thread per connection.
class CountingProxy {
 public:
  CountingProxy(std::string listen_path, std::string target_path);
  ~CountingProxy();
  bool ok() const { return listen_fd_ >= 0; }

  struct Counts {
    long connections = 0;
    long bytes_out = 0;  // client -> HAProxy
    long bytes_in = 0;   // HAProxy -> client
    long commands = 0;
    std::map<std::string, long> by_kind;  // "add server", "del server", "set server", ...
    std::chrono::steady_clock::time_point last_activity{};
  };
  Counts counts() const;
  void reset();
  // Waits until no byte went through for `quiet` (or `timeout`).
  void wait_quiet(Ms quiet, Ms timeout) const;

 private:
  void accept_loop();
  void serve(int client);
  void count_commands(std::string& pending, const char* data, size_t n);

  std::string listen_path_;
  std::string target_path_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  Counts counts_;
  std::thread thread_;
  std::vector<std::thread> conns_;
};

// /proc readings.
long rss_kib(pid_t pid);
double cpu_seconds(pid_t pid);  // utime + stime of the process (all threads)
// Entries in /proc/<pid>/task (-1 when unreadable).
int thread_count(pid_t pid);
// Open fds of the process that are inotify instances (anon_inode:inotify).
int inotify_instances(pid_t pid);
// From /proc/<pid>/smaps_rollup: Rss, and private memory = Private_Clean + Private_Dirty (+
// Private_Hugetlb); from /proc/<pid>/status: VmHWM (peak RSS). -1 when unreadable.
struct MemoryKib {
  long rss = -1;
  long private_kib = -1;
  long peak_rss = -1;
};
MemoryKib memory_kib(pid_t pid);

// Statistics over samples.
double percentile(std::vector<double> v, double p);  // nearest rank, p in [0, 100]

struct WrkResult {
  bool ok = false;
  long requests = 0;
  double seconds = 0;
  long non2xx = 0;
  long connect_errors = 0, read_errors = 0, write_errors = 0, timeouts = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::string raw;
  long socket_errors() const { return connect_errors + read_errors + write_errors + timeouts; }
};
// Parses `wrk --latency` output.
WrkResult parse_wrk(const std::string& out);

// file_sd JSON (Prometheus shape) for the given "ip:port" targets.
std::string file_sd(const std::vector<std::string>& targets);
// n distinct never-contacted loopback addresses "127.0.X.Y:port" (no checks are configured).
std::vector<std::string> fake_targets(int n, int port = 20000, int offset = 0);

}  // namespace ep::bench
