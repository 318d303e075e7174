// Programs for the wide differential test: random machine states and units, each unit one
// instruction form (wide_forms.cpp) whose operands are made meaningful (see wide.h).
#include <Zydis/Zydis.h>

#include <cstring>
#include <map>
#include <random>
#include <sstream>

#include "decoder/decoder.h"
#include "tests/differential/wide.h"

namespace vmm86::difftest::wide {

namespace {

using bttest::kKernelCs;
using bttest::kKernelDs;
using bttest::kUserCs;
using bttest::kUserDs;

constexpr uint8_t kSegPrefix[6] = {0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65};
constexpr uint8_t kIncEdx = 0x42;  ///< the filler a taken relative branch skips

struct Rng {
  std::mt19937_64 r;
  explicit Rng(uint64_t seed) : r(seed) {}
  uint32_t u32() { return static_cast<uint32_t>(r()); }
  uint32_t pick(uint32_t n) { return n ? static_cast<uint32_t>(r() % n) : 0; }
  bool coin() { return (r() & 1) != 0; }
  bool one_in(uint32_t n) { return pick(n) == 0; }
};

// ---- machine state ----

enum DescKind : int {
  kFlat,
  kBasedBig,
  kBasedLimited,
  kBasedReadOnly,
  kExpandDown,
  kReadableCode,
  kNotAccessed,
  kExecOnly,
  kKinds
};

Descriptor make_descriptor(Rng& rng, int kind, bool user) {
  const uint8_t dpl = user ? 0x60 : 0;
  // Bases below kData by at most 0xC00F: 16-bit offsets still reach the data area.
  const uint32_t r = rng.pick(0xC01) * 16 + (rng.one_in(8) ? rng.pick(16) : 0);
  const uint32_t base = kData - r;
  switch (kind) {
    case kFlat: return {0, 0xFFFFF, static_cast<uint8_t>(0x93 | dpl), 0xC};
    case kBasedBig: return {base, 0xFFFFF, static_cast<uint8_t>(0x93 | dpl), 0xC};
    case kBasedLimited: return {base, r + rng.pick(kDataBytes), static_cast<uint8_t>(0x93 | dpl), 0x4};
    case kBasedReadOnly: return {base, 0xFFFFF, static_cast<uint8_t>(0x91 | dpl), 0xC};
    case kExpandDown: return {base, r / 2, static_cast<uint8_t>(0x97 | dpl), 0x4};
    case kReadableCode: return {base, 0xFFFFF, static_cast<uint8_t>(0x9B | dpl), 0xC};
    case kNotAccessed: return {base, 0xFFFFF, static_cast<uint8_t>(0x92 | dpl), 0xC};
    default: return {base, 0xFFFFF, static_cast<uint8_t>(0x99 | dpl), 0xC};
  }
}

Setup random_setup(Rng& rng, int force_user = -1) {
  Setup s;
  s.user = force_user >= 0 ? force_user != 0 : rng.one_in(4);
  s.paging = rng.coin();
  // Rare enough that most programs get past their first floating-point instruction.
  if (rng.one_in(16)) s.cr0_bits |= cr0::TS;
  if (rng.one_in(24)) s.cr0_bits |= cr0::EM;
  if (rng.coin()) s.cr0_bits |= cr0::MP;
  if (!rng.one_in(12)) s.cr4 |= cr4::OSFXSR;
  if (rng.coin()) s.cr4 |= cr4::OSXMMEXCPT;
  if (rng.one_in(4)) s.cr4 |= cr4::TSD;
  if (rng.coin()) s.cr4 |= cr4::PSE;
  if (rng.coin()) s.cr4 |= cr4::PGE;
  s.pae = s.paging && rng.one_in(3);
  s.eflags = flags::Reserved1 | (rng.u32() & flags::Status) | (rng.coin() ? flags::DF : 0) |
             (rng.coin() ? flags::IF : 0) | (s.user ? rng.u32() & flags::IOPL : 0) | (rng.one_in(16) ? flags::NT : 0) |
             (rng.one_in(4) ? flags::ID : 0);
  for (auto& g : s.gpr) g = rng.u32();
  // Entries 0..kGoodEntries-1 are writable 4 GiB data (flat or based); the rest any kind.
  constexpr unsigned kGoodEntries = 6;
  s.pool[0] = make_descriptor(rng, kFlat, s.user);
  s.pool[1] = make_descriptor(rng, kBasedBig, s.user);
  for (unsigned i = 2; i < kPoolCount; ++i) {
    const int kind = i < kGoodEntries ? (rng.coin() ? kFlat : kBasedBig) : static_cast<int>(rng.pick(kKinds));
    s.pool[i] = make_descriptor(rng, kind, s.user);
  }
  for (int r = 0; r < 6; ++r) {
    if (r == static_cast<int>(SegReg::Cs)) {
      s.seg[static_cast<size_t>(r)] = -1;
    } else if (r == static_cast<int>(SegReg::Ss)) {
      s.seg[static_cast<size_t>(r)] = static_cast<int>(rng.pick(2));
    } else {
      // DS/ES mostly usable; FS/GS (reached only through overrides) any kind.
      const bool odd = r >= static_cast<int>(SegReg::Fs) ? rng.coin() : rng.one_in(10);
      int i = static_cast<int>(odd ? rng.pick(kPoolCount) : rng.pick(kGoodEntries));
      if ((s.pool[static_cast<size_t>(i)].access & 0x0A) == 0x08) i = 0;  // execute-only code is not loadable
      s.seg[static_cast<size_t>(r)] = i;
    }
  }
  const uint32_t ss_base = s.pool[static_cast<size_t>(s.seg[static_cast<size_t>(SegReg::Ss)])].base;
  s.gpr[static_cast<size_t>(Gpr::Esp)] = kStackTop - 0x800 - ss_base;
  // x87/SSE: masked exceptions mostly, random registers, a random tag word.
  auto put16 = [&](size_t off, uint16_t v) { std::memcpy(&s.fxsave[off], &v, 2); };
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(&s.fxsave[off], &v, 4); };
  put16(0, rng.one_in(4) ? static_cast<uint16_t>((rng.u32() & 0x0F3F) | 0x40) : 0x037F);
  s.fxsave[4] = static_cast<uint8_t>(rng.u32());
  put32(24, rng.one_in(4) ? (rng.u32() & 0xFFBF) : 0x1F80);
  put32(28, 0xFFFF);
  for (size_t i = 0; i < 8; ++i) {
    for (size_t b = 0; b < 10; ++b) s.fxsave[32 + 16 * i + b] = static_cast<uint8_t>(rng.u32());
    for (size_t b = 0; b < 16; ++b) s.fxsave[160 + 16 * i + b] = static_cast<uint8_t>(rng.u32());
  }
  s.data.resize(kDataBytes);
  for (auto& b : s.data) b = static_cast<uint8_t>(rng.u32());
  s.low_data.resize(kLowDataBytes);
  for (auto& b : s.low_data) b = static_cast<uint8_t>(rng.u32());
  if (rng.one_in(4)) s.irq_vector = static_cast<int>(0x20 + rng.pick(16));
  return s;
}

// ---- units ----

/// What the generator knows of the machine while it lays units out.
struct Model {
  std::array<uint32_t, 6> base{};
};

uint16_t pool_selector(unsigned i, bool user) {
  return static_cast<uint16_t>(((kPoolFirst + i) << 3) | (user ? 3 : 0));
}

/// Base of the segment a selector names, as far as the generator knows (machine entries: 0).
uint32_t base_of(const Setup& s, uint16_t sel) {
  const unsigned idx = sel >> 3;
  if (idx >= kPoolFirst && idx < kPoolFirst + kPoolCount) return s.pool[idx - kPoolFirst].base;
  return 0;
}

/// A selector to load into segment register `seg`: mostly one that loads, sometimes one
/// that faults (null into SS, a code or system segment, beyond the GDT limit, wrong RPL).
uint16_t pick_selector(Rng& rng, const Setup& s, int seg) {
  const uint16_t rpl = s.user ? 3 : 0;
  if (rng.one_in(6)) {
    static const uint16_t kOdd[] = {0, 0x08, 0x1B, 0x28, 0x200, 0x30, 0xF8};
    const uint16_t sel = kOdd[rng.pick(7)];
    return rng.one_in(4) ? static_cast<uint16_t>(sel ^ 3) : sel;
  }
  if (seg == static_cast<int>(SegReg::Ss)) {
    switch (rng.pick(3)) {
      case 0: return s.user ? kUserDs : kKernelDs;
      default: return pool_selector(rng.pick(2), s.user);
    }
  }
  if (rng.one_in(8)) return rng.coin() ? 0 : static_cast<uint16_t>(s.user ? kUserDs : kKernelDs);
  return static_cast<uint16_t>(pool_selector(rng.pick(kPoolCount), s.user) | rpl);
}

struct Mem {
  int seg = 3;
  uint32_t ea = 0;
};

class UnitBuilder {
 public:
  UnitBuilder(const Form& f, uint64_t seed, Model& model, const Setup& setup)
      : form_(f), rng_(seed), model_(model), setup_(setup) {}

