// Kubernetes API replies: an EndpointSliceList page, watch stream lines (events, bookmarks,
// ERROR Status), a Status, a Service, a NodeList, an ExecCredential; the slices' endpoints (every
// address mode that needs no network) go through the guard's checks.
#include "discovery/kubernetes/kubeconfig.h"
#include "discovery/kubernetes/parse.h"
#include "fuzz/fuzz_support.h"

namespace k8s = ep::discovery::kubernetes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  k8s::Options options;
  options.service = "web";
  options.port_name = "http";
  options.zone = "zone-a";

  if (auto list = k8s::parse_slice_list(text)) {
    std::vector<const k8s::Slice*> slices;
    for (const auto& s : list->items) slices.push_back(&s);
    ep::fuzz::check_endpoints(k8s::map_endpoints(slices, options).endpoints);
    k8s::Options by_number = options;
    by_number.port_name.clear();
    by_number.port_number = 8080;
    ep::fuzz::check_endpoints(k8s::map_endpoints(slices, by_number).endpoints);
  }
  // The bytes as a watch stream: one event per line.
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    if (auto ev = k8s::parse_watch_event(text.substr(start, nl - start))) {
      if (ev->type != k8s::WatchEvent::Type::kError && ev->type != k8s::WatchEvent::Type::kBookmark)
        ep::fuzz::check_endpoints(k8s::map_endpoints({&ev->slice}, options).endpoints);
    }
    start = nl + 1;
  }
  (void)k8s::parse_status(text);
  if (auto svc = k8s::parse_service(text)) (void)k8s::choose_service_port(*svc, options);
  (void)k8s::parse_node_list(text);
  (void)k8s::parse_exec_credential(text);
  return 0;
}
