#pragma once
// Builders for the SQS message bodies AWS sends about Auto Scaling (aws.md §6): lifecycle-hook
// notifications raw (hook target = SQS), wrapped in an SNS envelope, or as EventBridge events.

#include <string>

namespace ep::test {

enum class Envelope { kRaw, kSns, kEventBridge };

struct LifecycleMessage {
  std::string group = "web-asg";
  std::string hook = "elasticproxy-drain";
  std::string instance_id;
  std::string token;
  bool terminating = true;  // EC2_INSTANCE_TERMINATING, else EC2_INSTANCE_LAUNCHING
};

std::string lifecycle_body(const LifecycleMessage& m, Envelope envelope);

}  // namespace ep::test
