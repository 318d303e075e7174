// Differential tests of mul/imul/div/idiv, bt/bts/btr/btc and bsf/bsr against the host.
// A divide that would raise #DE is never run natively: the test predicts it with 128-bit
// arithmetic and expects the ALU to report it.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <set>

#include "tests/alu/host_cpu.h"
#include "tests/alu/test_support.h"
#include "vmm/interp/alu.h"

namespace vmm86::alu::test {
namespace {

using test::PrintTo;

#define VMM86_BY_SIZE(fn) \
  { &host::fn<uint8_t>, &host::fn<uint16_t>, &host::fn<uint32_t> }

__extension__ using Int128 = __int128;

// ---------------------------------------------------------------------------------------
// one-operand mul/imul, two-operand imul

using HostAccumulator = host::WideOut (*)(uint32_t, uint32_t, uint32_t, uint32_t);
using AluWide = WideResult (*)(unsigned, uint32_t, uint32_t, uint32_t);
struct MulCase {
  AluWide alu;
  const char* name;
  std::array<HostAccumulator, 3> host;
};

const MulCase kMulCases[] = {
    {&mul, "Mul", VMM86_BY_SIZE(mul)},
    {&imul, "Imul", VMM86_BY_SIZE(imul)},
};

// SF/ZF/AF/PF are undefined after every multiplication; CF=OF is defined.
constexpr uint32_t kMulDefined = flags::CF | flags::OF;

class MulHost : public testing::TestWithParam<MulCase> {};

TEST_P(MulHost, MatchesHost) {
  const MulCase& c = GetParam();
  Gen gen(0xE5);
  const auto check = [&](unsigned size, uint32_t a, uint32_t b) -> testing::AssertionResult {
    const uint32_t status = gen.status();
    const uint32_t in = status | gen.system();
    const WideResult ours = c.alu(size, a, b, in);
    const host::WideOut h = c.host[size_index(size)](a, 0, b, status);
    if (ours.high != h.high) {
      return testing::AssertionFailure() << std::hex << "high 0x" << ours.high << ", host 0x" << h.high;
    }
    return agree({ours.low, ours.eflags}, {h.low, h.flags}, in, kMulDefined);
  };
  for (uint32_t a = 0; a < 256; ++a) {
    for (uint32_t b = 0; b < 256; ++b) ASSERT_TRUE(check(1, a, b)) << c.name << " b " << a << "*" << b;
  }
  for (const unsigned size : {2u, 4u}) {
    for (const uint32_t a : edge_values(size)) {
      for (const uint32_t b : edge_values(size)) {
        ASSERT_TRUE(check(size, a, b)) << c.name << " size=" << size << std::hex << " 0x" << a << "*0x" << b;
      }
    }
    for (int i = 0; i < 100000; ++i) {
      const uint32_t a = gen.value(size);
      const uint32_t b = gen.value(size);
      ASSERT_TRUE(check(size, a, b)) << c.name << " size=" << size << std::hex << " 0x" << a << "*0x" << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Alu, MulHost, testing::ValuesIn(kMulCases), ByName());

TEST(AluImulTrunc, MatchesHost) {
  Gen gen(0xE6);
  for (const unsigned size : {2u, 4u}) {
    const auto run = size == 2 ? &host::imul2<uint16_t> : &host::imul2<uint32_t>;
    for (int i = 0; i < 200000; ++i) {
      const uint32_t a = gen.value(size);
      const uint32_t b = gen.value(size);
      const uint32_t status = gen.status();
      const uint32_t in = status | gen.system();
      const Result ours = imul_trunc(size, a, b, in);
      const host::Out h = run(a, b, status);
      ASSERT_TRUE(agree({ours.value, ours.eflags}, {h.value, h.flags}, in, kMulDefined))
          << "size=" << size << std::hex << " 0x" << a << "*0x" << b;
    }
  }
}

// P6 choice for the undefined flags (not checked against the host): SF/ZF/PF from the
// low half, AF clear.
TEST(AluMul, UndefinedFlagsComeFromTheLowHalf) {
  const WideResult r = mul(1, 0x10, 0x10, flags::Reserved1 | flags::AF | flags::SF);
  EXPECT_EQ(r.low, 0u);
  EXPECT_EQ(r.high, 1u);
  EXPECT_EQ(r.eflags, flags::Reserved1 | flags::CF | flags::OF | flags::ZF | flags::PF);
}

// ---------------------------------------------------------------------------------------
// div/idiv

/// What the hardware does with a dividend and divisor: #DE or not (independent of alu.cpp).
bool div_faults(unsigned size, uint32_t low, uint32_t high, uint32_t divisor) {
  const unsigned bits = size * 8;
  const uint64_t dividend = (uint64_t{high} << bits) | low;
  return divisor == 0 || dividend / divisor > mask_of(size);
}

bool idiv_faults(unsigned size, uint32_t low, uint32_t high, uint32_t divisor) {
  const unsigned bits = size * 8;
  const uint64_t raw = (uint64_t{high} << bits) | low;
  // Sign-extend the 2n-bit dividend and the n-bit divisor into 128 bits.
  const Int128 dividend = (raw >> (2 * bits - 1)) & 1 ? Int128(raw) - (Int128(1) << (2 * bits)) : Int128(raw);
  const Int128 d = (divisor & sign_of(size)) != 0 ? Int128(divisor) - (Int128(1) << bits) : Int128(divisor);
  if (d == 0) return true;
  const Int128 q = dividend / d;
  const Int128 limit = Int128(1) << (bits - 1);
  return q < -limit || q >= limit;
}

using AluDiv = DivResult (*)(unsigned, uint32_t, uint32_t, uint32_t, uint32_t);
using FaultPredicate = bool (*)(unsigned, uint32_t, uint32_t, uint32_t);
struct DivCase {
  AluDiv alu;
  FaultPredicate faults;
  bool is_signed;
  const char* name;
  std::array<HostAccumulator, 3> host;
};

const DivCase kDivCases[] = {
    {&div, &div_faults, false, "Div", VMM86_BY_SIZE(div)},
    {&idiv, &idiv_faults, true, "Idiv", VMM86_BY_SIZE(idiv)},
};

class DivHost : public testing::TestWithParam<DivCase> {};

TEST_P(DivHost, MatchesHostOrRaisesDivideError) {
  const DivCase& c = GetParam();
  Gen gen(0xF7);
  unsigned faults = 0;
  unsigned runs = 0;
  const auto check = [&](unsigned size, uint32_t low, uint32_t high, uint32_t divisor) -> testing::AssertionResult {
    const uint32_t status = gen.status();
    const uint32_t in = status | gen.system();
    const DivResult ours = c.alu(size, low, high, divisor, in);
    if (c.faults(size, low, high, divisor)) {
      ++faults;
      if (ours.ok) return testing::AssertionFailure() << "expected #DE";
      if (ours.eflags != in) return testing::AssertionFailure() << "#DE changed eflags";
      return testing::AssertionSuccess();
    }
    ++runs;
    if (!ours.ok) return testing::AssertionFailure() << "unexpected #DE";
    const host::WideOut h = c.host[size_index(size)](low, high, divisor, status);
    if (ours.remainder != h.high) {
      return testing::AssertionFailure() << std::hex << "remainder 0x" << ours.remainder << ", host 0x" << h.high;
    }
    // Every status flag is undefined after a division: compare only the quotient.
    return agree({ours.quotient, ours.eflags}, {h.low, h.flags}, in, 0);
  };
  for (const unsigned size : kSizes) {
    const uint32_t m = mask_of(size);
    for (const uint32_t low : edge_values(size)) {
      for (const uint32_t high : edge_values(size)) {
        for (const uint32_t divisor : edge_values(size)) {
          ASSERT_TRUE(check(size, low, high, divisor))
              << c.name << " size=" << size << std::hex << " 0x" << high << ":0x" << low << " / 0x" << divisor;
        }
      }
    }
    for (int i = 0; i < 100000; ++i) {
      const uint32_t divisor = gen.value(size);
      uint32_t low = gen.value(size);
      uint32_t high = gen.value(size);
      if (gen.coin()) {
        // Mostly non-faulting: a quotient near the limits times the divisor plus a
        // remainder, so the boundaries of the quotient range are exercised.
        const uint32_t q = gen.value(size);
        uint64_t dividend;
        if (c.is_signed) {
          const auto to_signed = [&](uint32_t v) {
            return static_cast<int64_t>(v) - ((v & sign_of(size)) != 0 ? int64_t{m} + 1 : 0);
          };
          const int64_t sd = to_signed(divisor);
          const int64_t r = sd == 0 ? 0 : static_cast<int64_t>(gen.bits32() % std::llabs(sd));
          dividend = static_cast<uint64_t>(to_signed(q) * sd + (gen.coin() ? r : -r));
        } else {
          const uint32_t r = divisor == 0 ? 0 : gen.bits32() % divisor;
          dividend = uint64_t{q} * divisor + r;
        }
        low = static_cast<uint32_t>(dividend) & m;
        high = static_cast<uint32_t>(dividend >> (size * 8)) & m;
      }
      ASSERT_TRUE(check(size, low, high, divisor))
          << c.name << " size=" << size << std::hex << " 0x" << high << ":0x" << low << " / 0x" << divisor;
    }
  }
  // Both outcomes must have been exercised in bulk.
  EXPECT_GT(faults, 10000u);
  EXPECT_GT(runs, 100000u);
}

INSTANTIATE_TEST_SUITE_P(Alu, DivHost, testing::ValuesIn(kDivCases), ByName());

TEST(AluDiv, DivideErrorEdges) {
  const uint32_t in = flags::Reserved1 | flags::ZF;
  EXPECT_FALSE(div(4, 5, 0, 0, in).ok);                       // divide by zero
  EXPECT_FALSE(div(1, 0x00, 0x01, 1, in).ok);                 // 0x100 / 1 does not fit AL
  EXPECT_TRUE(div(1, 0xFF, 0x00, 1, in).ok);                  // 0xFF / 1 fits
  EXPECT_FALSE(idiv(4, 0, 0x80000000u, 0xFFFFFFFFu, in).ok);  // -2^63 / -1
  EXPECT_FALSE(idiv(2, 0, 0x8000, 0xFFFF, in).ok);            // -2^31 / -1
  EXPECT_FALSE(idiv(1, 0x00, 0x80, 0xFF, in).ok);             // -2^15 / -1
  EXPECT_FALSE(idiv(1, 0x00, 0x01, 0x02, in).ok);             // 256 / 2 = 128 > 127
  EXPECT_FALSE(idiv(4, 0, 0, 0, in).ok);
  // The most negative quotient is representable: -256 / 2 = -128 (0xFF00 in AX).
  const DivResult lowest = idiv(1, 0x00, 0xFF, 0x02, in);
  ASSERT_TRUE(lowest.ok);
  EXPECT_EQ(lowest.quotient, 0x80u);
  EXPECT_EQ(lowest.remainder, 0u);
  EXPECT_EQ(lowest.eflags, in);
  // Truncation toward zero, remainder with the dividend's sign: -7 / 2 = -3 rem -1.
  const DivResult neg = idiv(2, 0xFFF9, 0xFFFF, 2, in);
  ASSERT_TRUE(neg.ok);
  EXPECT_EQ(neg.quotient, 0xFFFDu);
  EXPECT_EQ(neg.remainder, 0xFFFFu);
}

// ---------------------------------------------------------------------------------------
// bt/bts/btr/btc

using HostBinary = host::Out (*)(uint32_t, uint32_t, uint32_t);
struct BitCase {
  BitOp op;
  const char* name;
  std::array<HostBinary, 2> host;  ///< 16 and 32 bits
};

const BitCase kBitCases[] = {
    {BitOp::Bt, "Bt", {&host::bt<uint16_t>, &host::bt<uint32_t>}},
    {BitOp::Bts, "Bts", {&host::bts<uint16_t>, &host::bts<uint32_t>}},
    {BitOp::Btr, "Btr", {&host::btr<uint16_t>, &host::btr<uint32_t>}},
    {BitOp::Btc, "Btc", {&host::btc<uint16_t>, &host::btc<uint32_t>}},
};

class BitHost : public testing::TestWithParam<BitCase> {};

TEST_P(BitHost, MatchesHost) {
  const BitCase& c = GetParam();
  Gen gen(0x1B);
  // CF is defined; ZF is documented unchanged; OF/SF/AF/PF are undefined.
  constexpr uint32_t kDefined = flags::CF | flags::ZF;
  for (const unsigned size : {2u, 4u}) {
    const HostBinary run = c.host[size == 2 ? 0 : 1];
    for (int i = 0; i < 100000; ++i) {
      const uint32_t v = gen.value(size);
      // The register form takes the offset modulo the width: include offsets beyond it.
      const uint32_t bit = i < 64 ? static_cast<uint32_t>(i) : gen.value(size);
      const uint32_t status = gen.status();
      const uint32_t in = status | gen.system();
      const Result ours = bit_test(c.op, size, v, bit, in);
      const host::Out h = run(v, bit, status);
      ASSERT_TRUE(agree({ours.value, ours.eflags}, {h.value, h.flags}, in, kDefined))
          << c.name << " size=" << size << std::hex << " v=0x" << v << " bit=0x" << bit;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Alu, BitHost, testing::ValuesIn(kBitCases), ByName());

TEST(AluCoverage, EveryBitOpHasAHostCase) {
  std::multiset<unsigned> seen;
  for (const BitCase& c : kBitCases) seen.insert(static_cast<unsigned>(c.op));
  for (unsigned op = 0; op < kNumBitOps; ++op) EXPECT_EQ(seen.count(op), 1u) << "BitOp " << op;
  EXPECT_EQ(seen.size(), kNumBitOps);
}

// ---------------------------------------------------------------------------------------
// bsf/bsr

using AluScan = Result (*)(unsigned, uint32_t, uint32_t, uint32_t);
struct ScanCase {
  AluScan alu;
  const char* name;
  std::array<HostBinary, 2> host;  ///< 16 and 32 bits
};

const ScanCase kScanCases[] = {
    {&bsf, "Bsf", {&host::bsf<uint16_t>, &host::bsf<uint32_t>}},
    {&bsr, "Bsr", {&host::bsr<uint16_t>, &host::bsr<uint32_t>}},
};

class ScanHost : public testing::TestWithParam<ScanCase> {};

TEST_P(ScanHost, MatchesHost) {
  const ScanCase& c = GetParam();
  Gen gen(0x2C);
  for (const unsigned size : {2u, 4u}) {
    const HostBinary run = c.host[size == 2 ? 0 : 1];
    for (int i = 0; i < 100000; ++i) {
      // Sparse sources (one bit, a few bits, zero) and dense random ones.
      uint32_t src = gen.value(size);
      if (i % 4 == 0) src &= gen.bits32() & gen.bits32() & gen.bits32();
      if (i % 8 == 1) src = (1u << gen.below(size * 8)) & mask_of(size);
      if (i % 16 == 2) src = 0;
      const uint32_t old_dst = gen.value(size);
      const uint32_t status = gen.status();
      const uint32_t in = status | gen.system();
      const Result ours = c.alu(size, src, old_dst, in);
      const host::Out h = run(old_dst, src, status);
      // Only ZF is defined. The SDM leaves the destination undefined for a zero source,
      // but Intel and AMD both keep it, and guests rely on that: compare it too.
      ASSERT_TRUE(agree({ours.value, ours.eflags}, {h.value, h.flags}, in, flags::ZF))
          << c.name << " size=" << size << std::hex << " src=0x" << src << " old=0x" << old_dst;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Alu, ScanHost, testing::ValuesIn(kScanCases), ByName());

}  // namespace
}  // namespace vmm86::alu::test