  /// Lays the unit out assuming its instruction starts at `insn_at`.
  void emit(uint32_t insn_at) {
    insn_at_ = insn_at;
    ins_ = form_.bytes;
    const Decoder dec(CodeSize::Bits32);
    if (dec.decode(ins_, &insn_) != DecodeStatus::Ok) return;
    redraw_immediates();
    redraw_segment_override();
    if (dec.decode(ins_, &insn_) != DecodeStatus::Ok) return;
    next_ = insn_at + insn_.length();
    fix_operands();
  }

  std::vector<uint8_t> pre, post;
  [[nodiscard]] const std::vector<uint8_t>& ins() const { return ins_; }
  [[nodiscard]] uint32_t insn_at() const { return insn_at_; }

 private:
  std::vector<uint8_t> ins_;
  uint32_t insn_at_ = 0;
  void b(std::vector<uint8_t>& v, uint8_t x) { v.push_back(x); }
  void d16(std::vector<uint8_t>& v, uint16_t x) {
    b(v, static_cast<uint8_t>(x));
    b(v, static_cast<uint8_t>(x >> 8));
  }
  void d32(std::vector<uint8_t>& v, uint32_t x) {
    d16(v, static_cast<uint16_t>(x));
    d16(v, static_cast<uint16_t>(x >> 16));
  }
  void patch(size_t off, unsigned size, uint64_t value) {
    for (unsigned i = 0; i < size && off + i < ins_.size(); ++i) ins_[off + i] = static_cast<uint8_t>(value >> (8 * i));
  }
  /// mov seg:[ea], imm32 / imm16 with an absolute 32-bit address.
  void store32(const Mem& m, uint32_t off, uint32_t v) {
    b(pre, kSegPrefix[m.seg]);
    b(pre, 0xC7);
    b(pre, 0x05);
    d32(pre, m.ea + off);
    d32(pre, v);
  }
  void store16(const Mem& m, uint32_t off, uint16_t v) {
    b(pre, kSegPrefix[m.seg]);
    b(pre, 0x66);
    b(pre, 0xC7);
    b(pre, 0x05);
    d32(pre, m.ea + off);
    d16(pre, v);
  }
  void push32(uint32_t v) {
    b(pre, 0x68);
    d32(pre, v);
  }
  /// Sets a register (the whole 32-bit register; a narrower one keeps random upper bits).
  void set_reg(ZydisRegister r, uint32_t v) {
    const auto g = gpr_ref(r);
    if (!g) return;
    uint32_t full = v;
    if (g->width == 16) full = (rng_.u32() & 0xFFFF0000u) | (v & 0xFFFF);
    if (g->width == 8)
      full = g->high_byte ? (rng_.u32() & 0xFFFF00FFu) | ((v & 0xFF) << 8) : (rng_.u32() & ~0xFFu) | (v & 0xFF);
    regs_[g->index] = full;
  }
  void set_gpr(Gpr r, uint32_t v) { regs_[static_cast<uint8_t>(r)] = v; }

