// The typed metric handles (core/metrics.h): declaration shows HELP/TYPE before any record,
// label values map onto the declared names, and a registry reset does not orphan a handle.

#include "core/metrics.h"

#include <gtest/gtest.h>

namespace ep {
namespace {

TEST(TypedMetricsTest, DeclarationExportsHelpAndTypeBeforeTheFirstRecord) {
  Metrics registry;
  Counter c(registry, "ep_test_things_total", "Things done.", {"backend"});
  EXPECT_EQ(registry.render_prometheus(),
            "# HELP ep_test_things_total Things done.\n# TYPE ep_test_things_total counter\n");
  ASSERT_EQ(registry.families().size(), 1u);
  EXPECT_EQ(registry.families()[0].label_names, std::vector<std::string>{"backend"});
}

TEST(TypedMetricsTest, LabelValuesFollowTheDeclaredNames) {
  Metrics registry;
  Counter c(registry, "ep_test_changes_total", "Changes.", {"kind", "backend"});
  c.inc({"add", "web"});
  c.inc({"add", "web"}, 2);
  c.inc({"drain", "api"});
  EXPECT_EQ(c.value({"add", "web"}), 3);
  EXPECT_EQ(registry.value("ep_test_changes_total", {{"backend", "web"}, {"kind", "add"}}), 3);
  EXPECT_EQ(c.total(), 4);
  // Rendered with the labels sorted by name, as the name-based API did.
  EXPECT_NE(registry.render_prometheus().find(
                "ep_test_changes_total{backend=\"api\",kind=\"drain\"} 1\n"),
            std::string::npos);
}

TEST(TypedMetricsTest, SeriesRenderInTheOrderOfTheirSortedLabelValuesEscaped) {
  Metrics registry;
  Gauge g(registry, "ep_test_servers", "Servers.", {"kind", "backend"});
  g.set({"b", "web"}, 1);
  g.set({"a", "web-x"}, 2);
  g.set({"z", "web"}, 3);
  g.set({"q", "we\"b\n"}, 4);
  g.set({std::string("n\0ul", 4), "api"}, 5);
  const std::string text = registry.render_prometheus();
  // Ordered by backend, then kind (the labels sorted by name), as the tuples of values compare:
  // "web" before "web-x", a quote and newline escaped, a NUL inside a value shown as U+FFFD.
  const std::string want =
      "ep_test_servers{backend=\"api\",kind=\"n\xEF\xBF\xBDul\"} 5\n"
      "ep_test_servers{backend=\"we\\\"b\\n\",kind=\"q\"} 4\n"
      "ep_test_servers{backend=\"web\",kind=\"b\"} 1\n"
      "ep_test_servers{backend=\"web\",kind=\"z\"} 3\n"
      "ep_test_servers{backend=\"web-x\",kind=\"a\"} 2\n";
  EXPECT_NE(text.find(want), std::string::npos) << text;
  EXPECT_EQ(registry.value("ep_test_servers", {{"kind", "z"}, {"backend", "web"}}), 3);
  EXPECT_EQ(registry.value("ep_test_servers", {{"backend", "web"}}), 0);  // not its label set
  EXPECT_EQ(g.total(), 15);
}

TEST(TypedMetricsTest, GaugeSetsAndHistogramObservesWithItsBuckets) {
  Metrics registry;
  Gauge g(registry, "ep_test_up", "Up.");
  Histogram h(registry, "ep_test_seconds", "Time.", {}, {0.5, 1});
  g.set(1);
  g.set(0);
  h.observe(0.7);
  EXPECT_EQ(g.value(), 0);
  EXPECT_EQ(h.value(), 1);
  const std::string text = registry.render_prometheus();
  EXPECT_NE(text.find("ep_test_up 0\n"), std::string::npos);
  EXPECT_NE(text.find("ep_test_seconds_bucket{le=\"0.5\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("ep_test_seconds_bucket{le=\"1\"} 1\n"), std::string::npos);
}

TEST(TypedMetricsTest, AHandleRedeclaresItsFamilyAfterAReset) {
  Metrics registry;
  Histogram h(registry, "ep_test_reload_seconds", "Reload time.", {}, {2});
  registry.reset();
  EXPECT_EQ(registry.render_prometheus(), "");
  h.observe(1);
  const std::string text = registry.render_prometheus();
  EXPECT_NE(text.find("# HELP ep_test_reload_seconds Reload time.\n"), std::string::npos);
  EXPECT_NE(text.find("ep_test_reload_seconds_bucket{le=\"2\"} 1\n"), std::string::npos);
}

TEST(TypedMetricsTest, TwoInstancesOfAPartShareOneFamily) {
  Metrics registry;
  Counter a(registry, "ep_test_passes_total", "Passes.");
  Counter b(registry, "ep_test_passes_total", "Passes.");
  a.inc();
  b.inc();
  EXPECT_EQ(registry.value("ep_test_passes_total"), 2);
  EXPECT_EQ(registry.families().size(), 1u);
}

}  // namespace
}  // namespace ep
