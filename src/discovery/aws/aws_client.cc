#include "discovery/aws/aws_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>
#include <thread>

#include "core/log.h"
#include "discovery/aws/sigv4.h"
#include "net/http_await.h"

namespace ep::aws {

namespace {

constexpr std::string_view kLog = "aws";

std::string error_text(const AwsError& e) {
  std::string text = e.code;
  if (!e.message.empty()) text += ": " + e.message;
  return text;
}

}  // namespace

Result<Credentials> CachingCredentialProvider::get(SystemTime now) {
  std::lock_guard lock(mu_);
  return cache_.get(now);
}

void CachingCredentialProvider::invalidate() {
  std::lock_guard lock(mu_);
  cache_.invalidate();
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, ErrorClass cls, int retry,
                                        double r) {
  const auto base = cls == ErrorClass::kThrottling ? policy.throttling_base : policy.transient_base;
  // 2^(retry-1) grows fast; cap the exponent so the double stays finite before the min().
  const double factor = std::ldexp(1.0, std::clamp(retry - 1, 0, 30));
  const double ms = std::clamp(r, 0.0, 1.0) * static_cast<double>(base.count()) * factor;
  const double capped = std::min(ms, static_cast<double>(policy.max_backoff.count()));
  return std::chrono::milliseconds(static_cast<long long>(capped));
}

namespace {

// The retry decisions shared by AwsClient and AsyncAwsClient (which differ only in how they send
// and how they wait): attempts, credentials, reply classification, clock-skew correction,
// credential refresh, backoff. One instance per call.
class RetryLoop {
 public:
  RetryLoop(std::string_view what, bool json_errors, const RetryPolicy& policy, AwsClientEnv& env,
            CredentialProvider& credentials, std::chrono::seconds& offset, AwsCallStats& stats)
      : what_(what),
        json_errors_(json_errors),
        policy_(policy),
        env_(env),
        credentials_(credentials),
        offset_(offset),
        stats_(stats),
        last_(Error::unavailable(fmt::format("{}: not attempted", what))) {
    ++stats_.calls;
  }

  // Starts the next attempt; false when they are used up (the answer is then last()).
  bool next() {
    if (attempt_ >= policy_.max_attempts) return false;
    ++attempt_;
    if (attempt_ > 1) ++stats_.retries;
    return true;
  }
  // The credentials and signing time for this attempt, or the error that ends the call.
  Result<Credentials> credentials() {
    now_ = env_.now();
    auto creds = credentials_.get(now_);
    if (!creds) {
      return Error{creds.error().kind,
                   fmt::format("{}: no credentials: {}", what_, creds.error().message)};
    }
    ++stats_.attempts;
    return creds;
  }
  SystemTime signing_time() const { return now_ + offset_; }
  Error send_error(const Error& e) const {
    return Error::invalid(fmt::format("{}: {}", what_, e.message));
  }

