#include "discovery/aws/credential_fetcher.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "discovery/aws/aws_client.h"
#include "discovery/aws/requests.h"
#include "net/http_await.h"
#include "os/file.h"
#include "os/process.h"
#include "os/strings.h"

namespace ep::aws {

namespace {

constexpr size_t kMaxProcessOutput = 64 * 1024;
constexpr std::string_view kImdsTokenTtl = "21600";

using os::trim;

Result<std::string> read_small_file(const std::string& path, std::string_view what) {
  auto text = os::read_file(path, 64 * 1024);
  if (!text) return Error{text.error().kind, fmt::format("{}: {}", what, text.error().message)};
  return std::string(trim(*text));
}

std::string status_text(const net::HttpResponse& r) {
  // The body of a failed credentials call may echo the request; only its size is reported.
  return fmt::format("HTTP {} ({} bytes)", r.status, r.body.size());
}

}  // namespace

Result<std::vector<std::string>> split_command_line(std::string_view command) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      const auto end = command.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return Error::invalid("credential_process: unterminated single quote");
      }
      cur.append(command.substr(i + 1, end - i - 1));
      i = end;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < command.size() && command[j] != '"'; ++j) {
        if (command[j] == '\\' && j + 1 < command.size() &&
            (command[j + 1] == '"' || command[j + 1] == '\\' || command[j + 1] == '$' ||
             command[j + 1] == '`')) {
          ++j;
        }
        cur.push_back(command[j]);
      }
      if (j >= command.size())
        return Error::invalid("credential_process: unterminated double quote");
      i = j;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      cur.push_back(command[++i]);
      in_word = true;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  if (words.empty()) return Error::invalid("credential_process: empty command");
  return words;
}

namespace {

// A coroutine whose awaits never suspend (a blocking perform), run to its end here.
template <typename T>
T run_inline(runtime::Co<T> co) {
  co.start();
  if (!co.done()) std::terminate();  // a synchronous perform() never suspends
  return co.await_resume();
}

}  // namespace

CredentialSteps::CredentialSteps(HttpCredentialFetcherOptions options)
    : options_(std::move(options)) {
  if (!options_.now) options_.now = [] { return std::chrono::system_clock::now(); };
}

Result<Endpoint> CredentialSteps::sts_endpoint(const CredentialPlan& plan) {
  const std::string region = plan.sts_region.empty() ? options_.default_region : plan.sts_region;
  if (region.empty()) return Error::invalid("no region to call STS in");
  if (options_.sts_endpoint) return options_.sts_endpoint(region);
  return resolve_endpoint(AwsService::kSts, region, "", {}, nullptr, nullptr);
}

runtime::Co<Result<Credentials>> CredentialSteps::assume_role_steps(const CredentialPlan& plan,
                                                                    const Credentials& caller) {
  auto endpoint = sts_endpoint(plan);
  if (!endpoint) co_return endpoint.error();
  const std::string region = plan.sts_region.empty() ? options_.default_region : plan.sts_region;
  const auto& info = service_info(AwsService::kSts);
  auto request = make_query_request(
      *endpoint, "AssumeRole", info.api_version,
      assume_role_params(plan.role_arn,
                         plan.role_session_name.empty() ? "elasticproxy" : plan.role_session_name,
                         plan.external_id, plan.duration_seconds));
  auto out = signed_http_request(*endpoint, request, caller, region, info.signing_name,
                                 options_.now(), options_.sts_timeout);
  if (!out) co_return Error{out.error().kind, "STS AssumeRole: " + out.error().message};
  auto reply = co_await perform(std::move(*out));
  if (!reply) co_return Error{reply.error().kind, "STS AssumeRole: " + reply.error().message};
  auto creds = parse_sts_assume_role_response(reply->body);
  if (!creds) {
    co_return Error{creds.error().kind,
                    fmt::format("STS AssumeRole {} (HTTP {}): {}", plan.role_arn, reply->status,
                                creds.error().message)};
  }
  co_return creds;
}

