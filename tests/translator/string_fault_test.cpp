// Precise faults inside translated string instructions (rewrite_string.cpp with the fault
// handler): a guest #PF, a wrap at 4 GiB into the window's guard, an unbacked page and a
// write to a page holding translated code each stop the host string instruction part-way.
// The fault handler must give the interpreter guest ESI/EDI/ECX exactly where the CPU
// leaves them. Each program runs on the BT engine (translator, fault handler, shadow MMU,
// interpreter slow path) and on the interpreter alone from the same state, paging on;
// registers, CR2, the #PF frame and memory must match.
#include <asmjit/x86.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "shadow-mmu/shadow_mmu.h"
#include "tests/support/bare_engine_hooks.h"
#include "vmm/engine/bt_engine.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {
namespace {

using namespace asmjit;

constexpr uint32_t kGdt = 0x1000, kIdt = 0x2000, kHandler = 0x3000;
constexpr uint32_t kPageDir = 0x10000, kLowTable = 0x11000, kTopTable = 0x12000;
constexpr uint32_t kCode = 0x20000, kStackTop = 0x90000;
constexpr uint32_t kSrc = 0x100000, kDst = 0x140000;
constexpr uint32_t kHole = 0x180000;      ///< not present: #PF
constexpr uint32_t kUnbacked = 0x1C0000;  ///< mapped to a guest-physical address without RAM
constexpr uint32_t kTopPhys = 0x200000;   ///< backs linear 0xFFFFF000
constexpr uint32_t kRam = 4 << 20;

uint64_t descriptor(uint8_t access) {
  return 0xFFFFull | (0xFull << 48) | (uint64_t{access} << 40) | (uint64_t{0xC} << 52);
}

struct Outcome {
  CpuState cpu{};
  std::unique_ptr<GuestMemory> mem;
  uint64_t redirected = 0;  ///< faults the handler sent to the interpreter (BT only)
  uint64_t translated = 0;
};

using Program = std::function<void(x86::Assembler&)>;

/// Guest RAM with a GDT, an IDT whose #PF gate leads to `hlt`, and page tables that map
/// the first 4 MiB 1:1 except kHole (absent) and kUnbacked, plus the top page of 4 GiB.
std::unique_ptr<GuestMemory> build(const Program& program, CpuState* cpu) {
  auto m = GuestMemory::create(kRam);
  if (!m) return nullptr;
  auto mem = std::make_unique<GuestMemory>(std::move(*m));
  auto put32 = [&](uint32_t addr, uint32_t v) { (void)mem->write(GuestPhys{addr}, &v, 4); };
  const uint64_t gdt[] = {0, descriptor(0x9B), descriptor(0x93)};
  (void)mem->write(GuestPhys{kGdt}, gdt, sizeof gdt);
  const uint64_t gate = (kHandler & 0xFFFF) | (uint64_t{0x08} << 16) | (uint64_t{0x8E00} << 32) |
                        (uint64_t{kHandler >> 16} << 48);
  (void)mem->write(GuestPhys{kIdt + 14 * 8}, &gate, 8);
  const uint8_t hlt[] = {0xF4, 0xEB, 0xFD};
  (void)mem->write(GuestPhys{kHandler}, hlt, sizeof hlt);
  put32(kPageDir, kLowTable | 3);
  put32(kPageDir + 4 * 1023, kTopTable | 3);
  for (uint32_t i = 0; i < 1024; ++i) put32(kLowTable + 4 * i, (i << kPageShift) | 3);
  put32(kLowTable + 4 * (kHole >> kPageShift), 0);
  put32(kLowTable + 4 * (kUnbacked >> kPageShift), 0x3F000000 | 3);
  put32(kTopTable + 4 * 1023, kTopPhys | 3);
  for (uint32_t i = 0; i < 0x80000; i += 4) put32(kSrc + i, i * 0x9E3779B1u);  // kSrc and kDst alike
  for (uint32_t i = 0; i < kPageSize; i += 4) put32(kTopPhys + i, 0xA5A5A5A5u);

  CodeHolder code;
  code.init(Environment(Arch::kX86), kCode);
  x86::Assembler a(&code);
  program(a);
  a.hlt();
  code.flatten();
  code.resolveUnresolvedLinks();
  code.relocateToBase(kCode);
  std::vector<uint8_t> bytes(code.codeSize());
  code.copyFlattenedData(bytes.data(), bytes.size());
  (void)mem->write(GuestPhys{kCode}, bytes.data(), bytes.size());

  cpu->reset();
  cpu->cr0 = cr0::PE | cr0::PG | cr0::WP | cr0::ET | cr0::NE;
  cpu->cr3 = kPageDir;
  cpu->gdtr = {kGdt, 3 * 8 - 1};
  cpu->idtr = {kIdt, 256 * 8 - 1};
  for (auto& s : cpu->seg) s = SegmentCache{0x10, 0, 0xFFFFFFFF, 0xC093};
  cpu->sreg(SegReg::Cs) = SegmentCache{0x08, 0, 0xFFFFFFFF, 0xC09B};
  cpu->eip = kCode;
  cpu->reg(Gpr::Esp) = kStackTop;
  return mem;
}

Outcome run_interpreter(const Program& program) {
  Outcome o;
  o.mem = build(program, &o.cpu);
  BareEngineHooks hooks;
  Interpreter interp(o.cpu, *o.mem, hooks);
  EXPECT_EQ(interp.run(100000).status, StepStatus::Halted) << interp.detail();
  return o;
}

bool never(void*) { return false; }

Outcome run_bt(const Program& program) {
  Outcome o;
  ExecContextPtr ctx = create_exec_context();
  o.mem = build(program, &ctx->cpu);
  BareEngineHooks hooks;
  ShadowMmu mmu(*o.mem);
  const Status mmu_ready = mmu.init();
  EXPECT_TRUE(mmu_ready) << mmu_ready.error();
  Interpreter interp(ctx->cpu, *o.mem, hooks);
  BtEngine engine(*ctx, *o.mem, mmu, interp, 1 << 20);
  hooks.attach(&engine, &mmu);
  const Status engine_ready = engine.init();
  EXPECT_TRUE(engine_ready) << engine_ready.error();
  EngineStop stop = EngineStop::Budget;
  for (int i = 0; i < 100 && stop == EngineStop::Budget; ++i) stop = engine.run(100000, never, nullptr);
  EXPECT_EQ(stop, EngineStop::Halted) << engine.detail();
  o.cpu = ctx->cpu;
  o.redirected = engine.fault_stats().redirected;
  o.translated = ctx->retired;
  return o;
}

/// Runs `program` on both engines and compares; returns the BT outcome.
Outcome check(const Program& program) {
  const Outcome want = run_interpreter(program);
  Outcome got = run_bt(program);
  static const char* regs[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(got.cpu.gpr[i], want.cpu.gpr[i]) << regs[i];
  EXPECT_EQ(got.cpu.eip, want.cpu.eip);
  EXPECT_EQ(got.cpu.cr2, want.cpu.cr2);
  constexpr uint32_t kCompared = flags::Status | flags::DF | flags::IF;
  EXPECT_EQ(got.cpu.eflags & kCompared, want.cpu.eflags & kCompared);
  for (const uint32_t phys :
       {0u, kStackTop - kPageSize, kSrc, kDst, kHole - kPageSize, kHole, kHole + kPageSize, kTopPhys, kCode}) {
    EXPECT_EQ(std::memcmp(got.mem->host_ptr(GuestPhys{phys}, kPageSize), want.mem->host_ptr(GuestPhys{phys}, kPageSize),
                          kPageSize),
              0)
        << "guest-physical page " << std::hex << phys;
  }
  EXPECT_GE(got.translated, 2u) << "the program did not run translated";
  EXPECT_GE(got.redirected, 1u) << "no fault reached the interpreter";
  return got;
}

/// The #PF frame the handler halted on: error code, EIP, CS, EFLAGS.
uint32_t frame(const Outcome& o, unsigned i) {
  uint32_t v = 0;
  (void)o.mem->read(GuestPhys{o.cpu.reg(Gpr::Esp) + 4 * i}, &v, 4);
  return v;
}

TEST(StringFaults, PageFaultOnTheDestinationMidCopy) {
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::esi, kSrc);
    a.mov(x86::edi, kHole - 0x20);
    a.mov(x86::ecx, 64);
    a.rep().movsd();
  });
  EXPECT_EQ(o.cpu.cr2, kHole);
  EXPECT_EQ(o.cpu.reg(Gpr::Edi), kHole);
  EXPECT_EQ(o.cpu.reg(Gpr::Esi), kSrc + 0x20);
  EXPECT_EQ(o.cpu.reg(Gpr::Ecx), 56u);
  EXPECT_EQ(frame(o, 0), 2u);          // #PF error code: write, not present
  EXPECT_EQ(frame(o, 1), kCode + 15);  // at the rep movsd
}

