#include "haproxy/reload/reloader.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "haproxy/config/writer.h"
#include "net/unix_socket.h"
#include "os/process.h"

namespace ep::haproxy::reload {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One line on a fresh connection, reply read until HAProxy closes (non-interactive mode).
Result<std::string> one_shot(const std::string& path, const std::string& line,
                             Clock::time_point deadline) {
  auto sock = net::UnixSocket::connect(path, deadline);
  if (!sock) return sock.error();
  if (auto st = sock->write_all(line + "\n", deadline); !st) return st.error();
  return sock->read_to_eof(deadline, 1 << 20);
}

// Sleeps a little longer each time (5 ms .. 100 ms), never past the deadline.
class Backoff {
 public:
  explicit Backoff(Clock::time_point deadline) : deadline_(deadline) {}
  bool wait() {
    const auto now = Clock::now();
    if (now >= deadline_) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(step_, deadline_ - now));
    step_ = std::min(step_ * 2, milliseconds(100));
    return true;
  }

 private:
  Clock::time_point deadline_;
  milliseconds step_{5};
};

std::string worker_pids(const std::vector<ProcRow>& rows) {
  std::string out;
  for (const auto& r : rows) out += (out.empty() ? "" : ",") + std::to_string(r.pid);
  return out.empty() ? "none" : out;
}

