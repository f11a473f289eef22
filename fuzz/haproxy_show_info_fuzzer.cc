// HAProxy `show info` output.
#include "fuzz/fuzz_support.h"
#include "haproxy/runtime/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto info = ep::haproxy::parse_show_info(ep::fuzz::as_text(data, size));
  if (!info) EP_FUZZ_CHECK(!info.error().message.empty());
  return 0;
}
