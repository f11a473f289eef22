#pragma once
// A small thread-safe metrics registry (counters, gauges, histograms). Parts record into it;
// ops renders it in the Prometheus text format. No I/O here.

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ep {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  static Metrics& global();

  // Declares a metric family (HELP/TYPE lines). Recording into an undeclared name declares it
  // with an empty help text.
  void describe(std::string_view name, Type type, std::string_view help,
                std::vector<double> buckets = {});

  void inc(std::string_view name, const Labels& labels = {}, double by = 1);
  void set(std::string_view name, const Labels& labels, double value);
  void observe(std::string_view name, const Labels& labels, double value);

  // Current value of a counter or gauge (0 if never recorded); histogram: observation count.
  double value(std::string_view name, const Labels& labels = {}) const;
  // Sum of a counter/gauge over all label sets.
  double total(std::string_view name) const;

  std::string render_prometheus() const;
  void reset();  // tests only

 private:
  struct Histogram {
    std::vector<double> counts;  // per bucket (non-cumulative)
    double sum = 0;
    double count = 0;
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> buckets;
    std::map<Labels, double> values;
    std::map<Labels, Histogram> histograms;
  };
  Family& family(std::string_view name, Type type);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace ep