  // What to do with this attempt's reply: `done` is the call's answer; else wait `delay` (0 =
  // at once) and try again.
  struct Step {
    std::optional<Result<std::string>> done;
    std::chrono::milliseconds delay{0};
  };
  Step judge(Result<net::HttpResponse> reply) {
    ErrorClass cls;
    std::chrono::milliseconds retry_after{0};
    if (!reply) {
      if (reply.error().kind == ErrorKind::kInvalid) {
        return {Error::invalid(fmt::format("{}: {}", what_, reply.error().message))};
      }
      last_ = Error::unavailable(fmt::format("{}: {}", what_, reply.error().message));
      cls = ErrorClass::kTransient;
    } else if (reply->status >= 200 && reply->status < 300) {
      return {std::move(reply->body)};
    } else {
      const long status = reply->status;
      Result<AwsError> parsed =
          json_errors_
              ? parse_json_error(reply->body, reply->headers.get("x-amzn-query-error").value_or(""))
              : parse_xml_error(reply->body);
      if (!parsed) {
        // Garbage instead of an error document: a 5xx is still worth a retry, anything else not.
        cls = status >= 500 ? ErrorClass::kTransient : ErrorClass::kFatal;
        last_ = Error{status >= 500 ? ErrorKind::kUnavailable : ErrorKind::kInvalid,
                      fmt::format("{}: HTTP {} with an unreadable error body ({})", what_, status,
                                  parsed.error().message)};
      } else {
        cls = classify_error(*parsed, static_cast<int>(status));
        const bool retryable = cls == ErrorClass::kThrottling || cls == ErrorClass::kTransient;
        last_ = Error{retryable ? ErrorKind::kUnavailable : ErrorKind::kRefused,
                      fmt::format("{}: HTTP {} {}", what_, status, error_text(*parsed))};
      }
      if (auto ra = reply->headers.get("x-amz-retry-after")) {
        char* end = nullptr;
        const long long v = std::strtoll(ra->c_str(), &end, 10);
        if (end && *end == '\0' && v > 0) retry_after = std::chrono::milliseconds(v);
      }
      if (cls == ErrorClass::kClockSkew) {
        auto date = reply->headers.get("Date");
        auto server_time = date ? parse_http_date(*date) : Result<SystemTime>(Error::invalid(""));
        if (skew_retried_ || !server_time) return {last_};
        skew_retried_ = true;
        offset_ = std::chrono::duration_cast<std::chrono::seconds>(*server_time - now_);
        ++stats_.clock_skew_corrections;
        log::warn(kLog, "{}: clock skew; local clock is {} s off the server's, correcting", what_,
                  -offset_.count());
        --attempt_;  // a correction is not a failed attempt
        return {};
      }
      if (cls == ErrorClass::kExpiredCredentials) {
        if (refresh_retried_) return {last_};
        refresh_retried_ = true;
        credentials_.invalidate();
        ++stats_.credential_refreshes;
        log::info(kLog, "{}: credentials expired; refreshing", what_);
        --attempt_;
        return {};
      }
      if (cls == ErrorClass::kFatal) return {last_};
      if (cls == ErrorClass::kThrottling) ++stats_.throttled;
    }
    if (attempt_ >= policy_.max_attempts) return {last_};
    auto delay = std::max(backoff_delay(policy_, cls, attempt_, env_.random()), retry_after);
    delay = std::min(delay, policy_.max_backoff);
    log::debug(kLog, "{}: attempt {} failed ({}); retrying in {} ms", what_, attempt_,
               last_.message, delay.count());
    return {std::nullopt, delay};
  }
  const Error& last() const { return last_; }

