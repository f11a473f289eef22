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
//  - stop() cancels the HTTP requests in flight; when it returns nothing of the source runs.
// Threading: the source is a handler on one loop of the source runtime (start_on; start() uses a
// private one-thread runtime) and owns no thread: the polls, the SQS long poll and the lifecycle
// hooks are coroutines (runtime/co.h) on that loop, their AWS calls requests of one
// AsyncAwsClient there, their waits loop timers. The region from IMDS and the credentials (IMDS,
// STS, container) are requests on that loop too (AsyncHttpCredentialFetcher); only a
// credential_process is a child process waited for there.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "core/log.h"
#include "discovery/aws/asg_options.h"
#include "discovery/aws/aws_client.h"
#include "discovery/aws/credential_fetcher.h"
#include "discovery/aws/endpoints.h"
#include "discovery/aws/lifecycle.h"
#include "discovery/aws/parse.h"
#include "discovery/aws/profile.h"
#include "discovery/aws/sqs_events.h"
#include "discovery/source.h"
#include "net/http_client.h"
#include "runtime/co.h"
#include "runtime/runtime.h"

namespace ep::aws {

// What one poll saw.
struct AsgPollResult {
  std::vector<ep::Endpoint> endpoints;  // sorted by instance id
  int api_calls = 0;                    // DescribeAutoScalingGroups + DescribeInstances calls
  std::vector<std::string> skipped;     // "i-…: no public IPv4 address" etc.
  std::vector<std::string> groups;      // the groups polled (names, after pattern/tag matching)
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
                              const std::vector<Ec2Instance>& instances, const AsgOptions& options);

struct AsgEndpoints {
  Endpoint autoscaling;
  Endpoint ec2;
  Endpoint sqs;
};

// Pure: the endpoints for a DescribeInstances-by-filters reply (aws_ec2): running instances with
// the chosen address; port from port_tag / port; weight from weight_tag / weight; labels
// availability_zone, instance_id; backup by local_zone.
AsgPollResult build_ec2_endpoints(const std::vector<Ec2Instance>& instances,
                                  const AsgOptions& options);
runtime::Co<Result<AsgPollResult>> poll_ec2(AsyncAwsClient& client, AsgEndpoints endpoints,
                                            const AsgOptions& options);

// One full poll through `client` (a coroutine on its loop; `options` must outlive it). Errors
// name the call that failed; a named group that does not exist is kInvalid "Auto Scaling group
// 'x' not found".
runtime::Co<Result<AsgPollResult>> poll_asgs(AsyncAwsClient& client, AsgEndpoints endpoints,
                                             const AsgOptions& options);

// Everything the source needs from the outside, injectable for tests.
struct AsgRuntime {
  EnvMap env;                                   // default: the process environment
  std::optional<std::string> config_file;       // default: read AWS_CONFIG_FILE / ~/.aws/config
  std::optional<std::string> credentials_file;  // default: AWS_SHARED_CREDENTIALS_FILE / ~/.aws/…
  bool read_files = true;  // false: use config_file/credentials_file as given (tests)
  AwsClientEnv client_env;
  RetryPolicy retry;
  std::chrono::milliseconds imds_timeout{1000};  // per IMDS request (region, credentials)
};

class AsgSource final : public discovery::Source {
 public:
  AsgSource(AsgOptions options, discovery::SourceContext context, AsgRuntime runtime = {});
  ~AsgSource() override;

  std::string describe() const override;
  Status start_on(runtime::Runtime& runtime, discovery::Sink& sink) override;
  Status start(discovery::Sink& sink) override;
  void stop() override;
  discovery::Snapshot fetch_once(std::chrono::milliseconds timeout) override;

  // Poll now (thread-safe; coalesces). For tests and callers that need not wait.
  void trigger();
  // Polls now and waits until a poll that STARTED after this call has finished. True when that
  // poll succeeded (its set was published, or was unchanged). False on failure, timeout or stop.
  // Blocks: never call it on a loop thread (the SQS consumer uses repoll_and_wait()).
  bool trigger_and_wait(std::chrono::milliseconds timeout);
  // SQS totals (zero without queue_url). For tests and metrics.
  SqsBatchResult sqs_totals() const;
  // Polls completed (successful or not). For tests and metrics.
  std::uint64_t polls() const { return polls_.load(); }
  // Lifecycle hook totals (zero without lifecycle_hook) and actions still waiting.
  LifecycleStats lifecycle_stats() const;
  size_t lifecycle_pending() const;
  std::vector<discovery::HookInFlight> hooks_in_flight() const override;
  int last_api_calls() const { return last_api_calls_.load(); }