  void redraw_immediates() {
    for (const auto& imm : insn_.raw.raw.imm) {
      if (imm.size && !imm.is_relative) patch(imm.offset, imm.size / 8, rng_.r());
    }
    if (insn_.raw.raw.disp.size) patch(insn_.raw.raw.disp.offset, insn_.raw.raw.disp.size / 8, rng_.r());
  }

  /// The form stands for every segment override: draw one (CS, read-only, rarely).
  void redraw_segment_override() {
    static const uint8_t kDrawn[] = {0x26, 0x36, 0x3E, 0x64, 0x65, 0x26, 0x36, 0x3E, 0x64, 0x65, 0x26,
                                     0x36, 0x3E, 0x64, 0x65, 0x26, 0x36, 0x3E, 0x64, 0x65, 0x2E};
    for (uint8_t i = 0; i < insn_.raw.raw.prefix_count && i < ins_.size(); ++i) {
      for (uint8_t p : kSegPrefix) {
        if (ins_[i] == p) ins_[i] = kDrawn[rng_.pick(sizeof kDrawn)];
      }
    }
  }

  uint32_t pick_linear(unsigned size) {
    const uint32_t c = rng_.pick(100);
    const unsigned room = size < 64 ? 64 : size;
    uint32_t linear;
    if (c < 84) {
      linear = kData + rng_.pick(kDataBytes - room);
    } else if (c < 90) {
      return kData + 0x1000 - 1 - rng_.pick(size < 15 ? size : 15);  // across a page boundary
    } else if (c < 93) {
      linear = insn_at_ + 8 + rng_.pick(0x80);  // code ahead: self-modifying
    } else if (c < 97) {
      linear = kLowData + rng_.pick(kLowDataBytes - room);
    } else if (c < 99) {
      return kData + kDataBytes - rng_.pick(4);
    } else {
      return rng_.u32();
    }
    // Natural alignment mostly (movaps and friends fault otherwise).
    if (!rng_.one_in(16)) linear &= ~((size >= 16 ? 16u : size >= 8 ? 8u : size >= 4 ? 4u : size >= 2 ? 2u : 1u) - 1);
    return linear;
  }

