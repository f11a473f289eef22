// EP2 ep2.conf: the INI reader (configparser semantics, interpolation), the mapping onto the
// settings tree, and settings_from_node on the result. Invariants: errors and notes are never
// empty, and the mapping never invents a section it was not given.
#include <string>

#include "config/ep2.h"
#include "config/settings.h"
#include "core/config_node.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = ep::fuzz::as_text(data, size);
  (void)ep::config::looks_like_ini(text);
  auto ini = ep::config::parse_ini(text, "ep2.conf");
  if (!ini) {
    EP_FUZZ_CHECK(!ini.error().message.empty());
    return 0;
  }
  EP_FUZZ_CHECK(ini->kind == ep::ConfigNode::Kind::kMap);
  ep::Diagnostics diag;
  std::vector<std::string> notes;
  // A directory that does not exist: the default-template lookup finds nothing.
  ep::ConfigNode root = ep::config::ep2_to_settings_node(*ini, "/nonexistent", diag, notes);
  for (const auto& error : diag.errors()) EP_FUZZ_CHECK(!error.empty());
  for (const auto& note : notes) EP_FUZZ_CHECK(!note.empty());
  if (!diag.ok()) return 0;
  ep::Diagnostics settings_diag;
  auto settings = ep::config::settings_from_node(root, "ep2.conf", settings_diag);
  EP_FUZZ_CHECK(settings_diag.ok() || !settings_diag.errors().empty());
  if (settings_diag.ok()) EP_FUZZ_CHECK(settings.backends.size() == 1);
  return 0;
}
