#pragma once
// Options of the `dns` (SRV) source (see docs/dns.md):
//   dns:
//     name: _http._tcp.web.service.consul   # required: the SRV owner name
//     servers: ["127.0.0.1:8600"]           # resolvers (ip or ip:port, [v6]:port); default:
//                                           # /etc/resolv.conf
//     other_priorities: drop                # drop | backup (records above the lowest priority)
//     family: any                           # any | ipv4 | ipv6 (target addresses used)
//     ttl_floor: 2s                         # re-query no sooner than this...
//     ttl_ceiling: 5m                       # ...and no later than this, whatever the TTL
//     timeout: 2s                           # per try; c-ares tries each server `tries` times
//     tries: 2
//     retry_interval: 1s                    # after a failure, doubled up to max_retry_interval
//     max_retry_interval: 1s                # (jitter): a resolver that answers again is re-asked
//                                           # within this, however long it was down or frozen
//     empty_confirmations: 3                # NXDOMAIN/NODATA must repeat this often to count
//     edns_payload: 1232                    # EDNS0 UDP size advertised (512 = no EDNS0)

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/config_node.h"

namespace ep::discovery::dns {

enum class Family { kAny, kIpv4, kIpv6 };

struct Options {
  std::string name;  // normalized (lower case, no trailing dot)
  std::vector<std::string> servers;
  bool backup_other_priorities = false;
  Family family = Family::kAny;
  std::chrono::milliseconds ttl_floor{std::chrono::seconds(2)};
  std::chrono::milliseconds ttl_ceiling{std::chrono::minutes(5)};
  std::chrono::milliseconds timeout{std::chrono::seconds(2)};
  long tries = 2;
  std::chrono::milliseconds retry_interval{std::chrono::seconds(1)};
  std::chrono::milliseconds max_retry_interval{std::chrono::seconds(1)};
  long empty_confirmations = 3;
  long edns_payload = 1232;
};

// Reads and checks the options; errors (with positions) go to `diag`, and nullopt is returned.
std::optional<Options> options_from_node(const ConfigNode& node, Diagnostics& diag);

// "127.0.0.1" → "127.0.0.1:53"; "127.0.0.1:5353", "[::1]:5353", "::1" (→ "[::1]:53"). Only IP
// literals (a resolver given by name would need a resolver). Empty result = invalid.
std::string normalize_server(const std::string& text);

}  // namespace ep::discovery::dns
