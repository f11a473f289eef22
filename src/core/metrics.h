#pragma once
// A small thread-safe metrics registry (counters, gauges, histograms) and the typed handles parts
// record through. Each part declares its metrics once, in a stats struct of handles (name, help
// text and label names together, e.g. reconcile/stats.h), built on the registry it is handed;
// call sites say `stats_.reloads_total.inc({"ok"})` and never spell a metric name. ops renders
// the registry in the Prometheus text format. No I/O here.

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ep {

using Labels = std::vector<std::pair<std::string, std::string>>;
// Label values in the order of the metric's declared label names.
using LabelValues = std::vector<std::string>;

class Metrics;

class Metrics {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  static Metrics& global();

  // Declares a metric family (HELP/TYPE lines). Recording into an undeclared name declares it
  // with an empty help text.
  void describe(std::string_view name, Type type, std::string_view help,
                std::vector<double> buckets = {});

  // Current value of a counter or gauge (0 if never recorded); histogram: observation count.
  double value(std::string_view name, const Labels& labels = {}) const;
  // Sum of a counter/gauge over all label sets.
  double total(std::string_view name) const;

  std::string render_prometheus() const;
  // The declared or recorded families, sorted by name (label names: as declared by a typed
  // handle; empty for a family only recorded by name).
  struct FamilyInfo {
    std::string name;
    Type type;
    std::string help;
    std::vector<std::string> label_names;
  };
  std::vector<FamilyInfo> families() const;
  // The one instance of a part's stats struct (a struct of typed handles built from a registry)
  // for this registry, made on first use: a part instantiated 2,000 times (a guard per backend,
  // a Consul source per service) shares one set of handles instead of 2,000 (~0.2 KiB each).
  template <typename Stats>
  const Stats& shared() {
    std::lock_guard lock(shared_mu_);
    std::shared_ptr<void>& slot = shared_[std::type_index(typeid(Stats))];
    if (!slot) slot = std::make_shared<Stats>(*this);
    return *static_cast<const Stats*>(slot.get());
  }
  // Clears every value and declaration (tests only). Typed handles stay valid: their family is
  // declared again, with its help text, on their next record.
  void reset();

 private:
  friend class MetricHandle;
  // What a typed handle declared; shared by the handle and its copies.
  struct Spec {
    std::string name;
    Type type;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> buckets;
  };
  // Declares (or restates) the family and returns the one shared Spec of that name: a part
  // instantiated 2,000 times (a guard per backend) holds one declaration, not 2,000 copies of
  // its name and help text.
  std::shared_ptr<const Spec> declare(Spec spec);
  void record(const Spec& spec, const LabelValues& values, double v, bool add);

  struct Histogram {
    std::vector<double> counts;  // per bucket (non-cumulative)
    double sum = 0;
    double count = 0;
  };
  // A family's series by key, in one vector (no tree node per series: at 2,000 backends ~31,000
  // series, and a map's nodes cost ~1 MiB more). Sorted but for a short unsorted tail of recent
  // additions, merged in once it grows past kTail or before the series are walked in order.
  template <class T>
  class SeriesTable {
   public:
    using Item = std::pair<std::string, T>;
    T* find(std::string_view key) {
      auto end = items_.begin() + static_cast<std::ptrdiff_t>(sorted_);
      auto it = std::lower_bound(items_.begin(), end, key,
                                 [](const Item& a, std::string_view k) { return a.first < k; });
      if (it != end && it->first == key) return &it->second;
      for (auto t = end; t != items_.end(); ++t) {
        if (t->first == key) return &t->second;
      }
      return nullptr;
    }
    const T* find(std::string_view key) const { return const_cast<SeriesTable*>(this)->find(key); }
    // `key` must not be there yet (find first).
    void add(std::string key, T value) {
      items_.emplace_back(std::move(key), std::move(value));
      if (items_.size() - sorted_ > kTail) merge();
    }
    // Every series, in key order.
    const std::vector<Item>& in_order() const {
      merge();
      return items_;
    }
    void clear() {
      items_.clear();
      sorted_ = 0;
    }

   private:
    static constexpr std::size_t kTail = 32;
    void merge() const {
      if (sorted_ == items_.size()) return;
      auto mid = items_.begin() + static_cast<std::ptrdiff_t>(sorted_);
      auto less = [](const Item& a, const Item& b) { return a.first < b.first; };
      std::sort(mid, items_.end(), less);
      std::inplace_merge(items_.begin(), mid, items_.end(), less);
      sorted_ = items_.size();
    }
    mutable std::vector<Item> items_;
    mutable std::size_t sorted_ = 0;
  };
  // A series is keyed by its label values alone, in the order of the sorted label names, joined
  // by NUL: one short string per series (most fit the string's inline buffer), not a vector of
  // name/value pairs. At 2,000 backends that is ~29,000 series; the pairs cost ~3 MiB more.
  // Keys compare as the tuples of values do, so series render in the same order as before.
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> buckets;
    std::vector<std::string> label_names;   // as declared
    std::vector<std::size_t> sorted_order;  // declared positions, by label name
    SeriesTable<double> values;
    SeriesTable<Histogram> histograms;
    std::shared_ptr<const Spec> spec;  // the typed handles' declaration, shared by all of them
    void set_label_names(std::vector<std::string> names);
  };
  Family& family(std::string_view name, Type type);
  Family& family(const Spec& spec);
  static void observe_into(Family& f, const std::string& key, double value);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  // shared(): its own lock, as a stats struct's handles declare themselves (mu_) when made.
  std::mutex shared_mu_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> shared_;
};