  /// Aims a memory operand at compared memory; returns where it points.
  Mem aim(const ZydisDecodedOperand& op) {
    Mem m;
    m.seg = segment_number(op.mem.segment).value_or(3);
    const uint32_t seg_base = model_.base[static_cast<size_t>(m.seg)];
    const bool a16 = insn_.address_size() == 16;
    const unsigned size = op.size ? op.size / 8 : 1;
    uint32_t linear = pick_linear(size);
    uint32_t ea = linear - seg_base;
    if (a16 && ea > 0xFFFF) {
      linear = (kLowData + rng_.pick(kLowDataBytes - 64)) & ~15u;
      ea = linear - seg_base;
      if (ea > 0xFFFF) ea = rng_.pick(0x10000);
    }
    m.ea = ea;
    const uint32_t mask = a16 ? 0xFFFF : 0xFFFFFFFF;
    const auto disp = static_cast<uint32_t>(op.mem.disp.value);
    const bool has_base = op.mem.base != ZYDIS_REGISTER_NONE, has_index = op.mem.index != ZYDIS_REGISTER_NONE;
    if (!has_base && !has_index) {
      if (insn_.raw.raw.disp.size) patch(insn_.raw.raw.disp.offset, insn_.raw.raw.disp.size / 8, ea);
      return m;
    }
    const uint32_t scale = has_index ? (op.mem.scale ? op.mem.scale : 1) : 0;
    const auto bi = has_base ? gpr_ref(op.mem.base) : std::nullopt;
    const auto ii = has_index ? gpr_ref(op.mem.index) : std::nullopt;
    if (bi && ii && bi->index == ii->index && !ii->high_byte) {
      // [r + r*s]: r*(1+s) = ea - disp, as close as integers allow.
      const uint32_t v = ((ea - disp) & mask) / (1 + scale);
      set_reg(op.mem.base, v);
      m.ea = (v * (1 + scale) + disp) & mask;
      return m;
    }
    uint32_t index_value = 0;
    if (ii) {
      // A 16-bit shld/shrd counts with CL: an ECX index stays a defined count (<= 16).
      const bool count_reg = (mnem() == ZYDIS_MNEMONIC_SHLD || mnem() == ZYDIS_MNEMONIC_SHRD) && ii->index == 1;
      index_value = rng_.pick(count_reg ? 17 : 0x40);
      set_reg(op.mem.index, index_value);
    }
    if (bi) {
      set_reg(op.mem.base, (ea - disp - index_value * scale) & mask);
    } else if (insn_.raw.raw.disp.size) {
      // [index*scale + disp32]: the displacement carries the address.
      patch(insn_.raw.raw.disp.offset, insn_.raw.raw.disp.size / 8, ea - index_value * scale);
    }
    return m;
  }

  ZydisMnemonic mnem() const { return insn_.mnemonic(); }

