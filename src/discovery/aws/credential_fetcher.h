#pragma once
// The network and process steps of the credential chain (aws.md §3), written once
// (CredentialSteps) and performed two ways: a CredentialFetcher over a blocking net::HttpClient,
// and an AsyncCredentialFetcher over net::AsyncHttpClient on a source loop. Not thread-safe (one
// HTTP client); CachingCredentialProvider serialises use.
//
//  - assume_role: STS AssumeRole, POST to the STS endpoint of plan.sts_region (or the fetcher's
//    default region), SigV4-signed with the caller's credentials; one attempt (the cache retries).
//  - assume_role_with_web_identity: reads plan.web_identity_token_file (every time: the file is
//    rotated by the platform), trims it, POSTs AssumeRoleWithWebIdentity unsigned.
//  - fetch_container: GET plan.container_uri with "Authorization: <token>", the token read from
//    plan.container_auth_token_file each time (else plan.container_auth_token).
//  - fetch_imds: IMDSv2. PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds: 21600),
//    kept until 60 s before its TTL; GET /latest/meta-data/iam/security-credentials/ (role name),
//    then …/<role>. A 401 drops the token and the sequence is retried once with a new one. Each
//    request times out after `imds_timeout` (1 s).
//  - run_credential_process: splits the command line like a POSIX shell's words (whitespace,
//    single and double quotes, backslash) WITHOUT running a shell, posix_spawnp()s it with stdin
//    from /dev/null, reads stdout (capped at 64 KiB) and kills it (SIGKILL) after
//    `process_timeout`. A non-zero exit is an error with its status; stderr is not captured
//    (it is inherited), and stdout never appears in an error, since it holds the secret.
// Errors say which step failed and never contain a secret or a token.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "discovery/aws/aws_client.h"
#include "discovery/aws/credentials.h"
#include "discovery/aws/endpoints.h"
#include "net/async_http_client.h"
#include "net/http_client.h"
#include "runtime/co.h"

namespace ep::aws {

struct HttpCredentialFetcherOptions {
  // Region for STS when the plan has none.
  std::string default_region;
  // STS endpoint for a region; default resolve_endpoint(kSts, region, "", env, nullptr, nullptr).
  std::function<Result<Endpoint>(const std::string& region)> sts_endpoint;
  std::chrono::milliseconds imds_timeout{1000};
  std::chrono::milliseconds container_timeout{2000};
  std::chrono::milliseconds sts_timeout{10000};
  std::chrono::milliseconds process_timeout{30000};
  std::function<SystemTime()> now = [] { return std::chrono::system_clock::now(); };
};

// The HTTP steps of the chain (STS, web identity, container, IMDSv2), written once as
// coroutines over perform(): HttpCredentialFetcher performs synchronously (a blocking
// net::HttpClient: the coroutines never suspend), AsyncHttpCredentialFetcher on a loop
// (net::AsyncHttpClient: nothing blocks the loop). Not thread-safe (the IMDS token).
class CredentialSteps {
 public:
  explicit CredentialSteps(HttpCredentialFetcherOptions options);
  virtual ~CredentialSteps() = default;

  runtime::Co<Result<Credentials>> assume_role_steps(const CredentialPlan& plan,
                                                     const Credentials& caller);
  runtime::Co<Result<Credentials>> web_identity_steps(const CredentialPlan& plan);
  runtime::Co<Result<Credentials>> container_steps(const CredentialPlan& plan);
  runtime::Co<Result<Credentials>> imds_steps(const CredentialPlan& plan);
  // IMDS GET of any metadata path (e.g. "placement/region") with the IMDSv2 token.
  runtime::Co<Result<std::string>> imds_get_steps(std::string imds_endpoint, std::string path);
  // credential_process: a child process (bounded by process_timeout), waited for by blocking,
  // or on `loop` (its exit polled every 5 ms on loop timers; killed and reaped on timeout or when
  // the awaiting chain is destroyed).
  Result<Credentials> credential_process(const CredentialPlan& plan);
  runtime::Co<Result<Credentials>> credential_process_on(runtime::Loop& loop,
                                                         const CredentialPlan& plan);

 protected:
  virtual runtime::Co<Result<net::HttpResponse>> perform(net::HttpRequest request) = 0;

 private:
  runtime::Co<Result<std::string>> imds_token(std::string endpoint);
  Result<Endpoint> sts_endpoint(const CredentialPlan& plan);

  HttpCredentialFetcherOptions options_;
  std::string imds_token_;
  SystemTime imds_token_expiry_{};
};

// The chain's steps over a blocking net::HttpClient (the CLI, tests, AwsClient).
class HttpCredentialFetcher final : public CredentialFetcher, private CredentialSteps {
 public:
  HttpCredentialFetcher(net::HttpClient& http, HttpCredentialFetcherOptions options);

