#include "haproxy/config/servers.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "reconcile/diff.h"

namespace ep::haproxy::config {

using reconcile::slot_number;

namespace {

ActualServer free_slot(const reconcile::BackendPolicy& policy, long n) {
  ActualServer s;
  s.name = policy.name_prefix + std::to_string(n);
  s.weight = policy.weight.value_or(1);
  s.admin_state = admin::kForcedMaint | admin::kConfigMaint;
  return s;
}

ActualServer live(const std::string& name, const ServerSpec& spec) {
  ActualServer s;
  s.name = name;
  s.address = spec.address;
  s.port = spec.port;
  s.weight = spec.weight;
  s.backup = spec.backup;
  s.op_state = 2;
  return s;
}

std::string key(const std::string& address, int port) {
  return address + "|" + std::to_string(port);
}

}  // namespace

int grown_slot_count(int current_slots, size_t desired) {
  const long want = static_cast<long>(desired) + (static_cast<long>(desired) + 1) / 2;
  return static_cast<int>(std::min<long>(100000, std::max<long>(want, current_slots + 10L)));
}

std::vector<ActualServer> with_free_slots(std::vector<ActualServer> current,
                                          const reconcile::BackendPolicy& policy, int total) {
  long highest = 0;
  for (const auto& s : current)
    highest = std::max(highest, slot_number(s.name, policy.name_prefix));
  for (long n = highest + 1; static_cast<long>(current.size()) < total; ++n) {
    current.push_back(free_slot(policy, n));
  }
  return current;
}

std::vector<ActualServer> config_mode_servers(const std::vector<ServerSpec>& desired,
                                              const std::vector<ActualServer>& current,
                                              const reconcile::BackendPolicy& policy,
                                              reconcile::BackendMode mode, bool* grew) {
  if (grew) *grew = false;
  std::vector<ActualServer> out;
  if (mode != reconcile::BackendMode::kSlots) {
    std::map<std::string, const ServerSpec*> wanted;
    for (const auto& d : desired) wanted.emplace(d.name, &d);
    std::set<std::string> done;
    for (const auto& c : current) {
      auto it = wanted.find(c.name);
      if (it == wanted.end() || !done.insert(c.name).second) continue;
      out.push_back(live(c.name, *it->second));
    }
    for (const auto& d : desired) {
      if (done.insert(d.name).second) out.push_back(live(d.name, d));
    }
    return out;
  }
  // Slots, by number.
  std::map<long, const ActualServer*> slots;
  for (const auto& c : current) {
    const long n = slot_number(c.name, policy.name_prefix);
    if (n > 0) slots.emplace(n, &c);
  }
  long count = std::max<long>(policy.slots, slots.empty() ? 0 : slots.rbegin()->first);
  count = std::max<long>(count, static_cast<long>(slots.size()));
  std::map<std::string, const ServerSpec*> wanted;
  for (const auto& d : desired) wanted.emplace(key(d.address, d.port), &d);
  if (static_cast<long>(wanted.size()) > count) {
    count = grown_slot_count(static_cast<int>(count), wanted.size());
    if (grew) *grew = true;
  }
  std::map<long, const ServerSpec*> assigned;
  std::set<std::string> placed;
  for (const auto& [n, s] : slots) {
    if (s->address.empty() || (s->address == reconcile::kSlotPlaceholderAddr &&
                               s->port == reconcile::kSlotPlaceholderPort)) {
      continue;
    }
    const std::string k = key(s->address, s->port);
    auto it = wanted.find(k);
    if (it != wanted.end() && placed.insert(k).second) assigned[n] = it->second;
  }
  long next = 1;
  for (const auto& d : desired) {
    const std::string k = key(d.address, d.port);
    if (!placed.insert(k).second) continue;
    while (assigned.count(next)) ++next;
    assigned[next] = &d;
  }
  for (long n = 1; n <= count; ++n) {
    auto it = assigned.find(n);
    out.push_back(it == assigned.end() ? free_slot(policy, n)
                                       : live(policy.name_prefix + std::to_string(n), *it->second));
  }
  return out;
}

}  // namespace ep::haproxy::config
