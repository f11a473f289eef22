// AWS Query-API XML: DescribeAutoScalingGroups, DescribeInstances and the error document, each on
// the same bytes (the seed corpus mixes them), then the membership mapping and weight() of every
// Auto Scaling instance parsed.
#include "discovery/aws/parse.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  if (auto page = ep::aws::parse_describe_auto_scaling_groups(text)) {
    for (const auto& group : page->groups) {
      for (const auto& instance : group.instances) {
        (void)ep::aws::to_string(ep::aws::membership(instance));
        if (auto weight = instance.weight()) EP_FUZZ_CHECK(*weight >= 0);
      }
    }
  } else {
    EP_FUZZ_CHECK(!page.error().message.empty());
  }
  if (auto page = ep::aws::parse_describe_instances(text)) {
    for (const auto& instance : page->instances) (void)instance.tag("Name");
  }
  if (auto error = ep::aws::parse_xml_error(text)) {
    (void)ep::aws::to_string(ep::aws::classify_error(*error, 400));
    (void)ep::aws::to_string(ep::aws::classify_error(*error, 503));
  }
  return 0;
}
