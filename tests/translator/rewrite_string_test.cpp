// String instructions translated onto the host's own (rep-)string instructions
// (rewrite_string.cpp), checked against the interpreter: every operation, size, repeat
// prefix and direction, counts 0, 1, a few and many, across a page boundary. The
// interpreter runs the same program on its own copy of guest RAM from the same state.
#include <cstring>

#include "tests/support/no_devices.h"
#include "tests/translator/translator_fixture.h"
#include "vmm/interp/interpreter.h"

namespace vmm86::translator_test {
namespace {

constexpr uint32_t kSrc = 0x20000;  // source area; the destination area follows it
constexpr uint32_t kDst = 0x28000;
constexpr uint32_t kArea = 0x8000;

enum class Op { Movs, Stos, Lods, Cmps, Scas };
enum class Rep { None, Rep, RepNE };

struct Case {
  Op op;
  unsigned size;  // 1, 2, 4
  Rep rep;
  bool down;  // DF = 1
  uint32_t count;
  uint32_t src_offset, dst_offset;  // from kSrc / kDst
};

std::string name(const Case& c) {
  static const char* ops[] = {"movs", "stos", "lods", "cmps", "scas"};
  static const char* reps[] = {"", "rep ", "repne "};
  return std::string(reps[static_cast<int>(c.rep)]) + ops[static_cast<int>(c.op)] + std::to_string(c.size * 8) +
         (c.down ? " DF=1" : " DF=0") + " count " + std::to_string(c.count) + " src+" + std::to_string(c.src_offset) +
         " dst+" + std::to_string(c.dst_offset);
}

/// AL, AX or EAX.
x86::Gp accumulator(unsigned size) {
  if (size == 1) return x86::al;
  if (size == 2) return x86::ax;
  return x86::eax;
}

void emit(x86::Assembler& a, const Case& c) {
  if (c.rep == Rep::Rep) a.rep();
  if (c.rep == Rep::RepNE) a.repne();
  const x86::Mem src = x86::ptr(x86::esi, 0, c.size);
  const x86::Mem dst = x86::ptr(x86::edi, 0, c.size);
  switch (c.op) {
    case Op::Movs: a.emit(x86::Inst::kIdMovs, dst, src); break;
    case Op::Stos: a.emit(x86::Inst::kIdStos, dst, accumulator(c.size)); break;
    case Op::Lods: a.emit(x86::Inst::kIdLods, accumulator(c.size), src); break;
    case Op::Cmps: a.emit(x86::Inst::kIdCmps, src, dst); break;
    case Op::Scas: a.emit(x86::Inst::kIdScas, accumulator(c.size), dst); break;
  }
}

class StringTest : public TranslatorTest {
 protected:
  /// Loads `c` as: [std]; op; hlt — and fills the areas so that cmps/scas find their
  /// operands equal for a while, then different.
  void prepare(const Case& c) {
    load([&](x86::Assembler& a) {
      if (c.down) a.std();
      emit(a, c);
      a.hlt();
    });
    uint32_t x = 0x1234567u + c.count * 77u + c.size;
    for (uint32_t i = 0; i < kArea; ++i) {
      x = x * 1103515245u + 12345u;
      *mem_->host_ptr(GuestPhys{kSrc + i}) = static_cast<uint8_t>(x >> 16);
    }
    std::memcpy(mem_->host_ptr(GuestPhys{kDst}, kArea), mem_->host_ptr(GuestPhys{kSrc}, kArea), kArea);
    // The first difference is a few elements in, seen from where the operation starts.
    const uint32_t diff = c.down ? c.dst_offset - 5 * c.size : c.dst_offset + 5 * c.size;
    *mem_->host_ptr(GuestPhys{kDst + diff}) ^= 0x5A;
    CpuState& cpu = ctx_->cpu;
    cpu.eip = kCodeBase;
    cpu.reg(Gpr::Esi) = kSrc + c.src_offset;
    cpu.reg(Gpr::Edi) = kDst + c.dst_offset;
    cpu.reg(Gpr::Ecx) = c.count;
    // scas looks for the value at the destination's start (repne stops there at once).
    uint32_t first = 0;
    std::memcpy(&first, mem_->host_ptr(GuestPhys{kDst + c.dst_offset}, 4), 4);
    cpu.reg(Gpr::Eax) = c.rep == Rep::RepNE ? first ^ 0x01010101u : first;
    cpu.eflags = flags::Reserved1 | flags::IF | flags::ZF;
  }

