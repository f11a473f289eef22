#include "support/aws/messages.h"

#include <nlohmann/json.hpp>

namespace ep::test {

std::string lifecycle_body(const LifecycleMessage& m, Envelope envelope) {
  const std::string transition =
      m.terminating ? "autoscaling:EC2_INSTANCE_TERMINATING" : "autoscaling:EC2_INSTANCE_LAUNCHING";
  nlohmann::json detail = {{"Origin", m.terminating ? "AutoScalingGroup" : "EC2"},
                           {"Destination", m.terminating ? "EC2" : "AutoScalingGroup"},
                           {"LifecycleHookName", m.hook},
                           {"AccountId", "111122223333"},
                           {"RequestId", "9d1e0000-0000-4000-8000-" + m.token.substr(0, 12)},
                           {"LifecycleTransition", transition},
                           {"AutoScalingGroupName", m.group},
                           {"EC2InstanceId", m.instance_id},
                           {"LifecycleActionToken", m.token},
                           {"NotificationMetadata", "backend=web"}};
  switch (envelope) {
    case Envelope::kRaw: {
      detail["Service"] = "AWS Auto Scaling";
      detail["Time"] = "2026-03-02T11:00:04.512Z";
      return detail.dump();
    }
    case Envelope::kSns: {
      detail["Service"] = "AWS Auto Scaling";
      detail["Time"] = "2026-03-02T11:00:04.512Z";
      nlohmann::json sns = {
          {"Type", "Notification"},
          {"MessageId", "7f0c2d1e-0000-4000-8000-" + m.token.substr(0, 12)},
          {"TopicArn", "arn:aws:sns:eu-west-1:111122223333:web-asg-events"},
          {"Subject", "Auto Scaling:  Lifecycle action '" +
                          std::string(m.terminating ? "TERMINATING" : "LAUNCHING") +
                          "' for instance " + m.instance_id},
          {"Message", detail.dump()},
          {"Timestamp", "2026-03-02T11:00:04.600Z"},
          {"SignatureVersion", "1"},
          {"Signature", "c2lnbmF0dXJl"},
          {"SigningCertURL", "https://sns.eu-west-1.amazonaws.com/cert.pem"},
          {"UnsubscribeURL", "https://sns.eu-west-1.amazonaws.com/?Action=x"}};
      return sns.dump();
    }
    case Envelope::kEventBridge: {
      nlohmann::json ev = {{"version", "0"},
                           {"id", "0e1f0000-0000-4000-8000-" + m.token.substr(0, 12)},
                           {"detail-type", m.terminating ? "EC2 Instance-terminate Lifecycle Action"
                                                         : "EC2 Instance-launch Lifecycle Action"},
                           {"source", "aws.autoscaling"},
                           {"account", "111122223333"},
                           {"time", "2026-03-02T11:00:04Z"},
                           {"region", "eu-west-1"},
                           {"resources",
                            {"arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:0000:"
                             "autoScalingGroupName/" +
                             m.group}},
                           {"detail", detail}};
      return ev.dump();
    }
  }
  return {};
}

}  // namespace ep::test
