#include "discovery/aws/parse.h"

#include <gtest/gtest.h>

#include <random>

#include "discovery/aws/credentials.h"
#include "unit/aws/testdata.h"

namespace ep::aws {
namespace {

using testing::testdata;

// ---- DescribeAutoScalingGroups ----

TEST(ParseAsg, FirstPageWithNextTokenTagsAndInstances) {
  auto page = parse_describe_auto_scaling_groups(testdata("describe_asg_page1.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->next_token, "eyJ2IjoiMiIsImMiOiJ3ZWItYXNnIn0=");
  EXPECT_EQ(page->request_id, "6f1a2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b");
  ASSERT_EQ(page->groups.size(), 1u);
  const AutoScalingGroup& g = page->groups[0];
  EXPECT_EQ(g.name, "web-asg");
  EXPECT_EQ(g.min_size, 2);
  EXPECT_EQ(g.max_size, 10);
  EXPECT_EQ(g.desired_capacity, 4);
  EXPECT_EQ(g.availability_zones, (std::vector<std::string>{"eu-west-1a", "eu-west-1b"}));
  EXPECT_EQ(g.health_check_type, "ELB");
  EXPECT_EQ(g.status, "");
  EXPECT_EQ(g.tags, (std::vector<Tag>{{"env", "prod"}, {"elasticproxy:backend", "be_web"}}));
  ASSERT_EQ(g.instances.size(), 4u);

  const AsgInstance& a = g.instances[0];
  EXPECT_EQ(a.instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(a.instance_type, "m5.large");
  EXPECT_EQ(a.availability_zone, "eu-west-1a");
  EXPECT_EQ(a.lifecycle_state, "InService");
  EXPECT_EQ(a.health_status, "Healthy");
  EXPECT_EQ(a.launch_template_name, "web");
  EXPECT_EQ(a.weight(), 2);
  EXPECT_EQ(membership(a), AsgMembership::kServe);

  EXPECT_EQ(g.instances[1].lifecycle_state, "Terminating:Wait");
  EXPECT_EQ(g.instances[1].weight(), 4);
  EXPECT_EQ(membership(g.instances[1]), AsgMembership::kDrain);

  EXPECT_TRUE(g.instances[2].protected_from_scale_in);
  EXPECT_EQ(g.instances[2].weight(), std::nullopt);
  EXPECT_EQ(membership(g.instances[2]), AsgMembership::kAbsent);  // Pending:Wait

  EXPECT_EQ(membership(g.instances[3]), AsgMembership::kAbsent);  // InService but Unhealthy
}

TEST(ParseAsg, LastPageHasNoTokenAndDeletingStatus) {
  auto page = parse_describe_auto_scaling_groups(testdata("describe_asg_page2.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->next_token, "");
  ASSERT_EQ(page->groups.size(), 1u);
  EXPECT_EQ(page->groups[0].name, "api-asg");
  EXPECT_EQ(page->groups[0].status, "Delete in progress");
  EXPECT_TRUE(page->groups[0].tags.empty());
  ASSERT_EQ(page->groups[0].instances.size(), 1u);
  EXPECT_EQ(membership(page->groups[0].instances[0]), AsgMembership::kAbsent);  // Standby
}

TEST(ParseAsg, EmptyGroupList) {
  auto page = parse_describe_auto_scaling_groups(testdata("describe_asg_empty.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_TRUE(page->groups.empty());
  EXPECT_EQ(page->next_token, "");
}

TEST(ParseAsg, PrefixedNamespaceParsesLikeDefault) {
  auto page = parse_describe_auto_scaling_groups(testdata("describe_asg_prefixed.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->groups.size(), 1u);
  ASSERT_EQ(page->groups[0].instances.size(), 1u);
  EXPECT_EQ(page->groups[0].instances[0].instance_id, "i-0aaaaaaaaaaaaaaa1");
  EXPECT_EQ(page->request_id, "req-prefixed");
}

TEST(ParseAsg, NoNamespaceAccepted) {
  auto page = parse_describe_auto_scaling_groups(
      "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups/>"
      "</DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>");
  ASSERT_TRUE(page.ok()) << page.error().message;
}

TEST(ParseAsg, ForeignNamespaceRejected) {
  auto page = parse_describe_auto_scaling_groups(
      "<DescribeAutoScalingGroupsResponse "
      "xmlns=\"http://autoscaling.amazonaws.com/doc/2099-01-01/\">"
      "<DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult>"
      "</DescribeAutoScalingGroupsResponse>");
  ASSERT_FALSE(page.ok());
  EXPECT_NE(page.error().message.find("namespace"), std::string::npos) << page.error().message;
}

TEST(ParseAsg, ThrottlingErrorBodyIsUnavailableWithCode) {
  auto page = parse_describe_auto_scaling_groups(testdata("error_autoscaling_throttling.xml"));
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(page.error().message.find("Throttling"), std::string::npos) << page.error().message;
  EXPECT_NE(page.error().message.find("Rate exceeded"), std::string::npos);
}

TEST(ParseAsg, InvalidNextTokenIsRefused) {
  auto page =
      parse_describe_auto_scaling_groups(testdata("error_autoscaling_invalid_next_token.xml"));
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().kind, ErrorKind::kRefused);
  EXPECT_NE(page.error().message.find("InvalidNextToken"), std::string::npos);
}

TEST(ParseAsg, MissingFieldsNamed) {
  auto no_state = parse_describe_auto_scaling_groups(
      "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
      "<member><AutoScalingGroupName>g</AutoScalingGroupName><Instances><member>"
      "<InstanceId>i-1</InstanceId><HealthStatus>Healthy</HealthStatus></member></Instances>"
      "</member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
      "</DescribeAutoScalingGroupsResponse>");
  ASSERT_FALSE(no_state.ok());
  EXPECT_NE(no_state.error().message.find("i-1"), std::string::npos) << no_state.error().message;
  EXPECT_NE(no_state.error().message.find("LifecycleState"), std::string::npos);

  auto bad_int = parse_describe_auto_scaling_groups(
      "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
      "<member><AutoScalingGroupName>g</AutoScalingGroupName><MinSize>two</MinSize></member>"
      "</AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>");
  ASSERT_FALSE(bad_int.ok());
  EXPECT_NE(bad_int.error().message.find("MinSize"), std::string::npos) << bad_int.error().message;
}

TEST(ParseAsg, WrongRootNamed) {
  auto r = parse_describe_auto_scaling_groups(testdata("describe_instances_page1.xml"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("DescribeInstancesResponse"), std::string::npos);
}

TEST(AsgMembership, Rules) {
  auto m = [](std::string state, std::string health) {
    AsgInstance i;
    i.lifecycle_state = std::move(state);
    i.health_status = std::move(health);
    return membership(i);
  };
  EXPECT_EQ(m("InService", "Healthy"), AsgMembership::kServe);
  EXPECT_EQ(m("InService", "Unhealthy"), AsgMembership::kAbsent);
  EXPECT_EQ(m("Terminating", "Healthy"), AsgMembership::kDrain);
  EXPECT_EQ(m("Terminating:Wait", "Unhealthy"), AsgMembership::kDrain);
  EXPECT_EQ(m("Terminating:Proceed", "Healthy"), AsgMembership::kDrain);
  EXPECT_EQ(m("Pending", "Healthy"), AsgMembership::kAbsent);
  EXPECT_EQ(m("Pending:Wait", "Healthy"), AsgMembership::kAbsent);
  EXPECT_EQ(m("Standby", "Healthy"), AsgMembership::kAbsent);
  EXPECT_EQ(m("Detaching", "Healthy"), AsgMembership::kAbsent);
  EXPECT_EQ(m("Warmed:Running", "Healthy"), AsgMembership::kAbsent);
}

// ---- DescribeInstances ----

TEST(ParseEc2, FirstPageFlattensReservations) {
  auto page = parse_describe_instances(testdata("describe_instances_page1.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->next_token, "AAEAAQAAAAAAAAAA-page2");
  EXPECT_EQ(page->request_id, "8f7e6d5c-4b3a-4291-8a7b-6c5d4e3f2a1b");
  ASSERT_EQ(page->instances.size(), 3u);

  const Ec2Instance& a = page->instances[0];
  EXPECT_EQ(a.instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(a.instance_type, "m5.large");
  EXPECT_EQ(a.state_code, 16);
  EXPECT_EQ(a.state_name, "running");
  EXPECT_EQ(a.private_ip, "10.0.1.15");
  EXPECT_EQ(a.public_ip, "54.72.10.20");
  EXPECT_EQ(a.ipv6_addresses,
            (std::vector<std::string>{"2001:db8:1234:1a00::1", "2001:db8:1234:1a00::15"}));
  EXPECT_EQ(a.availability_zone, "eu-west-1a");
  EXPECT_EQ(a.subnet_id, "subnet-0aa11bb22cc33dd44");
  EXPECT_EQ(a.vpc_id, "vpc-0123abcd4567ef890");
  EXPECT_EQ(a.launch_time, "2026-03-01T08:00:00.000Z");
  EXPECT_EQ(a.tag("aws:autoscaling:groupName"), "web-asg");
  EXPECT_EQ(a.tag("Name"), "web");
  EXPECT_EQ(a.tag("missing"), std::nullopt);

  const Ec2Instance& b = page->instances[1];
  EXPECT_EQ(b.private_ip, "10.0.2.31");
  EXPECT_EQ(b.public_ip, "");
  EXPECT_TRUE(b.ipv6_addresses.empty());

  const Ec2Instance& c = page->instances[2];
  EXPECT_EQ(c.instance_id, "i-0123456789abcdef4");
  EXPECT_EQ(c.state_code, 80);
  EXPECT_EQ(c.state_name, "stopped");
  EXPECT_TRUE(c.tags.empty());
}

TEST(ParseEc2, LastPageMasksStateCodeHighByte) {
  auto page = parse_describe_instances(testdata("describe_instances_page2.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->next_token, "");
  ASSERT_EQ(page->instances.size(), 1u);
  EXPECT_EQ(page->instances[0].state_code, 0);  // 256 & 0xFF
  EXPECT_EQ(page->instances[0].state_name, "pending");
}

TEST(ParseEc2, EmptyReservationSetAndEmptyToken) {
  auto page = parse_describe_instances(testdata("describe_instances_empty.xml"));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_TRUE(page->instances.empty());
  EXPECT_EQ(page->next_token, "");
}

TEST(ParseEc2, RequestLimitExceededIsUnavailable) {
  auto page = parse_describe_instances(testdata("error_ec2_request_limit.xml"));
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(page.error().message.find("RequestLimitExceeded"), std::string::npos);
  EXPECT_NE(page.error().message.find("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"), std::string::npos);
}

TEST(ParseEc2, MissingInstanceIdNamed) {
  auto page = parse_describe_instances(
      "<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceType>t3"
      "</instanceType></item></instancesSet></item></reservationSet></DescribeInstancesResponse>");
  ASSERT_FALSE(page.ok());
  EXPECT_NE(page.error().message.find("reservationSet/item[1]/instancesSet/item[1]"),
            std::string::npos)
      << page.error().message;
}

// ---- errors ----

TEST(ParseErrors, QueryErrorResponse) {
  auto e = parse_xml_error(testdata("error_autoscaling_throttling.xml"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->code, "Throttling");
  EXPECT_EQ(e->message, "Rate exceeded");
  EXPECT_EQ(e->type, "Sender");
  EXPECT_EQ(e->request_id, "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4");
  EXPECT_EQ(classify_error(*e, 400), ErrorClass::kThrottling);
}

TEST(ParseErrors, Ec2ErrorResponse) {
  auto e = parse_xml_error(testdata("error_ec2_request_limit.xml"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->code, "RequestLimitExceeded");
  EXPECT_EQ(e->message, "Request limit exceeded.");
  EXPECT_EQ(e->request_id, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d");
  EXPECT_EQ(classify_error(*e, 503), ErrorClass::kThrottling);
}

TEST(ParseErrors, AuthFailureWithoutTimeHintIsFatal) {
  auto e = parse_xml_error(testdata("error_ec2_auth_failure.xml"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(classify_error(*e, 401), ErrorClass::kFatal);
  AwsError skew{"SignatureDoesNotMatch",
                "Signature expired: 20260302T101500Z is now earlier than "
                "20260302T102000Z",
                "Sender", "", ""};
  EXPECT_EQ(classify_error(skew, 403), ErrorClass::kClockSkew);
  EXPECT_EQ(classify_error({"RequestTimeTooSkewed", "", "", "", ""}, 403), ErrorClass::kClockSkew);
}

TEST(ParseErrors, ExpiredTokenAndTransient) {
  auto e = parse_xml_error(testdata("error_sts_expired_token.xml"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, "ExpiredTokenException");
  EXPECT_EQ(classify_error(*e, 400), ErrorClass::kExpiredCredentials);
  EXPECT_EQ(classify_error({"ResourceContention", "", "", "", ""}, 500), ErrorClass::kTransient);
  EXPECT_EQ(classify_error({"SomethingNew", "", "", "", ""}, 503), ErrorClass::kTransient);
  EXPECT_EQ(classify_error({"ValidationError", "", "", "", ""}, 400), ErrorClass::kFatal);
}

TEST(ParseErrors, EveryThrottlingCodeFromTheSpec) {
  for (const char* code :
       {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException"}) {
    EXPECT_TRUE(is_throttling_code(code)) << code;
  }
  EXPECT_FALSE(is_throttling_code("throttling"));  // codes are case-sensitive
  EXPECT_FALSE(is_throttling_code("InvalidNextToken"));
}

TEST(ParseErrors, NotAnErrorDocument) {
  auto e = parse_xml_error(testdata("describe_asg_empty.xml"));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("not an error document"), std::string::npos);
}

TEST(ParseErrors, SqsJsonErrorWithQueryHeader) {
  auto e = parse_json_error(testdata("sqs_error_queue_does_not_exist.json"),
                            "AWS.SimpleQueueService.NonExistentQueue;Sender");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->code, "QueueDoesNotExist");
  EXPECT_EQ(e->message, "The specified queue does not exist.");
  EXPECT_EQ(e->legacy_code, "AWS.SimpleQueueService.NonExistentQueue");
  EXPECT_EQ(e->type, "Sender");
  EXPECT_EQ(classify_error(*e, 400), ErrorClass::kFatal);

  auto t = parse_json_error(testdata("sqs_error_throttled.json"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->code, "RequestThrottled");
  EXPECT_EQ(classify_error(*t, 400), ErrorClass::kThrottling);
}

TEST(ParseErrors, JsonErrorVariants) {
  auto a = parse_json_error(
      R"({"__type":"ThrottlingException:http://internal.amazon.com/coral/","Message":"slow down"})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, "ThrottlingException");
  EXPECT_EQ(a->message, "slow down");
  auto none = parse_json_error(R"({"message":"no type"})");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("__type"), std::string::npos);
}

// ---- SQS ReceiveMessage ----

TEST(ParseSqs, ReceiveMessageWithThreeMessages) {
  auto msgs = parse_receive_message(testdata("sqs_receive_message.json"));
  ASSERT_TRUE(msgs.ok()) << msgs.error().message;
  ASSERT_EQ(msgs->size(), 3u);
  const SqsMessage& m = (*msgs)[0];
  EXPECT_EQ(m.message_id, "d6790f8d-0000-4000-8000-000000000100");
  EXPECT_EQ(m.receipt_handle, "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a+receipt-handle-0+Ipyg4GDIkNvA==");
  EXPECT_EQ(m.md5_of_body, "15610b8bc7ba5951bfa5f5ff4ae0dd7e");
  EXPECT_EQ(m.attribute("SentTimestamp"), "1772446530123");
  EXPECT_EQ(m.receive_count(), 1);
  EXPECT_EQ((*msgs)[2].receive_count(), 3);
  EXPECT_EQ(m.body,
            testdata("msg_asg_terminate_sns.json")
                .substr(0, testdata("msg_asg_terminate_sns.json").find_last_not_of('\n') + 1));

  // Each body classifies.
  auto a = classify_message((*msgs)[0].body);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->kind, MessageKind::kAsgNotification);
  auto b = classify_message((*msgs)[1].body);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->kind, MessageKind::kLifecycleAction);
  auto c = classify_message((*msgs)[2].body);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->envelope, MessageEnvelope::kEventBridge);
}

TEST(ParseSqs, EmptyQueueHasNoMessagesKey) {
  auto msgs = parse_receive_message(testdata("sqs_receive_empty.json"));
  ASSERT_TRUE(msgs.ok()) << msgs.error().message;
  EXPECT_TRUE(msgs->empty());
}

TEST(ParseSqs, ErrorBodyIsRefusedWithCode) {
  auto msgs = parse_receive_message(testdata("sqs_error_queue_does_not_exist.json"));
  ASSERT_FALSE(msgs.ok());
  EXPECT_NE(msgs.error().message.find("QueueDoesNotExist"), std::string::npos);
}

TEST(ParseSqs, MessageWithoutReceiptHandleRejected) {
  auto msgs = parse_receive_message(R"({"Messages":[{"MessageId":"m","Body":"{}"}]})");
  ASSERT_FALSE(msgs.ok());
  EXPECT_NE(msgs.error().message.find("Messages[0] has no ReceiptHandle"), std::string::npos)
      << msgs.error().message;
  auto not_array = parse_receive_message(R"({"Messages":{}})");
  ASSERT_FALSE(not_array.ok());
}

// ---- message classification ----

TEST(ClassifyMessage, SnsWrappedTerminateNotification) {
  auto m = classify_message(testdata("msg_asg_terminate_sns.json"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->envelope, MessageEnvelope::kSns);
  EXPECT_EQ(m->kind, MessageKind::kAsgNotification);
  EXPECT_EQ(m->event, "autoscaling:EC2_INSTANCE_TERMINATE");
  EXPECT_EQ(m->instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(m->auto_scaling_group_name, "web-asg");
  EXPECT_EQ(m->sns_message_id, "7f0c2d1e-0000-4000-8000-000000000001");
  EXPECT_EQ(m->status_code, "InProgress");
  EXPECT_TRUE(m->terminating());
  EXPECT_FALSE(m->launching());
}

TEST(ClassifyMessage, RawLaunchNotification) {
  auto m = classify_message(testdata("msg_asg_launch_raw.json"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->envelope, MessageEnvelope::kRaw);
  EXPECT_EQ(m->kind, MessageKind::kAsgNotification);
  EXPECT_EQ(m->event, "autoscaling:EC2_INSTANCE_LAUNCH");
  EXPECT_EQ(m->instance_id, "i-0123456789abcdef5");
  EXPECT_EQ(m->account_id, "111122223333");
  EXPECT_TRUE(m->launching());
}

TEST(ClassifyMessage, TestNotificationRawAndSns) {
  for (const char* file : {"msg_test_notification_raw.json", "msg_test_notification_sns.json"}) {
    auto m = classify_message(testdata(file));
    ASSERT_TRUE(m.ok()) << file << ": " << m.error().message;
    EXPECT_EQ(m->kind, MessageKind::kTestNotification) << file;
    EXPECT_EQ(m->event, "autoscaling:TEST_NOTIFICATION");
    EXPECT_EQ(m->instance_id, "") << file;
    EXPECT_EQ(m->auto_scaling_group_name, "web-asg");
  }
}

TEST(ClassifyMessage, RawLifecycleTerminating) {
  auto m = classify_message(testdata("msg_lifecycle_terminating_raw.json"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->envelope, MessageEnvelope::kRaw);
  EXPECT_EQ(m->kind, MessageKind::kLifecycleAction);
  EXPECT_EQ(m->lifecycle_transition, "autoscaling:EC2_INSTANCE_TERMINATING");
  EXPECT_EQ(m->lifecycle_action_token, "3c4b7b8e-1111-4222-8333-444455556666");
  EXPECT_EQ(m->lifecycle_hook_name, "elasticproxy-drain");
  EXPECT_EQ(m->auto_scaling_group_name, "web-asg");
  EXPECT_EQ(m->instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(m->notification_metadata, "backend=be_web");
  EXPECT_EQ(m->origin, "AutoScalingGroup");
  EXPECT_EQ(m->destination, "EC2");
  EXPECT_TRUE(m->terminating());
}

TEST(ClassifyMessage, SnsWrappedLifecycleLaunching) {
  auto m = classify_message(testdata("msg_lifecycle_launching_sns.json"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->envelope, MessageEnvelope::kSns);
  EXPECT_EQ(m->kind, MessageKind::kLifecycleAction);
  EXPECT_EQ(m->lifecycle_transition, "autoscaling:EC2_INSTANCE_LAUNCHING");
  EXPECT_EQ(m->lifecycle_action_token, "7d8e9f00-aaaa-4bbb-8ccc-ddddeeeeffff");
  EXPECT_EQ(m->lifecycle_hook_name, "elasticproxy-launch");
  EXPECT_EQ(m->instance_id, "i-0123456789abcdef5");
  EXPECT_EQ(m->notification_metadata, "");
  EXPECT_TRUE(m->launching());
}

TEST(ClassifyMessage, EventBridgeLifecycleAction) {
  auto m = classify_message(testdata("msg_eventbridge_terminate_lifecycle.json"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->envelope, MessageEnvelope::kEventBridge);
  EXPECT_EQ(m->kind, MessageKind::kLifecycleAction);
  EXPECT_EQ(m->detail_type, "EC2 Instance-terminate Lifecycle Action");
  EXPECT_EQ(m->lifecycle_action_token, "3c4b7b8e-1111-4222-8333-444455556666");
  EXPECT_EQ(m->instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(m->account_id, "111122223333");
  EXPECT_EQ(m->time, "2026-03-02T11:00:04Z");
  EXPECT_EQ(m->request_id, "0e1f2a3b-0000-4000-8000-000000000006");
  EXPECT_TRUE(m->terminating());
}

TEST(ClassifyMessage, EventBridgeLaunchSuccessfulMapsToAsgEvent) {
  auto m = classify_message(testdata("msg_eventbridge_launch_successful.json"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->kind, MessageKind::kAsgNotification);
  EXPECT_EQ(m->event, "autoscaling:EC2_INSTANCE_LAUNCH");
  EXPECT_EQ(m->instance_id, "i-0123456789abcdef5");
  EXPECT_TRUE(m->launching());
}

TEST(ClassifyMessage, UnknownShapesSayWhy) {
  auto ec2 = classify_message(testdata("msg_eventbridge_ec2_state_change.json"));
  ASSERT_TRUE(ec2.ok()) << ec2.error().message;
  EXPECT_EQ(ec2->kind, MessageKind::kUnknown);
  EXPECT_NE(ec2->reason.find("aws.ec2"), std::string::npos) << ec2->reason;

  auto refresh = classify_message(testdata("msg_eventbridge_instance_refresh.json"));
  ASSERT_TRUE(refresh.ok());
  EXPECT_EQ(refresh->kind, MessageKind::kUnknown);
  EXPECT_NE(refresh->reason.find("Instance Refresh Started"), std::string::npos);

  auto other = classify_message(R"({"hello":"world"})");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->kind, MessageKind::kUnknown);
  EXPECT_EQ(other->reason, "no Event or LifecycleTransition field");

  auto text = classify_message(
      R"({"Type":"Notification","TopicArn":"arn:aws:sns:eu-west-1:1:t","Message":"plain text"})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->kind, MessageKind::kUnknown);
  EXPECT_EQ(text->envelope, MessageEnvelope::kSns);

  auto confirm = classify_message(
      R"({"Type":"SubscriptionConfirmation","TopicArn":"arn:aws:sns:eu-west-1:1:t","Message":"x"})");
  ASSERT_TRUE(confirm.ok());
  EXPECT_EQ(confirm->kind, MessageKind::kUnknown);
  EXPECT_NE(confirm->reason.find("SubscriptionConfirmation"), std::string::npos);
}

TEST(ClassifyMessage, MalformedInputsAreErrors) {
  for (std::string_view body : {std::string_view(""), std::string_view("not json"),
                                std::string_view("[1,2]"), std::string_view("\"str\""),
                                std::string_view("{\"Type\":\"Notification\",\"TopicArn\":\"a\"}"),
                                std::string_view("{\"Type\":\"Notification\",\"Message\":5}")}) {
    auto m = classify_message(body);
    EXPECT_FALSE(m.ok()) << "accepted: " << body;
  }
  // A lifecycle action without its token cannot be completed: an error naming the field.
  auto no_token = classify_message(
      R"({"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-1",)"
      R"("AutoScalingGroupName":"g","LifecycleHookName":"h"})");
  ASSERT_FALSE(no_token.ok());
  EXPECT_NE(no_token.error().message.find("LifecycleActionToken"), std::string::npos)
      << no_token.error().message;
}

// ---- hostile and truncated payloads: never crash, always a clear error ----

std::vector<std::string> all_payload_files() {
  return {"describe_asg_page1.xml",
          "describe_asg_page2.xml",
          "describe_asg_prefixed.xml",
          "describe_instances_page1.xml",
          "describe_instances_page2.xml",
          "error_autoscaling_throttling.xml",
          "error_ec2_request_limit.xml",
          "sqs_receive_message.json",
          "msg_asg_terminate_sns.json",
          "msg_lifecycle_launching_sns.json",
          "msg_eventbridge_terminate_lifecycle.json"};
}

void run_every_parser(std::string_view bytes) {
  (void)parse_describe_auto_scaling_groups(bytes);
  (void)parse_describe_instances(bytes);
  (void)parse_xml_error(bytes);
  (void)parse_json_error(bytes);
  (void)parse_receive_message(bytes);
  (void)classify_message(bytes);
}

TEST(HostilePayloads, EveryTruncationOfEverySavedPayload) {
  for (const auto& file : all_payload_files()) {
    const std::string full = testdata(file);
    for (size_t len = 0; len < full.size(); len += (len < 200 ? 1 : 37)) {
      run_every_parser(std::string_view(full).substr(0, len));
    }
    // Truncated documents of the right kind must fail, not return a partial result.
    if (file.rfind("describe_asg_page1", 0) == 0) {
      auto r =
          parse_describe_auto_scaling_groups(std::string_view(full).substr(0, full.size() / 2));
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("malformed XML"), std::string::npos) << r.error().message;
    }
    if (file == "sqs_receive_message.json") {
      auto r = parse_receive_message(std::string_view(full).substr(0, full.size() - 3));
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos);
    }
  }
}

TEST(HostilePayloads, RandomBytesAndBitFlips) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 300; ++i) {
    std::string junk(rng() % 512, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    run_every_parser(junk);
  }
  for (const auto& file : all_payload_files()) {
    std::string data = testdata(file);
    for (int i = 0; i < 60; ++i) {
      std::string mutated = data;
      for (int k = 0; k < 4; ++k) mutated[rng() % mutated.size()] = static_cast<char>(rng());
      run_every_parser(mutated);
    }
  }
}

TEST(HostilePayloads, DeepNestingAndEntities) {
  const std::string deep_json = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(classify_message(deep_json).ok());
  const std::string deep_obj =
      "{\"Messages\":" + std::string(50000, '[') + std::string(50000, ']') + "}";
  EXPECT_FALSE(parse_receive_message(deep_obj).ok());
  std::string deep_xml;
  for (int i = 0; i < 50000; ++i) deep_xml += "<a>";
  for (int i = 0; i < 50000; ++i) deep_xml += "</a>";
  EXPECT_FALSE(parse_describe_instances(deep_xml).ok());
  // Entity expansion is not performed: a "billion laughs" document is refused or inert.
  const std::string bomb =
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
      "\"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
      "<DescribeInstancesResponse><reservationSet>&lol2;</reservationSet>"
      "</DescribeInstancesResponse>";
  auto r = parse_describe_instances(bomb);
  if (r.ok()) {
    EXPECT_TRUE(r->instances.empty());
  }
}

TEST(HostilePayloads, OversizedReplyRefused) {
  const std::string big(kMaxReplyBytes + 1, ' ');
  auto r = parse_describe_instances(big);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("limit"), std::string::npos);
  EXPECT_FALSE(classify_message(big).ok());
}

// Issue #14 point 1: hostile JSON nested 80,000 deep in an SQS reply, an SNS-wrapped message, an
// error body or a credential document is an error, never a stack overflow.
TEST(AwsHostile, DeeplyNestedJsonIsAnErrorNotACrash) {
  const std::string deep = std::string(80'000, '[') + std::string(80'000, ']');
  auto r = parse_receive_message(R"({"Messages":)" + deep + "}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nested deeper than"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_json_error(R"({"__type":)" + deep + "}").ok());
  auto m = classify_message(R"({"Type":"Notification","Message":")" + deep + "\"}");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->kind, MessageKind::kUnknown) << "an SNS Message too deep to read is not acted on";
  EXPECT_FALSE(classify_message(deep).ok());
  EXPECT_FALSE(parse_container_credentials(R"({"AccessKeyId":)" + deep + "}").ok());
  EXPECT_FALSE(parse_credential_process_output(R"({"Version":)" + deep + "}").ok());
}

}  // namespace
}  // namespace ep::aws
