#pragma once
// Options of the `aws_asg` and `aws_ec2` sources (docs/aws.md), parsed with ep::MapReader so
// every error carries file:line:col.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/config_node.h"

namespace ep::aws {

enum class AddressType { kPrivate, kPublic, kIpv6 };
const char* to_string(AddressType t);

enum class HookResult { kContinue, kAbandon };
const char* to_string(HookResult r);

// One lifecycle hook this node completes (`lifecycle_hooks:` entry, or the single
// `lifecycle_hook:` spelling, which takes both transitions).
enum class HookTransition { kAny, kLaunching, kTerminating };
const char* to_string(HookTransition t);
struct LifecycleHookOptions {
  std::string name;
  HookTransition transition = HookTransition::kAny;
  std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(60)};
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(300)};
  HookResult on_drain_timeout = HookResult::kContinue;
  std::chrono::milliseconds launch_timeout{std::chrono::seconds(300)};

  bool launching() const { return transition != HookTransition::kTerminating; }
  bool terminating() const { return transition != HookTransition::kLaunching; }
};

// Where and as whom an AWS source calls (shared by aws_asg and aws_ec2).
struct AwsConnectionOptions {
  std::string region;   // empty = AWS_REGION / AWS_DEFAULT_REGION / profile / IMDS
  std::string profile;  // empty = AWS_PROFILE / default
  // Explicit keys (EP2's aws_access_key_id / aws_secret_access_key); both or neither.
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  // Endpoint overrides (`endpoints: {autoscaling:, ec2:, sqs:, sts:}`), e.g. a local double.
  std::string autoscaling_endpoint, ec2_endpoint, sqs_endpoint, sts_endpoint;
  // Signed requests over plain http to a host other than loopback are refused unless this is
  // set (and then a warning is logged).
  bool allow_insecure = false;
};

// How an EC2 instance becomes a server, and the poll (shared by aws_asg and aws_ec2).
struct AwsInstanceOptions {
  AddressType address = AddressType::kPrivate;  // `address:` private|public|ipv6 (EP2 ip_type)
  long port = 0;                                // `port:` 1..65535; 0 = backend's port
  std::string port_tag;                         // `port_tag:` instance tag holding the port
  std::string weight_tag;                       // `weight_tag:` instance tag holding the weight
  std::optional<long> weight;                   // aws_ec2 `weight:` (a weight_tag wins)
  std::string local_zone;                       // `local_zone:` with backup_other_zones
  bool backup_other_zones = false;  // `backup_other_zones:` other AZs' servers are backup
  std::chrono::milliseconds interval{std::chrono::seconds(30)};  // `interval:` poll period
  std::chrono::milliseconds timeout{std::chrono::seconds(20)};   // `timeout:` per HTTP request
};

struct AsgOptions : AwsConnectionOptions, AwsInstanceOptions {
  // ASG names; `groups:` / `asg_names:` (scalar or list) or EP2's `asg_name: "a,b"` (comma list,
  // split here). A name with `*` or `?` is a glob pattern matched against every group's name.
  std::vector<std::string> groups;
  // `asg_tags: {key: value}`: only groups carrying every tag (DescribeAutoScalingGroups Filters
  // `tag:<key>`; an empty value or "*" means "has the key", filter `tag-key`). With tags and no
  // names, every group with the tags is used.
  std::vector<std::pair<std::string, std::string>> group_tags;

  bool weight_from_capacity = true;  // `weight_from_capacity:` WeightedCapacity → weight
  std::vector<std::string> lifecycle_states{"InService"};  // `lifecycle_states:`
  bool require_healthy = true;                             // `require_healthy:`

  // SQS events (`queue_url:`); empty = polling only.
  std::string queue_url;
  long wait_seconds = 20;  // `wait_seconds:` long-poll wait, 1..20

  // Lifecycle hooks (`lifecycle_hook:` the hook name this node completes; empty = hooks are only
  // re-poll triggers). Needs queue_url.
  std::string lifecycle_hook;
  std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(60)};   // `heartbeat_interval:`
  std::chrono::milliseconds hook_drain_timeout{std::chrono::seconds(300)};  // `drain_timeout:`
  HookResult on_drain_timeout = HookResult::kContinue;  // `on_drain_timeout: continue|abandon`
  std::chrono::milliseconds launch_timeout{std::chrono::seconds(300)};  // `launch_timeout:`
  // `lifecycle_hooks: [{name, transition: launching|terminating, heartbeat_interval,
  // drain_timeout, on_drain_timeout, launch_timeout}]` (the entries' defaults are the top-level
  // keys above). Use hooks() to read: it also turns the single `lifecycle_hook` into one entry.
  std::vector<LifecycleHookOptions> lifecycle_hooks;
  std::vector<LifecycleHookOptions> hooks() const;
  bool has_launch_hook() const;
  // `hook_check_interval:` how often the probe (HAProxy state) is looked at.
  std::chrono::milliseconds hook_check_interval{std::chrono::seconds(1)};

  // True when `groups` holds a pattern or group_tags is set: the groups are found by listing.
  bool discovers_groups() const;
};

// The `aws_ec2` source: running instances selected by DescribeInstances filters.
struct Ec2Options : AwsConnectionOptions, AwsInstanceOptions {
  // Filters (name -> values; values ORed, filters ANDed), e.g. {"tag:Service", {"web"}};
  // `instance-state-name=running` is always added.
  std::vector<std::pair<std::string, std::vector<std::string>>> filters;
};

// Glob match: `*` any run (also empty), `?` one character; everything else literal.
bool glob_match(std::string_view pattern, std::string_view text);
bool is_pattern(std::string_view name);

// nullopt when any option is invalid (errors recorded in `diag`).
std::optional<AsgOptions> parse_asg_options(const ConfigNode& node, Diagnostics& diag);
// The `aws_ec2` source's options (docs/aws.md "The aws_ec2 source").
std::optional<Ec2Options> parse_ec2_options(const ConfigNode& node, Diagnostics& diag);

}  // namespace ep::aws
