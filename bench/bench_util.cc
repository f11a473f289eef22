#include "bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace ep::bench {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bool wait_until(const std::function<bool()>& pred, Ms timeout, Ms step) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  write_file(tmp, text);
  std::filesystem::rename(tmp, path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TempDir::TempDir(const std::string& tag) {
  std::string tmpl = "/tmp/epb-" + tag + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty() || std::getenv("EP_BENCH_KEEP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool Child::start(const std::vector<std::string>& argv, const std::string& log_path) {
  log_path_ = log_path;
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::_Exit(127);
  }
  return true;
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    ended_ = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                               : "signal " + std::to_string(WTERMSIG(status)) + " (" +
                                     strsignal(WTERMSIG(status)) + ")";
    return false;
  }
  return true;
}

void Child::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Child::wait(Ms timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(Ms(5));
  }
  return -1;
}

int Child::stop(Ms timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(Ms(5));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return 128 + SIGKILL;
}

std::string elasticproxy_binary() {
  if (const char* b = std::getenv("EP_BENCH_BINARY")) return b;
  return std::string(EP_BINARY_DIR) + "/src/app/elasticproxy";
}

namespace {

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> w;
  std::istringstream in(line);
  std::string s;
  while (in >> s) w.push_back(s);
  return w;
}

}  // namespace

std::optional<std::string> admin_query(const std::string& socket_path, const std::string& line,
                                       Ms timeout, bool half_close) {
  int fd = connect_unix(socket_path);
  if (fd < 0) return std::nullopt;
  const std::string msg = line + "\n";
  if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
    ::close(fd);
    return std::nullopt;
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

long bare_pipeline(const std::string& socket_path, const std::vector<std::string>& lines,
                   size_t batch, Ms timeout) {
  int fd = connect_unix(socket_path);
  if (fd < 0) return -1;
  // "prompt" first; every command then ends with "\n> " (an empty success is that alone).
  std::vector<std::string> writes{"prompt\n"};
  size_t expected = 1;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i % std::max<size_t>(batch, 1) == 0) writes.emplace_back();
    writes.back() += lines[i] + "\n";
    expected += 1 + static_cast<size_t>(std::count(lines[i].begin(), lines[i].end(), ';'));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t w = 0, off = 0, prompts = 0;
  long non_empty = 0;
  std::string tail;  // the unparsed end of what was read
  char buf[65536];
  while (prompts < expected) {
    const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, static_cast<short>(POLLIN | (w < writes.size() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    if ((p.revents & POLLOUT) && w < writes.size()) {
      ssize_t n =
          ::send(fd, writes[w].data() + off, writes[w].size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) break;
      if (n > 0 && (off += static_cast<size_t>(n)) == writes[w].size()) ++w, off = 0;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
      if (n < 0) continue;
      tail.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t pos; (pos = tail.find("\n> ", start)) != std::string::npos; start = pos + 3) {
        if (prompts++ > 0 && pos > start) ++non_empty;  // text before this prompt
      }
      tail.erase(0, start);
    }
  }
  ::close(fd);
  return prompts == expected ? non_empty : -1;
}

namespace {
// Rows of `show servers state`, columns by header name.
template <typename F>
bool for_each_state_row(const std::string& reply, F f) {
  std::istringstream in(reply);
  std::string line;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      header = words(line.substr(2));
      continue;
    }
    if (header.empty() || line.empty()) continue;
    auto w = words(line);
    if (w.size() < header.size()) continue;
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size(); ++i) row[header[i]] = w[i];
    f(row);
  }
  return !header.empty();
}
}  // namespace

std::optional<std::map<std::string, std::string>> servers(const std::string& socket_path,
                                                          const std::string& backend,
                                                          bool active_only) {
  auto reply = admin_query(socket_path, "show servers state " + backend, Ms(20000));
  if (!reply) return std::nullopt;
  std::map<std::string, std::string> out;
  bool ok = for_each_state_row(*reply, [&](std::map<std::string, std::string>& r) {
    if (active_only && (std::atoi(r["srv_admin_state"].c_str()) & 0x23) != 0) return;
    out[r["srv_name"]] = r["srv_addr"] + ":" + r["srv_port"];
  });
  if (!ok) return std::nullopt;
  return out;
}