  void fix_operands() {
    const ZydisMnemonic mn = mnem();
    const bool enter_leave = mn == ZYDIS_MNEMONIC_ENTER || mn == ZYDIS_MNEMONIC_LEAVE;
    std::vector<Mem> mems;
    // Counts first: an address register set below wins over these.
    // With 16-bit addressing only CX counts: random upper bits check that.
    const uint32_t count_noise = insn_.address_size() == 16 ? rng_.u32() & 0xFFFF0000u : 0;
    if (insn_.rep_prefix() != RepPrefix::None) set_gpr(Gpr::Ecx, count_noise | rng_.pick(24));
    switch (mn) {
      case ZYDIS_MNEMONIC_LOOP:
      case ZYDIS_MNEMONIC_LOOPE:
      case ZYDIS_MNEMONIC_LOOPNE:
      case ZYDIS_MNEMONIC_JCXZ:
      case ZYDIS_MNEMONIC_JECXZ: set_gpr(Gpr::Ecx, count_noise | rng_.pick(3)); break;
      case ZYDIS_MNEMONIC_SHLD:
      case ZYDIS_MNEMONIC_SHRD:
        // A 16-bit shift by more than 16 leaves the result undefined (SDM): keep counts below.
        if (insn_.operand_size() == 16) {
          set_gpr(Gpr::Ecx, (rng_.u32() & ~0x1Fu) | rng_.pick(17));
          for (const auto& imm : insn_.raw.raw.imm) {
            if (imm.size == 8) patch(imm.offset, 1, (rng_.u32() & 0xE0u) | rng_.pick(17));
          }
        }
        break;
      case ZYDIS_MNEMONIC_DIV:
      case ZYDIS_MNEMONIC_IDIV:
        if (rng_.coin()) set_gpr(Gpr::Edx, rng_.pick(4));
        break;
      case ZYDIS_MNEMONIC_WRMSR:
      case ZYDIS_MNEMONIC_RDMSR: {
        static const uint32_t kMsrs[] = {0x10, 0x174, 0x175, 0x176, 0x1B, 0x277, 0x2FF, 0xC0000080};
        set_gpr(Gpr::Ecx, rng_.one_in(8) ? rng_.u32() : kMsrs[rng_.pick(8)]);
        break;
      }
      case ZYDIS_MNEMONIC_IN:
      case ZYDIS_MNEMONIC_OUT:
      case ZYDIS_MNEMONIC_INSB:
      case ZYDIS_MNEMONIC_INSW:
      case ZYDIS_MNEMONIC_INSD:
      case ZYDIS_MNEMONIC_OUTSB:
      case ZYDIS_MNEMONIC_OUTSW:
      case ZYDIS_MNEMONIC_OUTSD: {
        // Port 0xE0 raises an interrupt with vector AL (tests/support/bt_machine.h).
        const uint16_t port = rng_.one_in(3) ? bttest::kIrqPort : 0x80;
        set_gpr(Gpr::Edx, (rng_.u32() & 0xFFFF0000u) | port);
        set_gpr(Gpr::Eax, (rng_.u32() & ~0xFFu) | (0x20 + rng_.pick(16)));
        for (const auto& imm : insn_.raw.raw.imm) {
          if (imm.size == 8) patch(imm.offset, 1, port & 0xFF);
        }
        break;
      }
      default: break;
    }
    if (enter_leave) {
      b(pre, 0x89);
      b(pre, 0xE5);  // mov ebp, esp: a frame that exists
      if (mn == ZYDIS_MNEMONIC_ENTER) {
        patch(insn_.raw.raw.imm[0].offset, 2, rng_.pick(0x100));
        patch(insn_.raw.raw.imm[1].offset, 1, rng_.pick(4));
      }
    }
    for (uint8_t i = 0; i < insn_.raw.operand_count; ++i) {
      const ZydisDecodedOperand& op = insn_.operands[i];
      if (op.type != ZYDIS_OPERAND_TYPE_MEMORY) continue;
      if (op.mem.type != ZYDIS_MEMOP_TYPE_MEM && op.mem.type != ZYDIS_MEMOP_TYPE_AGEN) continue;
      const bool stack = op.visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN &&
                         (op.mem.base == ZYDIS_REGISTER_ESP || op.mem.base == ZYDIS_REGISTER_SP);
      if (stack || enter_leave) continue;
      mems.push_back(aim(op));
    }
    const Mem* mem = mems.empty() ? nullptr : &mems.front();
    const ZydisDecodedOperand& op0 = insn_.operands[0];
    const ZydisDecodedOperand& op1 = insn_.operands[1];
    const uint16_t cs = setup_.user ? kUserCs : kKernelCs;
    auto code_selector = [&]() -> uint16_t {
      if (!rng_.one_in(8)) return cs;
      static const uint16_t kOther[] = {kKernelCs, kUserCs, kKernelDs, 0x28, 0, 0x200};
      return kOther[rng_.pick(6)];
    };
    const bool far = insn_.raw.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;
    switch (mn) {
      case ZYDIS_MNEMONIC_JMP:
      case ZYDIS_MNEMONIC_CALL:
        if (op0.type == ZYDIS_OPERAND_TYPE_POINTER) {
          patch(ins_.size() - 6, 4, next_);
          patch(ins_.size() - 2, 2, code_selector());
        } else if (op0.type == ZYDIS_OPERAND_TYPE_REGISTER) {
          set_reg(op0.reg.value, next_);
        } else if (op0.type == ZYDIS_OPERAND_TYPE_MEMORY && mem) {
          store32(*mem, 0, next_);
          if (far) store16(*mem, 4, code_selector());
        }
        break;
      case ZYDIS_MNEMONIC_RET:
        if (far) {
          if (!setup_.user && rng_.one_in(6)) {
            push32(kUserDs);  // an outward return to CPL 3
            push32(kStackTop - 0x400);
            push32(kUserCs);
          } else {
            push32(code_selector());
          }
        }
        push32(next_);
        break;
      case ZYDIS_MNEMONIC_IRETD: {
        const bool outward = !setup_.user && rng_.one_in(6);
        if (outward) {
          push32(kUserDs);
          push32(kStackTop - 0x400);
        }
        push32(flags::Reserved1 | (rng_.u32() & (flags::Status | flags::IF | flags::DF)) |
               (rng_.one_in(16) ? flags::TF : 0));
        push32(outward ? kUserCs : code_selector());
        push32(next_);
        break;
      }
      case ZYDIS_MNEMONIC_INT: {
        const uint32_t c = rng_.pick(10);
        patch(insn_.raw.raw.imm[0].offset, 1,
              c < 7   ? 0x20 + rng_.pick(16)
              : c < 8 ? rng_.pick(32)
              : c < 9 ? 0x80
                      : rng_.u32());
        break;
      }
      case ZYDIS_MNEMONIC_POP:
      case ZYDIS_MNEMONIC_MOV:
        if (op0.type == ZYDIS_OPERAND_TYPE_REGISTER && ZydisRegisterGetClass(op0.reg.value) == ZYDIS_REGCLASS_SEGMENT) {
          const int seg = segment_number(op0.reg.value).value_or(3);
          const uint16_t sel = pick_selector(rng_, setup_, seg);
          if (mn == ZYDIS_MNEMONIC_POP) {
            if (insn_.operand_size() == 16) {
              b(pre, 0x66);
              b(pre, 0x68);
              d16(pre, sel);
            } else {
              push32(sel | (rng_.u32() & 0xFFFF0000u));
            }
          } else if (op1.type == ZYDIS_OPERAND_TYPE_REGISTER) {
            set_reg(op1.reg.value, sel);
          } else if (mem) {
            store16(*mem, 0, sel);
          }
          if (seg != static_cast<int>(SegReg::Cs) && (sel >> 2) != 0)
            model_.base[static_cast<size_t>(seg)] = base_of(setup_, sel);
        } else if (op0.type == ZYDIS_OPERAND_TYPE_REGISTER &&
                   ZydisRegisterGetClass(op0.reg.value) == ZYDIS_REGCLASS_CONTROL) {
          set_reg(op1.reg.value, control_value(op0.reg.value));
        } else if (op0.type == ZYDIS_OPERAND_TYPE_REGISTER &&
                   ZydisRegisterGetClass(op0.reg.value) == ZYDIS_REGCLASS_DEBUG) {
          set_reg(op1.reg.value, rng_.coin() ? 0 : rng_.u32());
        }
        break;
      case ZYDIS_MNEMONIC_LDS:
      case ZYDIS_MNEMONIC_LES:
      case ZYDIS_MNEMONIC_LFS:
      case ZYDIS_MNEMONIC_LGS:
      case ZYDIS_MNEMONIC_LSS: {
        if (!mem) break;
        const SegReg sr = mn == ZYDIS_MNEMONIC_LDS   ? SegReg::Ds
                          : mn == ZYDIS_MNEMONIC_LES ? SegReg::Es
                          : mn == ZYDIS_MNEMONIC_LFS ? SegReg::Fs
                          : mn == ZYDIS_MNEMONIC_LGS ? SegReg::Gs
                                                     : SegReg::Ss;
        const int seg = static_cast<int>(sr);
        const uint16_t sel = pick_selector(rng_, setup_, seg);
        const uint32_t off = sr == SegReg::Ss ? kStackTop - 0x400 - base_of(setup_, sel) : rng_.u32();
        if (insn_.operand_size() == 16) {
          store16(*mem, 0, static_cast<uint16_t>(off));
          store16(*mem, 2, sel);
        } else {
          store32(*mem, 0, off);
          store16(*mem, 4, sel);
        }
        if ((sel >> 2) != 0) model_.base[static_cast<size_t>(seg)] = base_of(setup_, sel);
        break;
      }
      case ZYDIS_MNEMONIC_LGDT:
      case ZYDIS_MNEMONIC_LIDT:
        if (!mem) break;
        if (rng_.one_in(8)) {
          store16(*mem, 0, static_cast<uint16_t>(rng_.u32()));
          store32(*mem, 2, rng_.u32());
        } else if (mn == ZYDIS_MNEMONIC_LGDT) {
          store16(*mem, 0, kGdtLimit);
          store32(*mem, 2, bttest::kGdt);
        } else {
          store16(*mem, 0, 256 * 8 - 1);
          store32(*mem, 2, bttest::kIdt);
        }
        break;
      case ZYDIS_MNEMONIC_LLDT:
      case ZYDIS_MNEMONIC_LTR:
      case ZYDIS_MNEMONIC_LMSW:
      case ZYDIS_MNEMONIC_VERR:
      case ZYDIS_MNEMONIC_VERW:
      case ZYDIS_MNEMONIC_LAR:
      case ZYDIS_MNEMONIC_LSL:
      case ZYDIS_MNEMONIC_ARPL: {
        const ZydisDecodedOperand& src = (mn == ZYDIS_MNEMONIC_LAR || mn == ZYDIS_MNEMONIC_LSL) ? op1 : op0;
        uint16_t v = rng_.one_in(3) ? static_cast<uint16_t>(rng_.u32()) : pick_selector(rng_, setup_, 3);
        if (mn == ZYDIS_MNEMONIC_LLDT && !rng_.one_in(4)) v = 0;
        if (mn == ZYDIS_MNEMONIC_LMSW) v = static_cast<uint16_t>(cr0::PE | cr0::ET | (rng_.u32() & 0xE));
        if (src.type == ZYDIS_OPERAND_TYPE_REGISTER && mn != ZYDIS_MNEMONIC_ARPL) {
          set_reg(src.reg.value, v);
        } else if (mem) {
          store16(*mem, 0, v);
        }
        break;
      }
      case ZYDIS_MNEMONIC_RDTSC:
      case ZYDIS_MNEMONIC_RDPMC:
        // A virtual time source: the engines need not agree on the value, only on the fault.
        b(post, 0xB8);
        d32(post, 0x7150C000);
        b(post, 0xBA);
        d32(post, 0x7150C001);
        break;
      default: break;
    }
    // Relative branches land right after a one-byte inc edx: taken skips it, not taken runs it.
    for (const auto& imm : insn_.raw.raw.imm) {
      if (imm.size && imm.is_relative) {
        patch(imm.offset, imm.size / 8, 1);
        rel_ = true;
      }
    }
    if (rel_) post.insert(post.begin(), kIncEdx);
    // The SDM leaves these flags undefined: define all six before anything can read them.
    if (insn_.raw.cpu_flags && insn_.raw.cpu_flags->undefined) {
      b(post, 0x3D);
      d32(post, rng_.u32());
    }
    for (const auto& [reg, value] : regs_) {
      b(pre, static_cast<uint8_t>(0xB8 + reg));
      d32(pre, value);
    }
  }

