// BCD adjusts (daa/das/aaa/aas/aam/aad) are invalid in 64-bit mode, so the host cannot
// run them. They are checked exhaustively against line-by-line transcriptions of the
// SDM pseudo-code kept here, independent of alu.cpp, and against published examples.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>

#include "tests/alu/test_support.h"
#include "vmm/interp/alu.h"

namespace vmm86::alu::test {
namespace {

using test::PrintTo;

/// AX and the status flags as the SDM pseudo-code manipulates them.
struct Machine {
  uint8_t al = 0;
  uint8_t ah = 0;
  bool cf = false;
  bool af = false;

  [[nodiscard]] uint16_t ax() const { return static_cast<uint16_t>(ah << 8 | al); }
  void set_ax(unsigned v) {
    al = static_cast<uint8_t>(v);
    ah = static_cast<uint8_t>(v >> 8);
  }
};

// SDM Vol. 2, DAA "Operation".
Machine sdm_daa(Machine m) {
  const uint8_t old_al = m.al;
  const bool old_cf = m.cf;
  m.cf = false;
  if ((m.al & 0x0F) > 9 || m.af) {
    const unsigned sum = m.al + 6u;
    m.al = static_cast<uint8_t>(sum);
    m.cf = old_cf || sum > 0xFF;
    m.af = true;
  } else {
    m.af = false;
  }
  if (old_al > 0x99 || old_cf) {
    m.al = static_cast<uint8_t>(m.al + 0x60);
    m.cf = true;
  } else {
    m.cf = false;
  }
  return m;
}

// SDM Vol. 2, DAS "Operation".
Machine sdm_das(Machine m) {
  const uint8_t old_al = m.al;
  const bool old_cf = m.cf;
  m.cf = false;
  if ((m.al & 0x0F) > 9 || m.af) {
    const bool borrow = m.al < 6;
    m.al = static_cast<uint8_t>(m.al - 6);
    m.cf = old_cf || borrow;
    m.af = true;
  } else {
    m.af = false;
  }
  if (old_al > 0x99 || old_cf) {
    m.al = static_cast<uint8_t>(m.al - 0x60);
    m.cf = true;
  }
  return m;
}

// SDM Vol. 2, AAA "Operation" (the P6-and-later form that adds 106H to AX).
Machine sdm_aaa(Machine m) {
  if ((m.al & 0x0F) > 9 || m.af) {
    m.set_ax(m.ax() + 0x106u);
    m.af = true;
    m.cf = true;
  } else {
    m.af = false;
    m.cf = false;
  }
  m.al &= 0x0F;
  return m;
}

// SDM Vol. 2, AAS "Operation": AX <- AX - 6; AH <- AH - 1.
Machine sdm_aas(Machine m) {
  if ((m.al & 0x0F) > 9 || m.af) {
    m.set_ax(m.ax() - 6u);
    m.ah = static_cast<uint8_t>(m.ah - 1);
    m.af = true;
    m.cf = true;
  } else {
    m.cf = false;
    m.af = false;
  }
  m.al &= 0x0F;
  return m;
}

struct BcdCase {
  BcdOp op;
  const char* name;
  Machine (*sdm)(Machine);
  /// Flags the SDM defines; SF/ZF/PF of daa/das follow AL, OF is undefined everywhere.
  uint32_t defined;
};

constexpr uint32_t kDecimalDefined = flags::CF | flags::AF | flags::SF | flags::ZF | flags::PF;
const BcdCase kBcdCases[] = {
    {BcdOp::Daa, "Daa", &sdm_daa, kDecimalDefined},
    {BcdOp::Das, "Das", &sdm_das, kDecimalDefined},
    {BcdOp::Aaa, "Aaa", &sdm_aaa, flags::CF | flags::AF},
    {BcdOp::Aas, "Aas", &sdm_aas, flags::CF | flags::AF},
};

/// The EFLAGS the SDM pseudo-code implies: CF and AF, and SF/ZF/PF of the new AL.
uint32_t sdm_flags(const Machine& m) {
  return (m.cf ? flags::CF : 0) | (m.af ? flags::AF : 0) | ((m.al & 0x80) != 0 ? flags::SF : 0) |
         (m.al == 0 ? flags::ZF : 0) | (parity_even(m.al) ? flags::PF : 0);
}

class Bcd : public testing::TestWithParam<BcdCase> {};

// Every AX with every CF/AF; the other status flags random and passed through.
TEST_P(Bcd, MatchesSdmPseudoCodeExhaustively) {
  const BcdCase& c = GetParam();
  Gen gen(0x3D);
  for (uint32_t ax = 0; ax < 0x10000; ++ax) {
    for (const bool cf : {false, true}) {
      for (const bool af : {false, true}) {
        const uint32_t in = (gen.status() & ~(flags::CF | flags::AF)) | gen.system() | (cf ? flags::CF : 0) |
                            (af ? flags::AF : 0);
        Machine m;
        m.set_ax(ax);
        m.cf = cf;
        m.af = af;
        const Machine want = c.sdm(m);
        const Result got = bcd(c.op, ax, in);
        ASSERT_TRUE(agree({got.value, got.eflags}, {want.ax(), sdm_flags(want)}, in, c.defined))
            << c.name << std::hex << " ax=0x" << ax << " cf=" << cf << " af=" << af;
        // P6 choices for the undefined flags (docs/interpreter-flags.md): OF clear; aaa/aas
        // set SF/ZF/PF from the final AL, whose high nibble is 0.
        ASSERT_EQ(got.eflags & flags::OF, 0u) << c.name << std::hex << " ax=0x" << ax;
        ASSERT_EQ(got.eflags & (flags::SF | flags::ZF | flags::PF),
                  sdm_flags(want) & (flags::SF | flags::ZF | flags::PF))
            << c.name << std::hex << " ax=0x" << ax;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Alu, Bcd, testing::ValuesIn(kBcdCases), ByName());

TEST(AluCoverage, EveryBcdOpHasAReference) {
  std::multiset<unsigned> seen;
  for (const BcdCase& c : kBcdCases) seen.insert(static_cast<unsigned>(c.op));
  for (unsigned op = 0; op < kNumBcdOps; ++op) EXPECT_EQ(seen.count(op), 1u) << "BcdOp " << op;
  EXPECT_EQ(seen.size(), kNumBcdOps);
}

constexpr uint32_t kIn = flags::Reserved1;
constexpr uint32_t kDecimalMask = kDecimalDefined;

// Examples printed in the SDM (Vol. 2, DAA and DAS): 79 + 35 = 114 and 35 - 47 = -12.
TEST(AluBcdExamples, SdmDaaAndDas) {
  const Result daa = bcd(BcdOp::Daa, 0xAE, kIn);  // after add al(79h), bl(35h): AF=0 CF=0
  EXPECT_EQ(daa.value, 0x14u);
  EXPECT_EQ(daa.eflags & kDecimalMask, flags::AF | flags::PF | flags::CF);  // X00111

  const Result das = bcd(BcdOp::Das, 0xEE, kIn | flags::AF | flags::CF);  // after 35h - 47h
  EXPECT_EQ(das.value, 0x88u);
  EXPECT_EQ(das.eflags & kDecimalMask, flags::SF | flags::AF | flags::PF | flags::CF);  // X10111
}

TEST(AluBcdExamples, DecimalAdjustKeepsAh) {
  EXPECT_EQ(bcd(BcdOp::Daa, 0x5A11, kIn | flags::AF).value, 0x5A17u);  // 09 + 08 = 17
  EXPECT_EQ(bcd(BcdOp::Das, 0xC309, kIn | flags::AF).value, 0xC303u);  // 12 - 09 = 03
}

TEST(AluBcdExamples, AsciiAdjust) {
  // '8' + '9' = 71h with AF: unpacked 17 -> AX = 0107h.
  const Result aaa = bcd(BcdOp::Aaa, 0x0071, kIn | flags::AF);
  EXPECT_EQ(aaa.value, 0x0107u);
  EXPECT_EQ(aaa.eflags & (flags::CF | flags::AF), flags::CF | flags::AF);
  // '8' - '9' = FFh with AF and CF: 9 borrowed from AH -> AX = FF09h.
  const Result aas = bcd(BcdOp::Aas, 0x00FF, kIn | flags::AF | flags::CF);
  EXPECT_EQ(aas.value, 0xFF09u);
  EXPECT_EQ(aas.eflags & (flags::CF | flags::AF), flags::CF | flags::AF);
  // No adjust needed: CF and AF clear, AL's high nibble dropped.
  const Result plain = bcd(BcdOp::Aaa, 0x0235, kIn | flags::CF);
  EXPECT_EQ(plain.value, 0x0205u);
  EXPECT_EQ(plain.eflags & (flags::CF | flags::AF), 0u);
  // P6 adds 106h to AX as a whole: AL=FAh carries into AH (the 8086 gave 0100h).
  EXPECT_EQ(bcd(BcdOp::Aaa, 0x00FA, kIn).value, 0x0200u);
  EXPECT_EQ(bcd(BcdOp::Aas, 0x0003, kIn | flags::AF).value, 0xFE0Du);
}

TEST(AluBcdExamples, AamAndAad) {
  const DivResult aam10 = aam(0x123F, 10, kIn);  // 63 -> AH=6, AL=3
  ASSERT_TRUE(aam10.ok);
  EXPECT_EQ(aam10.quotient, 6u);
  EXPECT_EQ(aam10.remainder, 3u);
  const DivResult aam16 = aam(0x003F, 16, kIn);  // the imm8 form splits nibbles in base 16
  EXPECT_EQ(aam16.quotient, 3u);
  EXPECT_EQ(aam16.remainder, 0xFu);
  EXPECT_FALSE(aam(0x003F, 0, kIn).ok);
  EXPECT_EQ(aam(0x003F, 0, kIn | flags::CF).eflags, kIn | flags::CF);

  EXPECT_EQ(aad(0x0603, 10, kIn).value, 0x003Fu);  // 6,3 -> 63
  EXPECT_EQ(aad(0x0603, 16, kIn).value, 0x0063u);
  const Result zero = aad(0x0000, 10, kIn | flags::CF | flags::OF | flags::AF);
  EXPECT_EQ(zero.eflags, kIn | flags::ZF | flags::PF);  // OF/AF/CF cleared (P6)
}

// aam/aad for every AX (aam only reads AL) and every base, against the SDM.
TEST(AluBcd, AamAadMatchSdmExhaustively) {
  Gen gen(0x4E);
  for (unsigned base = 0; base < 256; ++base) {
    const auto b = static_cast<uint8_t>(base);
    for (uint32_t ax = 0; ax < 0x10000; ++ax) {
      const uint32_t in = gen.status() | gen.system();
      const uint8_t al = static_cast<uint8_t>(ax);
      const uint8_t ah = static_cast<uint8_t>(ax >> 8);
      if (ah == 0 || ah == 0xA5) {  // aam ignores AH: two AH values suffice
        const DivResult m = aam(ax, b, in);
        ASSERT_EQ(m.ok, base != 0);
        if (base != 0) {
          Machine want;
          want.ah = static_cast<uint8_t>(al / b);
          want.al = static_cast<uint8_t>(al % b);
          ASSERT_EQ(m.quotient, want.ah) << "aam ax=" << ax << " base=" << base;
          ASSERT_EQ(m.remainder, want.al) << "aam ax=" << ax << " base=" << base;
          ASSERT_EQ(m.eflags, (in & ~kStatus) | (sdm_flags(want) & ~(flags::CF | flags::AF)));
        } else {
          ASSERT_EQ(m.eflags, in);
        }
      }
      Machine want;
      want.al = static_cast<uint8_t>((al + ah * b) & 0xFF);
      want.ah = 0;
      const Result d = aad(ax, b, in);
      ASSERT_EQ(d.value, want.ax()) << "aad ax=" << ax << " base=" << base;
      ASSERT_EQ(d.eflags, (in & ~kStatus) | (sdm_flags(want) & ~(flags::CF | flags::AF)));
    }
  }
}

}  // namespace
}  // namespace vmm86::alu::test
