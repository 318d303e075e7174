#include "common/check.h"

#include <gtest/gtest.h>

namespace vmm86 {
namespace {

int checked_half(int even) {
  VMM86_CHECK(even % 2 == 0, "{} is odd", even);
  return even / 2;
}

TEST(Check, PassesSilently) {
  EXPECT_EQ(checked_half(8), 4);
  VMM86_CHECK(true);
}

TEST(CheckDeathTest, StopsWithTheConditionAndTheMessage) {
  EXPECT_DEATH((void)checked_half(7), "vmm86: fatal: .*check_test.cpp:[0-9]+: check failed: even % 2 == 0: 7 is odd");
  EXPECT_DEATH(VMM86_CHECK(1 + 1 == 3), "check failed: 1 \\+ 1 == 3\n");
}

}  // namespace
}  // namespace vmm86
