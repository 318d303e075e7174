// Random instruction sequences for the differential test. Registers EBX and EBP are
// bases into the data area and are never written; ESP moves only through balanced
// push/pop/call/ret. Instructions whose flags the SDM leaves undefined are followed by a
// cmp that defines all six, so no engine-specific "undefined" value can reach a compare.
#include <asmjit/x86.h>

#include <cstring>
#include <random>

#include "tests/differential/harness.h"

namespace vmm86::difftest {

using namespace asmjit;

namespace {

struct Gen {
  std::mt19937_64 rng;
  x86::Assembler& a;
  int pushed = 0;
  std::vector<Label> functions;

  uint32_t u32() { return static_cast<uint32_t>(rng()); }
  int pick(int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); }
  bool coin() { return rng() & 1; }

  /// A register we may write: EAX ECX EDX ESI EDI.
  x86::Gp dst32() {
    static const x86::Gp regs[] = {x86::eax, x86::ecx, x86::edx, x86::esi, x86::edi};
    return regs[pick(5)];
  }
  x86::Gp any32() {
    static const x86::Gp regs[] = {x86::eax, x86::ecx, x86::edx, x86::ebx, x86::esi, x86::edi, x86::ebp};
    return regs[pick(7)];
  }
  x86::Gp sized(const x86::Gp& r32, int size) {
    if (size == 4) return r32;
    if (size == 2) return r32.r16();
    // 8-bit: AL CL DL (and AH CH DH via the high halves) — never SIL/DIL (no REX in 32-bit).
    if (r32.id() >= 4) return x86::al;
    if (coin()) return r32.r8Lo();
    return r32.r8Hi();
  }
  int size() {
    static const int sizes[] = {1, 2, 4, 4};
    return sizes[pick(4)];
  }
  /// A memory operand inside the data area or the stack.
  x86::Mem mem(int sz) {
    switch (pick(6)) {
      case 0: return x86::ptr(x86::ebx, static_cast<int32_t>(pick(0x100) & ~(sz - 1)), static_cast<uint32_t>(sz));
      case 1: return x86::ptr(x86::ebp, -static_cast<int32_t>(pick(0x100) & ~(sz - 1)) - 4, static_cast<uint32_t>(sz));
      case 2:
        return x86::ptr(static_cast<uint64_t>(kDataBase + 0x400 + (pick(0x100) & ~(sz - 1))),
                        static_cast<uint32_t>(sz));
      case 3: return x86::ptr(x86::esp, static_cast<int32_t>(pick(0x40) & ~3), static_cast<uint32_t>(sz));
      case 4: {
        // [ebx + esi*scale + disp] with ESI first bounded (flags change, deterministically).
        a.and_(x86::esi, 0xFF);
        return x86::ptr(x86::ebx, x86::esi, static_cast<uint32_t>(pick(4)), pick(0x80), static_cast<uint32_t>(sz));
      }
      default: {
        // fs:[disp]: a segment with a non-zero base.
        x86::Mem m = x86::ptr(static_cast<uint64_t>(0x10 + (pick(0x100) & ~(sz - 1))), static_cast<uint32_t>(sz));
        m.setSegment(x86::fs);
        return m;
      }
    }
  }
  void define_flags() { a.cmp(x86::eax, static_cast<int32_t>(u32())); }

