#pragma once
// The `static` source: a fixed list of servers from the config.
//   static: {servers: ["10.0.0.5:8080", "[2001:db8::7]:8080",
//                      {address: 10.0.0.6, port: 8080, weight: 10, backup: true}]}
// It publishes its set once at start (a config reload builds a new source). Addresses are checked
// by the guard like any other source's.

#include <optional>

#include "discovery/source.h"

namespace ep::discovery::static_source {

struct Options {
  std::vector<Endpoint> servers;
};

// Reads `servers`; structural errors (and port/weight out of range in the map form) go to
// `diag` with positions, and nullopt is returned.
std::optional<Options> options_from_node(const ConfigNode& node, Diagnostics& diag);

class StaticSource final : public Source {
 public:
  explicit StaticSource(Options options) : options_(std::move(options)) {}
  std::string describe() const override;
  // Publishes the set once, synchronously, before returning.
  Status start(Sink& sink) override;
  void stop() override {}
  Snapshot fetch_once(std::chrono::milliseconds timeout) override;

 private:
  Options options_;
};

// {"static", factory}
SourceKind source_kind();

}  // namespace ep::discovery::static_source