  Result<Credentials> assume_role(const CredentialPlan& plan, const Credentials& caller) override;
  Result<Credentials> assume_role_with_web_identity(const CredentialPlan& plan) override;
  Result<Credentials> run_credential_process(const CredentialPlan& plan) override;
  Result<Credentials> fetch_container(const CredentialPlan& plan) override;
  Result<Credentials> fetch_imds(const CredentialPlan& plan) override;

  // IMDS GET of any metadata path (e.g. "placement/region") with the IMDSv2 token.
  Result<std::string> imds_get(const std::string& imds_endpoint, const std::string& path);

 private:
  runtime::Co<Result<net::HttpResponse>> perform(net::HttpRequest request) override;

  net::HttpClient& http_;
};

// The chain's network steps as coroutines on a loop (what the AWS sources use).
class AsyncCredentialFetcher {
 public:
  virtual ~AsyncCredentialFetcher() = default;
  virtual runtime::Co<Result<Credentials>> assume_role(const CredentialPlan& plan,
                                                       const Credentials& caller) = 0;
  virtual runtime::Co<Result<Credentials>> assume_role_with_web_identity(
      const CredentialPlan& plan) = 0;
  virtual runtime::Co<Result<Credentials>> run_credential_process(const CredentialPlan& plan) = 0;
  virtual runtime::Co<Result<Credentials>> fetch_container(const CredentialPlan& plan) = 0;
  virtual runtime::Co<Result<Credentials>> fetch_imds(const CredentialPlan& plan) = 0;
};

// execute_plan (credentials.h) as a coroutine: the same steps, errors and secret registration.
runtime::Co<Result<Credentials>> execute_plan_async(const CredentialPlan& plan,
                                                    AsyncCredentialFetcher& fetcher);

// The chain's steps on one loop, never a blocking call there: every HTTP step (STS, web identity,
// container, IMDS) is a request of a net::AsyncHttpClient of that loop, and credential_process a
// child whose exit is awaited on loop timers. Threading: the loop's thread only.
class AsyncHttpCredentialFetcher final : public AsyncCredentialFetcher, private CredentialSteps {
 public:
  AsyncHttpCredentialFetcher(runtime::Loop& loop, net::AsyncHttpClient& http,
                             HttpCredentialFetcherOptions options);

  runtime::Co<Result<Credentials>> assume_role(const CredentialPlan& plan,
                                               const Credentials& caller) override;
  runtime::Co<Result<Credentials>> assume_role_with_web_identity(
      const CredentialPlan& plan) override;
  runtime::Co<Result<Credentials>> run_credential_process(const CredentialPlan& plan) override;
  runtime::Co<Result<Credentials>> fetch_container(const CredentialPlan& plan) override;
  runtime::Co<Result<Credentials>> fetch_imds(const CredentialPlan& plan) override;
  runtime::Co<Result<std::string>> imds_get(std::string imds_endpoint, std::string path);

 private:
  runtime::Co<Result<net::HttpResponse>> perform(net::HttpRequest request) override;

  runtime::Loop& loop_;
  net::AsyncHttpClient& http_;
};

// A CredentialCache refreshed on the loop: prepare() (which AsyncAwsClient awaits before each
// attempt) runs the chain through an AsyncCredentialFetcher when a refresh is due (none yet,
// within 5 minutes of expiry, or invalidated); get() never fetches: the cached credentials,
// still-valid ones while a refresh fails, else the error. One refresh at a time: a prepare()
// while one runs returns at once (get() then answers still-valid credentials or the last error).
// Loop thread only.
class AsyncCachingCredentialProvider final : public CredentialProvider {
 public:
  AsyncCachingCredentialProvider(CredentialPlan plan, AsyncCredentialFetcher& fetcher)
      : cache_(std::move(plan)), fetcher_(fetcher) {}
  Result<Credentials> get(SystemTime now) override { return cache_.usable(now); }
  void invalidate() override { cache_.invalidate(); }
  runtime::Co<void> prepare(SystemTime now) override;
  const std::optional<Error>& last_error() const { return cache_.last_error(); }

 private:
  CredentialCache cache_;
  AsyncCredentialFetcher& fetcher_;
  bool fetching_ = false;
};

// Splits a credential_process command line into argv (POSIX shell word rules: whitespace,
// '…', "…" with \" \\ escapes, backslash outside quotes; no expansion). kInvalid for an
// unterminated quote or an empty command.
Result<std::vector<std::string>> split_command_line(std::string_view command);

}  // namespace ep::aws