  void alu() {
    static const InstId ops[] = {x86::Inst::kIdAdd, x86::Inst::kIdOr,  x86::Inst::kIdAdc,
                                 x86::Inst::kIdSbb, x86::Inst::kIdAnd, x86::Inst::kIdSub,
                                 x86::Inst::kIdXor, x86::Inst::kIdCmp, x86::Inst::kIdTest};
    const InstId op = ops[pick(9)];
    const int sz = size();
    const x86::Gp d = sized(dst32(), sz);
    const uint32_t mask = sz == 4 ? 0xFFFFFFFFu : (1u << (8 * sz)) - 1;
    switch (pick(5)) {
      case 0: a.emit(op, d, sized(any32(), sz)); break;
      case 1: a.emit(op, d, Imm(u32() & mask)); break;
      case 2:
        if (op != x86::Inst::kIdTest) {
          a.emit(op, d, mem(sz));
          break;
        }
        [[fallthrough]];
      case 3: a.emit(op, mem(sz), d); break;
      default: a.emit(op, mem(sz), Imm(u32() & mask)); break;
    }
  }
  void unary() {
    static const InstId ops[] = {x86::Inst::kIdInc, x86::Inst::kIdDec, x86::Inst::kIdNeg, x86::Inst::kIdNot};
    const int sz = size();
    if (coin()) a.emit(ops[pick(4)], sized(dst32(), sz));
    else a.emit(ops[pick(4)], mem(sz));
  }
  void shift() {
    static const InstId ops[] = {x86::Inst::kIdRol, x86::Inst::kIdRor, x86::Inst::kIdRcl, x86::Inst::kIdRcr,
                                 x86::Inst::kIdShl, x86::Inst::kIdShr, x86::Inst::kIdSar};
    const int sz = size();
    const InstId op = ops[pick(7)];
    const bool by_cl = coin();
    x86::Gp r = dst32();
    if (by_cl && r == x86::ecx) r = x86::eax;
    if (coin()) {
      if (by_cl) a.emit(op, sized(r, sz), x86::cl);
      else a.emit(op, sized(r, sz), Imm(pick(32)));
    } else {
      if (by_cl) a.emit(op, mem(sz), x86::cl);
      else a.emit(op, mem(sz), Imm(pick(32)));
    }
    define_flags();
  }
  void muldiv() {
    switch (pick(5)) {
      case 0: a.mul(coin() ? x86::ecx : x86::esi); break;
      case 1: a.imul(x86::edx, x86::esi); break;
      case 2: a.imul(x86::eax, mem(4), Imm(static_cast<int32_t>(u32() % 1000) - 500)); break;
      case 3: {
        a.xor_(x86::edx, x86::edx);
        a.mov(x86::ecx, (u32() & 0xFFFF) | 1);
        a.div(x86::ecx);
        break;
      }
      default: {
        a.mov(x86::ecx, (u32() & 0x7FFF) | 1);
        a.cdq();
        a.idiv(x86::ecx);
        break;
      }
    }
    define_flags();
  }
  void moves() {
    const x86::Gp d = dst32();
    switch (pick(9)) {
      case 0: a.mov(d, any32()); break;
      case 1: a.mov(d, mem(4)); break;
      case 2: a.mov(mem(4), any32()); break;
      case 3: a.mov(d, u32()); break;
      case 4: a.movzx(d, coin() ? mem(1) : mem(2)); break;
      case 5:
        a.movsx(d, coin() ? x86::byte_ptr(x86::ebx, pick(64)) : x86::word_ptr(x86::ebp, -2 * pick(32) - 2));
        break;
      case 6:
        a.and_(x86::esi, 0xFF);
        a.lea(d, x86::ptr(x86::ebx, x86::esi, static_cast<uint32_t>(pick(4)), static_cast<int32_t>(u32())));
        break;
      case 7: a.mov(mem(1), sized(dst32(), 1)); break;
      default: a.mov(mem(2), Imm(u32() & 0xFFFF)); break;
    }
  }
  void conditional() {
    const auto cc = static_cast<x86::CondCode>(pick(16));
    switch (pick(3)) {
      case 0: a.set(cc, coin() ? sized(dst32(), 1) : x86::Gp(x86::al)); break;
      case 1: a.cmov(cc, dst32(), coin() ? any32() : x86::Gp(x86::ecx)); break;
      default: a.cmov(cc, dst32(), mem(4)); break;
    }
  }
  void bits() {
    static const InstId ops[] = {x86::Inst::kIdBt, x86::Inst::kIdBts, x86::Inst::kIdBtr, x86::Inst::kIdBtc};
    switch (pick(6)) {
      case 0: a.emit(ops[pick(4)], dst32(), any32()); break;
      case 1: a.emit(ops[pick(4)], mem(4), Imm(pick(32))); break;
      case 2: a.bsf(dst32(), any32()); break;
      case 3: a.bsr(dst32(), mem(4)); break;
      case 4: a.shld(x86::eax, x86::edx, Imm(1 + pick(31))); break;
      default: a.shrd(x86::edi, x86::esi, Imm(1 + pick(31))); break;
    }
    define_flags();
  }
  void exchange() {
    switch (pick(6)) {
      case 0: a.bswap(dst32()); break;
      case 1: a.xchg(dst32(), dst32()); break;
      case 2: a.xchg(mem(4), dst32()); break;
      case 3: a.xadd(mem(4), dst32()); break;
      case 4: a.cmpxchg(mem(4), dst32()); break;  // uses EAX implicitly
      default: a.cmpxchg(x86::esi, x86::edx); break;
    }
  }
  void stack() {
    switch (pick(5)) {
      case 0:
        a.push(any32());
        ++pushed;
        break;
      case 1:
        a.push(Imm(static_cast<int32_t>(u32())));
        ++pushed;
        break;
      case 2:
        a.push(mem(4));
        ++pushed;
        break;
      case 3:
        if (pushed) {
          a.pop(dst32());
          --pushed;
        }
        break;
      default: {
        if (functions.size() < 4) functions.push_back(a.newLabel());
        a.call(functions[static_cast<size_t>(pick(static_cast<int>(functions.size())))]);
        break;
      }
    }
  }
  void branch() {
    Label skip = a.newLabel();
    a.j(static_cast<x86::CondCode>(pick(16)), skip);
    alu();
    if (coin()) unary();
    a.bind(skip);
  }
  void loop() {
    Label top = a.newLabel();
    a.mov(x86::ecx, 1 + pick(8));
    a.bind(top);
    a.add(x86::eax, x86::edx);
    a.rol(x86::edx, 3);
    a.loop(top);
  }
  /// A string instruction of any kind, size and direction (DF=1 sometimes stays set for
  /// what follows), on the data area, now and then across its page boundary.
  void strings() {
    const bool down = coin();
    const int sz = size();
    const int32_t room = down ? 0x80 : 0;  // DF=1 walks down from the start
    a.lea(x86::esi, x86::ptr(x86::ebx, 0x100 + room + pick(0x80)));
    if (pick(4) == 0) {
      a.lea(x86::edi, x86::ptr(x86::ebx, 0xFC0 + pick(0x80)));  // kDataBase + 0x1000 is a page boundary
    } else {
      a.lea(x86::edi, x86::ptr(x86::ebx, 0x300 + room + pick(0x80)));
    }
    a.mov(x86::ecx, pick(16));
    if (down) a.std();
    static const InstId ops[] = {x86::Inst::kIdMovs, x86::Inst::kIdStos, x86::Inst::kIdLods, x86::Inst::kIdCmps,
                                 x86::Inst::kIdScas};
    const InstId op = ops[pick(5)];
    switch (pick(3)) {
      case 0: a.rep(); break;
      case 1:
        if (op == x86::Inst::kIdCmps || op == x86::Inst::kIdScas) a.repne();
        else a.rep();
        break;
      default: break;
    }
    const x86::Mem src = x86::ptr(x86::esi, 0, static_cast<uint32_t>(sz));
    const x86::Mem dst = x86::ptr(x86::edi, 0, static_cast<uint32_t>(sz));
    const x86::Gp acc = sz == 1 ? x86::Gp(x86::al) : sz == 2 ? x86::Gp(x86::ax) : x86::Gp(x86::eax);
    switch (op) {
      case x86::Inst::kIdMovs: a.emit(op, dst, src); break;
      case x86::Inst::kIdStos: a.emit(op, dst, acc); break;
      case x86::Inst::kIdLods: a.emit(op, acc, src); break;
      case x86::Inst::kIdCmps: a.emit(op, src, dst); break;
      default: a.emit(op, acc, dst); break;
    }
    if (down && coin()) a.cld();
  }
  /// cli/sti/pushf/popf at CPL 0. popf loads only values made here (never TF: a trap
  /// would need an IDT), with random IF, DF, status, IOPL, NT, AC, ID and noise in the bits
  /// popf ignores.
  void eflags_ops() {
    switch (pick(7)) {
      case 0: a.cli(); break;
      case 1: a.sti(); break;
      case 2:
        a.pushfd();
        ++pushed;
        break;  // popped into a register later
      case 3: {
        constexpr uint32_t kLoadable = flags::Status | flags::DF | flags::IF | flags::IOPL | flags::NT | flags::AC |
                                       flags::ID;
        constexpr uint32_t kIgnored = ~(flags::Writable | flags::Reserved1) | flags::RF | flags::VM | flags::VIF |
                                      flags::VIP;
        const uint32_t noise = pick(4) == 0 ? (u32() & kIgnored) : 0;
        a.push(Imm(static_cast<int32_t>((u32() & kLoadable) | noise)));
        a.popfd();
        break;
      }
      case 4:
        a.pushfd();
        a.popfd();
        break;
      case 5:
        if (coin()) a.std();
        else a.cld();
        break;
      default: {
        // IF off and back around some work, as local_irq_save/restore do. Registers only:
        // a memory operand could be the saved image at [esp].
        a.pushfd();
        a.cli();
        a.add(dst32(), any32());
        a.popfd();
        break;
      }
    }
  }
  void misc() {
    switch (pick(8)) {
      case 0: a.cwde(); break;
      case 1: a.cdq(); break;
      case 2: a.clc(); break;
      case 3: a.stc(); break;
      case 4: a.cmc(); break;
      case 5: a.lahf(); break;
      case 6: a.sahf(); break;
      default: a.nop(); break;
    }
  }
  void one() {
    switch (pick(17)) {
      case 0:
      case 1:
      case 2: alu(); break;
      case 3: unary(); break;
      case 4: shift(); break;
      case 5: muldiv(); break;
      case 6:
      case 7: moves(); break;
      case 8: conditional(); break;
      case 9: bits(); break;
      case 10: exchange(); break;
      case 11: stack(); break;
      case 12: branch(); break;
      case 13: loop(); break;
      case 14: strings(); break;
      case 15: eflags_ops(); break;
      default: misc(); break;
    }
  }
};

}  // namespace

