#include "discovery/aws/requests.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace ep::aws {

using json = nlohmann::json;

namespace {

Status check_ref(const LifecycleActionRef& ref) {
  if (ref.hook_name.empty()) return Error::invalid("lifecycle action: empty LifecycleHookName");
  if (ref.group_name.empty()) return Error::invalid("lifecycle action: empty AutoScalingGroupName");
  if (ref.token.empty() && ref.instance_id.empty()) {
    return Error::invalid("lifecycle action: needs LifecycleActionToken or InstanceId");
  }
  return {};
}

void add_ref(QueryParams& p, const LifecycleActionRef& ref) {
  p.emplace_back("LifecycleHookName", ref.hook_name);
  p.emplace_back("AutoScalingGroupName", ref.group_name);
  if (!ref.token.empty()) {
    p.emplace_back("LifecycleActionToken", ref.token);
  } else {
    p.emplace_back("InstanceId", ref.instance_id);
  }
}

std::string dump(const json& j) {
  // Replace invalid UTF-8 instead of throwing: queue URLs and handles come from config and AWS.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string form_encode(const QueryParams& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += uri_encode(k, false);
    out += '=';
    out += uri_encode(v, false);
  }
  return out;
}

SignableRequest make_query_request(const Endpoint& endpoint, std::string_view action,
                                   std::string_view version, const QueryParams& params) {
  QueryParams all;
  all.reserve(params.size() + 2);
  all.emplace_back("Action", std::string(action));
  all.emplace_back("Version", std::string(version));
  all.insert(all.end(), params.begin(), params.end());
  SignableRequest r;
  r.method = "POST";
  r.path = endpoint.path.empty() ? "/" : endpoint.path + "/";
  r.headers = {{"Host", endpoint.host_header},
               {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  r.body = form_encode(all);
  return r;
}

SignableRequest make_sqs_request(const Endpoint& endpoint, std::string_view operation,
                                 std::string body) {
  SignableRequest r;
  r.method = "POST";
  r.path = endpoint.path.empty() ? "/" : endpoint.path + "/";
  r.headers = {{"Host", endpoint.host_header},
               {"Content-Type", "application/x-amz-json-1.0"},
               {"X-Amz-Target", fmt::format("AmazonSQS.{}", operation)},
               {"x-amzn-query-mode", "true"}};
  r.body = std::move(body);
  return r;
}

Result<QueryParams> describe_auto_scaling_groups_params(const std::vector<std::string>& names,
                                                        std::string_view next_token,
                                                        int max_records) {
  if (names.size() > kMaxAsgNamesPerCall) {
    return Error::invalid(fmt::format("DescribeAutoScalingGroups takes at most {} names, got {}",
                                      kMaxAsgNamesPerCall, names.size()));
  }
  if (max_records < 1 || max_records > kMaxAsgRecords) {
    return Error::invalid(fmt::format("MaxRecords must be 1..{}", kMaxAsgRecords));
  }
  QueryParams p;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) return Error::invalid("empty Auto Scaling group name");
    p.emplace_back(fmt::format("AutoScalingGroupNames.member.{}", i + 1), names[i]);
  }
  p.emplace_back("MaxRecords", std::to_string(max_records));
  if (!next_token.empty()) p.emplace_back("NextToken", std::string(next_token));
  return p;
}

Result<QueryParams> describe_auto_scaling_groups_params(
    const std::vector<std::string>& names,
    const std::vector<std::pair<std::string, std::string>>& tag_filters,
    std::string_view next_token, int max_records) {
  auto p = describe_auto_scaling_groups_params(names, "", max_records);
  if (!p) return p;
  size_t n = 0;
  for (const auto& [key, value] : tag_filters) {
    if (key.empty()) return Error::invalid("empty tag key in a DescribeAutoScalingGroups filter");
    ++n;
    p->emplace_back(fmt::format("Filters.member.{}.Name", n),
                    value.empty() ? std::string("tag-key") : "tag:" + key);
    p->emplace_back(fmt::format("Filters.member.{}.Values.member.1", n),
                    value.empty() ? key : value);
  }
  if (!next_token.empty()) p->emplace_back("NextToken", std::string(next_token));
  return p;
}

Result<QueryParams> complete_lifecycle_action_params(const LifecycleActionRef& ref,
                                                     LifecycleActionResult result) {
  if (auto st = check_ref(ref); !st) return st.error();
  QueryParams p;
  add_ref(p, ref);
  p.emplace_back("LifecycleActionResult",
                 result == LifecycleActionResult::kContinue ? "CONTINUE" : "ABANDON");
  return p;
}

Result<QueryParams> record_lifecycle_action_heartbeat_params(const LifecycleActionRef& ref) {
  if (auto st = check_ref(ref); !st) return st.error();
  QueryParams p;
  add_ref(p, ref);
  return p;
}

