#include "discovery/aws/endpoints.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace ep::aws {
namespace {

constexpr ServiceInfo kServices[] = {
    {AwsService::kAutoScaling, "autoscaling", "autoscaling", "AUTO_SCALING", "auto_scaling",
     "2011-01-01"},
    {AwsService::kEc2, "ec2", "ec2", "EC2", "ec2", "2016-11-15"},
    {AwsService::kSqs, "sqs", "sqs", "SQS", "sqs", "2012-11-05"},
    {AwsService::kSts, "sts", "sts", "STS", "sts", "2011-06-15"},
};

std::string env_get(const EnvMap& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

bool is_true(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true";
}

bool valid_region(std::string_view r) {
  if (r.empty() || r.size() > 64 || r.front() == '-' || r.back() == '-') return false;
  return std::all_of(r.begin(), r.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool valid_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

const ServiceInfo& service_info(AwsService service) {
  for (const auto& s : kServices) {
    if (s.service == service) return s;
  }
  return kServices[0];
}

bool region_needs_imds(std::string_view configured, const EnvMap& env, const Profile* profile) {
  return configured.empty() && env_get(env, "AWS_REGION").empty() &&
         env_get(env, "AWS_DEFAULT_REGION").empty() &&
         (profile == nullptr || profile->get("region").value_or("").empty());
}

Result<ResolvedRegion> resolve_region(std::string_view configured, const EnvMap& env,
                                      const Profile* profile, std::string_view imds_region) {
  ResolvedRegion r;
  if (!configured.empty()) {
    r = {std::string(configured), "configuration"};
  } else if (std::string v = env_get(env, "AWS_REGION"); !v.empty()) {
    r = {v, "AWS_REGION"};
  } else if (std::string d = env_get(env, "AWS_DEFAULT_REGION"); !d.empty()) {
    r = {d, "AWS_DEFAULT_REGION"};
  } else if (profile && !profile->get("region").value_or("").empty()) {
    r = {*profile->get("region"), fmt::format("profile '{}'", profile->name)};
  } else if (!imds_region.empty()) {
    r = {std::string(imds_region), "instance metadata"};
  } else {
    return Error::invalid(
        "no AWS region: set `region` in the source, AWS_REGION, AWS_DEFAULT_REGION or a profile "
        "region, or run on EC2 (instance metadata placement/region)");
  }
  if (!valid_region(r.region)) {
    return Error::invalid(fmt::format("AWS region '{}' (from {}) is not a valid region name",
                                      r.region.substr(0, 64), r.source));
  }
  return r;
}

Result<Endpoint> parse_endpoint_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Error::invalid(fmt::format("endpoint URL '{}': {}", url.substr(0, 200), why));
  };
  Endpoint e;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad("expected http:// or https://");
  e.scheme = std::string(url.substr(0, sep));
  std::transform(e.scheme.begin(), e.scheme.end(), e.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (e.scheme != "http" && e.scheme != "https") return bad("scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("query strings and fragments are not allowed");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not allowed");
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    e.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    if (e.host.empty() || !std::all_of(e.host.begin(), e.host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return bad("invalid IPv6 literal");
    }
  } else {
    const size_t colon = authority.find(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    if (e.host.empty()) return bad("no host");
    if (!std::all_of(e.host.begin(), e.host.end(), valid_host_char)) {
      return bad("host has a character not allowed in a host name");
    }
  }
  const int default_port = e.scheme == "https" ? 443 : 80;
  e.port = default_port;
  if (!port_text.empty()) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || p < 1 || p > 65535) {
      return bad("port must be 1..65535");
    }
    e.port = p;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  for (unsigned char c : path) {
    if (c <= 0x20 || c >= 0x7f) return bad("path has a space or control character");
  }
  e.path = std::string(path);
  const bool v6 = e.host.find(':') != std::string::npos;
  e.host_header = v6 ? "[" + e.host + "]" : e.host;
  if (e.port != default_port) e.host_header += ":" + std::to_string(e.port);
  e.url = e.scheme + "://" + e.host_header + e.path;
  return e;
}

Result<Endpoint> resolve_endpoint(AwsService service, std::string_view region,
                                  std::string_view configured, const EnvMap& env,
                                  const Profile* profile, const ProfileFile* files) {
  const ServiceInfo& info = service_info(service);
  auto use = [&](std::string_view url, std::string source) -> Result<Endpoint> {
    auto e = parse_endpoint_url(url);
    if (!e) return Error::invalid(fmt::format("{} (from {})", e.error().message, source));
    e->source = std::move(source);
    return e;
  };
  if (!configured.empty()) return use(configured, "configuration");

  const bool ignore =
      is_true(env_get(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) ||
      (profile && is_true(profile->get("ignore_configured_endpoint_urls").value_or("")));
  if (!ignore) {
    const std::string specific_var = fmt::format("AWS_ENDPOINT_URL_{}", info.env_suffix);
    if (std::string v = env_get(env, specific_var); !v.empty()) return use(v, specific_var);
    if (std::string v = env_get(env, "AWS_ENDPOINT_URL"); !v.empty()) {
      return use(v, "AWS_ENDPOINT_URL");
    }
    if (profile) {
      if (auto section = profile->get("services"); section && !section->empty()) {
        if (!files || !files->services.count(*section)) {
          return Error::invalid(
              fmt::format("profile '{}': services = {} but there is no "
                          "[services {}] section",
                          profile->name, *section, *section));
        }
        const Profile& s = files->services.at(*section);
        if (auto url = s.get(info.config_key, "endpoint_url"); url && !url->empty()) {
          return use(*url, fmt::format("[services {}] {}.endpoint_url", *section, info.config_key));
        }
      }
      if (auto url = profile->get("endpoint_url"); url && !url->empty()) {
        return use(*url, fmt::format("profile '{}' endpoint_url", profile->name));
      }
    }
  }
  if (!valid_region(region)) {
    return Error::invalid(fmt::format("cannot build the {} endpoint: invalid region '{}'",
                                      info.endpoint_prefix, region.substr(0, 64)));
  }
  const std::string_view suffix =
      region.substr(0, 3) == "cn-" ? "amazonaws.com.cn" : "amazonaws.com";
  return use(fmt::format("https://{}.{}.{}", info.endpoint_prefix, region, suffix), "default");
}

}  // namespace ep::aws
