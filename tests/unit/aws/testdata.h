#pragma once
// Reads saved payloads from tests/testdata/aws/.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace ep::aws::testing {

inline std::string testdata(const std::string& name) {
  const std::string path = std::string(EP_TESTDATA_DIR) + "/aws/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ep::aws::testing
