#pragma once
// A Consul HTTP API double on 127.0.0.1 for tests, faithful to Consul's HTTP API (docs/consul.md) for what
// ElasticProxy uses:
//
//  GET /v1/health/service/<svc>   passing, tag (repeatable, AND, case-insensitive), dc, ns,
//                                 partition, node-meta=k:v, filter (subset, see below), index +
//                                 wait blocking (wait default 5m, max 10m, + up to wait/16 jitter;
//                                 a wait timeout returns the same index), cached (X-Cache, Age),
//                                 stale (X-Consul-LastContact). Entries sorted by (Node, ID) like
//                                 Consul; `shuffle` reorders them to prove clients sort.
//  GET /v1/catalog/services       {name: [tags]}, blocking on the services index
//  GET /v1/health/state/<state>   every check (any|passing|warning|critical), blocking on the
//                                 checks index; filter subset: `ServiceName == "x"` clauses
//                                 joined by " or "
//  GET /v1/status/leader          "127.0.0.1:8300"
//  PUT /v1/agent/service/register and /v1/agent/service/deregister/<id>
//  Headers: X-Consul-Index, X-Consul-KnownLeader, X-Consul-LastContact (+ X-Consul-Effective-
//  Consistency for stale), X-Consul-Results-Filtered-By-ACLs when an anonymous request is
//  filtered to nothing.
//  ACL: when a token is set, a request with a different token gets 403 "ACL not found"; a request
//  with no token is anonymous: list endpoints answer 200 [] with X-Consul-Results-Filtered-By-ACLs.
//  filter subset: clauses joined by " and ": `Service.Tags contains "x"`, `"x" in Service.Tags`,
//  `Service.Meta.k == "v"`, `Service.Meta.k != "v"`, `Node.Meta.k == "v"`, `Service.Kind == "x"`;
//  anything else → 400 "Failed to create boolean expression evaluator".
//
// The index is one raft-like counter; every write bumps it and stamps the service's index (a node
// check bumps every service on that node). simulate_restart(i) sets the counter back to i (a
// restore from an old snapshot): blocked queries keep blocking until their wait ends and then
// return the lower index, as a real cluster does.

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "support/http/loopback_http_server.h"

namespace ep::test {

struct ConsulCheck {
  std::string id;  // CheckID; "_service_maintenance:<id>" = maintenance
  std::string name;
  std::string status = "passing";  // passing | warning | critical | anything (= unknown)
  std::string output;
};

struct ConsulService {
  std::string node = "node-1";
  std::string node_address = "10.0.0.1";
  std::map<std::string, std::string> node_meta;
  std::map<std::string, std::string> node_tagged;  // Node.TaggedAddresses (name → address)
  std::string datacenter = "dc1";
  std::string ns = "default";
  std::string partition = "default";
  std::string id;       // Service.ID; defaults to name
  std::string name;     // Service.Service
  std::string address;  // Service.Address ("" = use the node's)
  int port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> meta;
  std::map<std::string, std::pair<std::string, int>> tagged;  // Service.TaggedAddresses
  std::optional<int> weight_passing = 1;  // nullopt = omit Weights from the entry
  int weight_warning = 1;
  std::string kind;  // "" | connect-proxy | mesh-gateway | ...
  std::vector<ConsulCheck> checks;
};

enum class ConsulFault {
  kNone,
  kNoLeader,       // 500 "No cluster leader", X-Consul-KnownLeader: false
  kRpcEof,         // 500 "rpc error making call: EOF"
  kTooMany,        // 429
  kGarbage,        // 200 with a non-JSON body
  kObject,         // 200 with a JSON object instead of a list
  kTruncated,      // 200 with truncated JSON
  kHang,           // never answer
  kCloseMidBody,   // headers, half the body, close
  kEmptyNoLeader,  // 200 [] with X-Consul-KnownLeader: false (just after an election)
  kEmpty,          // 200 [] with a known leader (agent restarted and not yet re-synced)
  kNoIndex,        // normal answer without X-Consul-Index
};

class ConsulDouble {
 public:
  ConsulDouble();
  ~ConsulDouble();

  void start();  // 127.0.0.1:<free port>
  void start_unix(const std::string& path);
  void stop();                  // wakes blocked queries, closes connections
  std::string address() const;  // "127.0.0.1:<port>"
  std::string url() const;      // "http://127.0.0.1:<port>"

  // State changes (each bumps the index and wakes blocked queries).
  void register_service(ConsulService service);
  bool deregister_service(const std::string& service_id, const std::string& node = "");
  bool set_check_status(const std::string& check_id, const std::string& status);
  // A node-level check (empty ServiceID) on every entry of `node`, e.g. serfHealth.
  void set_node_check(const std::string& node, const std::string& check_id,
                      const std::string& status);
  void touch(const std::string& service_name);  // idempotent write: index moves, content same
  void simulate_restart(std::uint64_t new_index);

  void set_acl_token(std::string token);  // "" = ACLs off
  void set_fault(ConsulFault fault);      // applies to /v1/health/service until set back to kNone
  void set_shuffle(bool on);
  // A frozen agent: every request (new, or blocked and woken meanwhile) is held with its
  // connection open and never answered; requests arriving after set_frozen(false) are answered.
  void set_frozen(bool on);
  std::uint64_t held_requests() const;
  // Overrides the jitter added to blocking waits (default: random up to wait/16).
  void set_no_jitter(bool on);

  std::uint64_t index() const;
  std::uint64_t health_requests() const;
  // Requests by path prefix, e.g. "/v1/health/service/", "/v1/catalog/services".
  std::uint64_t requests_to(const std::string& path_prefix) const;
  std::uint64_t connections_accepted() const { return server_->connections_accepted(); }
  // Every /v1/health request's target and the header values the client sent (for assertions).
  struct Seen {
    std::string target;
    std::string token_header;
    std::string authorization;
    std::string host;
  };
  std::vector<Seen> seen() const;
  int blocked_now() const;  // queries currently blocked

 private:
  HttpServerReply handle(const HttpServerRequest& req);
  HttpServerReply handle_request(const HttpServerRequest& req);
  HttpServerReply health_service(const HttpServerRequest& req, const std::string& name);
  HttpServerReply catalog_services(const HttpServerRequest& req);
  HttpServerReply agent_register(const HttpServerRequest& req);
  HttpServerReply health_state(const HttpServerRequest& req, const std::string& state);
  std::uint64_t service_index_locked(const std::string& name) const;
  void bump_locked(const std::string& service_name);
  // Waits while `current()` <= min_index, up to wait; returns false when stopping.
  template <typename F>
  bool block_locked(std::unique_lock<std::mutex>& lock, const HttpServerRequest& req, F current,
                    bool wake_on_fault = false);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t index_ = 1;
  std::uint64_t services_index_ = 1;
  std::uint64_t checks_index_ = 1;
  std::map<std::string, std::uint64_t> service_index_;  // by service name
  std::vector<ConsulService> services_;                 // by (node, id)
  std::map<std::string, std::map<std::string, ConsulCheck>> node_checks_;
  std::string token_;
  ConsulFault fault_ = ConsulFault::kNone;
  bool shuffle_ = false;
  bool no_jitter_ = false;
  bool frozen_ = false;
  std::uint64_t held_ = 0;
  std::uint64_t health_requests_ = 0;
  int blocked_ = 0;
  std::vector<Seen> seen_;
  std::vector<std::string> paths_;
  std::unique_ptr<LoopbackHttpServer> server_;
};

}  // namespace ep::test