std::optional<long> active_servers(const std::string& socket_path, const std::string& backend) {
  auto reply = admin_query(socket_path, "show stat " + backend + " 2 -1", Ms(20000));
  if (!reply || reply->rfind("# ", 0) != 0) return std::nullopt;
  std::istringstream in(*reply);
  std::string header, line;
  std::getline(in, header);
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    std::stringstream ss(l);
    for (std::string c; std::getline(ss, c, ',');) f.push_back(c);
    return f;
  };
  const auto cols = split(header.substr(2));
  size_t act = cols.size();
  for (size_t i = 0; i < cols.size(); ++i) {
    if (cols[i] == "act") act = i;
  }
  if (act == cols.size()) return std::nullopt;
  long total = 0;
  while (std::getline(in, line)) {
    auto f = split(line);
    if (f.size() > act && f.size() > 1 && f[1] == "BACKEND") total += std::atol(f[act].c_str());
  }
  return total;
}

std::optional<std::map<std::string, int>> server_counts(const std::string& socket_path) {
  auto reply = admin_query(socket_path, "show servers state", Ms(20000));
  if (!reply) return std::nullopt;
  std::map<std::string, int> out;
  bool ok = for_each_state_row(*reply,
                               [&](std::map<std::string, std::string>& r) { ++out[r["be_name"]]; });
  if (!ok) return std::nullopt;
  return out;
}

CountingProxy::CountingProxy(std::string listen_path, std::string target_path)
    : listen_path_(std::move(listen_path)), target_path_(std::move(target_path)) {
  ::unlink(listen_path_.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, listen_path_.c_str(), sizeof a.sun_path - 1);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  thread_ = std::thread([this] { accept_loop(); });
}

CountingProxy::~CountingProxy() {
  stop_ = true;
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  std::vector<std::thread> conns;
  {
    std::lock_guard lock(mu_);
    conns.swap(conns_);
  }
  for (auto& t : conns) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
  ::unlink(listen_path_.c_str());
}

CountingProxy::Counts CountingProxy::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

void CountingProxy::reset() {
  std::lock_guard lock(mu_);
  counts_ = Counts{};
  counts_.last_activity = std::chrono::steady_clock::now();
}

void CountingProxy::wait_quiet(Ms quiet, Ms timeout) const {
  wait_until(
      [&] {
        std::lock_guard lock(mu_);
        return std::chrono::steady_clock::now() - counts_.last_activity > quiet;
      },
      timeout, Ms(10));
}

void CountingProxy::accept_loop() {
  while (!stop_) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[1].revents) break;
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::lock_guard lock(mu_);
    ++counts_.connections;
    counts_.last_activity = std::chrono::steady_clock::now();
    conns_.emplace_back([this, c] { serve(c); });
  }
}

void CountingProxy::count_commands(std::string& pending, const char* data, size_t n) {
  pending.append(data, n);
  size_t start = 0;
  std::vector<std::string> cmds;
  for (size_t i = 0; i < pending.size(); ++i) {
    const char ch = pending[i];
    if (ch == '\\') {
      ++i;  // escaped character: never a separator
      continue;
    }
    if (ch == ';' || ch == '\n') {
      cmds.push_back(pending.substr(start, i - start));
      start = i + 1;
    }
  }
  pending.erase(0, start);
  std::lock_guard lock(mu_);
  for (const auto& c : cmds) {
    auto w = words(c);
    if (w.empty() || w[0] == "prompt" || w[0] == "quit") continue;
    ++counts_.commands;
    ++counts_.by_kind[w.size() >= 2 ? w[0] + " " + w[1] : w[0]];
  }
}

