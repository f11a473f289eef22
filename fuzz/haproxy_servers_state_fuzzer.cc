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
  // The resync's path: digest every backend and skip some (every other one here). The same rows
  // must come out as the full parse's, minus the skipped backends'; errors must agree.
  std::size_t asked = 0;
  auto digested = ep::haproxy::parse_servers_state(
      ep::fuzz::as_text(data, size),
      [&asked](std::string_view, std::size_t) { return (asked++ % 2) == 0; });
  EP_FUZZ_CHECK(digested.ok());
  std::size_t skipped_rows = 0;
  for (const auto& d : digested->digests) {
    EP_FUZZ_CHECK(!d.backend.empty());
    if (!d.skipped) continue;
    EP_FUZZ_CHECK(d.digest != 0);
    for (const auto& row : state->rows) skipped_rows += row.backend == d.backend ? 1 : 0;
  }
  EP_FUZZ_CHECK(digested->rows.size() + skipped_rows == state->rows.size());
  return 0;
}
