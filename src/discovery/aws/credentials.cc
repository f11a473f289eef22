#include "discovery/aws/credentials.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/secrets.h"
#include "discovery/aws/xml_util.h"
#include "os/json.h"

namespace ep::aws {

using json = nlohmann::json;

namespace {

constexpr std::chrono::seconds kRetryAfterFailure{30};

std::string env_get(const EnvMap& env, const char* name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

bool env_true(const EnvMap& env, const char* name) {
  std::string v = env_get(env, name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true";
}

std::string jstr(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<json> parse_object(std::string_view text, std::string_view what) {
  if (text.size() > kMaxReplyBytes) return Error::invalid(fmt::format("{}: too large", what));
  auto parsed = os::parse_json(text, what);
  if (!parsed) return parsed.error();
  json j = std::move(*parsed);
  if (!j.is_object()) return Error::invalid(fmt::format("{}: not a JSON object", what));
  return j;
}

// The fields every JSON credential document shares; `token_key` differs ("Token" vs
// "SessionToken").
Result<Credentials> credentials_from_json(const json& o, const char* token_key,
                                          std::string_view what, std::string source) {
  Credentials c;
  c.access_key_id = jstr(o, "AccessKeyId");
  c.secret_access_key = jstr(o, "SecretAccessKey");
  c.session_token = jstr(o, token_key);
  c.source = std::move(source);
  if (c.access_key_id.empty()) return Error::invalid(fmt::format("{}: no AccessKeyId", what));
  if (c.secret_access_key.empty()) {
    return Error::invalid(fmt::format("{}: no SecretAccessKey", what));
  }
  const std::string exp = jstr(o, "Expiration");
  if (!exp.empty()) {
    auto t = parse_iso8601(exp);
    if (!t) return Error::invalid(fmt::format("{}: Expiration: {}", what, t.error().message));
    c.expiration = *t;
  }
  return c;
}

Result<Credentials> parse_sts(std::string_view xml_text, std::string_view op) {
  const std::string what = fmt::format("STS {} reply", op);
  pugi::xml_document doc;
  auto root = xml::load(doc, xml_text, what);
  if (!root) return root.error();
  if (auto e = xml::error_from_root(*root)) {
    // aws.md §3.3: both are worth retrying for web identity (the IdP may be briefly unreachable
    // or the projected token not yet rotated in).
    if (e->code == "IDPCommunicationError" || e->code == "InvalidIdentityToken") {
      return Error::unavailable(fmt::format("{}: AWS error {}: {}", what, e->code, e->message));
    }
    return xml::to_error(*e, what);
  }
  const std::string response = fmt::format("{}Response", op);
  if (xml::local_name(root->name()) != response) {
    return Error::invalid(fmt::format("{}: root element is <{}>, expected <{}>", what,
                                      std::string_view(root->name()).substr(0, 80), response));
  }
  pugi::xml_node creds = xml::child(xml::child(*root, std::string(op) + "Result"), "Credentials");
  if (!creds) return Error::invalid(fmt::format("{}: missing {}Result/Credentials", what, op));
  Credentials c;
  c.access_key_id = xml::child_text(creds, "AccessKeyId");
  c.secret_access_key = xml::child_text(creds, "SecretAccessKey");
  c.session_token = xml::child_text(creds, "SessionToken");
  c.source = fmt::format("sts:{}", op);
  if (c.access_key_id.empty() || c.secret_access_key.empty() || c.session_token.empty()) {
    return Error::invalid(
        fmt::format("{}: Credentials lacks AccessKeyId, SecretAccessKey or SessionToken", what));
  }
  const std::string exp = xml::child_text(creds, "Expiration");
  if (exp.empty()) return Error::invalid(fmt::format("{}: Credentials lacks Expiration", what));
  auto t = parse_iso8601(exp);
  if (!t) return Error::invalid(fmt::format("{}: Expiration: {}", what, t.error().message));
  c.expiration = *t;
  return c;
}

struct UriParts {
  std::string scheme;
  std::string host;  // without brackets
};

Result<UriParts> split_uri(std::string_view uri) {
  UriParts p;
  const size_t colon = uri.find("://");
  if (colon == std::string_view::npos) return Error::invalid("not an absolute URL");
  p.scheme = std::string(uri.substr(0, colon));
  std::transform(p.scheme.begin(), p.scheme.end(), p.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::string_view rest = uri.substr(colon + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    return Error::invalid("user information in the URL is not allowed");
  }
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return Error::invalid("unterminated IPv6 literal");
    p.host = std::string(rest.substr(1, close - 1));
  } else {
    p.host = std::string(rest.substr(0, rest.find(':')));
  }
  if (p.host.empty()) return Error::invalid("no host");
  return p;
}

Result<CredentialPlan> container_plan(const EnvMap& env) {
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kContainer;
  const std::string rel = env_get(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const std::string full = env_get(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!rel.empty()) {
    if (rel[0] != '/') {
      return Error::invalid("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
    }
    plan.container_uri = "http://169.254.170.2" + rel;
    plan.description = "container (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)";
  } else {
    if (auto st = validate_container_full_uri(full); !st) {
      return Error::invalid("AWS_CONTAINER_CREDENTIALS_FULL_URI: " + st.error().message);
    }
    plan.container_uri = full;
    plan.description = "container (AWS_CONTAINER_CREDENTIALS_FULL_URI)";
  }
  plan.container_auth_token_file = env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  if (plan.container_auth_token_file.empty()) {
    plan.container_auth_token = env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
  }
  return plan;
}

bool container_configured(const EnvMap& env) {
  return !env_get(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty() ||
         !env_get(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI").empty();
}

CredentialPlan imds_plan(const EnvMap& env) {
  CredentialPlan plan;
  plan.kind = CredentialSourceKind::kImds;
  plan.imds_endpoint = env_get(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (plan.imds_endpoint.empty()) {
    std::string mode = env_get(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    std::transform(mode.begin(), mode.end(), mode.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    plan.imds_endpoint = mode == "ipv6" ? "http://[fd00:ec2::254]" : "http://169.254.169.254";
  }
  while (!plan.imds_endpoint.empty() && plan.imds_endpoint.back() == '/') {
    plan.imds_endpoint.pop_back();
  }
  plan.description = "EC2 instance metadata (IMDSv2) at " + plan.imds_endpoint;
  return plan;
}

std::string region_of(const EnvMap& env, const Profile* profile) {
  std::string r = env_get(env, "AWS_REGION");
  if (r.empty()) r = env_get(env, "AWS_DEFAULT_REGION");
  if (r.empty() && profile) r = profile->get("region").value_or("");
  return r;
}

struct PlanContext {
  const EnvMap& env;
  const ProfileFile& files;
  std::vector<std::string> visiting;  // source_profile chain, for cycle detection
};

Result<std::optional<CredentialPlan>> profile_plan(const std::string& name, PlanContext& ctx);

Result<CredentialPlan> role_plan(const Profile& p, PlanContext& ctx) {
  CredentialPlan plan;
  plan.role_arn = *p.get("role_arn");
  plan.role_session_name = p.get("role_session_name").value_or("elasticproxy");
  plan.external_id = p.get("external_id").value_or("");
  plan.sts_region = region_of(ctx.env, &p);
  if (auto d = p.get("duration_seconds")) {
    try {
      size_t used = 0;
      const int v = std::stoi(*d, &used);
      if (used != d->size() || v < 900 || v > 43200) throw std::out_of_range("range");
      plan.duration_seconds = v;
    } catch (const std::exception&) {
      return Error::invalid(
          fmt::format("profile '{}': duration_seconds '{}' is not 900..43200", p.name, *d));
    }
  }
  const auto token_file = p.get("web_identity_token_file");
  const auto source_profile = p.get("source_profile");
  const auto credential_source = p.get("credential_source");
  if (token_file && !token_file->empty()) {
    plan.kind = CredentialSourceKind::kWebIdentity;
    plan.web_identity_token_file = *token_file;
    plan.description = fmt::format("profile '{}' (role_arn with web_identity_token_file)", p.name);
    return plan;
  }
  plan.kind = CredentialSourceKind::kAssumeRole;
  if (source_profile && credential_source) {
    return Error::invalid(fmt::format(
        "profile '{}': role_arn with both source_profile and credential_source", p.name));
  }
  if (source_profile) {
    plan.description =
        fmt::format("profile '{}' (role_arn via source_profile '{}')", p.name, *source_profile);
    if (*source_profile == p.name) {
      // A profile may be its own source: its static keys call AssumeRole.
      auto keys = credentials_from_profile(p);
      if (!keys) return keys.error();
      if (!*keys) {
        return Error::invalid(fmt::format(
            "profile '{}' is its own source_profile but has no aws_access_key_id", p.name));
      }
      CredentialPlan src;
      src.kind = CredentialSourceKind::kStatic;
      src.static_credentials = **keys;
      src.description = fmt::format("profile '{}' (static keys)", p.name);
      plan.source = std::make_shared<CredentialPlan>(std::move(src));
      return plan;
    }
    auto src = profile_plan(*source_profile, ctx);
    if (!src) return src.error();
    if (!*src) {
      return Error::invalid(fmt::format("profile '{}': source_profile '{}' has no credentials",
                                        p.name, *source_profile));
    }
    plan.source = std::make_shared<CredentialPlan>(std::move(**src));
    return plan;
  }
  if (credential_source) {
    plan.description =
        fmt::format("profile '{}' (role_arn via credential_source {})", p.name, *credential_source);
    CredentialPlan src;
    if (*credential_source == "Environment") {
      auto env = credentials_from_env(ctx.env);
      if (!env) return env.error();
      if (!*env) {
        return Error::invalid(fmt::format(
            "profile '{}': credential_source Environment but AWS_ACCESS_KEY_ID is not set",
            p.name));
      }
      src.kind = CredentialSourceKind::kStatic;
      src.static_credentials = **env;
      src.description = "environment";
    } else if (*credential_source == "Ec2InstanceMetadata") {
      src = imds_plan(ctx.env);
    } else if (*credential_source == "EcsContainer") {
      if (!container_configured(ctx.env)) {
        return Error::invalid(
            fmt::format("profile '{}': credential_source EcsContainer but no "
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI is set",
                        p.name));
      }
      auto c = container_plan(ctx.env);
      if (!c) return c.error();
      src = std::move(*c);
    } else {
      return Error::invalid(fmt::format(
          "profile '{}': credential_source '{}' is not Environment, Ec2InstanceMetadata or "
          "EcsContainer",
          p.name, *credential_source));
    }
    plan.source = std::make_shared<CredentialPlan>(std::move(src));
    return plan;
  }
  return Error::invalid(fmt::format(
      "profile '{}': role_arn needs source_profile, credential_source or web_identity_token_file",
      p.name));
}

Result<std::optional<CredentialPlan>> profile_plan(const std::string& name, PlanContext& ctx) {
  if (std::find(ctx.visiting.begin(), ctx.visiting.end(), name) != ctx.visiting.end()) {
    std::string chain;
    for (const auto& v : ctx.visiting) chain += v + " -> ";
    return Error::invalid(fmt::format("source_profile cycle: {}{}", chain, name));
  }
  auto it = ctx.files.profiles.find(name);
  if (it == ctx.files.profiles.end()) {
    return Error::invalid(fmt::format("profile '{}' not found", name));
  }
  const Profile& p = it->second;
  ctx.visiting.push_back(name);
  struct Pop {
    std::vector<std::string>& v;
    ~Pop() { v.pop_back(); }
  } pop{ctx.visiting};

  if (p.get("role_arn")) {
    auto plan = role_plan(p, ctx);
    if (!plan) return plan.error();
    return std::optional<CredentialPlan>(std::move(*plan));
  }
  if (p.get("sso_session") || p.get("sso_start_url")) {
    return Error::invalid(fmt::format(
        "profile '{}' uses AWS IAM Identity Center (SSO), which ElasticProxy does not support; "
        "use credential_process (e.g. `aws configure export-credentials`) instead",
        name));
  }
  auto keys = credentials_from_profile(p);
  if (!keys) return keys.error();
  if (*keys) {
    CredentialPlan plan;
    plan.kind = CredentialSourceKind::kStatic;
    plan.static_credentials = **keys;
    plan.description = fmt::format("profile '{}' (static keys)", name);
    return std::optional<CredentialPlan>(std::move(plan));
  }
  if (auto process = p.get("credential_process"); process && !process->empty()) {
    CredentialPlan plan;
    plan.kind = CredentialSourceKind::kProcess;
    plan.credential_process = *process;
    plan.description = fmt::format("profile '{}' (credential_process)", name);
    return std::optional<CredentialPlan>(std::move(plan));
  }
  return std::optional<CredentialPlan>();
}

}  // namespace

// ---- Credentials ----

bool Credentials::expires_within(SystemTime now, std::chrono::seconds margin) const {
  return expiration.has_value() && *expiration <= now + margin;
}

std::string redacted(const Credentials& c) {
  const std::string& id = c.access_key_id;
  const std::string tail = id.size() > 4 ? id.substr(id.size() - 4) : std::string();
  return fmt::format("Credentials{{key_id=…{}, secret={}, token={}, expires={}, source={}}}", tail,
                     c.secret_access_key.empty() ? "<none>" : "<redacted>",
                     c.session_token.empty() ? "<none>" : "<redacted>",
                     c.expiration ? format_iso8601(*c.expiration) : "never",
                     c.source.empty() ? "?" : c.source);
}

std::ostream& operator<<(std::ostream& os, const Credentials& c) { return os << redacted(c); }

// ---- parsers ----

Result<std::optional<Credentials>> credentials_from_env(const EnvMap& env) {
  const std::string id = env_get(env, "AWS_ACCESS_KEY_ID");
  const std::string secret = env_get(env, "AWS_SECRET_ACCESS_KEY");
  if (id.empty() && secret.empty()) return std::optional<Credentials>();
  if (id.empty())
    return Error::invalid("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
  if (secret.empty()) {
    return Error::invalid("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  }
  Credentials c;
  c.access_key_id = id;
  c.secret_access_key = secret;
  c.session_token = env_get(env, "AWS_SESSION_TOKEN");
  c.source = "environment";
  const std::string exp = env_get(env, "AWS_CREDENTIAL_EXPIRATION");
  if (!exp.empty()) {
    auto t = parse_iso8601(exp);
    if (!t) return Error::invalid("AWS_CREDENTIAL_EXPIRATION: " + t.error().message);
    c.expiration = *t;
  }
  return std::optional<Credentials>(std::move(c));
}

Result<std::optional<Credentials>> credentials_from_profile(const Profile& profile) {
  const std::string id = profile.get("aws_access_key_id").value_or("");
  if (id.empty()) return std::optional<Credentials>();
  const std::string secret = profile.get("aws_secret_access_key").value_or("");
  if (secret.empty()) {
    return Error::invalid(fmt::format(
        "profile '{}' has aws_access_key_id but no aws_secret_access_key", profile.name));
  }
  Credentials c;
  c.access_key_id = id;
  c.secret_access_key = secret;
  c.session_token = profile.get("aws_session_token").value_or("");
  c.source = fmt::format("profile '{}'", profile.name);
  return std::optional<Credentials>(std::move(c));
}

Result<Credentials> parse_credential_process_output(std::string_view text) {
  constexpr std::string_view kWhat = "credential_process output";
  auto j = parse_object(text, kWhat);
  if (!j) return j.error();
  auto v = j->find("Version");
  if (v == j->end() || !v->is_number_integer() || v->get<long long>() != 1) {
    return Error::invalid(fmt::format("{}: Version must be 1", kWhat));
  }
  return credentials_from_json(*j, "SessionToken", kWhat, "credential_process");
}

Result<Credentials> parse_sts_assume_role_response(std::string_view xml_text) {
  return parse_sts(xml_text, "AssumeRole");
}

Result<Credentials> parse_sts_assume_role_with_web_identity_response(std::string_view xml_text) {
  return parse_sts(xml_text, "AssumeRoleWithWebIdentity");
}

Result<Credentials> parse_container_credentials(std::string_view text) {
  constexpr std::string_view kWhat = "container credentials reply";
  auto j = parse_object(text, kWhat);
  if (!j) return j.error();
  // Error replies look like {"code":"…","message":"…"}.
  if (!j->contains("AccessKeyId") && (j->contains("code") || j->contains("message"))) {
    return Error::refused(fmt::format("{}: {} {}", kWhat, jstr(*j, "code"), jstr(*j, "message")));
  }
  return credentials_from_json(*j, "Token", kWhat, "container");
}

Result<Credentials> parse_imds_credentials(std::string_view text) {
  constexpr std::string_view kWhat = "IMDS security-credentials reply";
  auto j = parse_object(text, kWhat);
  if (!j) return j.error();
  const std::string code = jstr(*j, "Code");
  if (code != "Success") {
    return Error::refused(fmt::format("{}: Code is '{}' ({})", kWhat, code.substr(0, 60),
                                      jstr(*j, "Message").substr(0, 200)));
  }
  return credentials_from_json(*j, "Token", kWhat, "imds");
}

Result<std::string> parse_imds_role_name(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (!line.empty()) {
      for (unsigned char c : line) {
        if (c < 0x21 || c > 0x7e || c == '/' || c == '?' || c == '#') {
          return Error::invalid("IMDS role listing: role name has a character not allowed");
        }
      }
      return std::string(line);
    }
    pos = nl + 1;
  }
  return Error::invalid("IMDS role listing is empty (no instance profile attached?)");
}

Status validate_container_full_uri(std::string_view uri) {
  auto parts = split_uri(uri);
  if (!parts) return parts.error();
  if (parts->scheme == "https") return {};
  if (parts->scheme != "http") {
    return Error::invalid(fmt::format("scheme '{}' is not http or https", parts->scheme));
  }
  const std::string& h = parts->host;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) == 127) return {};                      // 127.0.0.0/8
    if (a == 0xA9FEAA02u || a == 0xA9FEAA17u) return {};  // 169.254.170.2 / .23
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    in6_addr ecs{};
    inet_pton(AF_INET6, "fd00:ec2::23", &ecs);
    if (IN6_IS_ADDR_LOOPBACK(&v6) || std::memcmp(&v6, &ecs, sizeof v6) == 0) return {};
  }
  return Error::invalid(fmt::format(
      "plain http is allowed only to loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23, "
      "not '{}'",
      h));
}

// ---- chain ----

std::string selected_profile_name(std::string_view configured, const EnvMap& env) {
  if (!configured.empty()) return std::string(configured);
  std::string p = env_get(env, "AWS_PROFILE");
  return p.empty() ? "default" : p;
}

const char* to_string(CredentialSourceKind kind) {
  switch (kind) {
    case CredentialSourceKind::kStatic:
      return "static";
    case CredentialSourceKind::kAssumeRole:
      return "assume-role";
    case CredentialSourceKind::kWebIdentity:
      return "web-identity";
    case CredentialSourceKind::kProcess:
      return "credential-process";
    case CredentialSourceKind::kContainer:
      return "container";
    case CredentialSourceKind::kImds:
      return "imds";
  }
  return "?";
}

Result<CredentialPlan> plan_credentials(const ChainInputs& in) {
  // 1. environment
  auto env = credentials_from_env(in.env);
  if (!env) return env.error();
  if (*env) {
    CredentialPlan plan;
    plan.kind = CredentialSourceKind::kStatic;
    plan.static_credentials = **env;
    plan.description = "environment";
    return plan;
  }

  // 2. profile
  ProfileFile config, creds;
  if (in.config_file) {
    auto f = parse_profile_file(*in.config_file, ProfileFileKind::kConfig, in.config_file_name);
    if (!f) return f.error();
    config = std::move(*f);
  }
  if (in.credentials_file) {
    auto f = parse_profile_file(*in.credentials_file, ProfileFileKind::kCredentials,
                                in.credentials_file_name);
    if (!f) return f.error();
    creds = std::move(*f);
  }
  const ProfileFile files = merge_profile_files(config, creds);
  const bool explicit_profile = !in.profile.empty() || !env_get(in.env, "AWS_PROFILE").empty();
  const std::string profile_name = selected_profile_name(in.profile, in.env);
  const Profile* profile = nullptr;
  if (auto it = files.profiles.find(profile_name); it != files.profiles.end()) {
    profile = &it->second;
    PlanContext ctx{in.env, files, {}};
    auto plan = profile_plan(profile_name, ctx);
    if (!plan) return plan.error();
    if (*plan) return std::move(**plan);
  } else if (explicit_profile) {
    return Error::invalid(
        fmt::format("profile '{}' not found in {} or {}", profile_name,
                    in.config_file ? in.config_file_name : "(no config file)",
                    in.credentials_file ? in.credentials_file_name : "(no credentials file)"));
  }

  // 3. web identity from the environment
  const std::string token_file = env_get(in.env, "AWS_WEB_IDENTITY_TOKEN_FILE");
  const std::string role_arn = env_get(in.env, "AWS_ROLE_ARN");
  if (!token_file.empty() || !role_arn.empty()) {
    if (token_file.empty()) {
      return Error::invalid("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
    }
    if (role_arn.empty()) {
      return Error::invalid("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    }
    CredentialPlan plan;
    plan.kind = CredentialSourceKind::kWebIdentity;
    plan.role_arn = role_arn;
    plan.web_identity_token_file = token_file;
    plan.role_session_name = env_get(in.env, "AWS_ROLE_SESSION_NAME");
    if (plan.role_session_name.empty()) plan.role_session_name = "elasticproxy";
    plan.sts_region = region_of(in.env, profile);
    plan.description = "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)";
    return plan;
  }

  // 4. container
  if (container_configured(in.env)) return container_plan(in.env);

  // 5. IMDS
  if (env_true(in.env, "AWS_EC2_METADATA_DISABLED")) {
    return Error::unavailable(
        "no AWS credentials found: no environment keys, no usable profile, no web identity, no "
        "container endpoint, and AWS_EC2_METADATA_DISABLED=true");
  }
  return imds_plan(in.env);
}

Error source_credentials_error(const CredentialPlan& plan, const Error& e) {
  return Error{e.kind,
               fmt::format("{}: getting source credentials: {}", plan.description, e.message)};
}

Result<Credentials> finish_plan_step(const CredentialPlan& plan, Result<Credentials> r) {
  if (!r) return Error{r.error().kind, fmt::format("{}: {}", plan.description, r.error().message)};
  Credentials c = std::move(*r);
  c.source = plan.description;
  // Registered the moment they are obtained (env, profile, process, STS, container, IMDS).
  secrets::add(c.secret_access_key);
  secrets::add(c.session_token);
  return c;
}

Result<Credentials> execute_plan(const CredentialPlan& plan, CredentialFetcher& fetcher) {
  Result<Credentials> r = Error::internal("unreachable");
  switch (plan.kind) {
    case CredentialSourceKind::kStatic:
      if (!plan.static_credentials) return Error::internal("static plan without credentials");
      return *plan.static_credentials;
    case CredentialSourceKind::kAssumeRole: {
      if (!plan.source) return Error::internal("assume-role plan without a source");
      auto caller = execute_plan(*plan.source, fetcher);
      if (!caller) return source_credentials_error(plan, caller.error());
      r = fetcher.assume_role(plan, *caller);
      break;
    }
    case CredentialSourceKind::kWebIdentity:
      r = fetcher.assume_role_with_web_identity(plan);
      break;
    case CredentialSourceKind::kProcess:
      r = fetcher.run_credential_process(plan);
      break;
    case CredentialSourceKind::kContainer:
      r = fetcher.fetch_container(plan);
      break;
    case CredentialSourceKind::kImds:
      r = fetcher.fetch_imds(plan);
      break;
  }
  return finish_plan_step(plan, std::move(r));
}

CredentialCache::CredentialCache(CredentialPlan plan, CredentialFetcher& fetcher,
                                 std::chrono::seconds refresh_margin)
    : plan_(std::move(plan)), fetcher_(&fetcher), margin_(refresh_margin) {}

CredentialCache::CredentialCache(CredentialPlan plan, std::chrono::seconds refresh_margin)
    : plan_(std::move(plan)), margin_(refresh_margin) {}

std::optional<Result<Credentials>> CredentialCache::cached(SystemTime now) const {
  const bool fresh = current_ && !current_->expires_within(now, margin_);
  if (fresh && !force_refresh_) return Result<Credentials>(*current_);
  const bool still_valid = current_ && !current_->expires_within(now, std::chrono::seconds(0));
  // After a failed refresh, keep using still-valid credentials and retry only every
  // kRetryAfterFailure, so a struggling endpoint is not hammered once per request.
  if (still_valid && !force_refresh_ && retry_after_ && now < *retry_after_) {
    return Result<Credentials>(*current_);
  }
  return std::nullopt;
}

Result<Credentials> CredentialCache::usable(SystemTime now) const {
  if (auto c = cached(now)) return *c;
  if (current_ && !current_->expires_within(now, std::chrono::seconds(0))) return *current_;
  if (last_error_) return *last_error_;
  return Error::unavailable("credentials not fetched yet");
}

Result<Credentials> CredentialCache::store(Result<Credentials> r, SystemTime now) {
  const bool still_valid = current_ && !current_->expires_within(now, std::chrono::seconds(0));
  if (r) {
    current_ = *r;
    last_error_.reset();
    retry_after_.reset();
    force_refresh_ = false;
    return *current_;
  }
  last_error_ = r.error();
  retry_after_ = now + kRetryAfterFailure;
  if (still_valid) return *current_;
  return r.error();
}

Result<Credentials> CredentialCache::get(SystemTime now) {
  if (auto c = cached(now)) return std::move(*c);
  if (fetcher_ == nullptr) return usable(now);
  return store(execute_plan(plan_, *fetcher_), now);
}

std::string imds_endpoint_url(const EnvMap& env) { return imds_plan(env).imds_endpoint; }

bool imds_disabled(const EnvMap& env) { return env_true(env, "AWS_EC2_METADATA_DISABLED"); }

}  // namespace ep::aws
