#pragma once
// Pure parsers for the AWS replies and SQS message bodies ElasticProxy reads (aws.md §4–§6).
// Every function takes bytes and returns a value or an error naming what is wrong and where; none
// throws, crashes or recurses on hostile input (tested with truncated, deeply nested and random
// payloads).
//
// XML (Auto Scaling, EC2, STS): elements are matched by local name, so a prefixed form
// (<as:member>) parses like the default-namespace form AWS sends. The reply root's namespace must
// be the API's (kAutoScalingNamespace / kEc2Namespace) or absent (some test doubles omit it); any
// other namespace is rejected, since it means a different API version with other shapes.
// A reply that is an AWS error document instead (<ErrorResponse>, EC2 <Response><Errors>) yields
// an error carrying the AWS code: kUnavailable for throttling/transient codes, else kRefused.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ep::aws {

inline constexpr std::string_view kAutoScalingNamespace =
    "http://autoscaling.amazonaws.com/doc/2011-01-01/";
inline constexpr std::string_view kEc2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/";
inline constexpr std::string_view kStsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/";

// Replies larger than this are refused before parsing.
inline constexpr size_t kMaxReplyBytes = 32 * 1024 * 1024;

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};

// ---- DescribeAutoScalingGroups ----

struct AsgInstance {
  std::string instance_id;
  std::string instance_type;
  std::string availability_zone;
  std::string availability_zone_id;
  std::string lifecycle_state;  // "InService", "Terminating:Wait", …
  std::string health_status;    // "Healthy" / "Unhealthy"
  bool protected_from_scale_in = false;
  std::string weighted_capacity;  // as sent (a string in the API model); "" when absent
  std::string launch_template_name;
  std::string image_id;

  // WeightedCapacity as a number when it is a positive integer; nullopt otherwise.
  std::optional<int> weight() const;
};

struct AutoScalingGroup {
  std::string name;
  std::string arn;
  int min_size = 0;
  int max_size = 0;
  int desired_capacity = 0;
  std::vector<std::string> availability_zones;
  std::string health_check_type;
  std::string status;  // set while the group is being deleted
  std::vector<Tag> tags;
  std::vector<AsgInstance> instances;
};

struct DescribeAutoScalingGroupsPage {
  std::vector<AutoScalingGroup> groups;
  std::string next_token;  // empty = last page
  std::string request_id;
};

Result<DescribeAutoScalingGroupsPage> parse_describe_auto_scaling_groups(std::string_view xml);

// aws.md §4.1 membership rule: InService + Healthy → kServe; Terminating* → kDrain; anything else
// (Pending*, Standby, Detaching, Warmed:*, unhealthy InService, …) → kAbsent.
enum class AsgMembership { kServe, kDrain, kAbsent };
AsgMembership membership(const AsgInstance& instance);
const char* to_string(AsgMembership m);

// ---- DescribeInstances ----

struct Ec2Instance {
  std::string instance_id;
  std::string instance_type;
  int state_code = -1;     // code & 0xFF: 0 pending, 16 running, 32 shutting-down, 48 terminated…
  std::string state_name;  // "running"
  std::string private_ip;  // privateIpAddress; "" when absent
  std::string public_ip;   // ipAddress; "" when absent
  std::vector<std::string> ipv6_addresses;  // primary first, no duplicates
  std::string availability_zone;
  std::string subnet_id;
  std::string vpc_id;
  std::string launch_time;
  std::vector<Tag> tags;

  // The value of tag `key`, or nullopt.
  std::optional<std::string> tag(std::string_view key) const;
};

struct DescribeInstancesPage {
  std::vector<Ec2Instance> instances;  // reservations flattened, in document order
  std::string next_token;              // empty = last page
  std::string request_id;
};

Result<DescribeInstancesPage> parse_describe_instances(std::string_view xml);

// ---- errors ----

struct AwsError {
  std::string code;  // "Throttling", "QueueDoesNotExist", …
  std::string message;
  std::string type;  // "Sender" / "Receiver" when given
  std::string request_id;
  std::string legacy_code;  // SQS x-amzn-query-error code (AWS.SimpleQueueService.NonExistentQueue)
};

// <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse> (query
// services) and <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
// (EC2).
Result<AwsError> parse_xml_error(std::string_view xml);

// JSON protocol errors: {"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"…"} (the code
// is the part after '#'; "Message" also accepted). `query_error_header` is the optional
// x-amzn-query-error value "<legacy code>;<Sender|Receiver>".
Result<AwsError> parse_json_error(std::string_view json, std::string_view query_error_header = {});