runtime::Co<Result<Credentials>> CredentialSteps::web_identity_steps(const CredentialPlan& plan) {
  auto token = read_small_file(plan.web_identity_token_file, "web identity token file");
  if (!token) co_return token.error();
  if (token->empty()) {
    co_return Error::invalid(
        fmt::format("web identity token file '{}' is empty", plan.web_identity_token_file));
  }
  auto endpoint = sts_endpoint(plan);
  if (!endpoint) co_return endpoint.error();
  const auto& info = service_info(AwsService::kSts);
  auto request = make_query_request(
      *endpoint, "AssumeRoleWithWebIdentity", info.api_version,
      assume_role_with_web_identity_params(
          plan.role_arn, plan.role_session_name.empty() ? "elasticproxy" : plan.role_session_name,
          *token));
  net::HttpRequest out;
  out.method = "POST";
  out.url = fmt::format("{}://{}{}", endpoint->scheme, endpoint->host_header,
                        request.path.empty() ? "/" : request.path);
  for (const auto& h : request.headers) out.headers.emplace_back(h.name, h.value);
  out.body = request.body;
  out.timeout = options_.sts_timeout;
  auto reply = co_await perform(std::move(out));
  if (!reply) {
    co_return Error{reply.error().kind, "STS AssumeRoleWithWebIdentity: " + reply.error().message};
  }
  auto creds = parse_sts_assume_role_with_web_identity_response(reply->body);
  if (!creds) {
    co_return Error{creds.error().kind,
                    fmt::format("STS AssumeRoleWithWebIdentity {} (HTTP {}): {}", plan.role_arn,
                                reply->status, creds.error().message)};
  }
  co_return creds;
}

runtime::Co<Result<Credentials>> CredentialSteps::container_steps(const CredentialPlan& plan) {
  net::HttpRequest req;
  req.url = plan.container_uri;
  req.direct = true;  // never through http_proxy: it would see (or forge) the credentials
  req.timeout = options_.container_timeout;
  req.connect_timeout = options_.container_timeout;
  std::string token = plan.container_auth_token;
  if (!plan.container_auth_token_file.empty()) {
    auto t = read_small_file(plan.container_auth_token_file, "container authorization token file");
    if (!t) co_return t.error();
    token = *t;
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    co_return Error::invalid("container authorization token contains a line break");
  }
  if (!token.empty()) req.headers.emplace_back("Authorization", token);
  auto reply = co_await perform(std::move(req));
  const std::string where = net::redact_url(plan.container_uri);
  if (!reply) {
    co_return Error{reply.error().kind, "container credentials: " + reply.error().message};
  }
  if (reply->status != 200) {
    co_return Error{reply->status >= 500 ? ErrorKind::kUnavailable : ErrorKind::kRefused,
                    fmt::format("container credentials {}: {}", where, status_text(*reply))};
  }
  auto creds = parse_container_credentials(reply->body);
  if (!creds) {
    co_return Error{creds.error().kind,
                    fmt::format("container credentials {}: {}", where, creds.error().message)};
  }
  co_return creds;
}

runtime::Co<Result<std::string>> CredentialSteps::imds_token(std::string endpoint) {
  const SystemTime now = options_.now();
  if (!imds_token_.empty() && now < imds_token_expiry_) co_return imds_token_;
  net::HttpRequest req;
  req.method = "PUT";
  req.url = endpoint + "/latest/api/token";
  req.direct = true;  // never through http_proxy: it would see (or forge) the token
  req.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", std::string(kImdsTokenTtl));
  req.timeout = options_.imds_timeout;
  req.connect_timeout = options_.imds_timeout;
  auto reply = co_await perform(std::move(req));
  if (!reply) co_return Error{reply.error().kind, "IMDS token: " + reply.error().message};
  if (reply->status != 200) {
    co_return Error{ErrorKind::kUnavailable, "IMDS token: " + status_text(*reply)};
  }
  std::string token(trim(reply->body));
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    co_return Error::invalid("IMDS token: empty or malformed");
  }
  imds_token_ = token;
  imds_token_expiry_ = now + std::chrono::seconds(21600 - 60);
  co_return token;
}

runtime::Co<Result<std::string>> CredentialSteps::imds_get_steps(std::string endpoint,
                                                                 std::string path) {
  for (int round = 0; round < 2; ++round) {
    auto token = co_await imds_token(endpoint);
    if (!token) co_return token.error();
    net::HttpRequest req;
    req.url = endpoint + "/latest/meta-data/" + path;
    req.direct = true;
    req.headers.emplace_back("X-aws-ec2-metadata-token", *token);
    req.timeout = options_.imds_timeout;
    req.connect_timeout = options_.imds_timeout;
    auto reply = co_await perform(std::move(req));
    if (!reply) {
      co_return Error{reply.error().kind, fmt::format("IMDS {}: {}", path, reply.error().message)};
    }
    if (reply->status == 401 && round == 0) {
      imds_token_.clear();  // expired or revoked: one more round with a fresh token
      continue;
    }
    if (reply->status != 200) {
      co_return Error{reply->status == 404 ? ErrorKind::kRefused : ErrorKind::kUnavailable,
                      fmt::format("IMDS {}: {}", path, status_text(*reply))};
    }
    co_return std::move(reply->body);
  }
  co_return Error::unavailable(fmt::format("IMDS {}: token refused twice", path));
}

