#pragma once
// A set of server names kept as one sorted vector of strings: the reconciler's per-backend record
// of the managed servers it last saw (or put) out of maintenance. A std::set node per name cost
// ~48 bytes more each (0.5 MiB at 11,000 servers). A pass's changes go in with apply(): one sort
// and one merge, where an insert or erase at a time would move the names after it (O(n²) string
// moves for a pass that adds 10,000 servers).
//
//   NameSet active;
//   active.apply({{"ep-1", true}, {"ep-2", true}, {"ep-1", false}});  // ep-2 only

#include <string>
#include <utility>
#include <vector>

namespace ep::reconcile {

class NameSet {
 public:
  bool count(const std::string& name) const;
  // One change: moves the names after it (use apply() for many).
  void insert(const std::string& name);
  void erase(const std::string& name);
  // Changes in order (true: insert, false: erase); a name's last change wins.
  void apply(std::vector<std::pair<std::string, bool>> changes);
  // Takes any order; keeps each name once.
  void assign(std::vector<std::string> names);
  void clear() { std::vector<std::string>().swap(names_); }
  std::size_t size() const { return names_.size(); }

 private:
  std::vector<std::string> names_;  // sorted, unique
};

}  // namespace ep::reconcile
