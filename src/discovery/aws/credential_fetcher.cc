#include "discovery/aws/credential_fetcher.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "discovery/aws/aws_client.h"
#include "discovery/aws/requests.h"
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

HttpCredentialFetcher::HttpCredentialFetcher(net::HttpClient& http,
                                             HttpCredentialFetcherOptions options)
    : http_(http), options_(std::move(options)) {
  if (!options_.now) options_.now = [] { return std::chrono::system_clock::now(); };
}

Result<Endpoint> HttpCredentialFetcher::sts_endpoint(const CredentialPlan& plan) {
  const std::string region = plan.sts_region.empty() ? options_.default_region : plan.sts_region;
  if (region.empty()) return Error::invalid("no region to call STS in");
  if (options_.sts_endpoint) return options_.sts_endpoint(region);
  return resolve_endpoint(AwsService::kSts, region, "", {}, nullptr, nullptr);
}

Result<Credentials> HttpCredentialFetcher::assume_role(const CredentialPlan& plan,
                                                       const Credentials& caller) {
  auto endpoint = sts_endpoint(plan);
  if (!endpoint) return endpoint.error();
  const std::string region = plan.sts_region.empty() ? options_.default_region : plan.sts_region;
  const auto& info = service_info(AwsService::kSts);
  auto request = make_query_request(
      *endpoint, "AssumeRole", info.api_version,
      assume_role_params(plan.role_arn,
                         plan.role_session_name.empty() ? "elasticproxy" : plan.role_session_name,
                         plan.external_id, plan.duration_seconds));
  auto reply = send_signed(http_, *endpoint, request, caller, region, info.signing_name,
                           options_.now(), options_.sts_timeout);
  if (!reply) return Error{reply.error().kind, "STS AssumeRole: " + reply.error().message};
  auto creds = parse_sts_assume_role_response(reply->body);
  if (!creds) {
    return Error{creds.error().kind, fmt::format("STS AssumeRole {} (HTTP {}): {}", plan.role_arn,
                                                 reply->status, creds.error().message)};
  }
  return creds;
}

Result<Credentials> HttpCredentialFetcher::assume_role_with_web_identity(
    const CredentialPlan& plan) {
  auto token = read_small_file(plan.web_identity_token_file, "web identity token file");
  if (!token) return token.error();
  if (token->empty()) {
    return Error::invalid(
        fmt::format("web identity token file '{}' is empty", plan.web_identity_token_file));
  }
  auto endpoint = sts_endpoint(plan);
  if (!endpoint) return endpoint.error();
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
  auto reply = http_.perform(out);
  if (!reply) {
    return Error{reply.error().kind, "STS AssumeRoleWithWebIdentity: " + reply.error().message};
  }
  auto creds = parse_sts_assume_role_with_web_identity_response(reply->body);
  if (!creds) {
    return Error{creds.error().kind,
                 fmt::format("STS AssumeRoleWithWebIdentity {} (HTTP {}): {}", plan.role_arn,
                             reply->status, creds.error().message)};
  }
  return creds;
}

Result<Credentials> HttpCredentialFetcher::fetch_container(const CredentialPlan& plan) {
  net::HttpRequest req;
  req.url = plan.container_uri;
  req.direct = true;  // never through http_proxy: it would see (or forge) the credentials
  req.timeout = options_.container_timeout;
  req.connect_timeout = options_.container_timeout;
  std::string token = plan.container_auth_token;
  if (!plan.container_auth_token_file.empty()) {
    auto t = read_small_file(plan.container_auth_token_file, "container authorization token file");
    if (!t) return t.error();
    token = *t;
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return Error::invalid("container authorization token contains a line break");
  }
  if (!token.empty()) req.headers.emplace_back("Authorization", token);
  auto reply = http_.perform(req);
  const std::string where = net::redact_url(plan.container_uri);
  if (!reply) return Error{reply.error().kind, "container credentials: " + reply.error().message};
  if (reply->status != 200) {
    return Error{reply->status >= 500 ? ErrorKind::kUnavailable : ErrorKind::kRefused,
                 fmt::format("container credentials {}: {}", where, status_text(*reply))};
  }
  auto creds = parse_container_credentials(reply->body);
  if (!creds)
    return Error{creds.error().kind,
                 fmt::format("container credentials {}: {}", where, creds.error().message)};
  return creds;
}