  uint32_t control_value(ZydisRegister cr) {
    switch (cr) {
      case ZYDIS_REGISTER_CR0: {
        uint32_t v = cr0::PE | cr0::ET | cr0::NE | (setup_.paging ? cr0::PG | cr0::WP : 0);
        if (rng_.one_in(10)) v ^= cr0::PG | (setup_.paging ? 0 : cr0::WP);  // paging switched
        if (rng_.one_in(4)) v |= cr0::TS;
        if (rng_.one_in(6)) v |= cr0::EM;
        if (rng_.coin()) v |= cr0::MP;
        if (rng_.one_in(8)) v ^= cr0::NE;
        return v;
      }
      case ZYDIS_REGISTER_CR3: return (setup_.pae ? kPaePdpt : bttest::kPageDir) | (rng_.u32() & 0x18);
      case ZYDIS_REGISTER_CR4: {
        constexpr uint32_t kAllowed = cr4::PSE | cr4::PGE | cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::TSD | cr4::DE |
                                      cr4::PCE | cr4::PVI | cr4::VME;
        const uint32_t v = rng_.one_in(16) ? rng_.u32()
                                           : rng_.u32() & kAllowed & ~(rng_.coin() ? cr4::PVI | cr4::VME : 0u);
        // PAE programs mostly keep PAE (dropping it reads the PDPT as a page directory).
        return setup_.pae && !rng_.one_in(8) ? v | cr4::PAE : v;
      }
      default: return rng_.u32();
    }
  }