Result<QueryParams> describe_instances_by_id_params(const std::vector<std::string>& ids,
                                                    std::string_view next_token) {
  if (ids.empty()) return Error::invalid("DescribeInstances by id needs at least one id");
  if (ids.size() > kMaxInstanceIdsPerCall) {
    return Error::invalid(fmt::format("DescribeInstances takes at most {} ids, got {}",
                                      kMaxInstanceIdsPerCall, ids.size()));
  }
  QueryParams p;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) return Error::invalid("empty instance id");
    p.emplace_back(fmt::format("InstanceId.{}", i + 1), ids[i]);
  }
  if (!next_token.empty()) p.emplace_back("NextToken", std::string(next_token));
  return p;
}

Result<QueryParams> describe_instances_by_filters_params(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& filters,
    std::string_view next_token, int max_results) {
  if (max_results < 5 || max_results > 1000) {
    return Error::invalid("DescribeInstances MaxResults must be 5..1000");
  }
  QueryParams p;
  size_t n = 0;
  auto add = [&](const std::string& name, const std::vector<std::string>& values) -> Status {
    if (name.empty() || values.empty()) {
      return Error::invalid("DescribeInstances filter without a name or values");
    }
    ++n;
    p.emplace_back(fmt::format("Filter.{}.Name", n), name);
    for (size_t v = 0; v < values.size(); ++v) {
      if (values[v].empty()) return Error::invalid("empty value in filter " + name);
      p.emplace_back(fmt::format("Filter.{}.Value.{}", n, v + 1), values[v]);
    }
    return {};
  };
  for (const auto& [name, values] : filters) {
    if (auto st = add(name, values); !st) return st.error();
  }
  if (auto st = add("instance-state-name", {"running"}); !st) return st.error();
  p.emplace_back("MaxResults", std::to_string(max_results));
  if (!next_token.empty()) p.emplace_back("NextToken", std::string(next_token));
  return p;
}

QueryParams assume_role_params(std::string_view role_arn, std::string_view session_name,
                               std::string_view external_id, std::optional<int> duration_seconds) {
  QueryParams p = {{"RoleArn", std::string(role_arn)},
                   {"RoleSessionName", std::string(session_name)}};
  if (!external_id.empty()) p.emplace_back("ExternalId", std::string(external_id));
  if (duration_seconds) p.emplace_back("DurationSeconds", std::to_string(*duration_seconds));
  return p;
}

QueryParams assume_role_with_web_identity_params(std::string_view role_arn,
                                                 std::string_view session_name,
                                                 std::string_view token) {
  const size_t b = token.find_first_not_of(" \t\r\n");
  const size_t e = token.find_last_not_of(" \t\r\n");
  token = b == std::string_view::npos ? std::string_view() : token.substr(b, e - b + 1);
  return {{"RoleArn", std::string(role_arn)},
          {"RoleSessionName", std::string(session_name)},
          {"WebIdentityToken", std::string(token)}};
}

Result<std::string> sqs_receive_message_body(std::string_view queue_url, int max_messages,
                                             int wait_seconds,
                                             std::optional<int> visibility_timeout) {
  if (queue_url.empty()) return Error::invalid("SQS ReceiveMessage: empty QueueUrl");
  if (max_messages < 1 || max_messages > 10) {
    return Error::invalid("SQS ReceiveMessage: MaxNumberOfMessages must be 1..10");
  }
  if (wait_seconds < 0 || wait_seconds > 20) {
    return Error::invalid("SQS ReceiveMessage: WaitTimeSeconds must be 0..20");
  }
  json j = {{"QueueUrl", std::string(queue_url)},
            {"MaxNumberOfMessages", max_messages},
            {"WaitTimeSeconds", wait_seconds},
            {"MessageSystemAttributeNames", {"ApproximateReceiveCount", "SentTimestamp"}}};
  if (visibility_timeout) {
    if (*visibility_timeout < 0 || *visibility_timeout > 43200) {
      return Error::invalid("SQS ReceiveMessage: VisibilityTimeout must be 0..43200");
    }
    j["VisibilityTimeout"] = *visibility_timeout;
  }
  return dump(j);
}

std::string sqs_delete_message_body(std::string_view queue_url, std::string_view receipt_handle) {
  return dump(
      {{"QueueUrl", std::string(queue_url)}, {"ReceiptHandle", std::string(receipt_handle)}});
}

Result<std::string> sqs_change_message_visibility_body(std::string_view queue_url,
                                                       std::string_view receipt_handle,
                                                       int visibility_timeout) {
  if (visibility_timeout < 0 || visibility_timeout > 43200) {
    return Error::invalid("SQS ChangeMessageVisibility: VisibilityTimeout must be 0..43200");
  }
  return dump({{"QueueUrl", std::string(queue_url)},
               {"ReceiptHandle", std::string(receipt_handle)},
               {"VisibilityTimeout", visibility_timeout}});
}

}  // namespace ep::aws