TEST(StringFaults, PageFaultOnTheSourceMidCopyBackwards) {
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::esi, kHole + kPageSize + 6);
    a.mov(x86::edi, kDst + 0x100);
    a.mov(x86::ecx, 40);
    a.std();
    a.rep().movsw();
    a.cld();
  });
  EXPECT_EQ(o.cpu.cr2, kHole + kPageSize - 2);  // four words read, the fifth is in the hole
  EXPECT_EQ(o.cpu.reg(Gpr::Ecx), 36u);
  EXPECT_NE(o.cpu.eflags & flags::DF, 0u);
}

TEST(StringFaults, PageFaultInRepeCmps) {
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::esi, kHole - 0x100);
    a.mov(x86::edi, kDst);
    a.mov(x86::ecx, 0x40);
    a.rep().movsd();
    a.mov(x86::esi, kDst);
    a.mov(x86::edi, kHole - 0x100);
    a.mov(x86::ecx, 0x200);
    a.repe().cmpsb();  // equal for 0x100 bytes, then reads the hole
  });
  EXPECT_EQ(o.cpu.cr2, kHole);
  EXPECT_EQ(o.cpu.reg(Gpr::Ecx), 0x100u);
  EXPECT_EQ(frame(o, 0), 0u);  // read, not present
}