// Classification by code, never by HTTP status alone (aws.md §4.3).
bool is_throttling_code(std::string_view code);
bool is_transient_code(std::string_view code);
bool is_clock_skew_code(std::string_view code);  // RequestTimeTooSkewed, RequestExpired, …
bool is_expired_credentials_code(std::string_view code);  // ExpiredToken, ExpiredTokenException

enum class ErrorClass {
  kThrottling,          // retry with the throttling backoff base (1 s)
  kTransient,           // retry with the short base (50 ms)
  kClockSkew,           // recompute the clock offset from the Date header, retry
  kExpiredCredentials,  // refresh credentials, retry
  kFatal,               // do not retry this call
};
// `http_status` breaks ties only for codes we do not know: 500/502/503/504 → kTransient.
ErrorClass classify_error(const AwsError& error, int http_status);
const char* to_string(ErrorClass c);

// ---- SQS (JSON 1.0 protocol) ----

struct SqsMessage {
  std::string message_id;
  std::string receipt_handle;
  std::string md5_of_body;
  std::string body;
  std::vector<std::pair<std::string, std::string>> attributes;  // sorted by name

  std::optional<std::string> attribute(std::string_view name) const;
  // ApproximateReceiveCount as a number (0 when absent or not a number).
  long receive_count() const;
};

// ReceiveMessage reply. No "Messages" key (empty queue) → empty vector. A message without
// ReceiptHandle or Body is an error (it could never be deleted or understood).
Result<std::vector<SqsMessage>> parse_receive_message(std::string_view json);

// ---- SQS message bodies: ASG notifications, lifecycle hooks, EventBridge ----

enum class MessageKind {
  kLifecycleAction,   // a lifecycle hook fired: LifecycleTransition + token
  kAsgNotification,   // autoscaling:EC2_INSTANCE_LAUNCH / _TERMINATE / _LAUNCH_ERROR / …
  kTestNotification,  // autoscaling:TEST_NOTIFICATION: acknowledge (delete) and ignore
  kUnknown,           // valid JSON we do not act on; `reason` says why
};
const char* to_string(MessageKind k);

enum class MessageEnvelope { kRaw, kSns, kEventBridge };
const char* to_string(MessageEnvelope e);

struct AsgMessage {
  MessageKind kind = MessageKind::kUnknown;
  MessageEnvelope envelope = MessageEnvelope::kRaw;
  std::string reason;  // kUnknown: why it was not recognised

  // kAsgNotification: the ASG event name, also for EventBridge ("EC2 Instance Launch Successful"
  // → "autoscaling:EC2_INSTANCE_LAUNCH"). kTestNotification: "autoscaling:TEST_NOTIFICATION".
  std::string event;
  // kLifecycleAction: "autoscaling:EC2_INSTANCE_LAUNCHING" /
  // "autoscaling:EC2_INSTANCE_TERMINATING".
  std::string lifecycle_transition;
  std::string lifecycle_action_token;
  std::string lifecycle_hook_name;
  std::string notification_metadata;
  std::string origin;  // "AutoScalingGroup", "EC2", "WarmPool" when given
  std::string destination;

  std::string auto_scaling_group_name;
  std::string instance_id;  // EC2InstanceId; empty for test notifications
  std::string account_id;
  std::string time;            // Time (raw) or EventBridge "time"
  std::string request_id;      // RequestId, or the EventBridge event id
  std::string status_code;     // activity notifications: StatusCode
  std::string sns_message_id;  // kSns: the envelope's MessageId
  std::string detail_type;     // kEventBridge: the event's detail-type

  bool terminating() const;  // lifecycle TERMINATING or a terminate notification
  bool launching() const;    // lifecycle LAUNCHING or a launch notification
};

// Classifies one SQS message body. Accepts a raw ASG/lifecycle JSON (hook target = SQS, or SNS
// with raw delivery), an SNS envelope whose "Message" string holds that JSON, and an EventBridge
// event with source "aws.autoscaling". Errors (kInvalid): the body is not a JSON object; an SNS
// envelope without a string Message; a lifecycle action without EC2InstanceId,
// AutoScalingGroupName, LifecycleHookName or LifecycleActionToken. Any other well-formed JSON
// comes back as kUnknown with a reason.
Result<AsgMessage> classify_message(std::string_view body);

}  // namespace ep::aws