Result<std::string> HttpCredentialFetcher::imds_token(const std::string& endpoint) {
  const SystemTime now = options_.now();
  if (!imds_token_.empty() && now < imds_token_expiry_) return imds_token_;
  net::HttpRequest req;
  req.method = "PUT";
  req.url = endpoint + "/latest/api/token";
  req.direct = true;  // never through http_proxy: it would see (or forge) the token
  req.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", std::string(kImdsTokenTtl));
  req.timeout = options_.imds_timeout;
  req.connect_timeout = options_.imds_timeout;
  auto reply = http_.perform(req);
  if (!reply) return Error{reply.error().kind, "IMDS token: " + reply.error().message};
  if (reply->status != 200) {
    return Error{ErrorKind::kUnavailable, "IMDS token: " + status_text(*reply)};
  }
  std::string token(trim(reply->body));
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    return Error::invalid("IMDS token: empty or malformed");
  }
  imds_token_ = token;
  imds_token_expiry_ = now + std::chrono::seconds(21600 - 60);
  return token;
}

Result<std::string> HttpCredentialFetcher::imds_get(const std::string& endpoint,
                                                    const std::string& path) {
  for (int round = 0; round < 2; ++round) {
    auto token = imds_token(endpoint);
    if (!token) return token.error();
    net::HttpRequest req;
    req.url = endpoint + "/latest/meta-data/" + path;
    req.direct = true;
    req.headers.emplace_back("X-aws-ec2-metadata-token", *token);
    req.timeout = options_.imds_timeout;
    req.connect_timeout = options_.imds_timeout;
    auto reply = http_.perform(req);
    if (!reply)
      return Error{reply.error().kind, fmt::format("IMDS {}: {}", path, reply.error().message)};
    if (reply->status == 401 && round == 0) {
      imds_token_.clear();  // expired or revoked: one more round with a fresh token
      continue;
    }
    if (reply->status != 200) {
      return Error{reply->status == 404 ? ErrorKind::kRefused : ErrorKind::kUnavailable,
                   fmt::format("IMDS {}: {}", path, status_text(*reply))};
    }
    return std::move(reply->body);
  }
  return Error::unavailable(fmt::format("IMDS {}: token refused twice", path));
}

Result<Credentials> HttpCredentialFetcher::fetch_imds(const CredentialPlan& plan) {
  const std::string endpoint =
      plan.imds_endpoint.empty() ? "http://169.254.169.254" : plan.imds_endpoint;
  auto listing = imds_get(endpoint, "iam/security-credentials/");
  if (!listing) return listing.error();
  auto role = parse_imds_role_name(*listing);
  if (!role) return Error{role.error().kind, "IMDS: " + role.error().message};
  if (role->find('/') != std::string::npos || role->find("..") != std::string::npos) {
    return Error::invalid("IMDS: role name contains '/' or '..'");
  }
  auto body = imds_get(endpoint, "iam/security-credentials/" + *role);
  if (!body) return body.error();
  auto creds = parse_imds_credentials(*body);
  if (!creds) return Error{creds.error().kind, "IMDS credentials: " + creds.error().message};
  return creds;
}

Result<Credentials> HttpCredentialFetcher::run_credential_process(const CredentialPlan& plan) {
  auto argv_words = split_command_line(plan.credential_process);
  if (!argv_words) return argv_words.error();
  const std::string program = argv_words->front();
  os::ProcessOptions po;
  po.timeout = options_.process_timeout;
  po.max_output = kMaxProcessOutput;
  po.merge_stderr = false;  // stdout is the JSON answer; stderr is the tool's own business
  auto run = os::run_process(*argv_words, po);
  if (!run) {
    return Error::unavailable(
        fmt::format("credential_process: cannot run '{}': {}", program, run.error().message));
  }
  if (run->timed_out) {
    return Error::unavailable(fmt::format("credential_process '{}' timed out after {} ms", program,
                                          options_.process_timeout.count()));
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
  const std::string& out = run->output;
  auto creds = parse_credential_process_output(out);
  if (!creds) {
    return Error{creds.error().kind,
                 fmt::format("credential_process '{}': {}", program, creds.error().message)};
  }
  return creds;
}

}  // namespace ep::aws
