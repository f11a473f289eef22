#pragma once
// Value types shared by every part. No I/O here.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ep {

// What a discovery source reports, before validation. Fields are untrusted text.
struct Endpoint {
  std::string address;           // should be an IPv4/IPv6 literal (the guard checks)
  std::uint32_t port = 0;        // 0 = not given (the backend's `port` override may fill it)
  std::optional<long> weight;    // 0..256 after validation; unset = HAProxy default (1)
  bool backup = false;
  std::string id;                // source identity (consul service id, etcd key, instance id); may be empty
  std::map<std::string, std::string> labels;

  bool operator==(const Endpoint&) const = default;
};

// A validated server the reconciler may put in HAProxy. Built only by the guard.
struct ServerSpec {
  std::string name;     // safe HAProxy server name, unique within a backend
  std::string address;  // IP literal, canonical form (IPv6 without brackets)
  std::uint16_t port = 0;
  int weight = 1;       // 0..256
  bool backup = false;

  bool operator==(const ServerSpec&) const = default;
  std::string address_port() const;  // "10.0.0.5:8080" or "[2001:db8::7]:8080"
};

// Desired servers of one HAProxy backend, sorted by name.
struct DesiredBackend {
  std::string backend;
  std::vector<ServerSpec> servers;
};

// srv_admin_state bits (haproxy-runtime.md 5.1).
namespace admin {
inline constexpr int kForcedMaint = 0x01;
inline constexpr int kInheritedMaint = 0x02;
inline constexpr int kConfigMaint = 0x04;
inline constexpr int kForcedDrain = 0x08;
inline constexpr int kInheritedDrain = 0x10;
inline constexpr int kResolutionMaint = 0x20;
inline constexpr int kMaintMask = 0x23;  // "in maintenance"
inline constexpr int kDrainMask = 0x18;
}  // namespace admin

// One server as HAProxy reports it (show servers state + show stat).
struct ActualServer {
  std::string name;
  std::string address;  // "-" in HAProxy becomes ""
  std::uint16_t port = 0;
  int op_state = 0;      // 0 stopped, 1 starting, 2 running, 3 stopping
  int admin_state = 0;   // bit set, see admin::
  int weight = 0;        // srv_uweight (user weight)
  int check_state = 0;   // srv_check_state bits; 0x02 configured, 0x04 enabled
  int check_result = 0;  // srv_check_result: 0 unknown, 1 neutral, 2 failed, 3 passed, 4 cond. pass
  int sessions = 0;      // scur from show stat
  bool backup = false;   // bck from show stat

  bool in_maint() const { return (admin_state & admin::kMaintMask) != 0; }
  bool draining() const { return (admin_state & admin::kDrainMask) != 0; }
  bool check_configured() const { return (check_state & 0x02) != 0; }
  bool check_enabled() const { return (check_state & 0x04) != 0; }
  // Health-gated: UP, and its last health check passed (a fresh server has result 0 until its
  // first check). A server without enabled checks is never held back.
  bool health_passed() const {
    return !check_enabled() || (op_state == 2 && (check_result == 3 || check_result == 4));
  }

  bool operator==(const ActualServer&) const = default;
};

struct ActualBackend {
  std::string backend;
  bool exists = false;
  std::string algorithm;  // from show stat "algo" (e.g. "roundrobin", "static-rr")
  std::vector<ActualServer> servers;
  // False when the read skipped server statistics (Instance::observe_states): every server's
  // `sessions` is 0 and `backup` false, whatever HAProxy would say.
  bool server_stats = true;
  // A digest of the rows the diff reads (names, addresses, ports, states, weights, checks),
  // computed from HAProxy's reply by an instance that can (0: not computed).
  std::size_t rows_digest = 0;
  // True when the read did not parse this backend's servers because their digest is the one
  // the caller said it holds (Instance::observe_states): `servers` is empty, nothing changed.
  bool unchanged = false;
};

}  // namespace ep
