#pragma once
// A real etcd (the Debian etcd-server binary) for tests: data dir in a temp dir, client and peer
// URLs on free 127.0.0.1 ports. Stop/restart keep the data and the ports. Writes go through the
// JSON gateway (a client independent of the source under test's streaming code).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "etcd/process.h"

namespace ep::test {

class EtcdFixture {
 public:
  struct Options {
    // etcd's --experimental-watch-progress-notify-interval (0 = etcd's default).
    std::chrono::milliseconds progress_interval{0};
    // HTTPS with client certificates required (a CA, a server and a client certificate are
    // generated with openssl into the temp dir).
    bool tls = false;
  };
  EtcdFixture();
  explicit EtcdFixture(Options options);
  ~EtcdFixture();

  Status start();   // waits until the gateway answers (≤ 20 s)
  void stop();      // SIGTERM (data kept)
  void kill();      // SIGKILL
  Status pause();   // SIGSTOP: connections stay open but nothing is answered
  Status resume();  // SIGCONT
  Status restart() {
    stop();
    return start();
  }

  std::string url() const;  // http://127.0.0.1:<client port>
  int client_port() const { return client_port_; }

  // Gateway calls (root token when auth is enabled). Return the response's header.revision.
  Result<std::int64_t> put(const std::string& key, const std::string& value,
                           std::int64_t lease = 0);
  Result<std::int64_t> del(const std::string& key);
  Result<std::int64_t> grant_lease(int ttl_seconds);  // lease id
  Status compact(std::int64_t revision);
  Result<std::int64_t> revision();
  // Creates root (password `root_password`) and `user` with read access to `prefix`, enables
  // auth. Later fixture calls authenticate as root.
  Status enable_auth(const std::string& root_password, const std::string& user,
                     const std::string& password, const std::string& prefix);

  std::string log() const;
  // With tls: the PEM files a client needs.
  std::string ca_file() const { return dir_.path() + "/ca.pem"; }
  std::string client_cert() const { return dir_.path() + "/client.pem"; }
  std::string client_key() const { return dir_.path() + "/client.key"; }

 private:
  Status make_certs();
  Result<std::string> call(const std::string& path, const std::string& body);

  Options options_;
  TempDir dir_{"etcd"};
  ChildProcess process_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::string root_password_;
  std::string token_;
};

}  // namespace ep::test
