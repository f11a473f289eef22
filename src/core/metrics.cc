#include "core/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace ep {
namespace {

std::vector<double> default_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// `{name="value",…}` of a series key (values joined by NUL, in `f.sorted_order`), plus an extra
// label (a histogram bucket's `le`).
template <typename F>
std::string render_labels(const F& f, std::string_view key, std::string_view extra_key = {},
                          std::string_view extra_value = {}) {
  if (f.sorted_order.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  std::size_t pos = 0;
  for (std::size_t i : f.sorted_order) {
    const std::size_t end = std::min(key.find('\0', pos), key.size());
    if (!first) out += ",";
    first = false;
    out += f.label_names[i];
    out += "=\"";
    out += escape_label(key.substr(pos, end - pos));
    out += "\"";
    pos = end + 1;
  }
  if (!extra_key.empty()) {
    if (!first) out += ",";
    out += std::string(extra_key) + "=\"" + std::string(extra_value) + "\"";
  }
  out += "}";
  return out;
}

// Appends one label value to a series key. A NUL inside a value (it separates values in the key)
// becomes U+FFFD, as an invalid byte would in a Prometheus client.
void append_value(std::string& key, std::string_view v, bool first) {
  if (!first) key += '\0';
  if (v.find('\0') == std::string_view::npos) {
    key += v;
    return;
  }
  for (char c : v) {
    if (c == '\0')
      key += "\xEF\xBF\xBD";
    else
      key += c;
  }
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

}  // namespace

Metrics& Metrics::global() {
  static Metrics metrics;
  return metrics;
}

Metrics::Family& Metrics::family(std::string_view name, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    Family f;
    f.type = type;
    if (type == Type::kHistogram) f.buckets = default_buckets();
    it = families_.emplace(std::string(name), std::move(f)).first;
  }
  return it->second;
}

void Metrics::describe(std::string_view name, Type type, std::string_view help,
                       std::vector<double> buckets) {
  std::lock_guard lock(mu_);
  Family& f = family(name, type);
  f.type = type;
  f.help = std::string(help);
  if (!buckets.empty()) f.buckets = std::move(buckets);
}

void Metrics::observe_into(Family& f, const std::string& key, double value) {
  Histogram* found = f.histograms.find(key);
  if (found == nullptr) {
    f.histograms.add(key, Histogram{});
    found = f.histograms.find(key);
  }
  Histogram& h = *found;
  if (h.counts.size() != f.buckets.size()) h.counts.assign(f.buckets.size(), 0);
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    if (value <= f.buckets[i]) {
      h.counts[i] += 1;
      break;
    }
  }
  h.sum += value;
  h.count += 1;
}

Metrics::Family& Metrics::family(const Spec& spec) {
  auto it = families_.find(spec.name);
  if (it != families_.end()) return it->second;
  Family f;
  f.type = spec.type;
  f.help = spec.help;
  f.set_label_names(spec.label_names);
  f.buckets =
      spec.buckets.empty() && spec.type == Type::kHistogram ? default_buckets() : spec.buckets;
  return families_.emplace(spec.name, std::move(f)).first->second;
}

std::shared_ptr<const Metrics::Spec> Metrics::declare(Spec spec) {
  std::lock_guard lock(mu_);
  Family& f = family(spec);
  // A second declaration (another instance of the part) restates the same text: share the first
  // one's Spec when it is the same, else keep the family current with the new one.
  if (f.spec && f.spec->type == spec.type && f.spec->help == spec.help &&
      f.spec->label_names == spec.label_names &&
      (spec.buckets.empty() || f.spec->buckets == spec.buckets)) {
    return f.spec;
  }
  f.type = spec.type;
  f.help = spec.help;
  if (f.label_names != spec.label_names) f.set_label_names(spec.label_names);
  if (!spec.buckets.empty()) f.buckets = spec.buckets;
  f.spec = std::make_shared<const Spec>(std::move(spec));
  return f.spec;
}

void Metrics::Family::set_label_names(std::vector<std::string> names) {
  label_names = std::move(names);
  sorted_order.resize(label_names.size());
  for (std::size_t i = 0; i < sorted_order.size(); ++i) sorted_order[i] = i;
  std::sort(sorted_order.begin(), sorted_order.end(),
            [this](std::size_t a, std::size_t b) { return label_names[a] < label_names[b]; });
  // Keys made under other label names would be read with the wrong ones.
  values.clear();
  histograms.clear();
}

