#include "discovery/aws/requests.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::aws {
namespace {

Endpoint endpoint(const char* url) { return parse_endpoint_url(url).value(); }

TEST(Requests, QueryRequestShape) {
  SignableRequest r =
      make_query_request(endpoint("https://ec2.eu-west-1.amazonaws.com"), "DescribeInstances",
                         "2016-11-15", {{"InstanceId.1", "i-1"}, {"Filter.1.Name", "tag:a b"}});
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/");
  EXPECT_EQ(r.headers, (std::vector<HttpHeader>{
                           {"Host", "ec2.eu-west-1.amazonaws.com"},
                           {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}));
  EXPECT_EQ(
      r.body,
      "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&Filter.1.Name=tag%3Aa%20b");
}

TEST(Requests, SqsRequestShape) {
  SignableRequest r = make_sqs_request(endpoint("http://127.0.0.1:4566"), "ReceiveMessage", "{}");
  EXPECT_EQ(r.headers, (std::vector<HttpHeader>{{"Host", "127.0.0.1:4566"},
                                                {"Content-Type", "application/x-amz-json-1.0"},
                                                {"X-Amz-Target", "AmazonSQS.ReceiveMessage"},
                                                {"x-amzn-query-mode", "true"}}));
  EXPECT_EQ(r.body, "{}");
}

TEST(Requests, DescribeAutoScalingGroupsLimitsAndPagination) {
  auto p = describe_auto_scaling_groups_params({"a", "b"}, "tok+en/==", 100);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(form_encode(*p),
            "AutoScalingGroupNames.member.1=a&AutoScalingGroupNames.member.2=b&MaxRecords=100&"
            "NextToken=tok%2Ben%2F%3D%3D");
  std::vector<std::string> fifty(50, "g"), fifty_one(51, "g");
  EXPECT_TRUE(describe_auto_scaling_groups_params(fifty, "").ok());
  auto too_many = describe_auto_scaling_groups_params(fifty_one, "");
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("at most 50"), std::string::npos);
  EXPECT_FALSE(describe_auto_scaling_groups_params({"a"}, "", 101).ok());
  EXPECT_FALSE(describe_auto_scaling_groups_params({""}, "").ok());
}

TEST(Requests, DescribeInstancesByIds) {
  auto p = describe_instances_by_id_params({"i-1", "i-2"}, "next");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(form_encode(*p), "InstanceId.1=i-1&InstanceId.2=i-2&NextToken=next");
  EXPECT_FALSE(describe_instances_by_id_params({}, "").ok());
  EXPECT_TRUE(describe_instances_by_id_params(std::vector<std::string>(1000, "i"), "").ok());
  EXPECT_FALSE(describe_instances_by_id_params(std::vector<std::string>(1001, "i"), "").ok());
}

TEST(Requests, LifecycleActions) {
  LifecycleActionRef ref{"elasticproxy-drain", "web-asg", "3c4b7b8e-1111-4222-8333-444455556666",
                         "i-0123456789abcdef0"};
  auto c = complete_lifecycle_action_params(ref, LifecycleActionResult::kContinue);
  ASSERT_TRUE(c.ok());
  // The form aws.md §7 shows (token preferred over instance id).
  EXPECT_EQ(form_encode(*c),
            "LifecycleHookName=elasticproxy-drain&AutoScalingGroupName=web-asg&"
            "LifecycleActionToken=3c4b7b8e-1111-4222-8333-444455556666&"
            "LifecycleActionResult=CONTINUE");
  ref.token.clear();
  auto h = record_lifecycle_action_heartbeat_params(ref);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(form_encode(*h),
            "LifecycleHookName=elasticproxy-drain&AutoScalingGroupName=web-asg&"
            "InstanceId=i-0123456789abcdef0");
  auto a = complete_lifecycle_action_params(ref, LifecycleActionResult::kAbandon);
  EXPECT_EQ(a->back().second, "ABANDON");
  ref.instance_id.clear();
  EXPECT_FALSE(complete_lifecycle_action_params(ref, LifecycleActionResult::kContinue).ok());
  EXPECT_FALSE(record_lifecycle_action_heartbeat_params({"", "g", "t", ""}).ok());
}

TEST(Requests, Sts) {
  EXPECT_EQ(form_encode(assume_role_params("arn:aws:iam::1:role/r", "ep", "ext", 900)),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=ep&ExternalId=ext&"
            "DurationSeconds=900");
  EXPECT_EQ(form_encode(assume_role_params("r", "ep", "", std::nullopt)),
            "RoleArn=r&RoleSessionName=ep");
  EXPECT_EQ(form_encode(assume_role_with_web_identity_params("r", "ep", "eyJhbGc.x.y\n")),
            "RoleArn=r&RoleSessionName=ep&WebIdentityToken=eyJhbGc.x.y");
}

TEST(Requests, SqsBodies) {
  auto r = sqs_receive_message_body("https://sqs.eu-west-1.amazonaws.com/111122223333/ep-node-1",
                                    10, 20, 60);
  ASSERT_TRUE(r.ok());
  auto j = nlohmann::json::parse(*r);
  EXPECT_EQ(j["QueueUrl"], "https://sqs.eu-west-1.amazonaws.com/111122223333/ep-node-1");
  EXPECT_EQ(j["MaxNumberOfMessages"], 10);
  EXPECT_EQ(j["WaitTimeSeconds"], 20);
  EXPECT_EQ(j["VisibilityTimeout"], 60);
  EXPECT_EQ(j["MessageSystemAttributeNames"],
            nlohmann::json({"ApproximateReceiveCount", "SentTimestamp"}));
  auto no_vis = sqs_receive_message_body("q", 1, 0, std::nullopt);
  ASSERT_TRUE(no_vis.ok());
  EXPECT_FALSE(nlohmann::json::parse(*no_vis).contains("VisibilityTimeout"));
  EXPECT_FALSE(sqs_receive_message_body("q", 11, 20, std::nullopt).ok());
  EXPECT_FALSE(sqs_receive_message_body("q", 1, 21, std::nullopt).ok());
  EXPECT_FALSE(sqs_receive_message_body("", 1, 1, std::nullopt).ok());

  EXPECT_EQ(sqs_delete_message_body("q", "AQEB\"x"),
            R"({"QueueUrl":"q","ReceiptHandle":"AQEB\"x"})");
  auto v = sqs_change_message_visibility_body("q", "h", 300);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, R"({"QueueUrl":"q","ReceiptHandle":"h","VisibilityTimeout":300})");
  EXPECT_FALSE(sqs_change_message_visibility_body("q", "h", 43201).ok());
  // Invalid UTF-8 does not throw.
  EXPECT_FALSE(sqs_delete_message_body("q\xff", "h").empty());
}

}  // namespace
}  // namespace ep::aws