  /// Runs the interpreter on a copy of RAM and the current state; the translator then.
  void check(const Case& c) {
    SCOPED_TRACE(name(c));
    prepare(c);
    auto ref_mem = GuestMemory::create(2u << 20);
    ASSERT_TRUE(ref_mem) << ref_mem.error();
    ASSERT_TRUE(ref_mem->write(GuestPhys{0}, mem_->host_ptr(GuestPhys{0}, 1u << 20), 1u << 20));
    CpuState ref = ctx_->cpu;
    NoDevices hooks;
    Interpreter interp(ref, *ref_mem, hooks);
    ASSERT_EQ(interp.run(1000).status, StepStatus::Halted) << interp.detail();

    const uint64_t before = ctx_->retired;
    translator_->flush();
    ASSERT_TRUE(run_to_hlt());
    EXPECT_EQ(ctx_->retired - before, c.down ? 2u : 1u) << "the string instruction was not translated";
    const CpuState& got = ctx_->cpu;
    static const char* regs[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(got.gpr[i], ref.gpr[i]) << regs[i];
    constexpr uint32_t kCompared = flags::Status | flags::DF | flags::IF;
    EXPECT_EQ(got.eflags & kCompared, ref.eflags & kCompared);
    EXPECT_EQ(got.eip + 1, ref.eip);  // the interpreter has retired the hlt
    EXPECT_EQ(std::memcmp(mem_->host_ptr(GuestPhys{kDst - 0x100}, kArea + 0x200),
                          ref_mem->host_ptr(GuestPhys{kDst - 0x100}, kArea + 0x200), kArea + 0x200),
              0)
        << "destination area differs";
  }
};

TEST_F(StringTest, EveryFormMatchesTheInterpreter) {
  int cases = 0;
  for (Op op : {Op::Movs, Op::Stos, Op::Lods, Op::Cmps, Op::Scas}) {
    for (unsigned size : {1u, 2u, 4u}) {
      for (Rep rep : {Rep::None, Rep::Rep, Rep::RepNE}) {
        for (bool down : {false, true}) {
          for (uint32_t count : {0u, 1u, 7u, 3000u}) {
            if (rep == Rep::None && count > 1) continue;
            // Start near the middle so that DF=1 has room below; one page boundary
            // (kSrc + 0x4000) is crossed by the big counts, unaligned by one byte.
            check(Case{op, size, rep, down, count, 0x4000 - 1 - (down ? 0u : 8u), 0x4000 + 3 - (down ? 0u : 16u)});
            ++cases;
            if (HasFailure()) return;
          }
        }
      }
    }
  }
  RecordProperty("cases", cases);
}

TEST_F(StringTest, OverlappingCopiesReplicateLikeTheCpu) {
  // rep movsb with the destination one byte above the source repeats the first byte.
  load([](x86::Assembler& a) {
    a.rep().movsb();
    a.hlt();
  });
  for (uint32_t i = 0; i < 64; ++i) *mem_->host_ptr(GuestPhys{kSrc + i}) = static_cast<uint8_t>(i + 1);
  ctx_->cpu.reg(Gpr::Esi) = kSrc;
  ctx_->cpu.reg(Gpr::Edi) = kSrc + 1;
  ctx_->cpu.reg(Gpr::Ecx) = 40;
  ASSERT_TRUE(run_to_hlt());
  for (uint32_t i = 0; i <= 40; ++i) EXPECT_EQ(*mem_->host_ptr(GuestPhys{kSrc + i}), 1) << i;
  EXPECT_EQ(*mem_->host_ptr(GuestPhys{kSrc + 41}), 42);
  EXPECT_EQ(reg(Gpr::Esi), kSrc + 40);
  EXPECT_EQ(reg(Gpr::Edi), kSrc + 41);
  EXPECT_EQ(reg(Gpr::Ecx), 0u);
}

TEST_F(StringTest, NonFlatSourceOrAddr16IsLeftToTheInterpreter) {
  load([](x86::Assembler& a) {
    a.db(0x64);  // fs: movsd
    a.movsd();
    a.hlt();
  });
  Block* block = nullptr;
  EXPECT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::NeedsInterpreter);
  load([](x86::Assembler& a) {
    a.db(0x67);  // addr16: si/di/cx
    a.stosb();
    a.hlt();
  });
  translator_->flush();
  EXPECT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::NeedsInterpreter);
  load([](x86::Assembler& a) {
    a.db(0x2E);  // cs: (flat) is fine
    a.lodsd();
    a.hlt();
  });
  translator_->flush();
  EXPECT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::Ok);
}

TEST_F(StringTest, FaultSitesAreRecordedForTheFaultHandler) {
  load([](x86::Assembler& a) {
    a.nop();
    a.rep().movsd();
    a.stosb();
    a.hlt();
  });
  Block* block = nullptr;
  ASSERT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::Ok);
  ASSERT_EQ(block->host_pointer_sites.size(), 2u);
  EXPECT_EQ(block->host_pointer_sites[0].regs, host_ptr::Rsi | host_ptr::Rdi);
  EXPECT_EQ(block->host_pointer_sites[1].regs, host_ptr::Rdi);
  const uint8_t* movs = block->host_code + block->host_pointer_sites[0].host_offset;
  EXPECT_EQ(movs[0], 0xF3);
  EXPECT_EQ(movs[1], 0xA5);
  GuestLocation where;
  ASSERT_TRUE(translator_->locate(movs, &where));
  EXPECT_EQ(where.eip, kCodeBase + 1);
  EXPECT_EQ(where.not_retired, 2u);  // rep movsd and stosb
  EXPECT_EQ(where.host_pointer_regs, host_ptr::Rsi | host_ptr::Rdi);
  ASSERT_TRUE(translator_->locate(movs + 1, &where));  // not the instruction's start
  EXPECT_EQ(where.host_pointer_regs, 0);
}

}  // namespace
}  // namespace vmm86::translator_test
