#pragma once
// Pure DNS message parsing (RFC 1035 wire format) for the SRV source, and the SRV → endpoint
// mapping (priority, weight scaling). No I/O; c-ares is only the transport (dns_source.cc).
//
// We parse replies ourselves because c-ares 1.18's ares_parse_srv_reply drops the TTL and the
// Additional section; both are needed (re-query at TTL; use the server's A/AAAA glue first).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace ep::discovery::dns {

inline constexpr int kRcodeNoError = 0;
inline constexpr int kRcodeServFail = 2;
inline constexpr int kRcodeNxDomain = 3;
inline constexpr int kRcodeRefused = 5;

struct SrvRecord {
  std::string owner;  // lower case, no trailing dot
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;  // lower case, no trailing dot; "" for the root ("." = not available)
  std::uint32_t ttl = 0;
};

struct AddressRecord {
  std::string name;     // lower case, no trailing dot
  std::string address;  // IPv4 or IPv6 literal (inet_ntop form)
  std::uint32_t ttl = 0;
};

struct DnsReply {
  std::uint16_t id = 0;
  int rcode = 0;
  bool truncated = false;                // TC bit
  std::size_t answer_count = 0;          // all records in the answer section
  std::vector<SrvRecord> srv;            // SRV records of the answer section
  std::vector<AddressRecord> addresses;  // A/AAAA from the answer AND additional sections
};

// Parses a whole reply. Every length and compression pointer is bounds-checked (pointer loops
// are refused); a malformed message is an error naming the offset, never a crash.
Result<DnsReply> parse_reply(std::string_view message);

// How SRV records become endpoints.
struct MapOptions {
  // Records whose priority is not the lowest: dropped (false) or kept as HAProxy backups (true).
  bool backup_other_priorities = false;
};

struct Mapped {
  std::vector<Endpoint> endpoints;      // sorted by (backup, address, port)
  std::vector<std::string> unresolved;  // SRV targets with no address in `addresses`
  std::uint32_t min_ttl = 0xffffffff;   // smallest TTL of the SRV records and addresses used
};

// Maps SRV records to endpoints: one endpoint per (target address, port); targets resolve
// through `addresses` (name → literals, with TTLs). Target "." records are ignored.
// Weight: scaled proportionally so that the largest SRV weight of the set maps to 256:
//   haproxy = max(1, round(srv_weight * 256 / max_weight)); all weights 0 → 1 each.
// (HAProxy's own resolver uses ceil(w/256), which makes every weight 1..256 equal.) A weight 0
// record gets the smallest non-zero share, as RFC 2782 intends ("very small chance").
// Duplicates (same address and port) are merged, keeping the most preferred record.
Mapped map_srv(const std::vector<SrvRecord>& records,
               const std::map<std::string, std::vector<AddressRecord>>& addresses,
               const MapOptions& options);

// A query's outcome, from the c-ares status or the reply's rcode.
enum class Outcome { kData, kNoData, kNxDomain, kServFail, kRefused, kTimeout, kOther };
const char* to_string(Outcome outcome);

// Lower-cases and strips a trailing dot.
std::string normalize_name(std::string_view name);

}  // namespace ep::discovery::dns