bool alive(long pid) {
  return pid > 1 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

class MethodReloader : public Reloader {
 public:
  MethodReloader(Options options, Target target)
      : options_(std::move(options)), target_(std::move(target)) {}

  Method method() const override { return options_.method; }

  Result<std::string> reload() override {
    const auto deadline = Clock::now() + options_.timeout;
    const bool by_master = !target_.master_socket.empty() && options_.method != Method::kBinary;
    std::optional<ProcTable> before;
    if (by_master) {
      auto t = show_proc(target_.master_socket, deadline);
      if (!t) {
        return Error::unavailable("cannot reload: master CLI " + target_.master_socket + ": " +
                                  t.error().message);
      }
      before = *t;
    }
    long before_pid = 0;
    if (!target_.admin_socket.empty()) {
      if (auto p = worker_pid(target_.admin_socket, milliseconds(1000))) before_pid = *p;
    }
    std::vector<long> old_pids = read_pidfile(target_.pidfile);

    if (auto st = trigger(old_pids, deadline); !st) return st.error();

    if (options_.method == Method::kBinary) return confirm_binary(old_pids, before_pid, deadline);
    if (before) return confirm_master(*before, deadline);
    if (before_pid > 0) return confirm_pid(before_pid, deadline, old_pids);
    return std::string(to_string(options_.method)) +
           " exited 0 (not confirmed: no master socket, admin socket did not answer before)";
  }

 private:
  Status trigger(const std::vector<long>& old_pids, Clock::time_point deadline) {
    switch (options_.method) {
      case Method::kMasterCli: {
        // 2.6 answers nothing and closes the connection (the reload runs asynchronously).
        auto sock = net::UnixSocket::connect(target_.master_socket, deadline);
        if (!sock) {
          return Error::unavailable("cannot reload: master CLI " + target_.master_socket + ": " +
                                    sock.error().message);
        }
        if (auto st = sock->write_all("reload\n", deadline); !st) {
          return Error::unavailable("cannot reload: master CLI " + target_.master_socket + ": " +
                                    st.error().message);
        }
        (void)sock->read_to_eof(std::min(deadline, Clock::now() + milliseconds(2000)), 1 << 16);
        return {};
      }
      case Method::kSignal: {
        if (old_pids.empty()) {
          return Error::unavailable("cannot reload by signal: no pid in " + target_.pidfile);
        }
        const long master = old_pids.front();
        if (master <= 1) {
          return Error::unavailable("cannot reload by signal: bad pid in " + target_.pidfile);
        }
        if (::kill(static_cast<pid_t>(master), SIGUSR2) != 0) {
          return Error::unavailable("cannot send SIGUSR2 to pid " + std::to_string(master) +
                                    " (from " + target_.pidfile + "): " + std::strerror(errno));
        }
        return {};
      }
      case Method::kBinary: {
        std::vector<std::string> argv = {target_.binary, "-W", "-D",           "-f",
                                         target_.config, "-p", target_.pidfile};
        if (!target_.admin_socket.empty()) {
          argv.push_back("-x");
          argv.push_back(target_.admin_socket);
        }
        if (!target_.master_socket.empty()) {
          argv.push_back("-S");
          argv.push_back(target_.master_socket);
        }
        std::vector<long> live;
        for (long p : old_pids) {
          if (alive(p)) live.push_back(p);
        }
        if (!live.empty()) {
          argv.push_back("-sf");
          for (long p : live) argv.push_back(std::to_string(p));
        }
        return run(argv, deadline);
      }
      case Method::kSystemctl:
        return run({"systemctl", "reload", options_.unit}, deadline);
      case Method::kCommand:
        return run(options_.command, deadline);
      case Method::kNone:
        break;
    }
    return Error::invalid("no reload method configured");
  }

  Status run(const std::vector<std::string>& argv, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    os::ProcessOptions po;
    po.timeout = std::max(left, milliseconds(1));
    auto r = os::run_process(argv, po);
    if (!r) return r.error();
    if (r->timed_out) {
      return Error::unavailable(os::describe_command(argv) + " did not finish within " +
                                std::to_string(options_.timeout.count()) + " ms (killed)" +
                                (r->output.empty() ? "" : ":\n" + r->output));
    }
    if (r->exit_code != 0) {
      return Error::refused(os::describe_command(argv) + " failed (exit " +
                            std::to_string(r->exit_code) + ")" +
                            (r->output.empty() ? "" : ":\n" + r->output));
    }
    return {};
  }

  // HAProxy's reason for a refused reload. 2.6's master CLI does not say (the ALERTs go to the
  // master's stderr), so re-run the check that catches most causes.
  std::string reason() const {
    if (target_.config.empty())
      return "HAProxy's messages are in the master's log (stderr/journal)";
    Status v = config::validate_config(target_.binary, target_.config, options_.timeout);
    if (!v) return v.error().message;
    return target_.config +
           " passes `haproxy -c`, so the failure happened while starting (e.g. a port already in "
           "use); HAProxy's messages are in the master's log (stderr/journal)";
  }

  Result<std::string> confirm_master(const ProcTable& before, Clock::time_point deadline) {
    Backoff backoff(deadline);
    std::string last = "no answer";
    do {
      auto t = show_proc(target_.master_socket, deadline);
      if (!t) {
        last = t.error().message;
        continue;
      }
      const bool restarted_master = t->master_pid != before.master_pid;
      if (!restarted_master && t->master_reloads <= before.master_reloads) {
        last = "master reload counter still " + std::to_string(t->master_reloads);
        continue;
      }
      if (t->failed > 0) {
        return Error::refused("HAProxy refused the reload (show proc: master reloads " +
                              std::to_string(t->master_reloads) +
                              " [failed: " + std::to_string(t->failed) + "], old worker(s) " +
                              worker_pids(t->workers) + " keep serving): " + reason());
      }
      for (const auto& w : t->workers) {
        const bool is_new = std::none_of(before.workers.begin(), before.workers.end(),
                                         [&](const ProcRow& o) { return o.pid == w.pid; });
        if (is_new && w.reloads == 0) {
          return "master " + std::to_string(t->master_pid) + " reloads " +
                 std::to_string(before.master_reloads) + " -> " +
                 std::to_string(t->master_reloads) + ", new worker " + std::to_string(w.pid);
        }
      }
      last = "reload counted but no new worker yet (workers " + worker_pids(t->workers) + ")";
    } while (backoff.wait());
    return Error::unavailable("reload not confirmed within " +
                              std::to_string(options_.timeout.count()) + " ms: " + last);
  }

  Result<std::string> confirm_pid(long before_pid, Clock::time_point deadline,
                                  const std::vector<long>& old_pids) {
    Backoff backoff(deadline);
    std::string last;
    // A master that has not entered its loop yet (just started) drops SIGUSR2 [2.6.12]; without
    // a master CLI to tell a lost signal from a slow reload, send it once more (a second reload
    // is harmless).
    const auto resend_at = Clock::now() + options_.timeout / 3;
    bool resent = options_.method != Method::kSignal;
    do {
      if (!resent && Clock::now() >= resend_at) {
        resent = true;
        if (!old_pids.empty()) ::kill(static_cast<pid_t>(old_pids.front()), SIGUSR2);
      }
      auto p = worker_pid(target_.admin_socket, milliseconds(500));
      if (!p) {
        last = p.error().message;
        continue;
      }
      if (*p != before_pid) {
        return "worker pid " + std::to_string(before_pid) + " -> " + std::to_string(*p);
      }
      last = "worker pid still " + std::to_string(*p);
    } while (backoff.wait());
    return Error::unavailable("reload not confirmed within " +
                              std::to_string(options_.timeout.count()) + " ms: " + last +
                              " (HAProxy may have refused the new config: " + reason() + ")");
  }

  Result<std::string> confirm_binary(const std::vector<long>& old_pids, long before_pid,
                                     Clock::time_point deadline) {
    Backoff backoff(deadline);
    std::string last;
    do {
      auto pids = read_pidfile(target_.pidfile);
      if (pids.empty() || pids == old_pids || !alive(pids.front())) {
        last = "no new live pid in " + target_.pidfile;
        continue;
      }
      if (target_.admin_socket.empty()) return "new pid " + std::to_string(pids.front());
      auto p = worker_pid(target_.admin_socket, milliseconds(500));
      if (!p) {
        last = p.error().message;
        continue;
      }
      if (before_pid == 0 || *p != before_pid) {
        return "new master " + std::to_string(pids.front()) + ", worker pid " +
               std::to_string(before_pid) + " -> " + std::to_string(*p);
      }
      last = "admin socket still answered by pid " + std::to_string(*p);
    } while (backoff.wait());
    return Error::unavailable("reload not confirmed within " +
                              std::to_string(options_.timeout.count()) + " ms: " + last);
  }

  Options options_;
  Target target_;
};

}  // namespace

