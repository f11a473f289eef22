// docs/operations.md's metrics table is the contract of /metrics: every metric a part declares is
// documented there with its type and labels, and every documented metric is declared.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "core/metrics.h"
#include "discovery/aws/lifecycle_stats.h"
#include "discovery/consul/stats.h"
#include "discovery/stats.h"
#include "haproxy/reload/stats.h"
#include "ops/stats.h"
#include "reconcile/stats.h"

namespace ep {
namespace {

struct Documented {
  std::string type;
  std::vector<std::string> labels;
  bool open_labels = false;  // `{backend,...}`: more labels may follow
};

std::map<std::string, Documented> documented() {
  std::ifstream in(std::string(EP_SOURCE_DIR) + "/docs/operations.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, Documented> out;
  // | `elasticproxy_name{a,b}` | type | meaning |
  const std::regex row(R"(^\| `(elasticproxy_[a-z_]+)(\{([a-z_,.]*)\})?` \| ([a-z]+) \|)");
  std::string line;
  while (std::getline(ss, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    Documented d;
    d.type = m[4];
    std::stringstream labels(m[3]);
    for (std::string l; std::getline(labels, l, ',');) {
      if (l == "...") {
        d.open_labels = true;
      } else {
        d.labels.push_back(l);
      }
    }
    EXPECT_TRUE(out.emplace(m[1], d).second) << "documented twice: " << m[1];
  }
  return out;
}

std::string type_name(Metrics::Type t) {
  return t == Metrics::Type::kCounter ? "counter"
         : t == Metrics::Type::kGauge ? "gauge"
                                      : "histogram";
}

TEST(MetricsDocumentedTest, EveryDeclaredMetricIsDocumentedAndEveryDocumentedOneDeclared) {
  Metrics registry;
  reconcile::ReconcileStats reconcile(registry);
  discovery::GuardStats guard(registry);
  discovery::consul::ConsulStats consul(registry);
  haproxy::reload::ReloadStats reload(registry);
  ops::OpsStats ops(registry);
  aws::LifecycleMetrics lifecycle(registry);
  discovery::consul::HubStats hub(registry);

  const auto docs = documented();
  ASSERT_GT(docs.size(), 20u) << "the metrics table of docs/operations.md was not found";
  std::set<std::string> declared;
  for (const auto& f : registry.families()) {
    declared.insert(f.name);
    auto it = docs.find(f.name);
    if (it == docs.end()) {
      ADD_FAILURE() << f.name << " is exported but not in docs/operations.md";
      continue;
    }
    EXPECT_EQ(it->second.type, type_name(f.type)) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    if (it->second.open_labels) {
      ASSERT_LE(it->second.labels.size(), f.label_names.size()) << f.name;
      EXPECT_TRUE(
          std::equal(it->second.labels.begin(), it->second.labels.end(), f.label_names.begin()))
          << f.name;
    } else {
      EXPECT_EQ(it->second.labels, f.label_names) << f.name;
    }
  }
  for (const auto& [name, d] : docs) {
    EXPECT_TRUE(declared.count(name)) << name << " is documented but no part declares it";
  }
}

}  // namespace
}  // namespace ep
