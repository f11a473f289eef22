#pragma once
// Region and endpoint resolution for the four services ElasticProxy calls (aws.md §1), as pure
// functions over injected inputs (ElasticProxy's own settings, an environment map, the parsed
// profile files).
//
// Region, first non-empty wins:
//   1. ElasticProxy configuration (`region:` of the aws_asg source)
//   2. AWS_REGION, then AWS_DEFAULT_REGION
//   3. the selected profile's `region`
//   4. the instance's region from IMDS placement/region (passed in by the caller, which fetches it)
//
// Endpoint URL of a service, first non-empty wins (the SDKs' "service-specific endpoints" order,
// with ElasticProxy's explicit setting on top like an endpoint passed in code):
//   1. ElasticProxy configuration (e.g. `endpoints: {ec2: …}`)
//   2. AWS_ENDPOINT_URL_<SERVICE> (AUTO_SCALING, EC2, SQS, STS)
//   3. AWS_ENDPOINT_URL
//   4. the profile's `services = NAME` section: `[services NAME]` → `<key> =` → `endpoint_url`
//      (keys auto_scaling, ec2, sqs, sts)
//   5. the profile's `endpoint_url`
//   6. https://<service>.<region>.amazonaws.com (".amazonaws.com.cn" for cn-* regions)
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (or the profile's ignore_configured_endpoint_urls =
// true) skips 2–5; ElasticProxy's own setting still applies.

#include <string>
#include <string_view>

#include "core/result.h"
#include "discovery/aws/credentials.h"
#include "discovery/aws/profile.h"

namespace ep::aws {

enum class AwsService { kAutoScaling, kEc2, kSqs, kSts };

struct ServiceInfo {
  AwsService service;
  std::string_view endpoint_prefix;  // host prefix: "autoscaling"
  std::string_view signing_name;     // SigV4 service name: "autoscaling"
  std::string_view env_suffix;       // AWS_ENDPOINT_URL_<suffix>: "AUTO_SCALING"
  std::string_view config_key;       // key inside [services x]: "auto_scaling"
  std::string_view api_version;      // "2011-01-01"
};
const ServiceInfo& service_info(AwsService service);

struct ResolvedRegion {
  std::string region;
  std::string source;  // "configuration", "AWS_REGION", "profile 'prod'", "instance metadata"
};

// kInvalid when nothing gives a region, or the region is not [a-z0-9-]+ (it becomes part of a
// host name, so anything else is refused).
Result<ResolvedRegion> resolve_region(std::string_view configured, const EnvMap& env,
                                      const Profile* profile, std::string_view imds_region = {});

// True when steps 1-3 give no region: the caller then asks IMDS (placement/region) and passes
// the answer to resolve_region.
bool region_needs_imds(std::string_view configured, const EnvMap& env, const Profile* profile);

struct Endpoint {
  std::string url;          // normalised: scheme://host[:port][path], no trailing '/'
  std::string scheme;       // "https" or "http"
  std::string host;         // without brackets for IPv6
  int port = 0;             // explicit or the scheme default
  std::string path;         // "" or "/prefix"
  std::string host_header;  // Host header value: host, bracketed for IPv6, ":port" if not default
  std::string source;       // where it came from (see the order above)

  bool tls() const { return scheme == "https"; }
};

// Parses an endpoint URL: http/https only; no user info, query or fragment; port 1..65535.
Result<Endpoint> parse_endpoint_url(std::string_view url);

// `profile` may be null (no files / profile not found). `files` gives the `[services …]`
// sections (may be null).
Result<Endpoint> resolve_endpoint(AwsService service, std::string_view region,
                                  std::string_view configured, const EnvMap& env,
                                  const Profile* profile, const ProfileFile* files);

}  // namespace ep::aws
