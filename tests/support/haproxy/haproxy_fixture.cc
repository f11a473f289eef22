#include "support/haproxy/haproxy_fixture.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "net/unix_socket.h"
#include "support/eventually.h"
#include "support/haproxy/loopback.h"

namespace ep::test {

namespace {

using Clock = std::chrono::steady_clock;

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

// Waits for `pid` to exit within the (scaled) budget; true when reaped.
bool reap(pid_t pid, std::chrono::milliseconds budget) {
  return eventually(
      [&] {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
      },
      budget);
}

}  // namespace

HaproxyFixture::HaproxyFixture(std::string config_template, std::string binary)
    : binary_(std::move(binary)) {
  char tmpl[] = "/tmp/ephp.XXXXXX";
  if (char* d = ::mkdtemp(tmpl)) dir_ = d;
  socket_ = dir_ + "/admin.sock";
  cfg_path_ = dir_ + "/haproxy.cfg";
  config_ = std::move(config_template);
  for (int i = 0; i < kPorts; ++i) ports_.push_back(free_port());
  replace_all(config_, "@SOCKET@", socket_);
  replace_all(config_, "@DIR@", dir_);
  for (int i = 0; i < kPorts; ++i) {
    replace_all(config_, fmt::format("@PORT{}@", i), std::to_string(ports_[i]));
  }
}

HaproxyFixture::~HaproxyFixture() {
  kill9();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool HaproxyFixture::available(const std::string& binary) {
  std::string cmd = binary + " -v >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

std::string HaproxyFixture::log() const {
  std::ifstream in(dir_ + "/haproxy.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status HaproxyFixture::start(std::chrono::milliseconds timeout) {
  if (dir_.empty()) return Error::internal("could not create a temporary directory");
  if (running()) return Error::internal("haproxy is already running");
  {
    std::ofstream out(cfg_path_);
    out << config_ << "\n";
    if (!out) return Error::internal("cannot write " + cfg_path_);
  }
  std::string log_path = dir_ + "/haproxy.log";
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Error::internal("fork failed");
  if (pid == 0) {
    // If the test process dies without running destructors (crash, SIGKILL, timeout), take
    // haproxy down with it: no stray processes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execlp(binary_.c_str(), binary_.c_str(), "-db", "-f", cfg_path_.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pid_ = pid;
  int status = 0;
  bool exited = false;
  const bool ready = eventually(
      [&] {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) return exited = true;
        return admin("show info").find("\nPid: ") != std::string::npos;
      },
      timeout);
  if (exited) {
    pid_ = -1;
    return Error::unavailable(
        fmt::format("haproxy exited during startup (status {}):\n{}", status, log()));
  }
  if (ready) return {};
  kill9();
  return Error::unavailable(fmt::format("haproxy admin socket {} did not answer within {} ms:\n{}",
                                        socket_, scaled(timeout).count(), log()));
}

Status HaproxyFixture::stop() {
  if (!running()) return {};
  ::kill(pid_, SIGTERM);
  if (!reap(pid_, std::chrono::seconds(5))) {
    ::kill(pid_, SIGKILL);
    reap(pid_, std::chrono::seconds(5));
    pid_ = -1;
    return Error::unavailable("haproxy ignored SIGTERM for 5 s; killed");
  }
  pid_ = -1;
  return {};
}

void HaproxyFixture::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  reap(pid_, std::chrono::seconds(5));
  pid_ = -1;
}

Status HaproxyFixture::restart(std::chrono::milliseconds timeout) {
  if (auto st = stop(); !st) return st;
  return start(timeout);
}

std::string HaproxyFixture::admin(const std::string& line) const { return admin_query(socket_, line); }

std::string admin_query(const std::string& socket, const std::string& line) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  auto sock = net::UnixSocket::connect(socket, deadline);
  if (!sock) return "ERROR: " + sock.error().message;
  if (auto st = sock->write_all(line + "\n", deadline); !st) return "ERROR: " + st.error().message;
  auto reply = sock->read_to_eof(deadline);
  if (!reply) return "ERROR: " + reply.error().message;
  return *reply;
}

}  // namespace ep::test
