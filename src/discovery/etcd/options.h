#pragma once
// Options of the `etcd` source (see docs/etcd.md):
//   etcd:
//     endpoints: [http://127.0.0.1:2379]      # several = failover, in order
//     prefix: /services/web/                  # required, non-empty
//     username: ep                            # optional; password or password_file with it
//     password_file: /etc/elasticproxy/etcd.pw
//     tls: {ca_file: ca.pem, cert_file: c.pem, key_file: c.key, verify: true}
//     timeout: 10s            # list/auth requests
//     connect_timeout: 5s
//     idle_timeout: 15m       # a watch stream silent this long is re-created
//     retry_interval: 250ms      # first retry after a failure, doubled up to max_retry_interval
//                                # (each delay jittered down by up to 20 %)
//     max_retry_interval: 1s
//     page_size: 1000         # Range limit per page (0 = one page)
//     serializable: false     # list from the contacted member without a quorum read

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/config_node.h"

namespace ep::discovery::etcd {

struct Options {
  std::vector<std::string> endpoints;  // "http(s)://host:port", no trailing slash
  std::string prefix;
  std::string username;
  std::string password;       // never logged
  std::string password_file;  // read at start and before every re-authentication
  std::string ca_file, cert_file, key_file;
  bool tls_verify = true;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(15)};
  std::chrono::milliseconds retry_interval{250};
  std::chrono::milliseconds max_retry_interval{std::chrono::seconds(1)};  // recovery within 1 s
  long page_size = 1000;
  bool serializable = false;
  // Credentials over plain http (or https without verification) to a host other than loopback
  // are refused unless this is set (and then a warning is logged).
  bool allow_insecure = false;
  // The largest reply or watch message accepted (`max_response_size`); larger is an error.
  std::size_t max_response_bytes = 8u << 20;
};

// Reads and checks the options; errors (with positions) go to `diag`, and nullopt is returned.
// Relative TLS/password file paths resolve against base_dir.
std::optional<Options> options_from_node(const ConfigNode& node,
                                         const std::filesystem::path& base_dir, Diagnostics& diag);

}  // namespace ep::discovery::etcd
