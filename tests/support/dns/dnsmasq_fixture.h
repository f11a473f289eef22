#pragma once
// A real dnsmasq for tests, authoritative-only on 127.0.0.1:<free port> (UDP and TCP), serving
// the records given as dnsmasq config lines (srv-host=..., host-record=...). Names under
// `local_domain` that are not configured answer NXDOMAIN (no upstream is ever asked).
// set_records() rewrites the config and restarts dnsmasq (srv-host lines are not re-read on
// SIGHUP); the port stays the same.

#include <csignal>
#include <string>
#include <vector>

#include "core/result.h"
#include "etcd/process.h"

namespace ep::test {

class DnsmasqFixture {
 public:
  explicit DnsmasqFixture(std::string local_domain = "web.test", int ttl = 1);
  ~DnsmasqFixture();

  Status start(const std::vector<std::string>& lines);
  Status set_records(const std::vector<std::string>& lines);  // restart with new records
  void stop();
  Status pause() { return process_.signal(SIGSTOP); }   // queries queue up, nothing answers
  Status resume() { return process_.signal(SIGCONT); }
  int port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const;
  void set_ttl(int ttl) { ttl_ = ttl; }

 private:
  std::string local_domain_;
  int ttl_;
  TempDir dir_{"dnsmasq"};
  ChildProcess process_;
  int port_ = 0;
};

}  // namespace ep::test