TEST(StringFaults, NonRepeatedLodsFaultsWithoutProgress) {
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::esi, kHole + 0x10);
    a.mov(x86::eax, 0x12345678);
    a.lodsd();
  });
  EXPECT_EQ(o.cpu.reg(Gpr::Esi), kHole + 0x10);
  EXPECT_EQ(o.cpu.reg(Gpr::Eax), 0x12345678u);
}

TEST(StringFaults, WrapAt4GiBRunsIntoTheGuardAndTheInterpreterWraps) {
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::edi, 0xFFFFFFF8u);
    a.mov(x86::eax, 0x01020304);
    a.mov(x86::ecx, 4);
    a.rep().stosd();
  });
  EXPECT_EQ(o.cpu.reg(Gpr::Edi), 8u);
  EXPECT_EQ(o.cpu.reg(Gpr::Ecx), 0u);
  uint32_t low = 0;
  (void)o.mem->read(GuestPhys{4}, &low, 4);
  EXPECT_EQ(low, 0x01020304u);
}

TEST(StringFaults, UnbackedPageIsFinishedByTheInterpreter) {
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::esi, kUnbacked - 0x10);
    a.mov(x86::edi, kDst);
    a.mov(x86::ecx, 0x20);
    a.rep().movsb();
  });
  EXPECT_EQ(o.cpu.reg(Gpr::Ecx), 0u);
  EXPECT_EQ(o.cpu.reg(Gpr::Edi), kDst + 0x20);
}

TEST(StringFaults, CopyOverTranslatedCodeIsInterpretedAndInvalidates) {
  // The stos writes into the page of the running block: the code-write fault hands it to
  // the interpreter, which stores the bytes and drops the block.
  const Outcome o = check([](x86::Assembler& a) {
    a.mov(x86::edi, kCode + 0x800);
    a.mov(x86::eax, 0x90909090);
    a.mov(x86::ecx, 16);
    a.rep().stosd();
    a.mov(x86::ebx, 1);
  });
  EXPECT_EQ(o.cpu.reg(Gpr::Ebx), 1u);
  EXPECT_EQ(o.cpu.reg(Gpr::Edi), kCode + 0x840);
}

}  // namespace
}  // namespace vmm86
