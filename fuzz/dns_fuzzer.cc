// DNS replies (we parse the wire format ourselves; c-ares only transports): parse_reply, then
// the SRV → endpoint mapping over its own address records; endpoints go through the guard's
// checks, weights are 1..256, and every address record is an IP literal.
#include <map>

#include "discovery/dns/parse.h"
#include "fuzz/fuzz_support.h"

namespace dns = ep::discovery::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto reply = dns::parse_reply(ep::fuzz::as_text(data, size));
  if (!reply) {
    EP_FUZZ_CHECK(!reply.error().message.empty());
    return 0;
  }
  EP_FUZZ_CHECK(reply->srv.size() <= reply->answer_count);
  std::map<std::string, std::vector<dns::AddressRecord>> by_name;
  for (const auto& a : reply->addresses) {
    EP_FUZZ_CHECK(!a.address.empty());
    by_name[a.name].push_back(a);
  }
  for (bool backups : {false, true}) {
    dns::MapOptions options;
    options.backup_other_priorities = backups;
    auto mapped = dns::map_srv(reply->srv, by_name, options);
    for (const auto& e : mapped.endpoints) {
      EP_FUZZ_CHECK(e.weight.has_value() && *e.weight >= 1 && *e.weight <= 256);
    }
    ep::fuzz::check_endpoints(mapped.endpoints);
  }
  for (const auto& srv : reply->srv) (void)dns::normalize_name(srv.target);
  return 0;
}
