// etcd v3 JSON gateway replies: range, auth, one watch message, base64, and the value format of
// a key (JSON object / host:port / gRPC naming); endpoints go through the guard's checks.
#include "discovery/etcd/parse.h"
#include "fuzz/fuzz_support.h"

namespace etcd = ep::discovery::etcd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);

  if (auto range = etcd::parse_range_reply(text)) {
    std::vector<ep::Endpoint> endpoints;
    for (const auto& kv : range->kvs) {
      auto value = etcd::parse_value(kv.key, kv.value, kv.key);
      if (value && !value->remove) endpoints.push_back(value->endpoint);
    }
    ep::fuzz::check_endpoints(endpoints);
  }
  (void)etcd::parse_auth_reply(text);
  (void)etcd::is_auth_error(text);
  if (auto watch = etcd::parse_watch_message(text)) {
    for (const auto& event : watch->events) {
      (void)etcd::parse_value(event.kv.key, event.kv.value, event.kv.key);
    }
  }

  // The bytes as a key's value (split at the first NUL: key, value).
  auto nul = text.find('\0');
  std::string_view key = nul == std::string_view::npos ? "/svc/a" : text.substr(0, nul);
  std::string_view value = nul == std::string_view::npos ? text : text.substr(nul + 1);
  if (auto parsed = etcd::parse_value(key, value, std::string(key))) {
    if (!parsed->remove) ep::fuzz::check_endpoints({parsed->endpoint});
  }
  if (auto hp = etcd::split_host_port(value)) ep::fuzz::check_endpoints({*hp});

  // base64: decode(encode(x)) == x for any bytes; decode never crashes on garbage.
  auto decoded = etcd::base64_decode(text);
  auto round = etcd::base64_decode(etcd::base64_encode(text));
  EP_FUZZ_CHECK(round.ok() && *round == text);
  if (decoded) EP_FUZZ_CHECK(etcd::base64_decode(etcd::base64_encode(*decoded)).ok());
  (void)etcd::prefix_range_end(text);
  return 0;
}
