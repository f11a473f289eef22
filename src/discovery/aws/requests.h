#pragma once
// Pure builders for the requests ElasticProxy sends (aws.md §4, §5, §7): they produce the exact
// method, path, headers and body to sign with sigv4.h and hand to the HTTP client. No I/O.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "discovery/aws/endpoints.h"
#include "discovery/aws/sigv4.h"

namespace ep::aws {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

inline constexpr size_t kMaxAsgNamesPerCall = 50;       // DescribeAutoScalingGroups
inline constexpr int kMaxAsgRecords = 100;              // MaxRecords
inline constexpr size_t kMaxInstanceIdsPerCall = 1000;  // DescribeInstances

// "k1=v1&k2=v2" in the given order; names and values encoded like SigV4 (space = %20).
std::string form_encode(const QueryParams& params);

// POST <endpoint path or "/"> with Host, Content-Type "application/x-www-form-urlencoded;
// charset=utf-8" and body "Action=<action>&Version=<version>&<params…>" (Query and EC2 protocols).
SignableRequest make_query_request(const Endpoint& endpoint, std::string_view action,
                                   std::string_view version, const QueryParams& params);

// POST with "Content-Type: application/x-amz-json-1.0", "X-Amz-Target: AmazonSQS.<operation>"
// and "x-amzn-query-mode: true" (aws.md §5).
SignableRequest make_sqs_request(const Endpoint& endpoint, std::string_view operation,
                                 std::string body);

// ---- Auto Scaling (Query protocol, lists as Name.member.N) ----

// kInvalid for more than 50 names or max_records outside 1..100.
Result<QueryParams> describe_auto_scaling_groups_params(const std::vector<std::string>& names,
                                                        std::string_view next_token,
                                                        int max_records = kMaxAsgRecords);

// With tag filters (aws.md §4.1): each (key, value) becomes a filter `tag:<key>` = value, or
// `tag-key` = key when value is empty; filters are ANDed by AWS. Names may be empty (all groups).
Result<QueryParams> describe_auto_scaling_groups_params(
    const std::vector<std::string>& names,
    const std::vector<std::pair<std::string, std::string>>& tag_filters,
    std::string_view next_token, int max_records = kMaxAsgRecords);

enum class LifecycleActionResult { kContinue, kAbandon };

// Identifies the action by token when given, else by instance id. kInvalid when hook, group, or
// both token and instance id are empty.
struct LifecycleActionRef {
  std::string hook_name;
  std::string group_name;
  std::string token;
  std::string instance_id;
};
Result<QueryParams> complete_lifecycle_action_params(const LifecycleActionRef& ref,
                                                     LifecycleActionResult result);
Result<QueryParams> record_lifecycle_action_heartbeat_params(const LifecycleActionRef& ref);

// ---- EC2 (EC2 protocol, lists as Name.N) ----

// By instance ids (no MaxResults allowed with ids) — kInvalid for 0 or more than 1000 ids.
Result<QueryParams> describe_instances_by_id_params(const std::vector<std::string>& ids,
                                                    std::string_view next_token);

// By filters (Filter.N.Name, Filter.N.Value.M; filters ANDed, values ORed), with
// `instance-state-name=running` always added as the last filter; MaxResults 5..1000. kInvalid for
// an empty name or value list.
Result<QueryParams> describe_instances_by_filters_params(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& filters,
    std::string_view next_token, int max_results = 1000);

// ---- STS ----

QueryParams assume_role_params(std::string_view role_arn, std::string_view session_name,
                               std::string_view external_id, std::optional<int> duration_seconds);
// Sent unsigned (aws.md §3.3); the token is the file content, trimmed.
QueryParams assume_role_with_web_identity_params(std::string_view role_arn,
                                                 std::string_view session_name,
                                                 std::string_view token);

// ---- SQS JSON bodies ----

// kInvalid for max_messages outside 1..10, wait_seconds outside 0..20, visibility < 0.
Result<std::string> sqs_receive_message_body(std::string_view queue_url, int max_messages,
                                             int wait_seconds,
                                             std::optional<int> visibility_timeout);
std::string sqs_delete_message_body(std::string_view queue_url, std::string_view receipt_handle);
// kInvalid for a timeout outside 0..43200 s.
Result<std::string> sqs_change_message_visibility_body(std::string_view queue_url,
                                                       std::string_view receipt_handle,
                                                       int visibility_timeout);

}  // namespace ep::aws
