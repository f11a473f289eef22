#pragma once
// The AWS call wrapper (aws.md §2, §4.3): builds on requests.h (what to send), sigv4.h (signing),
// parse.h (error bodies) and net/http_client.h (transport). One AwsClient per thread (the HTTP
// client it uses is not thread-safe).
//
// Each call:
//   1. gets credentials from the CredentialProvider (refreshed ahead of expiry by the provider);
//   2. signs the request with SigV4 at wall-clock time + the current clock offset;
//   3. sends it; a 2xx reply's body is returned as is (the caller parses it);
//   4. otherwise classifies the error by its AWS code (parse.h classify_error) and:
//      - throttling / transient / transport failure → retries up to `max_attempts` in total,
//        sleeping the standard ("botocore standard mode") capped exponential backoff with full
//        jitter: random(0..1) × base × 2^(attempt-1), capped at `max_backoff`; base is 1 s for
//        throttling and 50 ms for transient errors. An `x-amz-retry-after` header (ms) is honoured
//        when it is longer, still capped;
//      - clock skew → takes the offset from the reply's Date header and retries at once (once);
//      - expired credentials → provider.invalidate() and retries at once (once);
//      - anything else → returns the error (kRefused, or kInvalid for an unreadable reply).
// Errors name the service, the action, the AWS code and message and the HTTP status; never a
// credential (Authorization and X-Amz-Security-Token values are never copied into an error).

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "core/result.h"
#include "discovery/aws/credentials.h"
#include "discovery/aws/endpoints.h"
#include "discovery/aws/parse.h"
#include "discovery/aws/requests.h"
#include "net/async_http_client.h"
#include "net/http_client.h"
#include "runtime/co.h"
#include "runtime/loop.h"

namespace ep::aws {

// Where AwsClient gets the credentials for each call.
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  virtual Result<Credentials> get(SystemTime now) = 0;
  // The current credentials were refused as expired: fetch new ones next time.
  virtual void invalidate() = 0;
  // AsyncAwsClient awaits this before each attempt: a provider that fetches on a loop
  // (AsyncCachingCredentialProvider) refreshes here, so get() is then a cache read.
  virtual runtime::Co<void> prepare(SystemTime /*now*/) { co_return; }
};

// Fixed credentials (config keys, tests). invalidate() does nothing.
class StaticCredentialProvider final : public CredentialProvider {
 public:
  explicit StaticCredentialProvider(Credentials c) : credentials_(std::move(c)) {}
  Result<Credentials> get(SystemTime) override { return credentials_; }
  void invalidate() override {}

 private:
  Credentials credentials_;
};

// CredentialCache (refresh before expiry) behind the provider interface. Thread-safe (a mutex
// around the cache), so several AwsClients on several threads may share one.
class CachingCredentialProvider final : public CredentialProvider {
 public:
  CachingCredentialProvider(CredentialPlan plan, CredentialFetcher& fetcher)
      : cache_(std::move(plan), fetcher) {}
  Result<Credentials> get(SystemTime now) override;
  void invalidate() override;

 private:
  std::mutex mu_;
  CredentialCache cache_;
};

struct RetryPolicy {
  int max_attempts = 3;  // in total, the first try included (botocore standard)
  std::chrono::milliseconds throttling_base{1000};
  std::chrono::milliseconds transient_base{50};
  std::chrono::milliseconds max_backoff{20000};
};

// Injected time and randomness, so tests neither sleep nor depend on the real clock.
struct AwsClientEnv {
  std::function<SystemTime()> now = [] { return std::chrono::system_clock::now(); };
  std::function<void(std::chrono::milliseconds)> sleep;  // default: std::this_thread::sleep_for
  std::function<double()> random;                        // uniform [0,1); default: a PRNG
};

// The full jittered delay before retry number `retry` (1 = the first retry) for an error of
// class `cls` (kThrottling uses throttling_base, everything else transient_base), given a random
// draw `r` in [0,1). Exposed for tests.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, ErrorClass cls, int retry,
                                        double r);

// Parses an HTTP Date header ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 7231 IMF-fixdate).
Result<SystemTime> parse_http_date(std::string_view text);

struct AwsCallStats {
  std::uint64_t calls = 0;     // call_*() invocations
  std::uint64_t attempts = 0;  // HTTP requests sent
  std::uint64_t retries = 0;   // attempts after the first, for any reason
  std::uint64_t throttled = 0;
  std::uint64_t clock_skew_corrections = 0;
  std::uint64_t credential_refreshes = 0;
};

