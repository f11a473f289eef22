#include "discovery/aws/ec2_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "discovery/aws/requests.h"

namespace ep::aws {

AwsPollResult build_ec2_endpoints(const std::vector<Ec2Instance>& instances,
                                  const Ec2Options& options) {
  AwsPollResult out;
  std::set<std::string> seen;
  for (const auto& ec2 : instances) {
    if (!seen.insert(ec2.instance_id).second) continue;
    if (ec2.state_code != 16) {  // the filter asks for running ones; a stale reply may differ
      out.skipped.push_back(
          fmt::format("{}: EC2 state '{}', not running", ec2.instance_id, ec2.state_name));
      continue;
    }
    std::string skip;
    auto e = instance_endpoint(ec2, options, skip);
    if (!e) {
      out.skipped.push_back(skip);
      continue;
    }
    out.addresses[ec2.instance_id] = *e;
    out.endpoints.push_back(std::move(*e));
  }
  std::sort(out.endpoints.begin(), out.endpoints.end(),
            [](const ep::Endpoint& a, const ep::Endpoint& b) { return a.id < b.id; });
  return out;
}

runtime::Co<Result<AwsPollResult>> poll_ec2(AsyncAwsClient& client, AwsEndpoints endpoints,
                                            const Ec2Options& options) {
  int calls = 0;
  std::vector<Ec2Instance> instances;
  Status pages = co_await describe_instances_pages(
      client, endpoints.ec2,
      [&options](const std::string& token) {
        return describe_instances_by_filters_params(options.filters, token);
      },
      instances, calls);
  if (!pages) co_return pages.error();
  AwsPollResult result = build_ec2_endpoints(instances, options);
  result.api_calls = calls;
  co_return result;
}

Ec2Source::Ec2Source(Ec2Options options, discovery::SourceContext context, AwsRuntime runtime)
    : AwsPollingSource(options, options.interval, std::move(context), std::move(runtime), "aws_ec2",
                       "EC2 poll"),
      options_(std::move(options)) {}

Ec2Source::~Ec2Source() { stop(); }

std::string Ec2Source::describe() const {
  std::string filters;
  for (const auto& [name, values] : options_.filters) {
    std::string v;
    for (const auto& x : values) v += (v.empty() ? "" : ",") + x;
    filters += (filters.empty() ? "" : " ") + name + "=" + v;
  }
  return fmt::format("aws_ec2 {}", filters);
}

runtime::Co<Result<AwsPollResult>> Ec2Source::poll(AsyncAwsClient& client,
                                                   const AwsEndpoints& endpoints) {
  co_return co_await poll_ec2(client, endpoints, options_);
}

}  // namespace ep::aws

namespace ep::discovery::aws {

SourceKind ec2_source_kind() {
  return SourceKind{"aws_ec2",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = ep::aws::parse_ec2_options(node, diag);
                      if (!options) return nullptr;
                      return std::make_unique<ep::aws::Ec2Source>(std::move(*options), context);
                    }};
}

}  // namespace ep::discovery::aws
