// YAML config: parse_yaml + settings_from_node, and the option readers of the sources that read
// no files (static, dns, file), on every source item the settings name.
#include <string>

#include "config/settings.h"
#include "core/config_node.h"
#include "discovery/dns/options.h"
#include "discovery/file/options.h"
#include "discovery/static/static_source.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto root = ep::config::parse_yaml(ep::fuzz::as_text(data, size), "fuzz.yaml");
  if (!root) {
    EP_FUZZ_CHECK(!root.error().message.empty());
    return 0;
  }
  ep::Diagnostics diag;
  auto settings = ep::config::settings_from_node(*root, "fuzz.yaml", diag);
  for (const auto& error : diag.errors()) EP_FUZZ_CHECK(!error.empty());
  for (const auto& backend : settings.backends) {
    for (const auto& source : backend.sources) {
      ep::Diagnostics source_diag;
      if (source.kind == "static") {
        auto options = ep::discovery::static_source::options_from_node(source.options, source_diag);
        if (options) ep::fuzz::check_endpoints(options->servers);
      } else if (source.kind == "dns") {
        (void)ep::discovery::dns::options_from_node(source.options, source_diag);
      } else if (source.kind == "file") {
        (void)ep::discovery::file::options_from_node(source.options, "/nonexistent", source_diag);
      }
    }
  }
  return 0;
}