class AwsClient {
 public:
  AwsClient(net::HttpClient& http, CredentialProvider& credentials, std::string region,
            RetryPolicy policy = {}, AwsClientEnv env = {});

  // Query / EC2 protocol (Auto Scaling, EC2, STS): POST form Action=…&Version=…&params. Returns
  // the 2xx body (XML).
  Result<std::string> call_query(AwsService service, const Endpoint& endpoint,
                                 std::string_view action, const QueryParams& params);
  // SQS JSON 1.0 protocol: POST with X-Amz-Target AmazonSQS.<operation>. Returns the 2xx body.
  Result<std::string> call_sqs(const Endpoint& endpoint, std::string_view operation,
                               std::string body,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Server time minus local time, learned from a clock-skew error's Date header.
  std::chrono::seconds clock_offset() const { return offset_; }
  const AwsCallStats& stats() const { return stats_; }
  const std::string& region() const { return region_; }
  net::HttpClient& http() { return http_; }

 private:
  Result<std::string> call(AwsService service, const Endpoint& endpoint,
                           const SignableRequest& request, std::string_view what, bool json_errors,
                           std::chrono::milliseconds timeout);

  net::HttpClient& http_;
  CredentialProvider& credentials_;
  std::string region_;
  RetryPolicy policy_;
  AwsClientEnv env_;
  std::chrono::seconds offset_{0};
  AwsCallStats stats_;
};

// Signs `request` (SigV4, header mode) and sends it once; no retry, no error parsing. Used by
// AwsClient and by the STS AssumeRole fetcher.
Result<net::HttpResponse> send_signed(net::HttpClient& http, const Endpoint& endpoint,
                                      const SignableRequest& request,
                                      const Credentials& credentials, std::string_view region,
                                      std::string_view signing_name, SystemTime time,
                                      std::chrono::milliseconds timeout);

// The signed HTTP request that send_signed() sends (pure).
Result<net::HttpRequest> signed_http_request(const Endpoint& endpoint,
                                             const SignableRequest& request,
                                             const Credentials& credentials,
                                             std::string_view region, std::string_view signing_name,
                                             SystemTime time, std::chrono::milliseconds timeout);

// AwsClient's contract (signing, retries, clock skew, expired credentials, errors) on the source
// runtime: calls are coroutines (runtime/co.h) on one loop, sent through an AsyncHttpClient of
// that loop; a retry's backoff is a loop timer. Differences from AwsClient:
//  - env.sleep, when set, is only told the delay and the retry is sent at once (tests); unset,
//    the retry waits on a loop timer;
//  - before each attempt it awaits credentials_.prepare(): with AsyncCachingCredentialProvider a
//    refresh (IMDS, STS, container) is a request on the loop, and get() a cache read. (A
//    CachingCredentialProvider over a blocking fetcher would block the loop: the sources never
//    use one.)
// Threading: constructed, used and destroyed on the loop's thread only (it owns its
// AsyncHttpClient); destroying an awaiting chain cancels its request.
class AsyncAwsClient {
 public:
  AsyncAwsClient(runtime::Loop& loop, CredentialProvider& credentials, std::string region,
                 RetryPolicy policy = {}, AwsClientEnv env = {});

  runtime::Co<Result<std::string>> call_query(AwsService service, Endpoint endpoint,
                                              std::string action, QueryParams params);
  runtime::Co<Result<std::string>> call_sqs(
      Endpoint endpoint, std::string operation, std::string body,
      std::chrono::milliseconds timeout = std::chrono::seconds(30));

  const AwsCallStats& stats() const { return stats_; }
  const std::string& region() const { return region_; }
  net::AsyncHttpClient& http() { return http_; }

 private:
  runtime::Co<Result<std::string>> call(AwsService service, Endpoint endpoint,
                                        SignableRequest request, std::string what, bool json_errors,
                                        std::chrono::milliseconds timeout);

  runtime::Loop& loop_;
  net::AsyncHttpClient http_;
  CredentialProvider& credentials_;
  std::string region_;
  RetryPolicy policy_;
  AwsClientEnv env_;
  bool injected_sleep_ = false;
  std::chrono::seconds offset_{0};
  AwsCallStats stats_;
};

}  // namespace ep::aws