runtime::Co<Result<Credentials>> CredentialSteps::imds_steps(const CredentialPlan& plan) {
  const std::string endpoint =
      plan.imds_endpoint.empty() ? "http://169.254.169.254" : plan.imds_endpoint;
  auto listing = co_await imds_get_steps(endpoint, "iam/security-credentials/");
  if (!listing) co_return listing.error();
  auto role = parse_imds_role_name(*listing);
  if (!role) co_return Error{role.error().kind, "IMDS: " + role.error().message};
  if (role->find('/') != std::string::npos || role->find("..") != std::string::npos) {
    co_return Error::invalid("IMDS: role name contains '/' or '..'");
  }
  auto body = co_await imds_get_steps(endpoint, "iam/security-credentials/" + *role);
  if (!body) co_return body.error();
  auto creds = parse_imds_credentials(*body);
  if (!creds) co_return Error{creds.error().kind, "IMDS credentials: " + creds.error().message};
  co_return creds;
}

// ---- synchronous: a blocking HttpClient ----

HttpCredentialFetcher::HttpCredentialFetcher(net::HttpClient& http,
                                             HttpCredentialFetcherOptions options)
    : CredentialSteps(std::move(options)), http_(http) {}

runtime::Co<Result<net::HttpResponse>> HttpCredentialFetcher::perform(net::HttpRequest request) {
  co_return http_.perform(request);
}

Result<Credentials> HttpCredentialFetcher::assume_role(const CredentialPlan& plan,
                                                       const Credentials& caller) {
  return run_inline(assume_role_steps(plan, caller));
}
Result<Credentials> HttpCredentialFetcher::assume_role_with_web_identity(
    const CredentialPlan& plan) {
  return run_inline(web_identity_steps(plan));
}
Result<Credentials> HttpCredentialFetcher::fetch_container(const CredentialPlan& plan) {
  return run_inline(container_steps(plan));
}
Result<Credentials> HttpCredentialFetcher::fetch_imds(const CredentialPlan& plan) {
  return run_inline(imds_steps(plan));
}
Result<std::string> HttpCredentialFetcher::imds_get(const std::string& imds_endpoint,
                                                    const std::string& path) {
  return run_inline(imds_get_steps(imds_endpoint, path));
}
Result<Credentials> HttpCredentialFetcher::run_credential_process(const CredentialPlan& plan) {
  return credential_process(plan);
}

// ---- on a loop: net::AsyncHttpClient ----

AsyncHttpCredentialFetcher::AsyncHttpCredentialFetcher(runtime::Loop& loop,
                                                       net::AsyncHttpClient& http,
                                                       HttpCredentialFetcherOptions options)
    : CredentialSteps(std::move(options)), loop_(loop), http_(http) {}

runtime::Co<Result<net::HttpResponse>> AsyncHttpCredentialFetcher::perform(
    net::HttpRequest request) {
  co_return co_await net::http_request(http_, std::move(request));
}

runtime::Co<Result<Credentials>> AsyncHttpCredentialFetcher::assume_role(
    const CredentialPlan& plan, const Credentials& caller) {
  co_return co_await assume_role_steps(plan, caller);
}
runtime::Co<Result<Credentials>> AsyncHttpCredentialFetcher::assume_role_with_web_identity(
    const CredentialPlan& plan) {
  co_return co_await web_identity_steps(plan);
}
runtime::Co<Result<Credentials>> AsyncHttpCredentialFetcher::fetch_container(
    const CredentialPlan& plan) {
  co_return co_await container_steps(plan);
}
runtime::Co<Result<Credentials>> AsyncHttpCredentialFetcher::fetch_imds(
    const CredentialPlan& plan) {
  co_return co_await imds_steps(plan);
}
runtime::Co<Result<std::string>> AsyncHttpCredentialFetcher::imds_get(std::string imds_endpoint,
                                                                      std::string path) {
  co_return co_await imds_get_steps(std::move(imds_endpoint), std::move(path));
}
runtime::Co<Result<Credentials>> AsyncHttpCredentialFetcher::run_credential_process(
    const CredentialPlan& plan) {
  co_return co_await credential_process_on(loop_, plan);
}

runtime::Co<void> AsyncCachingCredentialProvider::prepare(SystemTime now) {
  if (fetching_ || cache_.cached(now)) co_return;
  struct Flag {  // cleared however the fetch ends (also when the chain is destroyed)
    bool& f;
    ~Flag() { f = false; }
  };
  fetching_ = true;
  Flag flag{fetching_};
  auto r = co_await execute_plan_async(cache_.plan(), fetcher_);
  (void)cache_.store(std::move(r), now);  // get() reads the outcome
}

