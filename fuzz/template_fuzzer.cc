// haproxy.cfg templates: parse_template, check_template against two known backends, render.
// Invariant: a rendered template that references a backend contains that backend's server line.
#include <algorithm>

#include "core/config_node.h"
#include "fuzz/fuzz_support.h"
#include "haproxy/config/render.h"
#include "haproxy/config/template.h"

namespace config = ep::haproxy::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto tpl = config::parse_template(ep::fuzz::as_text(data, size), "fuzz.tmpl");
  if (!tpl) {
    EP_FUZZ_CHECK(!tpl.error().message.empty());
    return 0;
  }
  ep::Diagnostics diag;
  config::check_template(*tpl, {"be_app", "be_static"}, diag);
  (void)tpl->uses_nodes();

  ep::ActualServer server;
  server.name = "ep-app1";
  server.address = "10.0.0.1";
  server.port = 8080;
  server.weight = 10;
  std::vector<config::RenderBackend> backends = {{"be_app", "check", {server}}};
  auto rendered = config::render(*tpl, backends);
  if (!rendered) {
    EP_FUZZ_CHECK(!rendered.error().message.empty());
    return 0;
  }
  auto referenced = tpl->referenced_backends();
  if (std::find(referenced.begin(), referenced.end(), "be_app") != referenced.end()) {
    EP_FUZZ_CHECK(rendered->find(config::server_line(server, "check")) != std::string::npos);
  }
  return 0;
}
