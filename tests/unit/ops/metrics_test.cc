// The typed metric handles (core/metrics.h): declaration shows HELP/TYPE before any record,
// label values map onto the declared names, and a registry reset does not orphan a handle.

#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

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

// Series are kept in one sorted vector with a short unsorted tail (core/metrics.h SeriesTable):
// many series added in a shuffled order, updated and read in between, still render in key order
// with the values last set, each once.
TEST(TypedMetricsTest, ManySeriesAddedInAnyOrderRenderSortedOnce) {
  Metrics registry;
  Gauge g(registry, "ep_test_many", "Many.", {"backend"});
  Histogram h(registry, "ep_test_many_seconds", "Time.", {"backend"}, {1});
  std::vector<int> order;
  for (int i = 0; i < 500; ++i) order.push_back((i * 7919) % 500);  // a permutation of 0..499
  auto name = [](int i) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "b%03d", i);
    return std::string(buf);
  };
  for (int i : order) {
    g.set({name(i)}, i);
    h.observe({name(i)}, 0.5);
    if (i % 3 == 0) g.set({name(i)}, i + 1000);  // an update right after the add
    EXPECT_EQ(g.value({name(i)}), i % 3 == 0 ? i + 1000 : i);
  }
  for (int i : order) h.observe({name(i)}, 2);
  const std::string text = registry.render_prometheus();
  size_t pos = 0;
  for (int i = 0; i < 500; ++i) {
    const std::string line = "ep_test_many{backend=\"" + name(i) + "\"} " +
                             std::to_string(i % 3 == 0 ? i + 1000 : i) + "\n";
    const size_t at = text.find(line, pos);
    ASSERT_NE(at, std::string::npos) << line;
    pos = at + line.size();
    EXPECT_EQ(h.value({name(i)}), 2);
  }
  EXPECT_EQ(text.find("ep_test_many{backend=\"b000\"}", pos), std::string::npos) << "twice";
  EXPECT_EQ(h.total(), 1000);
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

struct PartStats {
  explicit PartStats(Metrics& registry) : done(registry, "ep_test_part_done_total", "Done.") {}
  Counter done;
};

TEST(TypedMetricsTest, SharedStatsAreOnePerRegistry) {
  Metrics one;
  Metrics two;
  const PartStats& a = one.shared<PartStats>();
  EXPECT_EQ(&a, &one.shared<PartStats>());
  const PartStats& b = two.shared<PartStats>();
  EXPECT_NE(&a, &b);
  a.done.inc();
  a.done.inc();
  b.done.inc();
  EXPECT_EQ(one.value("ep_test_part_done_total"), 2);
  EXPECT_EQ(two.value("ep_test_part_done_total"), 1);
  one.reset();  // the shared handles stay valid, and declare their family again
  a.done.inc();
  EXPECT_EQ(one.value("ep_test_part_done_total"), 1);
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
