#pragma once
// The `aws_asg` discovery source (docs/aws.md): the servers of a backend are the instances of one
// or more EC2 Auto Scaling groups. The setup, the poll loop and fail-static publishing are
// AwsPollingSource's (aws_source.h); this adds what one poll is, the SQS consumer and the
// lifecycle hooks.
//
// One poll = DescribeAutoScalingGroups for the names (≤50 per call, MaxRecords 100, every
// NextToken followed) + DescribeInstances for the member instances (≤1000 ids per call, every
// NextToken followed). For one group of 500 instances that is 2 API calls. The pure step that
// turns the replies into endpoints is build_endpoints() below.
//
// With `queue_url`, an SQS consumer triggers polls (level-triggered: a lost or duplicated message
// is harmless) and hands lifecycle actions of our hooks to the LifecycleWorker. The SQS long poll
// and the hooks are coroutines on the source's loop, like the polls.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "discovery/aws/asg_options.h"
#include "discovery/aws/aws_source.h"
#include "discovery/aws/lifecycle.h"
#include "discovery/aws/sqs_events.h"

namespace ep::aws {

using AsgPollResult = AwsPollResult;
using AsgEndpoints = AwsEndpoints;
using AsgRuntime = AwsRuntime;

// Whether group `g` is one of the configured groups (names / patterns / tags).
bool group_selected(const AutoScalingGroup& g, const AsgOptions& options);

// Pure: the endpoints for `groups` (as described) and `instances` (DescribeInstances of their
// members) under `options`. An instance is a server when its LifecycleState is in
// options.lifecycle_states and (unless !require_healthy) it is Healthy, and EC2 reports it
// running (code 16) with the chosen address. Port: the `port_tag` tag when set and a valid port,
// else options.port (0 = the backend's). Weight: the `weight_tag` tag when set and 0..256, else
// WeightedCapacity when weight_from_capacity and it is an integer 1..256, else unset. Labels:
// availability_zone, asg, instance_id. backup when backup_other_zones and the zone differs from
// local_zone.
AsgPollResult build_endpoints(const std::vector<AutoScalingGroup>& groups,
                              const std::vector<Ec2Instance>& instances, const AsgOptions& options);

// One full poll through `client` (a coroutine on its loop; `options` must outlive it). Errors
// name the call that failed; a named group that does not exist is kInvalid "Auto Scaling group
// 'x' not found".
runtime::Co<Result<AsgPollResult>> poll_asgs(AsyncAwsClient& client, AsgEndpoints endpoints,
                                             const AsgOptions& options);

class AsgSource final : public AwsPollingSource {
 public:
  AsgSource(AsgOptions options, discovery::SourceContext context, AsgRuntime runtime = {});
  ~AsgSource() override;

  std::string describe() const override;
  // SQS totals (zero without queue_url). For tests and metrics.
  SqsBatchResult sqs_totals() const;
  // Lifecycle hook totals (zero without lifecycle hooks) and actions still waiting.
  LifecycleStats lifecycle_stats() const;
  size_t lifecycle_pending() const;
  std::vector<discovery::HookInFlight> hooks_in_flight() const override;

 private:
  runtime::Co<Result<AwsPollResult>> poll(AsyncAwsClient& client,
                                          const AwsEndpoints& endpoints) override;
  void on_ready() override;  // with a queue: the SQS consumer and the lifecycle worker
  void on_polled(AwsPollResult& result) override;
  void on_stop() override;
  // Coroutines on the loop.
  runtime::Co<void> sqs_loop();
  runtime::Co<void> hook_loop();

  AsgOptions options_;

  std::unique_ptr<SqsEventLoop> sqs_;
  std::unique_ptr<LifecycleWorker> worker_owned_;
  runtime::Spawned sqs_task_;
  runtime::Spawned hook_task_;

  mutable std::mutex sqs_mu_;
  SqsBatchResult sqs_totals_;
  // From the latest polls, for the lifecycle hooks.
  mutable std::mutex addr_mu_;
  std::map<std::string, ep::Endpoint> addresses_;
  std::set<std::string> groups_seen_;
  std::set<std::string> admitted_;  // Pending instances under our launch hook (may be served)
  void serve_only_admitted_pending(AsgPollResult& result);  // under addr_mu_
  LifecycleWorker* worker_ = nullptr;  // under sqs_mu_; alive while the source runs
  LifecycleStats lifecycle_stats_;     // under sqs_mu_; last totals
};

}  // namespace ep::aws

namespace ep::discovery::aws {
SourceKind source_kind();  // aws_asg (ec2_source.h: aws_ec2)
}  // namespace ep::discovery::aws
