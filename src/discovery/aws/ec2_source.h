#pragma once
// The `aws_ec2` discovery source (docs/aws.md "The aws_ec2 source"): running EC2 instances
// selected by DescribeInstances filters (tags), for services that are not in an Auto Scaling
// group. The setup (region, endpoints, credentials), the poll loop and fail-static publishing are
// AwsPollingSource's (aws_source.h), shared with aws_asg, as are the client, the signer and the
// instance-to-server rule; this adds what one poll is.
//
// One poll = DescribeInstances with the filters (+ instance-state-name=running), MaxResults 1000,
// every NextToken followed (a repeated token is an error).

#include <vector>

#include "discovery/aws/asg_options.h"
#include "discovery/aws/aws_source.h"

namespace ep::aws {

// Pure: the endpoints for a DescribeInstances-by-filters reply: running instances with the
// chosen address; port from port_tag / port; weight from weight_tag / weight; labels
// availability_zone, instance_id; backup by local_zone. Sorted by instance id.
AwsPollResult build_ec2_endpoints(const std::vector<Ec2Instance>& instances,
                                  const Ec2Options& options);

// One poll through `client` (a coroutine on its loop; `options` must outlive it).
runtime::Co<Result<AwsPollResult>> poll_ec2(AsyncAwsClient& client, AwsEndpoints endpoints,
                                            const Ec2Options& options);

class Ec2Source final : public AwsPollingSource {
 public:
  Ec2Source(Ec2Options options, discovery::SourceContext context, AwsRuntime runtime = {});
  ~Ec2Source() override;

  std::string describe() const override;

 private:
  runtime::Co<Result<AwsPollResult>> poll(AsyncAwsClient& client,
                                          const AwsEndpoints& endpoints) override;

  Ec2Options options_;
};

}  // namespace ep::aws

namespace ep::discovery::aws {
SourceKind ec2_source_kind();  // aws_ec2
}  // namespace ep::discovery::aws