void Metrics::record(const Spec& spec, const LabelValues& values, double v, bool add) {
  std::lock_guard lock(mu_);
  Family& f = family(spec);
  // One family, one set of label names: a second declaration under other names replaced them
  // (declare), and the older handle's values would be read under the wrong names.
  if (f.spec.get() != &spec && f.label_names != spec.label_names) {
    assert(false && "a metric family recorded under two sets of label names");
    return;
  }
  std::string key;
  bool first = true;
  for (std::size_t i : f.sorted_order) {
    append_value(key, i < values.size() ? std::string_view(values[i]) : std::string_view(), first);
    first = false;
  }
  if (spec.type == Type::kHistogram) {
    observe_into(f, key, v);
    return;
  }
  double* found = f.values.find(key);
  if (found == nullptr) {
    f.values.add(std::move(key), v);
  } else if (add) {
    *found += v;
  } else {
    *found = v;
  }
}

double Metrics::value(std::string_view name, const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  // The key of these labels under the family's names (a label it does not have: no series).
  const Family& f = it->second;
  if (labels.size() != f.label_names.size()) return 0;
  std::string key;
  bool first = true;
  for (std::size_t i : f.sorted_order) {
    auto l = std::find_if(labels.begin(), labels.end(),
                          [&](const auto& p) { return p.first == f.label_names[i]; });
    if (l == labels.end()) return 0;
    append_value(key, l->second, first);
    first = false;
  }
  if (it->second.type == Type::kHistogram) {
    const Histogram* h = it->second.histograms.find(key);
    return h == nullptr ? 0 : h->count;
  }
  const double* v = it->second.values.find(key);
  return v == nullptr ? 0 : *v;
}

double Metrics::total(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  double sum = 0;
  for (const auto& [labels, v] : it->second.values.in_order()) sum += v;
  for (const auto& [labels, h] : it->second.histograms.in_order()) sum += h.count;
  return sum;
}

std::string Metrics::render_prometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    if (f.type != Type::kHistogram) {
      for (const auto& [key, v] : f.values.in_order()) {
        out += name + render_labels(f, key) + " " + number(v) + "\n";
      }
      continue;
    }
    for (const auto& [key, h] : f.histograms.in_order()) {
      double cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += i < h.counts.size() ? h.counts[i] : 0;
        out += name + "_bucket" + render_labels(f, key, "le", number(f.buckets[i])) + " " +
               number(cumulative) + "\n";
      }
      out += name + "_bucket" + render_labels(f, key, "le", "+Inf") + " " + number(h.count) + "\n";
      out += name + "_sum" + render_labels(f, key) + " " + fmt::format("{}", h.sum) + "\n";
      out += name + "_count" + render_labels(f, key) + " " + number(h.count) + "\n";
    }
  }
  return out;
}

std::vector<Metrics::FamilyInfo> Metrics::families() const {
  std::lock_guard lock(mu_);
  std::vector<FamilyInfo> out;
  for (const auto& [name, f] : families_) out.push_back({name, f.type, f.help, f.label_names});
  return out;
}

void Metrics::reset() {
  std::lock_guard lock(mu_);
  families_.clear();
}

MetricHandle::MetricHandle(Metrics& registry, Metrics::Type type, std::string name,
                           std::string help, std::vector<std::string> label_names,
                           std::vector<double> buckets)
    : registry_(&registry),
      spec_(registry.declare(Metrics::Spec{std::move(name), type, std::move(help),
                                           std::move(label_names), std::move(buckets)})) {}

void MetricHandle::record(const LabelValues& values, double v, bool add) const {
  assert(values.size() == spec_->label_names.size() && "label values must match the declaration");
  registry_->record(*spec_, values, v, add);
}

double MetricHandle::value(const LabelValues& values) const {
  Labels labels;
  for (size_t i = 0; i < values.size() && i < spec_->label_names.size(); ++i) {
    labels.emplace_back(spec_->label_names[i], values[i]);
  }
  return registry_->value(spec_->name, labels);
}

double MetricHandle::total() const { return registry_->total(spec_->name); }

}  // namespace ep
