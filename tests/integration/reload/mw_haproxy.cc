#include "integration/reload/mw_haproxy.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "haproxy/reload/reloader.h"
#include "net/unix_socket.h"
#include "os/process.h"
#include "support/eventually.h"
#include "support/haproxy/haproxy_binary.h"
#include "support/haproxy/loopback.h"

namespace ep::test {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

std::string one_shot(const std::string& path, const std::string& line) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  auto sock = net::UnixSocket::connect(path, deadline);
  if (!sock) return "ERROR: " + sock.error().message;
  if (auto st = sock->write_all(line + "\n", deadline); !st) return "ERROR: " + st.error().message;
  auto r = sock->read_to_eof(deadline);
  return r ? *r : "ERROR: " + r.error().message;
}

// Daemonized HAProxy processes are not our children: when nobody reaps them they linger as
// zombies, which kill(pid, 0) still reports. Read the state from /proc instead.
bool alive(long pid) {
  if (pid <= 1 || ::kill(static_cast<pid_t>(pid), 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const size_t paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] != 'Z';
}

}  // namespace

MwHaproxy::MwHaproxy(std::string config_text) : text_(std::move(config_text)) {
  char tmpl[] = "/tmp/eprl-XXXXXX";
  if (char* d = ::mkdtemp(tmpl)) dir_ = d;
  cfg_ = dir_ + "/haproxy.cfg";
  pidfile_ = dir_ + "/haproxy.pid";
  admin_ = dir_ + "/a.sock";
  master_ = dir_ + "/m.sock";
  for (int& p : ports_) p = free_port();
}

MwHaproxy::~MwHaproxy() {
  track();
  for (long p : haproxy::reload::read_pidfile(pidfile_)) pids_.insert(p);
  for (long p : pids_) {
    if (alive(p)) ::kill(static_cast<pid_t>(p), SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(3));
  for (long p : pids_) {
    eventually([&] { return !alive(p) || std::chrono::steady_clock::now() >= deadline; },
               std::chrono::seconds(3));
    if (alive(p)) ::kill(static_cast<pid_t>(p), SIGKILL);
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string MwHaproxy::expand(std::string text) const {
  replace_all(text, "@DIR@", dir_);
  replace_all(text, "@ADMIN@", admin_);
  for (int i = 0; i < 5; ++i)
    replace_all(text, "@PORT" + std::to_string(i) + "@", std::to_string(ports_[i]));
  return text;
}

void MwHaproxy::write_config(const std::string& text) const {
  std::ofstream(cfg_, std::ios::trunc) << expand(text);
}

Status MwHaproxy::start() {
  write_config(text_);
  auto r =
      os::run_process({haproxy_binary(), "-W", "-D", "-f", cfg_, "-p", pidfile_, "-S", master_});
  if (!r) return r.error();
  log_ = r->output;
  if (r->exit_code != 0) return Error::unavailable("haproxy did not start: " + r->output);
  // Ready = the worker answers and the master runs its loop (before that it drops SIGUSR2).
  const bool ready = eventually(
      [&] {
        return admin("show info").find("Pid: ") != std::string::npos &&
               master("show proc").find("master") != std::string::npos;
      },
      std::chrono::seconds(10));
  if (ready) {
    track();
    return {};
  }
  return Error::unavailable("admin socket did not answer: " + log_);
}

std::string MwHaproxy::admin(const std::string& line) const { return one_shot(admin_, line); }
std::string MwHaproxy::master(const std::string& line) const {
  return one_shot(master_, line + ";quit");  // the master CLI waits for the client to close
}

void MwHaproxy::track() {
  for (long p : haproxy::reload::read_pidfile(pidfile_)) pids_.insert(p);
  auto t = haproxy::reload::parse_show_proc(master("show proc"));
  if (!t) return;
  pids_.insert(t->master_pid);
  for (const auto& w : t->workers) pids_.insert(w.pid);
  for (const auto& w : t->old_workers) pids_.insert(w.pid);
}

haproxy::reload::Target MwHaproxy::target() const {
  haproxy::reload::Target t;
  t.binary = haproxy_binary();
  t.config = cfg_;
  t.pidfile = pidfile_;
  t.master_socket = master_;
  t.admin_socket = admin_;
  return t;
}

std::string MwHaproxy::log() const { return log_; }

std::map<std::string, std::map<std::string, std::string>> servers_state(
    const MwHaproxy& hp, const std::string& backend) {
  std::istringstream in(hp.admin("show servers state " + backend));
  std::vector<std::string> header;
  std::map<std::string, std::map<std::string, std::string>> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<std::string> w;
    for (std::string x; ls >> x;) w.push_back(x);
    if (w.empty()) continue;
    if (w[0] == "#") {
      header.assign(w.begin() + 1, w.end());
      continue;
    }
    if (header.empty() || w.size() < header.size()) continue;
    std::map<std::string, std::string> f;
    for (size_t i = 0; i < header.size(); ++i) f[header[i]] = w[i];
    out[f["srv_name"]] = std::move(f);
  }
  return out;
}

std::string servers_summary(const MwHaproxy& hp, const std::string& backend) {
  std::string out;
  for (auto& [name, f] : servers_state(hp, backend)) {
    out += name + " " + f["srv_addr"] + ":" + f["srv_port"] + " " + f["srv_uweight"] + " " +
           f["srv_admin_state"] + "\n";
  }
  return out;
}

}  // namespace ep::test
