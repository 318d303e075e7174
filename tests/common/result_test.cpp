#include "common/result.h"

#include <gtest/gtest.h>

namespace vmm86 {
namespace {

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return make_error("'{}' is not a digit", c);
  return c - '0';
}

Result<int> sum_of_digits(const char* text) {
  int sum = 0;
  for (const char* p = text; *p; ++p) {
    VMM86_TRY(parse_digit(*p));  // the value is dropped: only the check matters here
    sum += *p - '0';
  }
  return sum;
}

Status all_digits(const char* text) {
  VMM86_TRY(sum_of_digits(text));
  return ok_status();
}

TEST(Result, HoldsAValueOrAnError) {
  const Result<int> seven = parse_digit('7');
  ASSERT_TRUE(seven.ok());
  EXPECT_EQ(*seven, 7);
  const Result<int> bad = parse_digit('x');
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "'x' is not a digit");
}

TEST(Result, TryPassesTheFirstErrorUpUnchanged) {
  EXPECT_EQ(*sum_of_digits("123"), 6);
  const Result<int> sum = sum_of_digits("12a4b");
  ASSERT_FALSE(sum);
  EXPECT_EQ(sum.error(), "'a' is not a digit");
  EXPECT_TRUE(all_digits("42").ok());
  EXPECT_EQ(all_digits("4-2").error(), "'-' is not a digit");
}

}  // namespace
}  // namespace vmm86
