#pragma once
// A faithful-enough AWS double on 127.0.0.1 (free port) for tests: one HTTP/1.1 server that
// answers Auto Scaling and EC2 (Query/EC2 protocols, real XML namespaces, pagination tokens,
// AWS error documents), SQS (JSON 1.0 protocol: ReceiveMessage with long polling, DeleteMessage,
// ChangeMessageVisibility), STS (AssumeRole, AssumeRoleWithWebIdentity), IMDSv2 (/latest/...)
// and a container credentials endpoint (/container-credentials).
//
// Every AWS API request must carry a valid SigV4 signature: the double recomputes it with the
// secret it knows for the access key id (sigv4.h, the production signer, fed the request exactly
// as received and the client's SignedHeaders list) and answers SignatureDoesNotMatch /
// IncompleteSignature / InvalidClientTokenId / UnrecognizedClientException (SQS) like AWS does.
// A request dated more than 15 minutes off the double's clock gets RequestTimeTooSkewed with a
// Date header. AssumeRoleWithWebIdentity is the one unsigned action, as on AWS.
//
// Fault injection: inject() queues faults that the next matching API requests get instead of an
// answer (throttling error, 500 InternalError, 503 garbage body, ExpiredToken).
//
// Thread-safe: the server runs one thread per connection; all state is under one mutex.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/http/loopback_http_server.h"

namespace ep::test {

struct DoubleInstance {
  std::string id;
  std::string group;  // ASG name ("" = not in a group)
  std::string availability_zone = "eu-west-1a";
  std::string lifecycle_state = "InService";
  std::string health_status = "Healthy";
  std::string weighted_capacity;  // "" = absent
  std::string private_ip;
  std::string public_ip;
  std::vector<std::string> ipv6;
  std::vector<std::pair<std::string, std::string>> tags;
  int state_code = 16;  // running
};

struct DoubleLifecycleCall {
  std::string action;  // CompleteLifecycleAction / RecordLifecycleActionHeartbeat
  std::string group, hook, token, instance_id, result;
  bool accepted = false;  // false: answered ValidationError (no such pending action)
  std::chrono::steady_clock::time_point at{};
};

enum class Fault { kThrottle, kInternalError, kGarbage503, kExpiredToken };

class AwsDouble {
 public:
  AwsDouble();
  ~AwsDouble();
  void start();
  void stop();
  std::string url() const { return server_.base_url(); }

  // Credentials the double accepts. A session token, when set, must be sent and signed.
  void add_key(const std::string& key_id, const std::string& secret,
               const std::string& session_token = "");
  // The double's clock minus the real one (to provoke clock skew).
  void set_clock_offset(std::chrono::seconds offset);

  // ---- EC2 / Auto Scaling state ----
  void put_instance(const DoubleInstance& instance);  // insert or replace by id
  void remove_instance(const std::string& id);
  // An ASG (possibly empty) with its tags (DescribeAutoScalingGroups Filters tag:<key>,
  // tag-key, tag-value apply to them).
  void add_group(const std::string& name,
                 std::vector<std::pair<std::string, std::string>> tags = {});
  void set_ec2_page_size(int n);                      // DescribeInstances page size (default 1000)

  // ---- lifecycle hooks ----
  // A pending lifecycle action, as AWS holds one while an instance is in Pending:Wait /
  // Terminating:Wait. RecordLifecycleActionHeartbeat and CompleteLifecycleAction must name it
  // (by token, or by instance id) with the right group and hook, else ValidationError "No active
  // Lifecycle Action found". Completing it moves the instance on like AWS does: a terminate
  // action removes the instance (Terminated); a launch action CONTINUE makes it InService,
  // ABANDON removes it.
  void add_lifecycle_action(const std::string& group, const std::string& hook,
                            const std::string& instance_id, const std::string& token,
                            const std::string& transition);
  int pending_lifecycle_actions();

  // ---- SQS ----
  // The queue URL is url() + "/111122223333/<name>".
  std::string create_queue(const std::string& name);
  void send_message(const std::string& queue_url, const std::string& body);
  size_t queue_size(const std::string& queue_url);  // messages not yet deleted

  // ---- STS / IMDS / container ----
  // AssumeRole (signed by any known key) and AssumeRoleWithWebIdentity (token must equal
  // `web_identity_token`) issue new temporary keys "ASIA…N" that the double then accepts.
  void set_web_identity_token(const std::string& token);
  // IMDS role name and the credentials it serves (added as accepted keys).
  void set_imds_role(const std::string& role, const std::string& key_id, const std::string& secret,
                     const std::string& token, const std::string& expiration);
  void set_container_credentials(const std::string& auth_token, const std::string& key_id,
                                 const std::string& secret, const std::string& token,
                                 const std::string& expiration);
  // IMDS placement/region (default "eu-west-1"; empty: 404 like an instance without it).
  void set_imds_region(const std::string& region);
  // IMDS requests seen, in order: "PUT /latest/api/token", "GET /latest/meta-data/…".
  std::vector<std::string> imds_requests();
  // Regions of the credential scopes of the signed requests the double accepted.
  std::set<std::string> signing_regions();
  // Makes every IMDSv2 token issued so far invalid (next use gets 401).
  void revoke_imds_tokens();

  // ---- faults ----
  // The next `count` API requests whose action equals `action` (or any, when empty) get `fault`.
  void inject(Fault fault, int count = 1, const std::string& action = "");

  // ---- observations ----
  int calls(const std::string& action);  // API requests seen (after signature checks passed)
  int signature_failures();
  // Every signed API call that passed the signature check, as its IAM action
  // ("autoscaling:DescribeAutoScalingGroups", "sqs:ReceiveMessage", …).
  std::set<std::string> iam_actions();
  std::vector<DoubleLifecycleCall> lifecycle_calls();
  std::vector<std::string> last_describe_instances_ids();  // ids asked in the latest call
  // Filters of the latest DescribeInstances (Filter.N.Name / Value.M), in order. The double knows
  // tag:<key>, tag-key, instance-state-name and availability-zone; others are
  // InvalidParameterValue like AWS's answer to an unknown filter.
  std::vector<std::pair<std::string, std::vector<std::string>>> last_filters();
  // Connections accepted (each is served on a thread of the double's own).
  std::uint64_t connections_accepted() const { return server_.connections_accepted(); }

 private:
  struct Impl;
  HttpServerReply handle(const HttpServerRequest& request);
  std::unique_ptr<Impl> impl_;
  LoopbackHttpServer server_;
};

}  // namespace ep::test
