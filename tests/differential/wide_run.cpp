// Runs a wide program on the interpreter alone and on the BT engine, compares what they
// leave behind, shrinks divergent programs and names their class.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <regex>
#include <sstream>

#include "tests/differential/isolate.h"
#include "tests/differential/wide.h"

namespace vmm86::difftest::wide {

namespace {

using bttest::BtMachine;
using bttest::RunEnd;

/// Compared memory: name, guest-physical start, size.
struct Region {
  const char* name;
  uint32_t start, size;
};

std::vector<Region> regions(const Program& p) {
  return {{"data", kData, kDataBytes},
          {"low", kLowData, kLowDataBytes},
          {"stack", kStackTop - kStackBytes, kStackBytes},
          {"code", kCode, static_cast<uint32_t>(p.code.size()) + 0x100},
          {"gdt", bttest::kGdt, kGdtLimit + 1},
          {"ptes", kFirstPageTable, 0x1000},
          {"pdes", bttest::kPageDir, 8},
          {"pae", kPaePdpt, p.setup.pae ? kPaeTablesBytes : 0}};
}

SegmentCache cache_of(const Descriptor& d, uint16_t sel) {
  const uint32_t limit = (d.flags & 0x8) ? (d.limit << 12) | 0xFFF : d.limit;
  return SegmentCache{sel, d.base, limit, static_cast<uint16_t>((d.access | 1) | (d.flags << 12))};
}

void prepare(BtMachine& m, const Program& p) {
  const Setup& s = p.setup;
  m.poke(kCode, p.code.data(), p.code.size());
  m.poke(kData, s.data.data(), s.data.size());
  m.poke(kLowData, s.low_data.data(), s.low_data.size());
  // Exceptions: hlt where the vector can be read off EIP. Interrupts 0x20-0x2F: iretd.
  std::vector<uint8_t> stubs(bttest::kStubVectors * kStubBytes, 0x90);
  for (unsigned v = 0; v < bttest::kStubVectors; ++v) {
    uint8_t* st = &stubs[v * kStubBytes];
    if (v < 32) {
      st[0] = 0xF4, st[1] = 0xEB, st[2] = 0xFD;  // hlt; jmp back to it
    } else {
      st[0] = 0xCF;
    }
    m.set_gate(static_cast<uint8_t>(v), kStubs + v * kStubBytes, v >= 32 ? 3 : 0);
  }
  m.poke(kStubs, stubs.data(), stubs.size());
  for (unsigned i = 0; i < kPoolCount; ++i) {
    const Descriptor& d = s.pool[i];
    m.set_descriptor(kPoolFirst + i, d.base, d.limit, d.access, d.flags);
  }
  m.start(kCode, s.gpr[static_cast<size_t>(Gpr::Esp)], s.user, s.paging, s.eflags);
  CpuState& cpu = m.cpu();
  cpu.gdtr.limit = kGdtLimit;
  cpu.cr0 |= s.cr0_bits;
  cpu.cr4 = s.cr4;
  if (s.paging && s.pae) {
    // As a MOV to CR3 would: the PDPTEs are loaded from the PDPT (they are valid: P only).
    const bool where_expected = m.pae_mirror(bttest::kPageDir) == kPaePdpt;
    cpu.cr3 = kPaePdpt;
    cpu.cr4 |= cr4::PAE;
    if (!where_expected || !load_pdptes(m.mem(), cpu.cr3, cpu.a20_mask, &cpu.pdpte)) {
      std::fprintf(stderr, "wide: the PAE tables are not where the programs expect them\n");
      std::abort();
    }
  }
  cpu.gpr = s.gpr;
  for (size_t r = 0; r < 6; ++r) {
    const int i = s.seg[r];
    if (i < 0) continue;
    const uint16_t sel = static_cast<uint16_t>(((kPoolFirst + static_cast<unsigned>(i)) << 3) | (s.user ? 3 : 0));
    cpu.seg[r] = cache_of(s.pool[static_cast<size_t>(i)], sel);
  }
  std::memcpy(cpu.fxsave.data(), s.fxsave.data(), s.fxsave.size());
  cpu.msr.tsc_offset = s.tsc_offset;
  if (s.irq_vector >= 0) m.raise_irq(static_cast<uint8_t>(s.irq_vector));
}

Outcome snapshot(BtMachine& m, RunEnd end, const Program& p) {
  Outcome o;
  o.end = end;
  o.detail = m.detail();
  o.cpu = m.cpu();
  for (const Region& r : regions(p)) {
    const size_t at = o.memory.size();
    o.memory.resize(at + r.size);
    (void)m.mem().read(GuestPhys{r.start}, o.memory.data() + at, r.size);
  }
  o.acknowledged = m.acknowledged;
  o.translated = m.ctx().retired;
  o.undefined_results = m.interp().undefined_results();
  o.undefined_flags = m.interp().undefined_flags() & flags::Status;
  const uint32_t eip = o.cpu.eip;
  if (end == RunEnd::Halted && eip > kStubs && eip <= kStubs + 32 * kStubBytes) {
    o.vector = static_cast<int>((eip - 1 - kStubs) / kStubBytes);
    const bool error_code = bttest::has_error_code(static_cast<unsigned>(o.vector));
    const uint32_t frame = o.cpu.sreg(SegReg::Ss).base + o.cpu.reg(Gpr::Esp) + (error_code ? 4 : 0);
    (void)m.mem().read(GuestPhys{frame}, &o.fault_eip, 4);
  }
  return o;
}

template <typename T>
void field(std::ostringstream& out, const char* name, T a, T b) {
  if (a != b) out << name << ": " << std::hex << uint64_t{a} << " vs " << uint64_t{b} << std::dec << "\n";
}

std::string compare(const Program& p, const Outcome& ref, const Outcome& bt) {
  std::ostringstream out;
  if (ref.end != bt.end)
    out << "end: " << to_string(ref.end) << " vs " << to_string(bt.end) << " " << bt.detail << "\n";
  static const char* const kGpr[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  for (size_t i = 0; i < 8; ++i) field(out, kGpr[i], ref.cpu.gpr[i], bt.cpu.gpr[i]);
  field(out, "eip", ref.cpu.eip, bt.cpu.eip);
  constexpr uint32_t kFlags = flags::Status | flags::TF | flags::IF | flags::DF | flags::IOPL | flags::NT | flags::AC |
                              flags::ID | flags::VM;
  field(out, "eflags", ref.cpu.eflags & kFlags, bt.cpu.eflags & kFlags);
  static const char* const kSeg[] = {"es", "cs", "ss", "ds", "fs", "gs"};
  for (size_t i = 0; i < 6; ++i) {
    const SegmentCache &a = ref.cpu.seg[i], &b = bt.cpu.seg[i];
    if (a.selector != b.selector || a.base != b.base || a.limit != b.limit || a.attr != b.attr) {
      out << kSeg[i] << ": " << std::hex << a.selector << "/" << a.base << "/" << a.limit << "/" << a.attr << " vs "
          << b.selector << "/" << b.base << "/" << b.limit << "/" << b.attr << std::dec << "\n";
    }
  }
  field(out, "cr0", ref.cpu.cr0, bt.cpu.cr0);
  field(out, "cr2", ref.cpu.cr2, bt.cpu.cr2);
  field(out, "cr3", ref.cpu.cr3, bt.cpu.cr3);
  field(out, "cr4", ref.cpu.cr4, bt.cpu.cr4);
  // x87/SSE: control, status, tags, MXCSR, the registers; not FOP/FIP/FDP (bytes 6..23),
  // which hold where the last instruction ran (a host address after native execution).
  auto fx = [&](const char* name, size_t off, size_t len) {
    if (std::memcmp(&ref.cpu.fxsave[off], &bt.cpu.fxsave[off], len) == 0) return;
    out << "fpu " << name << ":" << std::hex;  // bytes, lowest first
    for (const CpuState* c : {&ref.cpu, &bt.cpu}) {
      out << (c == &ref.cpu ? " " : " vs ");
      for (size_t i = 0; i < len; ++i) out << std::setw(2) << std::setfill('0') << unsigned{c->fxsave[off + i]};
    }
    out << std::setfill(' ') << std::dec << "\n";
  };
  fx("fcw/fsw/ftw", 0, 6);
  fx("mxcsr", 24, 4);
  for (size_t i = 0; i < 8; ++i) fx(("st" + std::to_string(i)).c_str(), 32 + 16 * i, 10);
  for (size_t i = 0; i < 8; ++i) fx(("xmm" + std::to_string(i)).c_str(), 160 + 16 * i, 16);
  size_t at = 0;
  for (const Region& r : regions(p)) {
    for (uint32_t i = 0; i < r.size; ++i) {
      if (ref.memory[at + i] != bt.memory[at + i]) {
        out << "mem " << r.name << " [" << std::hex << r.start + i << "]: " << int(ref.memory[at + i]) << " vs "
            << int(bt.memory[at + i]) << std::dec << "\n";
        break;
      }
    }
    at += r.size;
  }
  field(out, "interrupts", ref.acknowledged, bt.acknowledged);
  return out.str();
}

}  // namespace

/// The reference run's budget, in chunks of 1000 interpreter steps. 20,000 steps leave as
/// many hostile programs inconclusive as 200,000 did (62 of 1,500), in two thirds the time.
constexpr int kReferenceChunks = 20;

Verdict run(const Program& p) {
  Verdict v;
  std::chrono::milliseconds ref_time{};
  {
    BtMachine ref;
    prepare(ref, p);
    // The budget or 5 s, whichever comes first (a step of a rep string instruction reading
    // unbacked memory costs far more than one of anything else).
    const auto t0 = std::chrono::steady_clock::now();
    RunEnd end = RunEnd::Timeout;
    for (int chunk = 0; chunk < kReferenceChunks && end == RunEnd::Timeout && ref_time < std::chrono::seconds(5);
         ++chunk) {
      end = ref.run_interp(1000);
      ref_time = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    }
    v.ref = snapshot(ref, end, p);
  }
  if (v.ref.end == RunEnd::Timeout) return v;  // a loop the program made itself: nothing to compare
  {
    BtMachine bt;
    prepare(bt, p);
    // A step may be 4096 iterations of a rep string instruction: a program the interpreter
    // needed seconds for gets a few times that, never less than 1.5 s.
    v.bt = snapshot(bt, bt.run_bt(std::max(std::chrono::milliseconds(1500), 4 * ref_time)), p);
  }
  v.hang = v.ref.end == RunEnd::Halted && v.bt.end == RunEnd::Timeout;
  v.diff = compare(p, v.ref, v.bt);
  if (!v.diff.empty()) {  // how each run ended, for the reader of a report
    std::ostringstream ends;
    for (const Outcome* o : {&v.ref, &v.bt}) {
      ends << (o == &v.ref ? "ends: interp " : ", bt ") << to_string(o->end);
      if (o->vector >= 0) ends << " in #" << o->vector << " at " << std::hex << o->fault_eip << std::dec;
      ends << " (" << o->translated << " translated)";
    }
    v.diff += ends.str() + "\n";
  }
  return v;
}

std::string trace_reference(const Program& p, int max_steps) {
  BtMachine ref;
  prepare(ref, p);
  std::ostringstream out;
  out << std::hex;
  for (int step = 0; step < max_steps; ++step) {
    const CpuState& c = ref.cpu();
    out << "  " << c.eip << " fl " << c.eflags;
    for (uint32_t r : c.gpr) out << ' ' << r;
    // The bytes about to run (code is identity-mapped; a program may have rewritten them).
    uint8_t next[8]{};
    if (c.eip >= kCode && c.eip < kCode + p.code.size() + 0x100)
      (void)ref.mem().read(GuestPhys{c.eip}, next, sizeof next);
    out << " |";
    for (uint8_t b : next) out << ' ' << std::setw(2) << std::setfill('0') << unsigned{b} << std::setfill(' ');
    out << '\n';
    if (ref.run_interp(1) != RunEnd::Timeout) break;
  }
  return out.str();
}

namespace {

/// True when the engines differ only in the EFLAGS bits of `ignored` (in EFLAGS and in the
/// EFLAGS image of an exception frame).
bool differs_only_in_flags(const Program& p, const Verdict& v, uint32_t ignored) {
  if (v.diff.empty() || ignored == 0) return false;
  Outcome a = v.ref, b = v.bt;
  for (Outcome* o : {&a, &b}) {
    o->cpu.eflags &= ~ignored;
    if (o->vector < 0) continue;
    // The frame's EFLAGS: above EIP and CS (and the error code).
    const bool error_code = bttest::has_error_code(static_cast<unsigned>(o->vector));
    // 64-bit: a hostile SS:ESP near 4 GiB must not wrap into the compared stack.
    const uint64_t at = uint64_t{o->cpu.sreg(SegReg::Ss).base} + o->cpu.reg(Gpr::Esp) + (error_code ? 12 : 8);
    const uint64_t stack_lo = kStackTop - kStackBytes;
    if (at < stack_lo || at + 4 > kStackTop) continue;
    const size_t off = kDataBytes + kLowDataBytes + (at - stack_lo);  // regions(): data, low, stack, ...
    for (size_t i = 0; i < 4; ++i) {
      o->memory[off + i] &= static_cast<uint8_t>(~(ignored >> (8 * i)));
    }
  }
  return compare(p, a, b).empty();
}

}  // namespace

bool differs_only_in_status_flags(const Program& p, const Verdict& v) {
  return differs_only_in_flags(p, v, flags::Status);
}

bool sdm_undefined(const Program& p, const Verdict& v) {
  if (v.diff.empty() || v.hang) return false;
  return v.ref.undefined_results > 0 || differs_only_in_flags(p, v, v.ref.undefined_flags);
}

bool differs_only_in_accessed_bits(const Program& p, const Verdict& v) {
  constexpr int kPageFaultVector = 14;
  // Both ended in #PF, or both in a triple fault after the same #PF (its delivery failed).
  const bool page_fault = v.ref.vector == kPageFaultVector && v.bt.vector == kPageFaultVector;
  const bool triple_fault = v.ref.end == RunEnd::TripleFault && v.bt.end == RunEnd::TripleFault &&
                            v.ref.cpu.cr2 == v.bt.cpu.cr2;
  if (v.diff.empty() || !(page_fault || triple_fault)) return false;
  Outcome a = v.ref, b = v.bt;
  size_t at = 0;
  for (const Region& r : regions(p)) {
    if (std::strcmp(r.name, "ptes") == 0 || std::strcmp(r.name, "pdes") == 0 || std::strcmp(r.name, "pae") == 0) {
      for (uint32_t i = 0; i < r.size; i += 4) {
        a.memory[at + i] &= static_cast<uint8_t>(~pte_bits::Accessed);
        b.memory[at + i] &= static_cast<uint8_t>(~pte_bits::Accessed);
      }
    }
    at += r.size;
  }
  return compare(p, a, b).empty();
}

Program minimize(const Program& p, const Verdict& v) {
  Program best = p;
  if (v.diff.empty()) return best;
  // Greedy: drop each unit (last first) while some divergence remains; then the interrupt.
  for (size_t i = best.units.size(); i-- > 0;) {
    Program t = best;
    t.units.erase(t.units.begin() + static_cast<long>(i));
    build(t);
    if (!run(t).diff.empty()) best = std::move(t);
  }
  if (best.setup.irq_vector >= 0) {
    Program t = best;
    t.setup.irq_vector = -1;
    build(t);
    if (!run(t).diff.empty()) best = std::move(t);
  }
  return best;
}

Program minimize_crash(const Program& p) {
  Program m = p;
  for (size_t u = m.units.size(); u-- > 0;) {
    Program t = m;
    t.units.erase(t.units.begin() + static_cast<long>(u));
    build(t);
    if (crashes_in_child([&] { (void)run(t); }, 5)) m = std::move(t);
  }
  return m;
}

std::string divergence_class(const Program& m, const Verdict& v) {
  std::string cls;
  for (const Unit& u : m.units) cls += (cls.empty() ? "" : " ; ") + forms()[u.form % forms().size()].key;
  if (cls.empty()) cls = "(no instruction)";
  const Setup& s = m.setup;
  cls += std::string(" [") + (s.user ? "cpl3" : "cpl0") + (s.paging ? (s.pae ? " pae" : " pg") : "") +
         ((s.cr0_bits & cr0::TS) ? " ts" : "") + ((s.cr0_bits & cr0::EM) ? " em" : "") +
         ((s.cr4 & cr4::OSFXSR) ? "" : " !osfxsr") + (s.irq_vector >= 0 ? " irq" : "") + (v.hang ? " hang" : "") +
         (!v.diff.empty() && v.diff.find('\n') + 1 == v.diff.size() && v.diff.rfind("mem ptes", 0) == 0 ? " ptes-only"
                                                                                                        : "") +
         "]";
  return cls;
}

namespace {

/// Known divergences: classes the translator is being fixed for (issue 14). Each entry: a
/// regular expression over divergence_class() and why it is known. Remove an entry when
/// its fix lands; the test then holds the fix.
struct Known {
  const char* pattern;
  const char* reason;
};
const Known kKnown[] = {
    {R"(^cmps[bwd][^;]*\[.* ptes-only\])",
     "not an engine bug: when one memory operand of cmps faults, whether the other's page got its Accessed bit "
     "first is the implementation's order (the host translates [EDI] before [ESI] faults)"},
    {R"((^| ; )sh[lr]d [rm]16[a-z]*,r16,r8 )",
     "not an engine bug: a 16-bit shld/shrd by more than 16 is undefined (SDM); the generator avoids it unless CL "
     "is also an address register"},
};

}  // namespace

const char* known_divergence(const std::string& cls) {
  for (const Known& k : kKnown) {
    if (std::regex_search(cls, std::regex(k.pattern))) return k.reason;
  }
  return nullptr;
}

}  // namespace vmm86::difftest::wide
