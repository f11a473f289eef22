// Consul /v1/health/service reply: parse_health_reply under a few option sets (health policies,
// tagged addresses, weights from Meta, backups); endpoints go through the guard's checks.
#include "discovery/consul/parse.h"
#include "fuzz/fuzz_support.h"

namespace consul = ep::discovery::consul;

namespace {

std::vector<consul::ParseOptions> option_sets() {
  std::vector<consul::ParseOptions> out;
  out.emplace_back();
  consul::ParseOptions wide;
  wide.health = consul::HealthPolicy::kAny;
  wide.tags = {"primary"};
  wide.kinds = {"connect-proxy"};
  wide.address_from = "lan_ipv4";
  wide.weight_max = 10;
  wide.weight_meta_key = "weight";
  wide.backup_meta_key = "backup";
  out.push_back(wide);
  consul::ParseOptions node;
  node.address_from = "node";
  node.use_weights = false;
  out.push_back(node);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto kOptions = option_sets();
  auto text = ep::fuzz::as_text(data, size);
  for (const auto& options : kOptions) {
    auto reply = consul::parse_health_reply(text, options);
    if (!reply) {
      EP_FUZZ_CHECK(!reply.error().message.empty());
      continue;
    }
    EP_FUZZ_CHECK(reply->endpoints.size() <= reply->entries);
    ep::fuzz::check_endpoints(reply->endpoints);
  }
  return 0;
}