Result<ProcTable> show_proc(const std::string& master_socket, Clock::time_point deadline) {
  Backoff backoff(deadline);
  Error last = Error::unavailable("no attempt");
  do {
    // Unreachable while the master re-executes (ECONNREFUSED/ENOENT/reset): retry.
    // The master CLI keeps a non-interactive connection open until the client closes it: `quit`.
    auto reply = one_shot(master_socket, "show proc;quit", deadline);
    if (!reply) {
      last = reply.error();
      if (last.kind == ErrorKind::kInvalid) return last;  // path does not fit sockaddr_un
      continue;
    }
    auto t = parse_show_proc(*reply);
    if (t) return t;
    last = t.error();
  } while (backoff.wait());
  return last;
}

Result<long> worker_pid(const std::string& admin_socket, std::chrono::milliseconds timeout) {
  auto reply = one_shot(admin_socket, "show info", Clock::now() + timeout);
  if (!reply) return reply.error();
  const std::string& r = *reply;
  size_t at = r.find("\nPid: ");
  if (at == std::string::npos && r.rfind("Pid: ", 0) == 0) at = static_cast<size_t>(-1);
  if (at == std::string::npos) return Error::invalid("show info: no Pid line");
  const size_t start = at + 1 + 5;
  return std::strtol(r.c_str() + start, nullptr, 10);
}

std::vector<long> read_pidfile(const std::string& path) {
  std::vector<long> out;
  if (path.empty()) return out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    char* end = nullptr;
    const long pid = std::strtol(line.c_str(), &end, 10);
    if (pid > 0 && end != line.c_str()) out.push_back(pid);
  }
  return out;
}

std::unique_ptr<Reloader> make_reloader(const Options& options, const Target& target) {
  if (options.method == Method::kNone) return nullptr;
  return std::make_unique<MethodReloader>(options, target);
}

namespace {
Result<std::string> run_and_wait(const std::vector<std::string>& argv, const Target& target,
                                 std::chrono::milliseconds timeout);
}  // namespace

Result<std::string> start_master_worker(const Target& target, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {target.binary, "-W", "-D", "-f", target.config};
  if (!target.pidfile.empty()) {
    argv.push_back("-p");
    argv.push_back(target.pidfile);
  }
  if (!target.master_socket.empty()) {
    argv.push_back("-S");
    argv.push_back(target.master_socket);
  }
  return run_and_wait(argv, target, timeout);
}

Result<std::string> start_haproxy(const Options& options, const Target& target) {
  if (options.method == Method::kSystemctl) {
    return run_and_wait({"systemctl", "start", options.unit}, target, options.timeout);
  }
  return start_master_worker(target, options.timeout);
}

namespace {

Result<std::string> run_and_wait(const std::vector<std::string>& argv, const Target& target,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  os::ProcessOptions po;
  po.timeout = timeout;
  auto r = os::run_process(argv, po);
  if (!r) return r.error();
  if (r->timed_out || r->exit_code != 0) {
    return Error::refused(
        os::describe_command(argv) +
        (r->timed_out ? " timed out" : " failed (exit " + std::to_string(r->exit_code) + ")") +
        (r->output.empty() ? "" : ":\n" + r->output));
  }
  if (target.admin_socket.empty()) return "started: " + os::describe_command(argv);
  Backoff backoff(deadline);
  std::string last;
  do {
    auto p = worker_pid(target.admin_socket, std::chrono::milliseconds(500));
    if (!p) {
      last = p.error().message;
      continue;
    }
    // The master handles reload signals only once its own loop runs: wait for its CLI too.
    if (!target.master_socket.empty()) {
      auto t = show_proc(target.master_socket, deadline);
      if (!t)
        return Error::unavailable("started " + os::describe_command(argv) + " but the master CLI " +
                                  target.master_socket + " did not answer: " + t.error().message);
    }
    return "started (" + os::describe_command(argv) + "), worker pid " + std::to_string(*p);
  } while (backoff.wait());
  return Error::unavailable("started " + os::describe_command(argv) + " but " +
                            target.admin_socket + " did not answer within " +
                            std::to_string(timeout.count()) + " ms: " + last);
}

}  // namespace

}  // namespace ep::haproxy::reload
