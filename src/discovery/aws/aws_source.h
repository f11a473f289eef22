#pragma once
// What the AWS discovery sources (`aws_asg`, asg_source.h; `aws_ec2`, ec2_source.h) share: the
// region, endpoint and credential setup, the poll loop and its fail-static publishing, and the
// EC2 helpers (an instance as a server; DescribeInstances pages).
//
// AwsPollingSource behaviour (the sources add only what one poll is):
//  - the setup (region — asked of IMDS when nothing configures it —, endpoints, credential chain)
//    is made on the source loop when the source starts, as requests on that loop (never a
//    blocking call there); a failed setup is published as an error and retried every interval;
//  - a poll every `interval`, and at once when trigger() is called (coalesced);
//  - a set equal to the last published one is not published again; the first success after a
//    failure publishes even an unchanged set;
//  - any failure publishes an ep::Error (the guard keeps the last good set: fail static), logged
//    through a FailureReporter; a poll that failed by timing out is sent again at once, any
//    other failure waits `interval`;
//  - stop() cancels the requests in flight; when it returns nothing of the source runs.
// Threading: a handler on one loop of the source runtime (start_on; start() uses a private
// one-thread runtime); it owns no thread. The virtual hooks run on that loop.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "discovery/aws/asg_options.h"
#include "discovery/aws/aws_client.h"
#include "discovery/aws/credential_fetcher.h"
#include "discovery/aws/endpoints.h"
#include "discovery/aws/parse.h"
#include "discovery/aws/profile.h"
#include "discovery/source.h"
#include "net/async_http_client.h"
#include "runtime/co.h"
#include "runtime/runtime.h"

namespace ep::aws {

// What one poll saw.
struct AwsPollResult {
  std::vector<ep::Endpoint> endpoints;  // sorted by instance id
  int api_calls = 0;                    // DescribeAutoScalingGroups + DescribeInstances calls
  std::vector<std::string> skipped;     // "i-…: no public IPv4 address" etc.
  std::vector<std::string> groups;      // aws_asg: the groups polled (after pattern/tag matching)
  // aws_asg: every member's LifecycleState, by instance id.
  std::map<std::string, std::string> states;
  // Address/port of every served instance and, with lifecycle hooks, of instances in Pending* or
  // Terminating* states too (the hooks look for them in HAProxy), by instance id.
  std::map<std::string, ep::Endpoint> addresses;
};

struct AwsEndpoints {
  Endpoint autoscaling;
  Endpoint ec2;
  Endpoint sqs;
};

// Everything an AWS source needs from the outside, injectable for tests.
struct AwsRuntime {
  EnvMap env;                                   // default: the process environment
  std::optional<std::string> config_file;       // default: read AWS_CONFIG_FILE / ~/.aws/config
  std::optional<std::string> credentials_file;  // default: AWS_SHARED_CREDENTIALS_FILE / ~/.aws/…
  bool read_files = true;  // false: use config_file/credentials_file as given (tests)
  AwsClientEnv client_env;
  RetryPolicy retry;
  std::chrono::milliseconds imds_timeout{1000};  // per IMDS request (region, credentials)
};

// The endpoint for one EC2 instance under `options` (the chosen address, port from port_tag
// else options.port, weight from weight_tag, else `capacity_weight` (an ASG member's
// WeightedCapacity, when given), else options.weight; labels availability_zone (`zone` when not
// empty, else the instance's) and instance_id; backup by local_zone), or nullopt with the reason
// in `skip`.
std::optional<ep::Endpoint> instance_endpoint(const Ec2Instance& ec2,
                                              const AwsInstanceOptions& options, std::string& skip,
                                              std::optional<long> capacity_weight = std::nullopt,
                                              const std::string& zone = "");

// Every page of one DescribeInstances query (NextToken until it is empty), appended to
// `instances`; `calls` counts the requests. A NextToken that comes back twice is an error.
runtime::Co<Status> describe_instances_pages(
    AsyncAwsClient& client, Endpoint endpoint,
    std::function<Result<QueryParams>(const std::string& token)> params_for,
    std::vector<Ec2Instance>& instances, int& calls);

class AwsPollingSource : public discovery::Source {
 public:
  ~AwsPollingSource() override;