void CountingProxy::serve(int client) {
  int server = connect_unix(target_path_);
  if (server < 0) {
    ::close(client);
    return;
  }
  // One thread per direction: a single thread blocked sending a large batch to HAProxy while
  // HAProxy waits for its replies to be read would deadlock.
  auto pump = [this](int from, int to, bool outbound) {
    std::string pending;
    char buf[65536];
    for (;;) {
      pollfd p[2] = {{from, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents) break;
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (outbound) count_commands(pending, buf, static_cast<size_t>(n));
      {
        std::lock_guard lock(mu_);
        (outbound ? counts_.bytes_out : counts_.bytes_in) += n;
        counts_.last_activity = std::chrono::steady_clock::now();
      }
      size_t off = 0;
      while (off < static_cast<size_t>(n)) {
        ssize_t w = ::send(to, buf + off, static_cast<size_t>(n) - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += static_cast<size_t>(w);
      }
      if (off < static_cast<size_t>(n)) break;
    }
    ::shutdown(to, SHUT_WR);
  };
  std::thread back([&] { pump(server, client, false); });
  pump(client, server, true);
  back.join();
  ::close(client);
  ::close(server);
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double cpu_seconds(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  auto w = words(stat.substr(paren + 2));
  // After ")": state(3) ... utime is field 14, stime 15 (1-based over the whole line).
  if (w.size() < 13) return -1;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::stod(w[11]) + std::stod(w[12])) / ticks;
}

int thread_count(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/task", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

int inotify_instances(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code lec;
    if (std::filesystem::read_symlink(it->path(), lec).string() == "anon_inode:inotify") ++n;
  }
  return ec ? -1 : n;
}

MemoryKib memory_kib(pid_t pid) {
  MemoryKib m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  long priv = 0;
  bool any = false;
  while (std::getline(in, line)) {
    auto value = [&](const char* key) -> std::optional<long> {
      const size_t n = std::strlen(key);
      if (line.compare(0, n, key) != 0) return std::nullopt;
      return std::stol(line.substr(n));
    };
    if (auto v = value("Rss:")) m.rss = *v;
    for (const char* k : {"Private_Clean:", "Private_Dirty:", "Private_Hugetlb:"}) {
      if (auto v = value(k)) {
        priv += *v;
        any = true;
      }
    }
  }
  if (any) m.private_kib = priv;
  std::ifstream st("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(st, line)) {
    if (line.rfind("VmHWM:", 0) == 0) m.peak_rss = std::stol(line.substr(6));
  }
  return m;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

namespace {
double to_ms(double value, const std::string& unit) {
  if (unit == "us") return value / 1000.0;
  if (unit == "ms") return value;
  if (unit == "s") return value * 1000.0;
  if (unit == "m") return value * 60000.0;
  return value;
}
}  // namespace

WrkResult parse_wrk(const std::string& out) {
  WrkResult r;
  r.raw = out;
  std::smatch m;
  static const std::regex kReq(R"((\d+) requests in ([\d.]+)(\w+))");
  static const std::regex kNon2xx(R"(Non-2xx or 3xx responses: (\d+))");
  static const std::regex kSock(
      R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))");
  static const std::regex kP50(R"(\n\s+50%\s+([\d.]+)(\w+))");
  static const std::regex kP99(R"(\n\s+99%\s+([\d.]+)(\w+))");
  static const std::regex kMax(R"(Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(\w+))");
  if (std::regex_search(out, m, kReq)) {
    r.ok = true;
    r.requests = std::stol(m[1]);
    r.seconds = to_ms(std::stod(m[2]), m[3]) / 1000.0;
  }
  if (std::regex_search(out, m, kNon2xx)) r.non2xx = std::stol(m[1]);
  if (std::regex_search(out, m, kSock)) {
    r.connect_errors = std::stol(m[1]);
    r.read_errors = std::stol(m[2]);
    r.write_errors = std::stol(m[3]);
    r.timeouts = std::stol(m[4]);
  }
  if (std::regex_search(out, m, kP50)) r.p50_ms = to_ms(std::stod(m[1]), m[2]);
  if (std::regex_search(out, m, kP99)) r.p99_ms = to_ms(std::stod(m[1]), m[2]);
  if (std::regex_search(out, m, kMax)) r.max_ms = to_ms(std::stod(m[1]), m[2]);
  return r;
}

std::string file_sd(const std::vector<std::string>& targets) {
  std::string t;
  for (const auto& x : targets) t += (t.empty() ? "\"" : ", \"") + x + "\"";
  return "[{\"targets\": [" + t + "]}]\n";
}

std::vector<std::string> fake_targets(int n, int port, int offset) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n));
  for (int j = offset; j < offset + n; ++j) {
    out.push_back("127." + std::to_string(1 + j / 62500) + "." + std::to_string((j / 250) % 250) +
                  "." + std::to_string(1 + j % 250) + ":" + std::to_string(port));
  }
  return out;
}

}  // namespace ep::bench
