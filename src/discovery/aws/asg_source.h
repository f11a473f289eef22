#pragma once
// The `aws_asg` discovery source (docs/aws.md): the servers of a backend are the instances of one
// or more EC2 Auto Scaling groups.
//
// One poll = DescribeAutoScalingGroups for the names (≤50 per call, MaxRecords 100, every
// NextToken followed) + DescribeInstances for the member instances (≤1000 ids per call, every
// NextToken followed). For one group of 500 instances that is 2 API calls. The pure step that
// turns the replies into endpoints is build_endpoints() below.
//
// Behaviour:
//  - a poll every `interval`, and at once when trigger() is called (the SQS consumer does so for
//    every launch/terminate message: level-triggered, so a lost or duplicated message is harmless);
//  - a set equal to the last published one is not published again;
//  - any failure (a named group not found, an API error after the client's retries, unreadable
//    XML, no credentials) publishes an ep::Error, so the guard keeps the last good set; it is
//    logged through a FailureReporter and the next poll comes after `interval` as usual;
//  - stop() cancels the HTTP request in flight and joins the thread.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"
#include "discovery/aws/asg_options.h"
#include "discovery/aws/aws_client.h"
#include "discovery/aws/credential_fetcher.h"
#include "discovery/aws/lifecycle.h"
#include "discovery/aws/parse.h"
#include "discovery/aws/sqs_events.h"
#include "discovery/source.h"
#include "net/http_client.h"

namespace ep::aws {

// What one poll saw.
struct AsgPollResult {
  std::vector<ep::Endpoint> endpoints;  // sorted by instance id
  int api_calls = 0;                // DescribeAutoScalingGroups + DescribeInstances calls
  std::vector<std::string> skipped;  // "i-…: no public IPv4 address" etc.
  std::vector<std::string> groups;   // the groups polled (names, after pattern/tag matching)
  // Every member's LifecycleState, by instance id.
  std::map<std::string, std::string> states;
  // Address/port of every served instance and, with lifecycle hooks, of instances in Pending* or
  // Terminating* states too (the hooks look for them in HAProxy), by instance id.
  std::map<std::string, ep::Endpoint> addresses;
};

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
                              const std::vector<Ec2Instance>& instances,
                              const AsgOptions& options);

struct AsgEndpoints {
  Endpoint autoscaling;
  Endpoint ec2;
  Endpoint sqs;
};

// One full poll through `client`. Errors name the call that failed; a named group that does not
// exist is kInvalid "Auto Scaling group 'x' not found".
Result<AsgPollResult> poll_asgs(AwsClient& client, const AsgEndpoints& endpoints,
                                const AsgOptions& options);

// Everything the source needs from the outside, injectable for tests.
struct AsgRuntime {
  std::function<std::unique_ptr<net::HttpClient>()> http_factory;  // default: CurlHttpClient
  EnvMap env;                                  // default: the process environment
  std::optional<std::string> config_file;      // default: read AWS_CONFIG_FILE / ~/.aws/config
  std::optional<std::string> credentials_file; // default: AWS_SHARED_CREDENTIALS_FILE / ~/.aws/…
  bool read_files = true;  // false: use config_file/credentials_file as given (tests)
  AwsClientEnv client_env;
  RetryPolicy retry;
};

class AsgSource final : public discovery::Source {
 public:
  AsgSource(AsgOptions options, discovery::SourceContext context, AsgRuntime runtime = {});
  ~AsgSource() override;

  std::string describe() const override;
  Status start(discovery::Sink& sink) override;
  void stop() override;
  discovery::Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  // Poll now (thread-safe; coalesces). For tests and callers that need not wait.
  void trigger();
  // Polls now and waits until a poll that STARTED after this call has finished. True when that
  // poll succeeded (its set was published, or was unchanged). False on failure, timeout or stop.
  // The SQS consumer deletes a message only when this returns true.
  bool trigger_and_wait(std::chrono::milliseconds timeout);
  // SQS totals (zero without queue_url). For tests and metrics.
  SqsBatchResult sqs_totals() const;
  // Polls completed (successful or not). For tests and metrics.
  std::uint64_t polls() const { return polls_.load(); }
  // Lifecycle hook totals (zero without lifecycle_hook) and actions still waiting.
  LifecycleStats lifecycle_stats() const;
  size_t lifecycle_pending() const;
  int last_api_calls() const { return last_api_calls_.load(); }

 private:
  struct Setup {
    std::unique_ptr<net::HttpClient> http;
    std::unique_ptr<net::HttpClient> sts_http;
    std::unique_ptr<HttpCredentialFetcher> fetcher;
    std::unique_ptr<CredentialProvider> credentials;
    std::unique_ptr<AwsClient> client;
    AsgEndpoints endpoints;
  };
  // Resolves region, endpoints and the credential chain. Errors are kInvalid (a broken setup).
  Result<std::unique_ptr<Setup>> make_setup();
  void run(discovery::Sink& sink);
  void run_sqs(Setup& setup);

  AsgOptions options_;
  discovery::SourceContext context_;
  AsgRuntime runtime_;
  log::FailureReporter failures_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool triggered_ = false;
  net::HttpClient* in_flight_ = nullptr;  // the poll thread's client, for stop() to cancel
  net::HttpClient* sqs_in_flight_ = nullptr;  // the SQS thread's client
  net::HttpClient* hook_in_flight_ = nullptr;  // the lifecycle worker's client
  std::uint64_t poll_started_ = 0;  // sequence number of the last poll started
  std::uint64_t poll_done_ = 0;     // sequence number of the last poll finished
  bool poll_done_ok_ = false;       // and whether it succeeded
  std::condition_variable done_cv_;
  std::thread thread_;
  std::thread sqs_thread_;
  std::atomic<bool> sqs_stop_{false};
  mutable std::mutex sqs_mu_;
  SqsBatchResult sqs_totals_;
  std::atomic<std::uint64_t> polls_{0};
  std::atomic<int> last_api_calls_{0};
  // From the latest polls, for the lifecycle hooks.
  mutable std::mutex addr_mu_;
  std::map<std::string, ep::Endpoint> addresses_;
  std::set<std::string> groups_seen_;
  LifecycleWorker* worker_ = nullptr;  // under sqs_mu_; alive while run_sqs runs
  LifecycleStats lifecycle_stats_;     // under sqs_mu_; last totals
};

// The factory entry: SourceKind{"aws_asg", …}.
}  // namespace ep::aws

namespace ep::discovery::aws {
SourceKind source_kind();
}  // namespace ep::discovery::aws
