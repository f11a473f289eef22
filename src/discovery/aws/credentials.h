#pragma once
// AWS credentials: the value type, pure parsers for every place credentials come from, and the
// credential chain (aws.md §3) as a pure planning step plus a small executor over an injected
// fetcher interface (the network fetchers are written later, on src/net/http_client.h).
//
// Chain order (first that applies wins; aws-c-auth's default chain):
//   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN,
//      AWS_CREDENTIAL_EXPIRATION]
//   2. profile (AWS_PROFILE or the configured profile, else "default") from the config +
//      credentials files: role_arn + web_identity_token_file → AssumeRoleWithWebIdentity;
//      role_arn + source_profile / credential_source → AssumeRole over the source's
//      credentials; static aws_access_key_id/aws_secret_access_key; credential_process.
//   3. web identity from the environment: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
//      [+ AWS_ROLE_SESSION_NAME]
//   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI (+ authorization token)
//   5. IMDSv2, unless AWS_EC2_METADATA_DISABLED=true
// A profile that is asked for by name (AWS_PROFILE or configuration) and does not exist is an
// error, not a silent fall-through.
//
// Refresh: temporary credentials are refreshed `kRefreshMargin` (5 min) before Expiration; when a
// refresh fails, the old credentials stay in use until they actually expire (CredentialCache).
//
// Nothing here prints a secret: the formatter shows the key id's last 4 characters only.

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "discovery/aws/iso8601.h"
#include "discovery/aws/profile.h"

namespace ep::aws {

using EnvMap = std::map<std::string, std::string>;

inline constexpr std::chrono::seconds kRefreshMargin{300};

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;             // empty for long-term keys
  std::optional<SystemTime> expiration;  // unset = does not expire
  std::string source;                    // where they came from, e.g. "environment"

  bool temporary() const { return !session_token.empty(); }
  // True when they expire at or before now + margin.
  bool expires_within(SystemTime now, std::chrono::seconds margin) const;
  bool operator==(const Credentials&) const = default;
};

// "Credentials{key_id=…MPLE, secret=<redacted>, token=<redacted>|<none>, expires=…, source=…}".
// Never contains the secret or the token; shows only the last 4 chars of the key id.
std::string redacted(const Credentials& c);
std::ostream& operator<<(std::ostream& os, const Credentials& c);  // redacted (used by gtest)

// ---- parsers (pure) ----

// Environment. nullopt when AWS_ACCESS_KEY_ID is unset/empty; kInvalid when only one of the key
// id / secret is set, or AWS_CREDENTIAL_EXPIRATION is not ISO 8601.
Result<std::optional<Credentials>> credentials_from_env(const EnvMap& env);

// Static keys of a profile (aws_access_key_id, aws_secret_access_key, aws_session_token).
// nullopt when the profile has no aws_access_key_id; kInvalid when the secret is missing.
Result<std::optional<Credentials>> credentials_from_profile(const Profile& profile);

// `credential_process` stdout: {"Version":1,"AccessKeyId","SecretAccessKey"[,"SessionToken",
// "Expiration"]}. Version must be 1.
Result<Credentials> parse_credential_process_output(std::string_view json);

// STS replies: AssumeRoleResponse/AssumeRoleResult/Credentials and
// AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials. An STS
// <ErrorResponse> becomes kRefused "STS error <Code>: <Message>" (or kUnavailable for throttling
// and IDPCommunicationError, which are worth retrying).
Result<Credentials> parse_sts_assume_role_response(std::string_view xml);
Result<Credentials> parse_sts_assume_role_with_web_identity_response(std::string_view xml);

// Container endpoint reply {AccessKeyId, SecretAccessKey, Token, Expiration[, AccountId]}.
Result<Credentials> parse_container_credentials(std::string_view json);

// IMDS …/security-credentials/<role> reply; Code must be "Success".
Result<Credentials> parse_imds_credentials(std::string_view json);

// IMDS …/security-credentials/ listing: the first non-empty line (the role name).
Result<std::string> parse_imds_role_name(std::string_view text);

// AWS_CONTAINER_CREDENTIALS_FULL_URI is allowed only for https, loopback (127.0.0.0/8, ::1),
// 169.254.170.2, 169.254.170.23 and fd00:ec2::23 (aws.md §3.4).
Status validate_container_full_uri(std::string_view uri);

// ---- the chain, as a plan ----

enum class CredentialSourceKind {
  kStatic,       // ready now (environment, profile keys)
  kAssumeRole,   // STS AssumeRole signed with `source`'s credentials
  kWebIdentity,  // STS AssumeRoleWithWebIdentity (unsigned), token read from a file
  kProcess,      // run credential_process
  kContainer,    // ECS / EKS Pod Identity endpoint
  kImds,         // EC2 instance metadata (IMDSv2)
};
const char* to_string(CredentialSourceKind kind);

struct CredentialPlan {
  CredentialSourceKind kind = CredentialSourceKind::kStatic;
  std::string description;  // e.g. "profile 'prod' (role_arn via source_profile 'base')"

  std::optional<Credentials> static_credentials;  // kStatic

  // kAssumeRole / kWebIdentity
  std::string role_arn;
  std::string role_session_name;
  std::string external_id;
  std::string web_identity_token_file;
  std::optional<int> duration_seconds;
  std::string sts_region;                  // region to call STS in (profile/env region)
  std::shared_ptr<CredentialPlan> source;  // kAssumeRole: where the caller's credentials come from

  std::string credential_process;  // kProcess: the command line