 private:
  std::string what_;
  bool json_errors_;
  const RetryPolicy& policy_;
  AwsClientEnv& env_;
  CredentialProvider& credentials_;
  std::chrono::seconds& offset_;
  AwsCallStats& stats_;
  Error last_;
  int attempt_ = 0;
  bool skew_retried_ = false;
  bool refresh_retried_ = false;
  SystemTime now_{};
};

}  // namespace

Result<SystemTime> parse_http_date(std::string_view text) {
  // IMF-fixdate only: "Sun, 06 Nov 1994 08:49:37 GMT" (what AWS and every current server sends).
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::string s(text);
  char wday[4] = {}, mon[4] = {}, zone[4] = {};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%3[A-Za-z], %d %3s %d %d:%d:%d %3s%n", wday, &day, mon, &year, &hh,
                  &mm, &ss, zone, &consumed) != 8 ||
      static_cast<size_t>(consumed) != s.size() || std::string_view(zone) != "GMT") {
    return Error::invalid(
        fmt::format("HTTP Date '{}' is not 'Www, DD Mon YYYY HH:MM:SS GMT'", s.substr(0, 64)));
  }
  int month = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::string_view(mon) == kMonths[i]) month = i;
  }
  if (month < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970) {
    return Error::invalid(fmt::format("HTTP Date '{}' has a field out of range", s.substr(0, 64)));
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Result<net::HttpRequest> signed_http_request(const Endpoint& endpoint,
                                             const SignableRequest& request,
                                             const Credentials& credentials,
                                             std::string_view region, std::string_view signing_name,
                                             SystemTime time, std::chrono::milliseconds timeout) {
  SigningConfig config;
  config.region = std::string(region);
  config.service = std::string(signing_name);
  config.time = time;
  auto signed_ = sign_request(request, credentials, config);
  if (!signed_) return Error::invalid("cannot sign the request: " + signed_.error().message);

  net::HttpRequest out;
  out.method = request.method;
  out.url = fmt::format("{}://{}{}", endpoint.scheme, endpoint.host_header,
                        request.path.empty() ? "/" : request.path);
  if (!request.query.empty()) out.url += "?" + request.query;
  for (const auto& h : request.headers) out.headers.emplace_back(h.name, h.value);
  for (const auto& h : signed_->added_headers) out.headers.emplace_back(h.name, h.value);
  out.body = request.body;
  out.timeout = timeout;
  return out;
}

Result<net::HttpResponse> send_signed(net::HttpClient& http, const Endpoint& endpoint,
                                      const SignableRequest& request,
                                      const Credentials& credentials, std::string_view region,
                                      std::string_view signing_name, SystemTime time,
                                      std::chrono::milliseconds timeout) {
  auto out =
      signed_http_request(endpoint, request, credentials, region, signing_name, time, timeout);
  if (!out) return out.error();
  return http.perform(*out);
}

AwsClient::AwsClient(net::HttpClient& http, CredentialProvider& credentials, std::string region,
                     RetryPolicy policy, AwsClientEnv env)
    : http_(http),
      credentials_(credentials),
      region_(std::move(region)),
      policy_(policy),
      env_(std::move(env)) {
  if (!env_.now) env_.now = [] { return std::chrono::system_clock::now(); };
  if (!env_.sleep) env_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!env_.random) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    env_.random = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

Result<std::string> AwsClient::call_query(AwsService service, const Endpoint& endpoint,
                                          std::string_view action, const QueryParams& params) {
  const auto& info = service_info(service);
  SignableRequest request = make_query_request(endpoint, action, info.api_version, params);
  return call(service, endpoint, request, fmt::format("{} {}", info.endpoint_prefix, action), false,
              std::chrono::seconds(30));
}

Result<std::string> AwsClient::call_sqs(const Endpoint& endpoint, std::string_view operation,
                                        std::string body, std::chrono::milliseconds timeout) {
  SignableRequest request = make_sqs_request(endpoint, operation, std::move(body));
  return call(AwsService::kSqs, endpoint, request, fmt::format("sqs {}", operation), true, timeout);
}

Result<std::string> AwsClient::call(AwsService service, const Endpoint& endpoint,
                                    const SignableRequest& request, std::string_view what,
                                    bool json_errors, std::chrono::milliseconds timeout) {
  const auto& info = service_info(service);
  RetryLoop retry(what, json_errors, policy_, env_, credentials_, offset_, stats_);
  while (retry.next()) {
    auto creds = retry.credentials();
    if (!creds) return creds.error();
    auto step = retry.judge(send_signed(http_, endpoint, request, *creds, region_,
                                        info.signing_name, retry.signing_time(), timeout));
    if (step.done) return std::move(*step.done);
    if (step.delay.count() > 0) env_.sleep(step.delay);
  }
  return retry.last();
}

AsyncAwsClient::AsyncAwsClient(runtime::Loop& loop, CredentialProvider& credentials,
                               std::string region, RetryPolicy policy, AwsClientEnv env)
    : loop_(loop),
      http_(loop),
      credentials_(credentials),
      region_(std::move(region)),
      policy_(policy),
      env_(std::move(env)) {
  injected_sleep_ = static_cast<bool>(env_.sleep);
  if (!env_.now) env_.now = [] { return std::chrono::system_clock::now(); };
  if (!env_.random) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    env_.random = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

runtime::Co<Result<std::string>> AsyncAwsClient::call_query(AwsService service, Endpoint endpoint,
                                                            std::string action,
                                                            QueryParams params) {
  const auto& info = service_info(service);
  SignableRequest request = make_query_request(endpoint, action, info.api_version, params);
  co_return co_await call(service, endpoint, std::move(request),
                          fmt::format("{} {}", info.endpoint_prefix, action), false,
                          std::chrono::seconds(30));
}

runtime::Co<Result<std::string>> AsyncAwsClient::call_sqs(Endpoint endpoint, std::string operation,
                                                          std::string body,
                                                          std::chrono::milliseconds timeout) {
  SignableRequest request = make_sqs_request(endpoint, operation, std::move(body));
  co_return co_await call(AwsService::kSqs, endpoint, std::move(request),
                          fmt::format("sqs {}", operation), true, timeout);
}

runtime::Co<Result<std::string>> AsyncAwsClient::call(AwsService service, Endpoint endpoint,
                                                      SignableRequest request, std::string what,
                                                      bool json_errors,
                                                      std::chrono::milliseconds timeout) {
  const auto& info = service_info(service);
  RetryLoop retry(what, json_errors, policy_, env_, credentials_, offset_, stats_);
  while (retry.next()) {
    co_await credentials_.prepare(env_.now());
    auto creds = retry.credentials();
    if (!creds) co_return creds.error();
    auto out = signed_http_request(endpoint, request, *creds, region_, info.signing_name,
                                   retry.signing_time(), timeout);
    if (!out) co_return retry.send_error(out.error());
    auto step = retry.judge(co_await net::http_request(http_, std::move(*out)));
    if (step.done) co_return std::move(*step.done);
    if (step.delay.count() == 0) continue;
    if (injected_sleep_) {
      env_.sleep(step.delay);
    } else {
      co_await runtime::sleep(loop_, step.delay);
    }
  }
  co_return retry.last();
}

}  // namespace ep::aws
