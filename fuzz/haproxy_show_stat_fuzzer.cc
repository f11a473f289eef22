// HAProxy `show stat` CSV output.
#include "fuzz/fuzz_support.h"
#include "haproxy/runtime/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto table = ep::haproxy::parse_show_stat(ep::fuzz::as_text(data, size));
  if (!table) {
    EP_FUZZ_CHECK(!table.error().message.empty());
    return 0;
  }
  if (!table->proxy_found) EP_FUZZ_CHECK(table->rows.empty());
  return 0;
}