  // kContainer
  std::string container_uri;              // full URL to GET
  std::string container_auth_token;       // AWS_CONTAINER_AUTHORIZATION_TOKEN
  std::string container_auth_token_file;  // AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read)

  // kImds
  std::string imds_endpoint;  // "http://169.254.169.254" or "http://[fd00:ec2::254]" or override
};

struct ChainInputs {
  EnvMap env;
  // Contents of the files; nullopt when the file does not exist. The caller reads them from
  // AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or ~/.aws/{config,credentials}.
  std::optional<std::string> config_file;
  std::optional<std::string> credentials_file;
  std::string config_file_name = "config";            // for error messages
  std::string credentials_file_name = "credentials";  // for error messages
  std::string profile;  // from ElasticProxy's configuration; empty = AWS_PROFILE or "default"
};

// The profile in use: ElasticProxy's configured one, else AWS_PROFILE, else "default".
std::string selected_profile_name(std::string_view configured, const EnvMap& env);

// The IMDS base URL the SDKs use: AWS_EC2_METADATA_SERVICE_ENDPOINT, else by
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (ipv6: http://[fd00:ec2::254]) http://169.254.169.254;
// no trailing '/'.
std::string imds_endpoint_url(const EnvMap& env);
// AWS_EC2_METADATA_DISABLED=true: never ask IMDS (credentials or region).
bool imds_disabled(const EnvMap& env);

// Picks the first applicable source in chain order. kInvalid for a broken setup (unknown named
// profile, role_arn with both/neither source_profile and credential_source, a source_profile
// cycle, a malformed file, a forbidden container URI); kUnavailable "no credentials found"
// only when IMDS is disabled and nothing else applies.
Result<CredentialPlan> plan_credentials(const ChainInputs& inputs);

// The network / process steps, implemented later over the HTTP client. Each call either
// returns fresh credentials or an error saying which step failed.
class CredentialFetcher {
 public:
  virtual ~CredentialFetcher() = default;
  // STS AssumeRole (signed with `caller`); parse with parse_sts_assume_role_response.
  virtual Result<Credentials> assume_role(const CredentialPlan& plan,
                                          const Credentials& caller) = 0;
  // Reads plan.web_identity_token_file, calls STS AssumeRoleWithWebIdentity (unsigned).
  virtual Result<Credentials> assume_role_with_web_identity(const CredentialPlan& plan) = 0;
  // Runs plan.credential_process; parse with parse_credential_process_output.
  virtual Result<Credentials> run_credential_process(const CredentialPlan& plan) = 0;
  // GET plan.container_uri with the Authorization token; parse_container_credentials.
  virtual Result<Credentials> fetch_container(const CredentialPlan& plan) = 0;
  // IMDSv2 token PUT, role listing, role credentials; parse_imds_credentials.
  virtual Result<Credentials> fetch_imds(const CredentialPlan& plan) = 0;
};

// Runs a plan (recursively through `source` for AssumeRole). Errors say which step failed.
Result<Credentials> execute_plan(const CredentialPlan& plan, CredentialFetcher& fetcher);
// execute_plan's two shared ends (also used by execute_plan_async): the error when an
// AssumeRole's source failed, and a step's result named after the plan, its secrets registered.
Error source_credentials_error(const CredentialPlan& plan, const Error& e);
Result<Credentials> finish_plan_step(const CredentialPlan& plan, Result<Credentials> r);

// Holds the current credentials and refreshes them ahead of expiry. Not thread-safe: one owner
// (the AWS source thread). `now` is injected so tests need no sleeping.
class CredentialCache {
 public:
  CredentialCache(CredentialPlan plan, CredentialFetcher& fetcher,
                  std::chrono::seconds refresh_margin = kRefreshMargin);
  // Without a fetcher: the owner fetches (asynchronously) when cached() says so, and store()s
  // the result; get() then never fetches (it answers usable()).
  explicit CredentialCache(CredentialPlan plan,
                           std::chrono::seconds refresh_margin = kRefreshMargin);

  // Cached credentials while they are more than `refresh_margin` from expiry; else fetches.
  // A failed refresh returns the previous credentials if they have not yet expired (and the
  // error is kept in last_error()), and is retried at most every 30 s while they stay valid;
  // with nothing usable it returns the error.
  Result<Credentials> get(SystemTime now);
  // Forces the next get() to fetch (e.g. after an ExpiredToken reply).
  void invalidate() { force_refresh_ = true; }
  const std::optional<Error>& last_error() const { return last_error_; }

  // get()'s answer when no fetch is due; nullopt when one is (none yet, within the refresh
  // margin, invalidated, and not inside the retry pause after a failure).
  std::optional<Result<Credentials>> cached(SystemTime now) const;
  // The best answer without fetching: cached(), else still-valid credentials, else the last
  // error (or "credentials not fetched yet").
  Result<Credentials> usable(SystemTime now) const;
  // Records a fetch's result and returns get()'s answer for it.
  Result<Credentials> store(Result<Credentials> r, SystemTime now);
  const CredentialPlan& plan() const { return plan_; }

 private:
  CredentialPlan plan_;
  CredentialFetcher* fetcher_ = nullptr;
  std::chrono::seconds margin_;
  std::optional<Credentials> current_;
  std::optional<Error> last_error_;
  std::optional<SystemTime> retry_after_;  // after a failed refresh while still valid
  bool force_refresh_ = false;
};

}  // namespace ep::aws

template <>
struct fmt::formatter<ep::aws::Credentials> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const ep::aws::Credentials& c, FormatContext& ctx) const {
    const std::string text = ep::aws::redacted(c);
    return fmt::formatter<std::string_view>::format(text, ctx);
  }
};
