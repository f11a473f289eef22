#include "discovery/aws/parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "core/secrets.h"
#include "discovery/aws/xml_util.h"
#include "os/json.h"

namespace ep::aws {

using json = nlohmann::json;

namespace {

Result<int> parse_int(std::string_view text, std::string_view where) {
  int v = 0;
  const char* b = text.data();
  const char* e = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(b, e, v);
  if (text.empty() || ec != std::errc() || ptr != e) {
    return Error::invalid(fmt::format("{}: '{}' is not an integer", where, text.substr(0, 40)));
  }
  return v;
}

std::vector<Tag> parse_asg_tags(pugi::xml_node tags) {
  std::vector<Tag> out;
  for (pugi::xml_node m : xml::children(tags, "member")) {
    out.push_back({xml::child_text(m, "Key"), xml::child_text(m, "Value")});
  }
  return out;
}

Result<AsgInstance> parse_asg_instance(pugi::xml_node m, const std::string& where) {
  AsgInstance in;
  in.instance_id = xml::child_text(m, "InstanceId");
  if (in.instance_id.empty()) return Error::invalid(where + ": missing InstanceId");
  in.instance_type = xml::child_text(m, "InstanceType");
  in.availability_zone = xml::child_text(m, "AvailabilityZone");
  in.availability_zone_id = xml::child_text(m, "AvailabilityZoneId");
  in.lifecycle_state = xml::child_text(m, "LifecycleState");
  if (in.lifecycle_state.empty()) {
    return Error::invalid(fmt::format("{} ({}): missing LifecycleState", where, in.instance_id));
  }
  in.health_status = xml::child_text(m, "HealthStatus");
  if (in.health_status.empty()) {
    return Error::invalid(fmt::format("{} ({}): missing HealthStatus", where, in.instance_id));
  }
  in.protected_from_scale_in = xml::child_text(m, "ProtectedFromScaleIn") == "true";
  in.weighted_capacity = xml::child_text(m, "WeightedCapacity");
  if (pugi::xml_node lt = xml::child(m, "LaunchTemplate")) {
    in.launch_template_name = xml::child_text(lt, "LaunchTemplateName");
  }
  in.image_id = xml::child_text(m, "ImageId");
  return in;
}

Result<AutoScalingGroup> parse_asg(pugi::xml_node m, const std::string& where) {
  AutoScalingGroup g;
  g.name = xml::child_text(m, "AutoScalingGroupName");
  if (g.name.empty()) return Error::invalid(where + ": missing AutoScalingGroupName");
  const std::string gwhere = fmt::format("{} ({})", where, g.name);
  g.arn = xml::child_text(m, "AutoScalingGroupARN");
  struct IntField {
    const char* name;
    int* out;
  };
  for (IntField f : {IntField{"MinSize", &g.min_size}, IntField{"MaxSize", &g.max_size},
                     IntField{"DesiredCapacity", &g.desired_capacity}}) {
    pugi::xml_node n = xml::child(m, f.name);
    if (!n) continue;
    auto v = parse_int(xml::text(n), gwhere + "/" + f.name);
    if (!v) return v.error();
    *f.out = *v;
  }
  for (pugi::xml_node az : xml::children(xml::child(m, "AvailabilityZones"), "member")) {
    g.availability_zones.push_back(xml::text(az));
  }
  g.health_check_type = xml::child_text(m, "HealthCheckType");
  g.status = xml::child_text(m, "Status");
  g.tags = parse_asg_tags(xml::child(m, "Tags"));
  int i = 0;
  for (pugi::xml_node im : xml::children(xml::child(m, "Instances"), "member")) {
    ++i;
    auto in = parse_asg_instance(im, fmt::format("{}/Instances/member[{}]", gwhere, i));
    if (!in) return in.error();
    g.instances.push_back(std::move(*in));
  }
  return g;
}

void add_unique(std::vector<std::string>& v, std::string s) {
  if (s.empty()) return;
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

Result<Ec2Instance> parse_ec2_instance(pugi::xml_node item, const std::string& where) {
  Ec2Instance in;
  in.instance_id = xml::child_text(item, "instanceId");
  if (in.instance_id.empty()) return Error::invalid(where + ": missing instanceId");
  const std::string iwhere = fmt::format("{} ({})", where, in.instance_id);
  in.instance_type = xml::child_text(item, "instanceType");
  if (pugi::xml_node st = xml::child(item, "instanceState")) {
    const std::string code = xml::child_text(st, "code");
    if (!code.empty()) {
      auto c = parse_int(code, iwhere + "/instanceState/code");
      if (!c) return c.error();
      in.state_code = *c & 0xFF;  // the high byte is internal (aws.md §4.2)
    }
    in.state_name = xml::child_text(st, "name");
  }
  in.private_ip = xml::child_text(item, "privateIpAddress");
  in.public_ip = xml::child_text(item, "ipAddress");
  if (pugi::xml_node pl = xml::child(item, "placement")) {
    in.availability_zone = xml::child_text(pl, "availabilityZone");
  }
  in.subnet_id = xml::child_text(item, "subnetId");
  in.vpc_id = xml::child_text(item, "vpcId");
  in.launch_time = xml::child_text(item, "launchTime");
  for (pugi::xml_node t : xml::children(xml::child(item, "tagSet"), "item")) {
    in.tags.push_back({xml::child_text(t, "key"), xml::child_text(t, "value")});
  }
  // IPv6: the instance-level primary first, then primaries of interfaces, then the rest.
  add_unique(in.ipv6_addresses, xml::child_text(item, "ipv6Address"));
  std::vector<std::string> secondary;
  for (pugi::xml_node ni : xml::children(xml::child(item, "networkInterfaceSet"), "item")) {
    for (pugi::xml_node a : xml::children(xml::child(ni, "ipv6AddressesSet"), "item")) {
      std::string addr = xml::child_text(a, "ipv6Address");
      if (xml::child_text(a, "isPrimaryIpv6") == "true") {
        add_unique(in.ipv6_addresses, std::move(addr));
      } else {
        add_unique(secondary, std::move(addr));
      }
    }
  }
  for (auto& s : secondary) add_unique(in.ipv6_addresses, std::move(s));
  return in;
}

// ---- JSON helpers ----

std::string str(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

Result<json> parse_json_object(std::string_view text, std::string_view what) {
  if (text.size() > kMaxReplyBytes) {
    return Error::invalid(
        fmt::format("{}: {} bytes exceeds the {} byte limit", what, text.size(), kMaxReplyBytes));
  }
  auto parsed = os::parse_json(text, what);
  if (!parsed) return parsed.error();
  json j = std::move(*parsed);
  if (!j.is_object()) return Error::invalid(fmt::format("{}: not a JSON object", what));
  return j;
}

struct EventBridgeMapping {
  std::string_view detail_type;
  MessageKind kind;
  std::string_view event;
};

constexpr EventBridgeMapping kEventBridge[] = {
    {"EC2 Instance-launch Lifecycle Action", MessageKind::kLifecycleAction, ""},
    {"EC2 Instance-terminate Lifecycle Action", MessageKind::kLifecycleAction, ""},
    {"EC2 Instance Launch Successful", MessageKind::kAsgNotification,
     "autoscaling:EC2_INSTANCE_LAUNCH"},
    {"EC2 Instance Launch Unsuccessful", MessageKind::kAsgNotification,
     "autoscaling:EC2_INSTANCE_LAUNCH_ERROR"},
    {"EC2 Instance Terminate Successful", MessageKind::kAsgNotification,
     "autoscaling:EC2_INSTANCE_TERMINATE"},
    {"EC2 Instance Terminate Unsuccessful", MessageKind::kAsgNotification,
     "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"},
};

void fill_common(const json& o, AsgMessage& m) {
  m.auto_scaling_group_name = str(o, "AutoScalingGroupName");
  m.instance_id = str(o, "EC2InstanceId");
  if (m.account_id.empty()) m.account_id = str(o, "AccountId");
  if (m.time.empty()) m.time = str(o, "Time");
  if (m.request_id.empty()) m.request_id = str(o, "RequestId");
  m.status_code = str(o, "StatusCode");
}

Status fill_lifecycle(const json& o, AsgMessage& m) {
  m.kind = MessageKind::kLifecycleAction;
  m.lifecycle_transition = str(o, "LifecycleTransition");
  m.lifecycle_action_token = str(o, "LifecycleActionToken");
  secrets::add(m.lifecycle_action_token);  // it can complete the hook: never printed
  m.lifecycle_hook_name = str(o, "LifecycleHookName");
  m.notification_metadata = str(o, "NotificationMetadata");
  m.origin = str(o, "Origin");
  m.destination = str(o, "Destination");
  fill_common(o, m);
  struct Req {
    const char* name;
    const std::string* value;
  };
  for (Req r :
       {Req{"LifecycleTransition", &m.lifecycle_transition}, Req{"EC2InstanceId", &m.instance_id},
        Req{"AutoScalingGroupName", &m.auto_scaling_group_name},
        Req{"LifecycleHookName", &m.lifecycle_hook_name},
        Req{"LifecycleActionToken", &m.lifecycle_action_token}}) {
    if (r.value->empty()) {
      return Error::invalid(
          fmt::format("{} lifecycle action message has no {}", to_string(m.envelope), r.name));
    }
  }
  return {};
}

// The ASG payload itself (raw SQS body, or the SNS Message).
Result<AsgMessage> classify_asg_payload(const json& o, AsgMessage m) {
  const std::string event = str(o, "Event");
  if (event == "autoscaling:TEST_NOTIFICATION" ||
      str(o, "LifecycleTransition") == "autoscaling:TEST_NOTIFICATION") {
    m.kind = MessageKind::kTestNotification;
    m.event = "autoscaling:TEST_NOTIFICATION";
    fill_common(o, m);
    return m;
  }
  if (o.contains("LifecycleTransition")) {
    if (auto st = fill_lifecycle(o, m); !st) return st.error();
    return m;
  }
  if (event.rfind("autoscaling:EC2_INSTANCE_", 0) == 0) {
    m.kind = MessageKind::kAsgNotification;
    m.event = event;
    fill_common(o, m);
    return m;
  }
  m.kind = MessageKind::kUnknown;
  m.reason = event.empty() ? "no Event or LifecycleTransition field"
                           : fmt::format("unhandled Event '{}'", event.substr(0, 80));
  return m;
}

Result<AsgMessage> classify_eventbridge(const json& o) {
  AsgMessage m;
  m.envelope = MessageEnvelope::kEventBridge;
  m.detail_type = str(o, "detail-type");
  m.account_id = str(o, "account");
  m.time = str(o, "time");
  m.request_id = str(o, "id");
  const std::string source = str(o, "source");
  if (source != "aws.autoscaling") {
    m.reason = fmt::format("EventBridge event from source '{}'", source.substr(0, 80));
    return m;
  }
  auto detail = o.find("detail");
  if (detail == o.end() || !detail->is_object()) {
    m.reason = "EventBridge event without a detail object";
    return m;
  }
  for (const auto& map : kEventBridge) {
    if (map.detail_type != m.detail_type) continue;
    if (map.kind == MessageKind::kLifecycleAction) {
      if (auto st = fill_lifecycle(*detail, m); !st) return st.error();
      return m;
    }
    m.kind = map.kind;
    m.event = std::string(map.event);
    fill_common(*detail, m);
    return m;
  }
  m.reason = fmt::format("unhandled EventBridge detail-type '{}'", m.detail_type.substr(0, 80));
  return m;
}

}  // namespace

// ---- Auto Scaling ----

std::optional<int> AsgInstance::weight() const {
  int v = 0;
  const char* b = weighted_capacity.data();
  const char* e = b + weighted_capacity.size();
  auto [ptr, ec] = std::from_chars(b, e, v);
  if (weighted_capacity.empty() || ec != std::errc() || ptr != e || v <= 0) return std::nullopt;
  return v;
}

Result<DescribeAutoScalingGroupsPage> parse_describe_auto_scaling_groups(
    std::string_view xml_text) {
  constexpr std::string_view kWhat = "DescribeAutoScalingGroups reply";
  pugi::xml_document doc;
  auto root = xml::load_reply(doc, xml_text, "DescribeAutoScalingGroupsResponse",
                              kAutoScalingNamespace, kWhat);
  if (!root) return root.error();
  pugi::xml_node result = xml::child(*root, "DescribeAutoScalingGroupsResult");
  if (!result)
    return Error::invalid(fmt::format("{}: missing DescribeAutoScalingGroupsResult", kWhat));
  pugi::xml_node groups = xml::child(result, "AutoScalingGroups");
  if (!groups) return Error::invalid(fmt::format("{}: missing AutoScalingGroups", kWhat));
  DescribeAutoScalingGroupsPage page;
  int i = 0;
  for (pugi::xml_node m : xml::children(groups, "member")) {
    ++i;
    auto g = parse_asg(m, fmt::format("{}: AutoScalingGroups/member[{}]", kWhat, i));
    if (!g) return g.error();
    page.groups.push_back(std::move(*g));
  }
  page.next_token = xml::child_text(result, "NextToken");
  page.request_id = xml::child_text(xml::child(*root, "ResponseMetadata"), "RequestId");
  return page;
}

AsgMembership membership(const AsgInstance& instance) {
  if (instance.lifecycle_state.rfind("Terminating", 0) == 0) return AsgMembership::kDrain;
  if (instance.lifecycle_state == "InService" && instance.health_status == "Healthy") {
    return AsgMembership::kServe;
  }
  return AsgMembership::kAbsent;
}

const char* to_string(AsgMembership m) {
  switch (m) {
    case AsgMembership::kServe:
      return "serve";
    case AsgMembership::kDrain:
      return "drain";
    case AsgMembership::kAbsent:
      return "absent";
  }
  return "?";
}

// ---- EC2 ----

std::optional<std::string> Ec2Instance::tag(std::string_view key) const {
  for (const auto& t : tags) {
    if (t.key == key) return t.value;
  }
  return std::nullopt;
}

Result<DescribeInstancesPage> parse_describe_instances(std::string_view xml_text) {
  constexpr std::string_view kWhat = "DescribeInstances reply";
  pugi::xml_document doc;
  auto root = xml::load_reply(doc, xml_text, "DescribeInstancesResponse", kEc2Namespace, kWhat);
  if (!root) return root.error();
  pugi::xml_node reservations = xml::child(*root, "reservationSet");
  if (!reservations) return Error::invalid(fmt::format("{}: missing reservationSet", kWhat));
  DescribeInstancesPage page;
  int r = 0;
  for (pugi::xml_node res : xml::children(reservations, "item")) {
    ++r;
    int i = 0;
    for (pugi::xml_node item : xml::children(xml::child(res, "instancesSet"), "item")) {
      ++i;
      auto in = parse_ec2_instance(
          item, fmt::format("{}: reservationSet/item[{}]/instancesSet/item[{}]", kWhat, r, i));
      if (!in) return in.error();
      page.instances.push_back(std::move(*in));
    }
  }
  page.next_token = xml::child_text(*root, "nextToken");
  page.request_id = xml::child_text(*root, "requestId");
  return page;
}

// ---- errors ----

Result<AwsError> parse_xml_error(std::string_view xml_text) {
  pugi::xml_document doc;
  auto root = xml::load(doc, xml_text, "AWS error reply");
  if (!root) return root.error();
  auto e = xml::error_from_root(*root);
  if (!e) {
    return Error::invalid(fmt::format("AWS error reply: root element <{}> is not an error document",
                                      xml::local_name(root->name())));
  }
  return *e;
}

Result<AwsError> parse_json_error(std::string_view json_text, std::string_view query_error_header) {
  auto j = parse_json_object(json_text, "AWS JSON error reply");
  if (!j) return j.error();
  AwsError e;
  std::string type = str(*j, "__type");
  if (type.empty()) type = str(*j, "code");
  // "com.amazonaws.sqs#QueueDoesNotExist" → after '#'; "Code:http://…" → before ':'.
  if (auto hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
  if (auto colon = type.find(':'); colon != std::string::npos) type = type.substr(0, colon);
  e.code = type;
  e.message = str(*j, "message");
  if (e.message.empty()) e.message = str(*j, "Message");
  if (!query_error_header.empty()) {
    const size_t semi = query_error_header.find(';');
    e.legacy_code = std::string(query_error_header.substr(0, semi));
    if (semi != std::string_view::npos) e.type = std::string(query_error_header.substr(semi + 1));
  }
  if (e.code.empty()) {
    if (e.legacy_code.empty()) {
      return Error::invalid("AWS JSON error reply: no __type (error code)");
    }
    e.code = e.legacy_code;
  }
  return e;
}

bool is_throttling_code(std::string_view code) {
  static constexpr std::string_view kCodes[] = {"Throttling",
                                                "ThrottlingException",
                                                "ThrottledException",
                                                "RequestThrottledException",
                                                "TooManyRequestsException",
                                                "ProvisionedThroughputExceededException",
                                                "TransactionInProgressException",
                                                "RequestLimitExceeded",
                                                "BandwidthLimitExceeded",
                                                "LimitExceededException",
                                                "RequestThrottled",
                                                "SlowDown",
                                                "PriorRequestNotComplete",
                                                "EC2ThrottledException"};
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

bool is_transient_code(std::string_view code) {
  static constexpr std::string_view kCodes[] = {
      "RequestTimeout",     "RequestTimeoutException", "PriorRequestNotComplete",
      "ResourceContention", "InternalError",           "InternalFailure",
      "ServiceUnavailable", "IDPCommunicationError"};
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

bool is_clock_skew_code(std::string_view code) {
  static constexpr std::string_view kCodes[] = {
      "RequestTimeTooSkewed",  "RequestExpired", "InvalidSignatureException",
      "SignatureDoesNotMatch", "AuthFailure",    "RequestInTheFuture"};
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

bool is_expired_credentials_code(std::string_view code) {
  return code == "ExpiredToken" || code == "ExpiredTokenException" ||
         code == "RequestExpiredException" || code == "InvalidClientTokenId";
}

ErrorClass classify_error(const AwsError& error, int http_status) {
  if (is_throttling_code(error.code)) return ErrorClass::kThrottling;
  if (is_transient_code(error.code)) return ErrorClass::kTransient;
  if (is_expired_credentials_code(error.code)) return ErrorClass::kExpiredCredentials;
  // SignatureDoesNotMatch / AuthFailure also mean a wrong secret; only a time hint in the
  // message makes them clock skew (aws.md §4.3).
  if (error.code == "RequestTimeTooSkewed" || error.code == "RequestInTheFuture" ||
      error.code == "RequestExpired") {
    return ErrorClass::kClockSkew;
  }
  if (is_clock_skew_code(error.code)) {
    const std::string& msg = error.message;
    if (msg.find("expired") != std::string::npos ||
        msg.find("Signature not yet") != std::string::npos ||
        msg.find("skew") != std::string::npos || msg.find("time") != std::string::npos) {
      return ErrorClass::kClockSkew;
    }
    return ErrorClass::kFatal;
  }
  if (http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504) {
    return ErrorClass::kTransient;
  }
  return ErrorClass::kFatal;
}

const char* to_string(ErrorClass c) {
  switch (c) {
    case ErrorClass::kThrottling:
      return "throttling";
    case ErrorClass::kTransient:
      return "transient";
    case ErrorClass::kClockSkew:
      return "clock-skew";
    case ErrorClass::kExpiredCredentials:
      return "expired-credentials";
    case ErrorClass::kFatal:
      return "fatal";
  }
  return "?";
}

// ---- SQS ----

std::optional<std::string> SqsMessage::attribute(std::string_view name) const {
  for (const auto& [k, v] : attributes) {
    if (k == name) return v;
  }
  return std::nullopt;
}

long SqsMessage::receive_count() const {
  auto v = attribute("ApproximateReceiveCount");
  if (!v) return 0;
  long n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  return ec == std::errc() && ptr == v->data() + v->size() ? n : 0;
}

Result<std::vector<SqsMessage>> parse_receive_message(std::string_view json_text) {
  constexpr std::string_view kWhat = "SQS ReceiveMessage reply";
  auto j = parse_json_object(json_text, kWhat);
  if (!j) return j.error();
  if (j->contains("__type")) {
    auto e = parse_json_error(json_text);
    if (e) {
      return Error::refused(fmt::format("{}: AWS error {}: {}", kWhat, e->code, e->message));
    }
  }
  std::vector<SqsMessage> out;
  auto it = j->find("Messages");
  if (it == j->end() || it->is_null()) return out;
  if (!it->is_array()) return Error::invalid(fmt::format("{}: Messages is not an array", kWhat));
  size_t i = 0;
  for (const json& m : *it) {
    ++i;
    if (!m.is_object()) {
      return Error::invalid(fmt::format("{}: Messages[{}] is not an object", kWhat, i - 1));
    }
    SqsMessage msg;
    msg.message_id = str(m, "MessageId");
    msg.receipt_handle = str(m, "ReceiptHandle");
    msg.md5_of_body = str(m, "MD5OfBody");
    if (msg.receipt_handle.empty()) {
      return Error::invalid(fmt::format("{}: Messages[{}] has no ReceiptHandle", kWhat, i - 1));
    }
    auto body = m.find("Body");
    if (body == m.end() || !body->is_string()) {
      return Error::invalid(fmt::format("{}: Messages[{}] has no string Body", kWhat, i - 1));
    }
    msg.body = body->get<std::string>();
    if (auto attrs = m.find("Attributes"); attrs != m.end() && attrs->is_object()) {
      for (auto a = attrs->begin(); a != attrs->end(); ++a) {
        if (a.value().is_string())
          msg.attributes.emplace_back(a.key(), a.value().get<std::string>());
      }
      std::sort(msg.attributes.begin(), msg.attributes.end());
    }
    out.push_back(std::move(msg));
  }
  return out;
}

// ---- message classification ----

const char* to_string(MessageKind k) {
  switch (k) {
    case MessageKind::kLifecycleAction:
      return "lifecycle-action";
    case MessageKind::kAsgNotification:
      return "asg-notification";
    case MessageKind::kTestNotification:
      return "test-notification";
    case MessageKind::kUnknown:
      return "unknown";
  }
  return "?";
}

const char* to_string(MessageEnvelope e) {
  switch (e) {
    case MessageEnvelope::kRaw:
      return "raw";
    case MessageEnvelope::kSns:
      return "SNS";
    case MessageEnvelope::kEventBridge:
      return "EventBridge";
  }
  return "?";
}

bool AsgMessage::terminating() const {
  if (kind == MessageKind::kLifecycleAction) {
    return lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING";
  }
  return kind == MessageKind::kAsgNotification && event == "autoscaling:EC2_INSTANCE_TERMINATE";
}

bool AsgMessage::launching() const {
  if (kind == MessageKind::kLifecycleAction) {
    return lifecycle_transition == "autoscaling:EC2_INSTANCE_LAUNCHING";
  }
  return kind == MessageKind::kAsgNotification && event == "autoscaling:EC2_INSTANCE_LAUNCH";
}

Result<AsgMessage> classify_message(std::string_view body) {
  auto j = parse_json_object(body, "SQS message body");
  if (!j) return j.error();
  const json& o = *j;
  const std::string type = str(o, "Type");
  if (!type.empty() && (o.contains("TopicArn") || o.contains("Message"))) {
    AsgMessage m;
    m.envelope = MessageEnvelope::kSns;
    m.sns_message_id = str(o, "MessageId");
    if (type != "Notification") {
      m.reason = fmt::format("SNS message of Type '{}'", type.substr(0, 40));
      return m;
    }
    auto msg = o.find("Message");
    if (msg == o.end() || !msg->is_string()) {
      return Error::invalid("SNS envelope has no string Message field");
    }
    const std::string& inner_text = msg->get_ref<const std::string&>();
    auto parsed = os::parse_json(inner_text, "SNS Message");
    json inner = parsed ? std::move(*parsed) : json();
    if (!inner.is_object()) {
      m.reason = "SNS Message is not a JSON object";
      return m;
    }
    return classify_asg_payload(inner, std::move(m));
  }
  if (o.contains("detail-type") && o.contains("source")) return classify_eventbridge(o);
  return classify_asg_payload(o, AsgMessage{});
}

}  // namespace ep::aws
