#include "haproxy/config/render.h"

#include <algorithm>

#include "reconcile/policy.h"

namespace ep::haproxy::config {

std::string server_line(const ActualServer& s, const std::string& server_options, int id) {
  std::string line = "server " + s.name + " ";
  std::string addr = s.address;
  int port = s.port;
  if (addr.empty()) {
    addr = reconcile::kSlotPlaceholderAddr;
    port = reconcile::kSlotPlaceholderPort;
  }
  const bool v6 = addr.find(':') != std::string::npos;
  if (port > 0) {
    line += v6 ? "[" + addr + "]:" + std::to_string(port) : addr + ":" + std::to_string(port);
  } else {
    line += v6 ? "[" + addr + "]" : addr;
  }
  line += " weight " + std::to_string(s.weight);
  if (s.backup) line += " backup";
  if (id > 0) line += " id " + std::to_string(id);
  if (!server_options.empty()) line += " " + server_options;
  if (s.in_maint()) line += " disabled";
  return line;
}

Result<std::string> render(const Template& tpl, const std::vector<RenderBackend>& backends) {
  std::string out;
  for (const auto& seg : tpl.segments) {
    if (seg.kind == Segment::Kind::kText) {
      out += seg.text;
      continue;
    }
    const RenderBackend* be = nullptr;
    if (seg.kind == Segment::Kind::kNodes) {
      if (backends.size() != 1) {
        return Error::invalid(seg.mark.str() +
                              ": {{ nodes }} needs exactly one managed backend, "
                              "but " +
                              std::to_string(backends.size()) + " are configured");
      }
      be = &backends.front();
    } else {
      auto it = std::find_if(backends.begin(), backends.end(),
                             [&](const RenderBackend& b) { return b.name == seg.text; });
      if (it == backends.end()) {
        return Error::invalid(seg.mark.str() + ": backend '" + seg.text +
                              "' is not a managed backend");
      }
      be = &*it;
    }
    auto id = [be](size_t i) { return be->first_id > 0 ? be->first_id + static_cast<int>(i) : 0; };
    if (seg.own_line) {
      for (size_t i = 0; i < be->servers.size(); ++i) {
        out += seg.indent + server_line(be->servers[i], be->server_options, id(i)) + "\n";
      }
    } else {
      for (size_t i = 0; i < be->servers.size(); ++i) {
        if (i > 0) out += "\n" + seg.indent;
        out += server_line(be->servers[i], be->server_options, id(i));
      }
    }
  }
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

}  // namespace ep::haproxy::config
