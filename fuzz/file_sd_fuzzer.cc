// File source: parse_file_sd (JSON, YAML and by-extension), endpoint_from_text (one target, shared
// with static servers); every endpoint goes through the guard's checks.
#include "discovery/file/parse.h"
#include "discovery/guard.h"
#include "fuzz/fuzz_support.h"

using ep::discovery::file::Format;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  for (Format format : {Format::kJson, Format::kYaml}) {
    auto endpoints = ep::discovery::file::parse_file_sd(text, format, "targets");
    if (endpoints) {
      ep::fuzz::check_endpoints(*endpoints);
    } else {
      EP_FUZZ_CHECK(!endpoints.error().message.empty());
    }
  }
  if (size < 256) {
    auto endpoint = ep::discovery::endpoint_from_text(text);
    ep::fuzz::check_endpoints({endpoint});
  }
  return 0;
}