  Status start_on(runtime::Runtime& runtime, discovery::Sink& sink) override;
  Status start(discovery::Sink& sink) override;
  void stop() override;
  discovery::Snapshot fetch_once(std::chrono::milliseconds timeout) override;
  std::vector<std::string> check_notes() const override;

  // Poll now (thread-safe; coalesces).
  void trigger();
  // Polls now and waits until a poll that STARTED after this call has finished. True when that
  // poll succeeded. False on failure, timeout or stop. Blocks: never call it on a loop thread.
  bool trigger_and_wait(std::chrono::milliseconds timeout);
  // Polls completed (successful or not), and the API calls of the last one.
  std::uint64_t polls() const { return polls_.load(); }
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

 protected:
  // `kind` names the source in logs ("aws_asg"); `what` the poll in failure reports.
  AwsPollingSource(const AwsConnectionOptions& connection, std::chrono::milliseconds interval,
                   discovery::SourceContext context, AwsRuntime runtime, std::string kind,
                   std::string what);

  // One poll (a coroutine on the loop).
  virtual runtime::Co<Result<AwsPollResult>> poll(AsyncAwsClient& client,
                                                  const AwsEndpoints& endpoints) = 0;
  // The setup and the client exist (start consumers that use them). On the loop.
  virtual void on_ready() {}
  // A successful poll, before its endpoints are compared and published (fetch_once too). On the
  // loop (fetch_once: the calling thread).
  virtual void on_polled(AwsPollResult& /*result*/) {}
  // stop(), on the loop, before the client and the setup go: end what on_ready() started.
  virtual void on_stop() {}

  // Triggers a poll and waits (on the loop) until one that started after this call finished;
  // true when it succeeded.
  runtime::Co<bool> repoll_and_wait(std::chrono::milliseconds timeout);

  struct Setup {
    std::unique_ptr<net::AsyncHttpClient> http;  // IMDS, STS, container: requests on the loop
    std::unique_ptr<AsyncHttpCredentialFetcher> fetcher;
    std::unique_ptr<CredentialProvider> credentials;
    AwsEndpoints endpoints;
    std::string region;
  };

  const discovery::SourceContext& context() const { return context_; }
  runtime::Loop* loop() const { return loop_; }
  AsyncAwsClient* client() const { return client_.get(); }
  const Setup* setup() const { return setup_.get(); }
  const std::string& kind() const { return kind_; }

 private:
  struct Wake;      // awaits the poll interval or trigger()
  struct PollWait;  // awaits the end of a poll (with a timeout)
  // Resolves region (asking IMDS on `loop` when nothing else gives one), endpoints and the
  // credential chain (fetched later, on the loop, by AsyncCachingCredentialProvider). Errors are
  // kInvalid (a broken setup) or kUnavailable (IMDS did not answer).
  runtime::Co<Result<std::unique_ptr<Setup>>> make_setup(runtime::Loop& loop);
  Result<std::optional<ProfileFile>> profile_files() const;
  runtime::Co<void> poll_loop();
  void poll_finished(std::uint64_t seq, bool ok);

  AwsConnectionOptions connection_;
  std::chrono::milliseconds interval_;
  discovery::SourceContext context_;
  AwsRuntime runtime_;
  std::string kind_;
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
  runtime::Spawned poll_task_;
  std::optional<std::vector<ep::Endpoint>> last_;
  bool last_failed_ = false;
  std::coroutine_handle<> poll_waiter_;  // the poll loop waiting in Wake
  runtime::TimerId poll_timer_ = 0;
  std::vector<PollWait*> poll_waiters_;

  std::atomic<std::uint64_t> polls_{0};
  std::atomic<int> last_api_calls_{0};
};

}  // namespace ep::aws
