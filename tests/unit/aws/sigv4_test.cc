#include "discovery/aws/sigv4.h"

#include <gtest/gtest.h>

namespace ep::aws {
namespace {
TEST(SigV4, Placeholder) {}
}
}
