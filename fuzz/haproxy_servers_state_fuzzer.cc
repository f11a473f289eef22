// HAProxy `show servers state` output (format versions 1.6 to 2.6).
#include "fuzz/fuzz_support.h"
#include "haproxy/runtime/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto state = ep::haproxy::parse_servers_state(ep::fuzz::as_text(data, size));
  if (!state) {
    EP_FUZZ_CHECK(!state.error().message.empty());
    return 0;
  }
  if (!state->backend_found) EP_FUZZ_CHECK(state->rows.empty());
  for (const auto& row : state->rows) {
    EP_FUZZ_CHECK(!row.backend.empty());
    EP_FUZZ_CHECK(!row.server.name.empty());
    (void)row.server.in_maint();
    (void)row.server.draining();
  }
  return 0;
}
