// Shared pieces of the ALU tests: deterministic input generation biased towards edge
// values, and a comparison of the ALU's answer with the host CPU's that ignores the flags
// the SDM leaves undefined for the case at hand.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "vmm/arch/cpu_state.h"

namespace vmm86::alu::test {

inline constexpr uint32_t kStatus = flags::Status;
inline constexpr std::array<unsigned, 3> kSizes = {1, 2, 4};

[[nodiscard]] constexpr uint32_t mask_of(unsigned size) {
  return static_cast<uint32_t>((uint64_t{1} << (size * 8)) - 1);
}
[[nodiscard]] constexpr uint32_t sign_of(unsigned size) { return 1u << (size * 8 - 1); }

/// Values where carries, overflows and sign changes happen, for one operand size.
[[nodiscard]] inline std::vector<uint32_t> edge_values(unsigned size) {
  const uint32_t m = mask_of(size);
  const uint32_t s = sign_of(size);
  std::vector<uint32_t> v = {0,
                             1,
                             2,
                             0x0F,
                             0x10,
                             0x99,
                             s - 1,
                             s,
                             s + 1,
                             m,
                             m - 1,
                             0x55555555u & m,
                             0xAAAAAAAAu & m,
                             0x0000FFFFu & m,
                             0x00010000u & m};
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

/// Deterministic pseudo-random inputs (fixed seeds keep failures reproducible).
class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint32_t bits32() { return static_cast<uint32_t>(rng_()); }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  bool coin() { return (rng_() & 1) != 0; }

  /// A value of `size` bytes: uniform half of the time, else an edge value, a small
  /// number or its negation (where most carries and overflows happen).
  uint32_t value(unsigned size) {
    const uint32_t m = mask_of(size);
    switch (below(8)) {
      case 0:
      case 1: {
        const std::vector<uint32_t>& e = edges_[size];
        return e[below(static_cast<uint32_t>(e.size()))];
      }
      case 2: {
        const uint32_t small = bits32() >> below(32);
        return (coin() ? small : 0u - small) & m;
      }
      default: return bits32() & m;
    }
  }

  /// Random status flags plus the always-one bit: what the host is given.
  uint32_t status() { return (bits32() & kStatus) | flags::Reserved1; }
  /// Random non-status EFLAGS bits that the ALU must pass through untouched.
  uint32_t system() {
    constexpr uint32_t kSystem = flags::TF | flags::IF | flags::DF | flags::IOPL | flags::NT | flags::RF | flags::VM |
                                 flags::AC | flags::VIF | flags::VIP | flags::ID;
    return bits32() & kSystem;
  }

 private:
  std::mt19937_64 rng_;
  std::array<std::vector<uint32_t>, 5> edges_ = {{{}, edge_values(1), edge_values(2), {}, edge_values(4)}};
};

/// Names of the status flags set in `f`, for failure messages.
[[nodiscard]] inline std::string flag_names(uint32_t f) {
  static constexpr std::array<std::pair<uint32_t, const char*>, 6> kNames = {{
      {flags::OF, "OF"},
      {flags::SF, "SF"},
      {flags::ZF, "ZF"},
      {flags::AF, "AF"},
      {flags::PF, "PF"},
      {flags::CF, "CF"},
  }};
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if ((f & bit) != 0) s += s.empty() ? name : std::string(" ") + name;
  }
  return s.empty() ? "-" : s;
}

/// A value and EFLAGS as seen after an instruction.
struct Observed {
  uint32_t value = 0;
  uint32_t flags = 0;
};

/// Compares the ALU (`ours`, run with eflags_in) with the host on the `defined` status
/// flags, and on the value if `value_defined`; non-status bits must pass through.
[[nodiscard]] inline testing::AssertionResult agree(Observed ours, Observed host, uint32_t eflags_in, uint32_t defined,
                                                    bool value_defined = true) {
  if (value_defined && ours.value != host.value) {
    return testing::AssertionFailure() << std::hex << "value 0x" << ours.value << ", host 0x" << host.value;
  }
  if ((ours.flags & ~kStatus) != (eflags_in & ~kStatus)) {
    return testing::AssertionFailure() << std::hex << "non-status bits changed: in 0x" << eflags_in << ", out 0x"
                                       << ours.flags;
  }
  const uint32_t diff = (ours.flags ^ host.flags) & defined & kStatus;
  if (diff != 0) {
    return testing::AssertionFailure() << "flags differ in " << flag_names(diff) << ": ours [" << flag_names(ours.flags)
                                       << "], host [" << flag_names(host.flags) << "], in [" << flag_names(eflags_in)
                                       << "]";
  }
  return testing::AssertionSuccess();
}

/// Names value-parameterized tests after the parameter's `name` member.
struct ByName {
  template <typename P>
  std::string operator()(const testing::TestParamInfo<P>& info) const {
    return info.param.name;
  }
};

/// Prints a test parameter as its `name` in GoogleTest messages. The cases live in
/// anonymous namespaces: each test file brings this in with a using-declaration so that
/// argument-dependent lookup finds it there.
template <typename Case>
requires requires(const Case& c) { c.name; }
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

/// Index of a size in bytes into per-size tables {1, 2, 4}.
[[nodiscard]] constexpr size_t size_index(unsigned size) { return size == 4 ? 2 : size - 1; }

}  // namespace vmm86::alu::test
