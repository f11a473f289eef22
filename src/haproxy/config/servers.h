#pragma once
// Which server lines a rendered config holds, when they do not simply mirror the runtime
// (config update mode, slot growth). Pure: no I/O.

#include <string>
#include <vector>

#include "core/model.h"
#include "reconcile/policy.h"

namespace ep::haproxy::config {

// Slot growth rule: room for the desired servers plus 50% headroom, and at least 10 more slots
// than now (so a steady trickle of growth does not reload each time). Capped at 100000.
int grown_slot_count(int current_slots, size_t desired);

// Slot mode: `current` (the managed slots, any order) plus free slots numbered after the highest
// one, up to `total` slots. Free slots are written as `<prefix><n> 127.0.0.1:1 ... disabled`.
std::vector<ActualServer> with_free_slots(std::vector<ActualServer> current,
                                          const reconcile::BackendPolicy& policy, int total);

// Config update mode: the servers the config must hold so that HAProxy runs exactly `desired`.
//   dynamic: one line per desired server under its own name; servers already in `current` keep
//     their position, new ones follow in desired order.
//   slots: slots keep the address they hold when it is still desired (names never move); new
//     servers take the lowest free slots; the rest are free (placeholder, disabled). The slot
//     count is max(policy.slots, slots in `current`), grown by grown_slot_count() when too small
//     (`grew` is then set).
std::vector<ActualServer> config_mode_servers(const std::vector<ServerSpec>& desired,
                                              const std::vector<ActualServer>& current,
                                              const reconcile::BackendPolicy& policy,
                                              reconcile::BackendMode mode, bool* grew = nullptr);

}  // namespace ep::haproxy::config
