// The self-checking mode (BlockVerifier, `--verify`): sampled blocks run again in a shadow
// interpreter and the results are compared. It must find nothing on correct translations
// (loops, calls, stores, faults, FPU) and must find a translation that is wrong.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

void load_workload(BtMachine& m, bool user) {
  GuestCode c(kCode);
  auto& a = c.a();
  const Label top = a.newLabel(), f = a.newLabel();
  a.mov(x86::ecx, 200);
  a.mov(x86::esi, kData);
  a.bind(top);
  a.mov(x86::eax, x86::ecx);
  a.imul(x86::eax, x86::eax, 7);
  a.add(x86::dword_ptr(x86::esi, x86::ecx, 2), x86::eax);
  a.call(f);
  a.fild(x86::dword_ptr(x86::esi));
  a.fsqrt();
  a.fistp(x86::dword_ptr(x86::esi, 4));
  a.movd(x86::xmm0, x86::eax);
  a.paddd(x86::xmm0, x86::xmm0);
  a.movd(x86::edi, x86::xmm0);
  a.dec(x86::ecx);
  a.jnz(top);
  a.mov(x86::eax, x86::dword_ptr(0x7FF000));  // beyond the identity map: #PF, the handler halts
  a.hlt();
  a.bind(f);
  a.push(x86::ebx);
  a.lea(x86::ebx, x86::ptr(x86::eax, x86::ecx, 1, 3));
  a.xor_(x86::edx, x86::ebx);
  a.pop(x86::ebx);
  a.ret();
  m.load(c);
  m.poke32(kData, 1234567);
  m.start(kCode, kStackTop, user);
  m.cpu().cr4 |= cr4::OSFXSR;
}

class VerifyEveryBlock : public ::testing::TestWithParam<bool> {};

TEST_P(VerifyEveryBlock, FindsNothingOnCorrectTranslations) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) { load_workload(m, GetParam()); });
  const Status verifying = runs.bt.engine().enable_verification(1, runs.bt);
  ASSERT_TRUE(verifying) << verifying.error();
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  const VerifierStats& s = runs.bt.engine().verifier()->stats();
  EXPECT_GT(s.compared, 100u);
  EXPECT_EQ(s.compared + s.inconclusive, s.sampled);
}

INSTANTIATE_TEST_SUITE_P(BtEngine, VerifyEveryBlock, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Cpl3" : "Cpl0"; });

TEST(Verify, ReportsAWrongTranslation) {
  BtMachine m;
  GuestCode c(kCode);
  c.a().mov(x86::eax, 5);
  c.a().add(x86::eax, 7);
  c.a().mov(x86::dword_ptr(kData), x86::eax);
  c.a().hlt();
  m.load(c);
  m.start(kCode, kStackTop, false);
  ASSERT_EQ(m.run_bt(), RunEnd::Halted);
  // Break the cached translation: add eax, 7 (83 C0 07) becomes add eax, 8.
  CodeCache& cache = m.engine().translator().cache();
  Block* block = cache.find(BlockKey{GuestPhys{kCode}, kCode, m.engine().translator().current_mode()});
  ASSERT_NE(block, nullptr);
  static constexpr uint8_t kAdd[] = {0x83, 0xC0, 0x07};
  uint8_t* at = static_cast<uint8_t*>(memmem(block->host_code, block->host_size, kAdd, sizeof kAdd));
  ASSERT_NE(at, nullptr);
  cache.writable(at)[2] = 0x08;

  m.start(kCode, kStackTop, false);
  const Status verifying = m.engine().enable_verification(1, m);
  ASSERT_TRUE(verifying) << verifying.error();
  EXPECT_EQ(m.run_bt(), RunEnd::Unimplemented);
  EXPECT_NE(m.detail().find("eax      interpreter 0xc, translated 0xd"), std::string::npos) << m.detail();
  EXPECT_NE(m.detail().find("ram 0x200000: interpreter 0x0c, translated 0x0d"), std::string::npos) << m.detail();
  EXPECT_NE(m.detail().find("add eax, 0x07"), std::string::npos) << m.detail();
}

}  // namespace
}  // namespace vmm86::bttest