  const Form& form_;
  Rng rng_;
  Model& model_;
  const Setup& setup_;
  Instruction insn_;
  uint32_t next_ = 0;
  bool rel_ = false;
  std::map<uint8_t, uint32_t> regs_;
};

/// Lays one unit out at `addr`; appends its bytes; returns where its own instruction is.
uint32_t instantiate(const Unit& u, uint32_t addr, Model& model, const Setup& setup, std::vector<uint8_t>& out) {
  const Form& f = forms()[u.form % forms().size()];
  // Pass 1 finds the preamble's length (it does not depend on the values), pass 2 lays the
  // unit out with the real addresses.
  Model scratch = model;
  UnitBuilder probe(f, u.seed, scratch, setup);
  probe.emit(addr);
  UnitBuilder real(f, u.seed, model, setup);
  real.emit(addr + static_cast<uint32_t>(probe.pre.size()));
  out.insert(out.end(), real.pre.begin(), real.pre.end());
  out.insert(out.end(), real.ins().begin(), real.ins().end());
  out.insert(out.end(), real.post.begin(), real.post.end());
  return real.insn_at();
}

std::vector<std::string> disassemble(const std::vector<uint8_t>& code, uint32_t base) {
  std::vector<std::string> lines;
  ZydisFormatter fmt;
  ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  size_t off = 0;
  while (off < code.size()) {
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    char text[128] = "(bad)";
    size_t len = 1;
    if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code.data() + off, code.size() - off, &insn, ops))) {
      ZydisFormatterFormatInstruction(&fmt, &insn, ops, insn.operand_count_visible, text, sizeof text, base + off,
                                      nullptr);
      len = insn.length;
    }
    std::ostringstream line;
    line << std::hex << base + off << ": ";
    for (size_t i = 0; i < len; ++i) {
      char hx[4];
      std::snprintf(hx, sizeof hx, "%02x", code[off + i]);
      line << hx;
    }
    line << "  " << text;
    lines.push_back(line.str());
    off += len;
  }
  return lines;
}

/// Forms the differential test leaves out, with the reason (the hostile fuzzer runs them).
bool usable(const Form& f) {
  // 16-bit near/far branches truncate EIP to 16 bits: into the system area below 64 KiB.
  const bool branch = f.mnemonic == "jmp" || f.mnemonic == "call" || f.mnemonic == "ret" || f.mnemonic == "iret" ||
                      f.mnemonic == "iretd" || f.mnemonic.rfind("j", 0) == 0 || f.mnemonic.rfind("loop", 0) == 0;
  if (branch && f.key.find(" o66") != std::string::npos) return false;
  if (f.mnemonic == "iret") return false;  // 66 cf: the 16-bit iret
  return true;
}

/// Usable forms grouped by mnemonic: random programs pick a mnemonic first, so that the
/// thousands of memory forms of x87/SSE rows do not crowd out the integer rows.
const std::vector<std::vector<uint32_t>>& usable_by_mnemonic() {
  static const std::vector<std::vector<uint32_t>> all = [] {
    std::map<std::string, std::vector<uint32_t>> by;
    for (uint32_t i = 0; i < forms().size(); ++i) {
      if (usable(forms()[i])) by[forms()[i].mnemonic].push_back(i);
    }
    std::vector<std::vector<uint32_t>> v;
    for (auto& [m, list] : by) v.push_back(std::move(list));
    return v;
  }();
  return all;
}

}  // namespace

void build(Program& p) {
  p.code.clear();
  p.unit_addr.clear();
  Model model;
  for (size_t r = 0; r < 6; ++r) {
    const int i = p.setup.seg[r];
    model.base[r] = i < 0 ? 0 : p.setup.pool[static_cast<size_t>(i)].base;
  }
  for (const Unit& u : p.units) {
    p.unit_addr.push_back(instantiate(u, kCode + static_cast<uint32_t>(p.code.size()), model, p.setup, p.code));
  }
  p.code.push_back(0xF4);  // hlt (at CPL 3: #GP, which ends the run as well)
  p.listing = disassemble(p.code, kCode);
}

Program random_program(uint64_t seed, int length) {
  Rng rng(seed);
  Program p;
  p.seed = seed;
  p.setup = random_setup(rng);
  // A unit may rewrite the code after it into anything, rdtsc included, whose value then
  // survives: both engines read the same virtual clock (translated rdtsc leaves for it).
  // The one-form programs of the coverage phase keep offset 0, where translated code runs
  // rdtsc natively (their rdtsc units overwrite the value).
  p.setup.tsc_offset = 0x5EED0000;
  const auto& groups = usable_by_mnemonic();
  for (int i = 0; i < length; ++i) {
    const auto& g = groups[rng.pick(static_cast<uint32_t>(groups.size()))];
    p.units.push_back(Unit{g[rng.pick(static_cast<uint32_t>(g.size()))], rng.r()});
  }
  build(p);
  return p;
}

