#pragma once
// A real HAProxy in master-worker daemon mode for reload tests:
//   haproxy -W -D -f <dir>/haproxy.cfg -p <dir>/haproxy.pid -S <dir>/m.sock
// Placeholders in config text: @DIR@, @ADMIN@ (admin socket), @PORT0@..@PORT4@ (free loopback
// ports). The destructor stops every master/worker pid it has seen (pidfile, show proc) and
// removes the directory. Not thread-safe.

#include <map>
#include <set>
#include <string>

#include "core/result.h"
#include "haproxy/reload/options.h"

namespace ep::test {

class MwHaproxy {
 public:
  explicit MwHaproxy(std::string config_text);
  ~MwHaproxy();
  MwHaproxy(const MwHaproxy&) = delete;
  MwHaproxy& operator=(const MwHaproxy&) = delete;

  Status start();  // writes the config, starts, waits for the admin socket
  std::string expand(std::string text) const;        // replaces the placeholders
  void write_config(const std::string& text) const;  // expand() + write to config_path()

  std::string admin(const std::string& line) const;   // one line, reply to EOF
  std::string master(const std::string& line) const;  // one line on the master CLI
  void track();  // remembers the current master/worker pids for cleanup

  haproxy::reload::Target target() const;
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return cfg_; }
  const std::string& pidfile() const { return pidfile_; }
  const std::string& admin_socket() const { return admin_; }
  const std::string& master_socket() const { return master_; }
  int port(int i) const { return ports_[i]; }
  std::string log() const;  // the starting command's output

 private:
  std::string text_;
  std::string dir_, cfg_, pidfile_, admin_, master_;
  int ports_[5] = {0, 0, 0, 0, 0};
  std::set<long> pids_;
  std::string log_;
};

// `show servers state <backend>`: each server's fields by the header's column names
// (srv_addr, srv_op_state, ...), by server name.
std::map<std::string, std::map<std::string, std::string>> servers_state(
    const MwHaproxy& hp, const std::string& backend);

// `show servers state <backend>` rows as "name addr:port weight admin" lines, sorted by name.
std::string servers_summary(const MwHaproxy& hp, const std::string& backend);

}  // namespace ep::test
