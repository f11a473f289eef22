#include "dns/dnsmasq_fixture.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "support/eventually.h"
#include "support/haproxy/loopback.h"

namespace ep::test {
namespace {

// True when something answers DNS over TCP on the port (dnsmasq opens TCP and UDP together).
bool tcp_listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

DnsmasqFixture::DnsmasqFixture(std::string local_domain, int ttl)
    : local_domain_(std::move(local_domain)), ttl_(ttl), port_(free_port()) {}

DnsmasqFixture::~DnsmasqFixture() { process_.kill(); }

std::string DnsmasqFixture::log() const { return read_text(dir_.path() + "/dnsmasq.log"); }

Status DnsmasqFixture::start(const std::vector<std::string>& lines) {
  const std::string conf = dir_.path() + "/dnsmasq.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << "local=/" << local_domain_ << "/\n";
    out << "local-ttl=" << ttl_ << "\n";
    for (const auto& l : lines) out << l << "\n";
  }
  std::vector<std::string> argv = {"dnsmasq",
                                   "--no-daemon",
                                   "--port=" + std::to_string(port_),
                                   "--listen-address=127.0.0.1",
                                   "--bind-interfaces",
                                   "--no-resolv",
                                   "--no-hosts",
                                   "--no-poll",
                                   "--pid-file=",
                                   "--user=" + std::string(::geteuid() == 0 ? "root" : ""),
                                   "--conf-file=" + conf};
  if (::geteuid() != 0) argv.erase(argv.begin() + 9);
  if (auto s = process_.start(argv, dir_.path() + "/dnsmasq.log"); !s) return s;
  bool exited = false;
  const bool ready = eventually(
      [&] {
        if (!process_.running()) return exited = true;
        return tcp_listening(port_);
      },
      std::chrono::seconds(10));
  if (exited) return Error::unavailable("dnsmasq exited:\n" + log());
  if (ready) return {};
  return Error::unavailable("dnsmasq did not start:\n" + log());
}

Status DnsmasqFixture::set_records(const std::vector<std::string>& lines) {
  process_.stop();
  return start(lines);
}

void DnsmasqFixture::stop() { process_.stop(); }

}  // namespace ep::test
