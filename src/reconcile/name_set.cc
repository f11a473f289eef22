#include "reconcile/name_set.h"

#include <algorithm>

namespace ep::reconcile {

bool NameSet::count(const std::string& name) const {
  return std::binary_search(names_.begin(), names_.end(), name);
}

void NameSet::insert(const std::string& name) {
  auto it = std::lower_bound(names_.begin(), names_.end(), name);
  if (it == names_.end() || *it != name) names_.insert(it, name);
}

void NameSet::erase(const std::string& name) {
  auto it = std::lower_bound(names_.begin(), names_.end(), name);
  if (it != names_.end() && *it == name) names_.erase(it);
}

void NameSet::apply(std::vector<std::pair<std::string, bool>> changes) {
  if (changes.empty()) return;
  // A stable sort by name keeps each name's changes in order: the last of a run of equal names
  // is the one that counts.
  std::stable_sort(changes.begin(), changes.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> merged;
  merged.reserve(names_.size() + changes.size());
  auto it = names_.begin();
  for (std::size_t i = 0; i < changes.size(); ++i) {
    if (i + 1 < changes.size() && changes[i + 1].first == changes[i].first) continue;
    auto& [name, insert] = changes[i];
    while (it != names_.end() && *it < name) merged.push_back(std::move(*it++));
    if (it != names_.end() && *it == name) ++it;  // replaced by this change's outcome
    if (insert) merged.push_back(std::move(name));
  }
  while (it != names_.end()) merged.push_back(std::move(*it++));
  merged.shrink_to_fit();
  names_ = std::move(merged);
}

void NameSet::assign(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  names.shrink_to_fit();
  names_ = std::move(names);
}

}  // namespace ep::reconcile