  // Where the region comes from, without network: resolved from configuration / AWS_REGION /
  // AWS_DEFAULT_REGION / the profile, or (region empty) to be asked of IMDS at imds_endpoint when
  // the source starts. Errors: a bad profile file, an invalid region, or IMDS turned off with no
  // region elsewhere.
  struct RegionPlan {
    std::optional<ResolvedRegion> region;
    std::string imds_endpoint;
  };
  Result<RegionPlan> region_plan() const;
  std::vector<std::string> check_notes() const override;

 private:
  struct Setup {
    std::unique_ptr<net::AsyncHttpClient> http;  // IMDS, STS, container: requests on the loop
    std::unique_ptr<AsyncHttpCredentialFetcher> fetcher;
    std::unique_ptr<CredentialProvider> credentials;
    AsgEndpoints endpoints;
    std::string region;
  };
  struct Wake;      // awaits the poll interval or trigger()
  struct PollWait;  // awaits the end of a poll (with a timeout)
  // Resolves region (asking IMDS on `loop` when nothing else gives one), endpoints and the
  // credential chain (fetched later, on the loop, by AsyncCachingCredentialProvider). Errors are
  // kInvalid (a broken setup) or kUnavailable (IMDS did not answer).
  runtime::Co<Result<std::unique_ptr<Setup>>> make_setup(runtime::Loop& loop);
  Result<std::optional<ProfileFile>> profile_files() const;
  // Coroutines on loop_.
  runtime::Co<void> poll_loop();
  runtime::Co<void> sqs_loop();
  runtime::Co<void> hook_loop();
  // The SQS consumer's re-poll: triggers a poll and waits (on the loop) until one that started
  // after this call finished; true when it succeeded.
  runtime::Co<bool> repoll_and_wait(std::chrono::milliseconds timeout);
  void start_event_consumers();  // with a queue, once the setup exists
  void poll_finished(std::uint64_t seq, bool ok);

  AsgOptions options_;
  discovery::SourceContext context_;
  AsgRuntime runtime_;
  log::FailureReporter failures_;

  // Under mu_ (read by other threads).
  std::mutex mu_;
  bool started_ = false;
  bool stopping_ = false;
  bool triggered_ = false;
  std::uint64_t poll_started_ = 0;  // sequence number of the last poll started
  std::uint64_t poll_done_ = 0;     // sequence number of the last poll finished
  bool poll_done_ok_ = false;       // and whether it succeeded
  std::condition_variable done_cv_;

  // Set by start_on, cleared by stop (the starting thread's); the rest is loop_'s.
  std::unique_ptr<runtime::Runtime> own_runtime_;  // only when started without one
  runtime::Loop* loop_ = nullptr;
  discovery::Sink* sink_ = nullptr;
  std::shared_ptr<bool> alive_;  // false once stopped; captured by posted wake-ups
  std::unique_ptr<Setup> setup_;
  std::unique_ptr<AsyncAwsClient> client_;
  std::unique_ptr<SqsEventLoop> sqs_;
  std::unique_ptr<LifecycleWorker> worker_owned_;
  runtime::Spawned poll_task_;
  runtime::Spawned sqs_task_;
  runtime::Spawned hook_task_;
  std::optional<std::vector<ep::Endpoint>> last_;
  bool last_failed_ = false;
  std::coroutine_handle<> poll_waiter_;  // the poll loop waiting in Wake
  runtime::TimerId poll_timer_ = 0;
  std::vector<PollWait*> poll_waiters_;

  mutable std::mutex sqs_mu_;
  SqsBatchResult sqs_totals_;
  std::atomic<std::uint64_t> polls_{0};
  std::atomic<int> last_api_calls_{0};
  // From the latest polls, for the lifecycle hooks.
  mutable std::mutex addr_mu_;
  std::map<std::string, ep::Endpoint> addresses_;
  std::set<std::string> groups_seen_;
  std::set<std::string> admitted_;  // Pending instances under our launch hook (may be served)
  void serve_only_admitted_pending(AsgPollResult& result);  // under addr_mu_
  LifecycleWorker* worker_ = nullptr;  // under sqs_mu_; alive while the source runs
  LifecycleStats lifecycle_stats_;     // under sqs_mu_; last totals
};

// The factory entry: SourceKind{"aws_asg", …}.
}  // namespace ep::aws

namespace ep::discovery::aws {
SourceKind source_kind();      // aws_asg
SourceKind ec2_source_kind();  // aws_ec2
}  // namespace ep::discovery::aws
