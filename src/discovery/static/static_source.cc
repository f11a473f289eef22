#include "discovery/static/static_source.h"

#include "discovery/guard.h"

namespace ep::discovery::static_source {

std::optional<Options> options_from_node(const ConfigNode& node, Diagnostics& diag) {
  MapReader r(node, diag, "static");
  if (!r.valid()) return std::nullopt;
  Options o;
  const ConfigNode* servers = r.get("servers");
  bool ok = true;
  if (servers == nullptr || servers->kind == ConfigNode::Kind::kNull) {
    diag.error(node.mark, "static.servers is required");
    ok = false;
  } else if (servers->kind != ConfigNode::Kind::kSequence) {
    diag.error(servers->mark,
               std::string("static.servers must be a list, got ") + servers->kind_name());
    ok = false;
  } else {
    for (size_t i = 0; i < servers->items.size(); ++i) {
      const ConfigNode& item = servers->items[i];
      const std::string what = "static.servers[" + std::to_string(i) + "]";
      if (item.kind == ConfigNode::Kind::kScalar) {
        o.servers.push_back(endpoint_from_text(item.scalar));
        continue;
      }
      if (item.kind != ConfigNode::Kind::kMap) {
        diag.error(item.mark, what +
                                  " must be \"ip:port\" or a map {address, port, weight, "
                                  "backup}, got " +
                                  item.kind_name());
        ok = false;
        continue;
      }
      MapReader m(item, diag, what);
      Endpoint e;
      long v = 0;
      m.string("address", e.address, true);
      if (m.has("port") && m.integer("port", v, 1, 65535)) e.port = static_cast<std::uint32_t>(v);
      if (m.has("weight") && m.integer("weight", v, 0, 256)) e.weight = v;
      m.boolean("backup", e.backup);
      if (!m.finish()) {
        ok = false;
        continue;
      }
      o.servers.push_back(std::move(e));
    }
  }
  if (!r.finish() || !ok) return std::nullopt;
  return o;
}

std::string StaticSource::describe() const {
  return "static (" + std::to_string(options_.servers.size()) + " servers)";
}

Status StaticSource::start(Sink& sink) {
  sink.publish(options_.servers);
  return {};
}

Snapshot StaticSource::fetch_once(std::chrono::milliseconds) { return options_.servers; }

SourceKind source_kind() {
  return SourceKind{"static",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext&) -> std::unique_ptr<Source> {
                      auto options = options_from_node(node, diag);
                      if (!options) return nullptr;
                      return std::make_unique<StaticSource>(std::move(*options));
                    }};
}

}  // namespace ep::discovery::static_source