Program form_program(uint32_t form, uint64_t seed) {
  Rng rng(seed ^ (uint64_t{form} * 0x9E3779B97F4A7C15ull));
  Program p;
  p.seed = seed;
  p.setup = random_setup(rng);
  p.units.push_back(Unit{form, rng.r()});
  build(p);
  return p;
}

bool form_usable(uint32_t form) { return usable(forms()[form]); }

Program hostile_program(uint64_t seed, Hostile kind) {
  Rng rng(seed);
  Program p;
  p.seed = seed;
  p.setup = random_setup(rng, 0);
  // SSE off (no OSFXSR, or EM/TS) far more often than in the differential programs.
  if (rng.one_in(3)) p.setup.cr4 &= ~cr4::OSFXSR;
  if (rng.one_in(4)) p.setup.cr0_bits |= rng.coin() ? cr0::TS : cr0::EM;
  // Nothing after a random rdtsc hides its value: both engines must read the same clock.
  p.setup.tsc_offset = 0x5EED0000;
  const auto& all = forms();
  auto raw_form = [&](std::vector<uint8_t>& out) {
    std::vector<uint8_t> b = all[rng.pick(static_cast<uint32_t>(all.size()))].bytes;
    const Decoder dec(CodeSize::Bits32);
    Instruction insn;
    if (dec.decode(b, &insn) == DecodeStatus::Ok) {
      for (const auto& imm : insn.raw.raw.imm) {
        for (unsigned i = 0; i < imm.size / 8u; ++i) b[imm.offset + i] = static_cast<uint8_t>(rng.u32());
      }
      for (unsigned i = 0; i < insn.raw.raw.disp.size / 8u; ++i)
        b[insn.raw.raw.disp.offset + i] = static_cast<uint8_t>(rng.u32());
    }
    out.insert(out.end(), b.begin(), b.end());
  };
  switch (kind) {
    case Hostile::RandomBytes: {
      const uint32_t n = 16 + rng.pick(112);
      for (uint32_t i = 0; i < n; ++i) p.code.push_back(static_cast<uint8_t>(rng.u32()));
      break;
    }
    case Hostile::RandomForms: {
      const uint32_t n = 4 + rng.pick(28);
      for (uint32_t i = 0; i < n; ++i) raw_form(p.code);
      break;
    }
    case Hostile::Mixed: {
      Model model;
      for (size_t r = 0; r < 6; ++r) {
        const int i = p.setup.seg[r];
        model.base[r] = i < 0 ? 0 : p.setup.pool[static_cast<size_t>(i)].base;
      }
      const auto& groups = usable_by_mnemonic();
      const uint32_t n = 4 + rng.pick(28);
      for (uint32_t i = 0; i < n; ++i) {
        if (rng.one_in(3)) {
          raw_form(p.code);
        } else {
          const auto& g = groups[rng.pick(static_cast<uint32_t>(groups.size()))];
          const Unit u{g[rng.pick(static_cast<uint32_t>(g.size()))], rng.r()};
          (void)instantiate(u, kCode + static_cast<uint32_t>(p.code.size()), model, p.setup, p.code);
        }
      }
      break;
    }
  }
  p.code.push_back(0xF4);
  p.listing = disassemble(p.code, kCode);
  return p;
}

std::string describe(const Program& p) {
  std::ostringstream out;
  const Setup& s = p.setup;
  out << std::hex << "seed " << p.seed << ": CPL " << (s.user ? 3 : 0) << ", paging "
      << (s.paging ? (s.pae ? "pae" : "on") : "off") << ", cr0 +" << s.cr0_bits << ", cr4 " << s.cr4 << ", eflags "
      << s.eflags << ", irq " << (s.irq_vector < 0 ? std::string("none") : std::to_string(s.irq_vector)) << "\n  regs";
  for (uint32_t g : s.gpr) out << " " << g;
  uint16_t fcw, fsw;
  uint32_t mxcsr;
  std::memcpy(&fcw, &s.fxsave[0], 2);
  std::memcpy(&fsw, &s.fxsave[2], 2);
  std::memcpy(&mxcsr, &s.fxsave[24], 4);
  out << "\n  fcw " << fcw << " fsw " << fsw << " ftw " << int(s.fxsave[4]) << " mxcsr " << mxcsr;
  out << "\n  segments (es cs ss ds fs gs):";
  for (size_t r = 0; r < 6; ++r) {
    const int i = s.seg[r];
    if (i < 0) {
      out << " flat";
    } else {
      const Descriptor& d = s.pool[static_cast<size_t>(i)];
      out << " [" << pool_selector(static_cast<unsigned>(i), s.user) << " base " << d.base << " limit " << d.limit
          << " acc " << int(d.access) << " fl " << int(d.flags) << "]";
    }
  }
  out << "\n  forms:";
  for (const Unit& u : p.units) out << " {" << forms()[u.form % forms().size()].key << "}";
  out << "\n";
  for (const auto& l : p.listing) out << "  " << l << "\n";
  return out.str();
}

}  // namespace vmm86::difftest::wide
