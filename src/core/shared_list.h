#pragma once
// SharedList<T>: an immutable list shared by pointer. Copying one copies a pointer, never the
// elements, so a status snapshot of 2,000 backends × 10 servers costs O(backends) and the same
// server list is held once however many snapshots refer to it. Reads look like a const
// std::vector (and convert to one by reference); writes replace the whole list.

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

namespace ep {

template <typename T>
class SharedList {
 public:
  using value_type = T;
  using const_iterator = typename std::vector<T>::const_iterator;

  SharedList() = default;
  SharedList(std::initializer_list<T> items)
      : items_(std::make_shared<const std::vector<T>>(items)) {}
  explicit SharedList(std::vector<T> items)
      : items_(std::make_shared<const std::vector<T>>(std::move(items))) {}
  // Shares a list owned by something else (e.g. a member of an immutable snapshot, through an
  // aliasing shared_ptr).
  explicit SharedList(std::shared_ptr<const std::vector<T>> items) : items_(std::move(items)) {}

  const std::vector<T>& get() const { return items_ ? *items_ : none(); }
  operator const std::vector<T>&() const { return get(); }  // NOLINT: reads as a vector

  const_iterator begin() const { return get().begin(); }
  const_iterator end() const { return get().end(); }
  std::size_t size() const { return get().size(); }
  bool empty() const { return get().empty(); }
  const T& operator[](std::size_t i) const { return get()[i]; }
  const T& at(std::size_t i) const { return get().at(i); }

  friend bool operator==(const SharedList& a, const std::vector<T>& b) { return a.get() == b; }
  friend bool operator==(const SharedList& a, const SharedList& b) {
    return a.items_ == b.items_ || a.get() == b.get();
  }

 private:
  static const std::vector<T>& none() {
    static const std::vector<T> kNone;
    return kNone;
  }
  std::shared_ptr<const std::vector<T>> items_;
};

}  // namespace ep