runtime::Co<Result<Credentials>> execute_plan_async(const CredentialPlan& plan,
                                                    AsyncCredentialFetcher& fetcher) {
  Result<Credentials> r = Error::internal("unreachable");
  switch (plan.kind) {
    case CredentialSourceKind::kStatic:
      if (!plan.static_credentials) co_return Error::internal("static plan without credentials");
      co_return *plan.static_credentials;
    case CredentialSourceKind::kAssumeRole: {
      if (!plan.source) co_return Error::internal("assume-role plan without a source");
      auto caller = co_await execute_plan_async(*plan.source, fetcher);
      if (!caller) co_return source_credentials_error(plan, caller.error());
      r = co_await fetcher.assume_role(plan, *caller);
      break;
    }
    case CredentialSourceKind::kWebIdentity:
      r = co_await fetcher.assume_role_with_web_identity(plan);
      break;
    case CredentialSourceKind::kProcess:
      r = co_await fetcher.run_credential_process(plan);
      break;
    case CredentialSourceKind::kContainer:
      r = co_await fetcher.fetch_container(plan);
      break;
    case CredentialSourceKind::kImds:
      r = co_await fetcher.fetch_imds(plan);
      break;
  }
  co_return finish_plan_step(plan, std::move(r));
}

namespace {

os::ProcessOptions process_options(std::chrono::milliseconds timeout) {
  os::ProcessOptions po;
  po.timeout = timeout;
  po.max_output = kMaxProcessOutput;
  po.merge_stderr = false;  // stdout is the JSON answer; stderr is the tool's own business
  return po;
}

// What a finished credential_process means (both ways of waiting for it).
Result<Credentials> credential_process_answer(const std::string& program,
                                              const Result<os::ProcessResult>& run,
                                              std::chrono::milliseconds timeout) {
  if (!run) {
    return Error::unavailable(
        fmt::format("credential_process: cannot run '{}': {}", program, run.error().message));
  }
  if (run->timed_out) {
    return Error::unavailable(
        fmt::format("credential_process '{}' timed out after {} ms", program, timeout.count()));
  }
  if (run->output_truncated) {
    return Error::invalid(fmt::format("credential_process '{}' wrote more than {} bytes", program,
                                      kMaxProcessOutput));
  }
  if (run->exit_code != 0) {
    return Error::unavailable(fmt::format("credential_process '{}' failed ({})", program,
                                          run->signal == 0
                                              ? fmt::format("exit status {}", run->exit_code)
                                              : fmt::format("signal {}", run->signal)));
  }
  auto creds = parse_credential_process_output(run->output);
  if (!creds) {
    return Error{creds.error().kind,
                 fmt::format("credential_process '{}': {}", program, creds.error().message)};
  }
  return creds;
}

}  // namespace

Result<Credentials> CredentialSteps::credential_process(const CredentialPlan& plan) {
  auto argv_words = split_command_line(plan.credential_process);
  if (!argv_words) return argv_words.error();
  const std::string program = argv_words->front();
  return credential_process_answer(
      program, os::run_process(*argv_words, process_options(options_.process_timeout)),
      options_.process_timeout);
}

runtime::Co<Result<Credentials>> CredentialSteps::credential_process_on(
    runtime::Loop& loop, const CredentialPlan& plan) {
  auto argv_words = split_command_line(plan.credential_process);
  if (!argv_words) co_return argv_words.error();
  const std::string program = argv_words->front();
  auto started = os::start_process(*argv_words, process_options(options_.process_timeout));
  if (!started) {
    co_return credential_process_answer(program, started.error(), options_.process_timeout);
  }
  // Reaped here however the wait ends: also when the chain is destroyed (the source stops).
  struct Reaper {
    int pid;
    bool reaped = false;
    ~Reaper() {
      if (reaped) return;
      ::kill(pid, SIGKILL);
      int st = 0;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  } reaper{started->pid};
  const auto deadline = std::chrono::steady_clock::now() + options_.process_timeout;
  int status = 0;
  bool timed_out = false;
  for (;;) {
    const pid_t w = ::waitpid(started->pid, &status, WNOHANG);
    if (w == started->pid || (w < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      ::kill(started->pid, SIGKILL);
      while (::waitpid(started->pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    co_await runtime::sleep(loop, std::chrono::milliseconds(5));  // the loop runs meanwhile
  }
  reaper.reaped = true;
  co_return credential_process_answer(program, os::finish_process(*started, status, timed_out),
                                      options_.process_timeout);
}

}  // namespace ep::aws
