// NameSet: the reconciler's sorted-vector set of server names, and apply()'s batch merge.

#include "reconcile/name_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ep::reconcile {
namespace {

TEST(NameSet, SingleInsertsAndErasesKeepEachNameOnce) {
  NameSet s;
  s.insert("b");
  s.insert("a");
  s.insert("b");
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.count("a"));
  s.erase("a");
  s.erase("zz");  // absent: nothing happens
  EXPECT_FALSE(s.count("a"));
  EXPECT_TRUE(s.count("b"));
  EXPECT_EQ(s.size(), 1u);
}

TEST(NameSet, ApplyMergesABatchAndTheLastChangeOfANameWins) {
  NameSet s;
  s.assign({"m", "c", "x", "c"});
  EXPECT_EQ(s.size(), 3u);
  s.apply({{"a", true},    // new, before every name
           {"m", false},   // present, erased
           {"z", true},    // new, after every name
           {"c", true},    // already present
           {"q", true},    // inserted, then erased: absent
           {"q", false},
           {"x", false},   // erased, then inserted again: present
           {"x", true},
           {"nope", false}});  // absent, erased: nothing
  for (const char* in : {"a", "c", "x", "z"}) EXPECT_TRUE(s.count(in)) << in;
  for (const char* out : {"m", "q", "nope"}) EXPECT_FALSE(s.count(out)) << out;
  EXPECT_EQ(s.size(), 4u);
  s.apply({});
  EXPECT_EQ(s.size(), 4u);
}

TEST(NameSet, ApplyOfManyAgreesWithOneAtATime) {
  // The reconciler's shape: thousands of additions, then removals of every other one.
  NameSet batch;
  NameSet single;
  std::vector<std::pair<std::string, bool>> adds;
  for (int i = 0; i < 2000; ++i) {
    const std::string name = "ep-" + std::to_string((i * 7919) % 2000 + 1);
    adds.emplace_back(name, true);
    single.insert(name);
  }
  batch.apply(adds);
  std::vector<std::pair<std::string, bool>> removes;
  for (int i = 1; i <= 2000; i += 2) {
    removes.emplace_back("ep-" + std::to_string(i), false);
    single.erase("ep-" + std::to_string(i));
  }
  batch.apply(removes);
  ASSERT_EQ(batch.size(), single.size());
  EXPECT_EQ(batch.size(), 1000u);
  for (int i = 1; i <= 2000; ++i) {
    const std::string name = "ep-" + std::to_string(i);
    EXPECT_EQ(batch.count(name), single.count(name)) << name;
    EXPECT_EQ(batch.count(name), i % 2 == 0) << name;
  }
}

}  // namespace
}  // namespace ep::reconcile
