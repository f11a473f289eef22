#pragma once
// The network and process steps of the credential chain (aws.md §3): a CredentialFetcher over
// net::HttpClient. Not thread-safe (one HTTP client); CachingCredentialProvider serialises use.
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

#include "discovery/aws/credentials.h"
#include "discovery/aws/endpoints.h"
#include "net/http_client.h"

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

class HttpCredentialFetcher final : public CredentialFetcher {
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
  Result<std::string> imds_token(const std::string& endpoint);
  Result<Endpoint> sts_endpoint(const CredentialPlan& plan);

  net::HttpClient& http_;
  HttpCredentialFetcherOptions options_;
  std::string imds_token_;
  SystemTime imds_token_expiry_{};
};

// Splits a credential_process command line into argv (POSIX shell word rules: whitespace,
// '…', "…" with \" \\ escapes, backslash outside quotes; no expansion). kInvalid for an
// unterminated quote or an empty command.
Result<std::vector<std::string>> split_command_line(std::string_view command);

}  // namespace ep::aws