// What the typed handles share: the registry and the declaration. Copyable; valid as long as the
// registry lives. Recording is thread-safe (the registry's lock).
class MetricHandle {
 public:
  const std::string& name() const { return spec_->name; }
  const std::string& help() const { return spec_->help; }
  const std::vector<std::string>& label_names() const { return spec_->label_names; }
  // Value for these label values (counter/gauge; histogram: observation count), 0 if unrecorded.
  double value(const LabelValues& values = {}) const;
  // Sum over every label set (histogram: total observation count).
  double total() const;

 protected:
  // Declares the family on `registry` (HELP/TYPE even before the first record).
  MetricHandle(Metrics& registry, Metrics::Type type, std::string name, std::string help,
               std::vector<std::string> label_names, std::vector<double> buckets = {});
  // `values` must match the declared label names one for one (asserted).
  void record(const LabelValues& values, double v, bool add) const;

 private:
  Metrics* registry_;
  std::shared_ptr<const Metrics::Spec> spec_;
};

class Counter : public MetricHandle {
 public:
  Counter(Metrics& registry, std::string name, std::string help,
          std::vector<std::string> label_names = {})
      : MetricHandle(registry, Metrics::Type::kCounter, std::move(name), std::move(help),
                     std::move(label_names)) {}
  void inc(const LabelValues& values = {}, double by = 1) const { record(values, by, true); }
};

class Gauge : public MetricHandle {
 public:
  Gauge(Metrics& registry, std::string name, std::string help,
        std::vector<std::string> label_names = {})
      : MetricHandle(registry, Metrics::Type::kGauge, std::move(name), std::move(help),
                     std::move(label_names)) {}
  void set(const LabelValues& values, double value) const { record(values, value, false); }
  void set(double value) const { record({}, value, false); }
};

class Histogram : public MetricHandle {
 public:
  // Empty `buckets`: the registry's default (1 ms .. 10 s).
  Histogram(Metrics& registry, std::string name, std::string help,
            std::vector<std::string> label_names = {}, std::vector<double> buckets = {})
      : MetricHandle(registry, Metrics::Type::kHistogram, std::move(name), std::move(help),
                     std::move(label_names), std::move(buckets)) {}
  void observe(const LabelValues& values, double value) const { record(values, value, false); }
  void observe(double value) const { record({}, value, false); }
};

}  // namespace ep