Program generate(uint64_t seed, int length) {
  Program p;
  p.seed = seed;
  CodeHolder code;
  code.init(Environment(Arch::kX86), kCodeBase);
  StringLogger logger;
  code.setLogger(&logger);
  x86::Assembler a(&code);
  Gen g{std::mt19937_64(seed), a, 0, {}};

  for (int i = 0; i < length; ++i) g.one();
  while (g.pushed > 0) {
    a.pop(x86::edx);
    --g.pushed;
  }
  a.cld();
  a.hlt();
  for (const Label& f : g.functions) {
    a.bind(f);
    a.add(x86::eax, x86::Mem(x86::ptr(x86::esp, 4, 4)));
    a.xor_(x86::edx, x86::eax);
    a.ret();
  }
  code.flatten();
  code.resolveUnresolvedLinks();
  code.relocateToBase(kCodeBase);
  p.code.resize(code.codeSize());
  code.copyFlattenedData(p.code.data(), p.code.size());

  std::string text = logger.data();
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    p.listing.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }

  p.data.resize(kDataSize);
  for (auto& b : p.data) b = static_cast<uint8_t>(g.rng());

  CpuState& cpu = p.initial;
  cpu.reset();
  cpu.cr0 |= cr0::PE;
  for (auto& s : cpu.seg) s = SegmentCache{0x10, 0, 0xFFFFFFFF, 0xC093};
  cpu.sreg(SegReg::Cs) = SegmentCache{0x08, 0, 0xFFFFFFFF, 0xC09B};
  cpu.sreg(SegReg::Fs) = SegmentCache{0x18, kFsBase, 0xFFFFFFFF, 0xC093};
  cpu.eip = kCodeBase;
  for (auto& r : cpu.gpr) r = static_cast<uint32_t>(g.rng());
  cpu.reg(Gpr::Ebx) = kDataBase;
  cpu.reg(Gpr::Ebp) = kDataBase + 0x1000;
  cpu.reg(Gpr::Esp) = kStackTop;
  cpu.eflags = flags::Reserved1 | (static_cast<uint32_t>(g.rng()) & (flags::Status | flags::IF));
  return p;
}

}  // namespace vmm86::difftest
