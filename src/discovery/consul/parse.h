#pragma once
// Pure parser of Consul's GET /v1/health/service/<name> reply (consul.md §1.2). No I/O.

#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "discovery/consul/options.h"

namespace ep::discovery::consul {

// One check as the aggregation needs it.
struct CheckStatus {
  std::string check_id;
  std::string status;
};

// api/health.go AggregatedStatus: "maintenance" if any check is _node_maintenance or
// _service_maintenance:*, else critical > warning > passing; an unknown status string gives ""
// (not healthy); no checks at all gives "passing".
std::string aggregated_status(const std::vector<CheckStatus>& checks);

struct ParseResult {
  std::vector<Endpoint> endpoints;    // sorted by (Node.Node, Service.ID)
  size_t entries = 0;                 // entries in the payload
  size_t dropped_health = 0;          // not kept by the health policy
  size_t dropped_tags = 0;            // missing a required tag
  size_t dropped_kind = 0;            // Connect proxy / gateway not asked for
  std::vector<std::string> warnings;  // e.g. an unusable weight in Meta (entry kept)
};

// Parses the reply. Every kept entry becomes an Endpoint with:
//   address  per ParseOptions::address_from (default Service.Address, else Node.Address); untrusted
//   port     Service.Port (or the tagged address's port); values above 65535 are passed on for
//            the guard to reject, negative ones are a parse error
//   weight   per ParseOptions (Weights.Passing, or Weights.Warning when the aggregated status is
//            not passing, scaled by 256/weight_max and clamped to 256; Meta[weight_meta_key]
//            overrides; unset when the entry has no Weights or use_weights is false)
//   backup   Meta[backup_meta_key] in {true, 1, yes}
//   id       "<Service.ID>.<Node.Node>"
//   labels   consul.node, consul.service_id, consul.status, consul.datacenter, consul.namespace,
//            consul.service (Service.Service), consul.tags (Service.Tags joined with ','; absent
//            when none) and consul.meta.<key> per Service.Meta entry (at most 64 tags / keys);
//            untrusted text, shown by the dashboard as text only
// Errors (kInvalid), naming the entry and the field: the body is not JSON, is not a JSON array
// (an object, null, ...), an entry is not an object, a required field (Node.Node, Node.Address,
// Service.ID, Service.Service, Service.Port) is missing, or any field has the wrong type.
Result<ParseResult> parse_health_reply(std::string_view json, const ParseOptions& options);

// Convenience: just the endpoints.
Result<std::vector<Endpoint>> parse_health(std::string_view json, const ParseOptions& options);

}  // namespace ep::discovery::consul
