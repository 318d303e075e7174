#include "vmm/engine/verifier.h"

#include <Zydis/Zydis.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>

#include "decoder/decoder.h"

namespace vmm86 {

/// The shadow interpreter's view of the platform: no device, no interrupt, no MSR write
/// reaches the machine; any of them makes the run inconclusive. Every write is reported
/// (every page is "watched") so the verifier knows which bytes to compare.
class BlockVerifier::ShadowHooks final : public CpuHooks {
 public:
  explicit ShadowHooks(BlockVerifier& v) : v_(v) {}
  uint32_t port_in(uint16_t, unsigned) override { return touched(), 0xFFFFFFFFu; }
  void port_out(uint16_t, unsigned, uint32_t) override { touched(); }
  uint32_t mmio_read(GuestPhys, unsigned) override { return touched(), 0xFFFFFFFFu; }
  void mmio_write(GuestPhys, unsigned, uint32_t) override { touched(); }
  CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) override { return v_.hooks_.cpuid(leaf, subleaf); }
  uint64_t tsc_clock() override { return touched(), v_.hooks_.tsc_clock(); }
  bool rdmsr(uint32_t index, uint64_t* value) override { return v_.hooks_.rdmsr(index, value); }
  bool wrmsr(uint32_t, uint64_t) override { return touched(), true; }
  bool interrupt_pending() override { return false; }
  bool is_watched_page(GuestPhys) override { return true; }
  void watched_write(GuestPhys addr, unsigned size) override {
    for (unsigned i = 0; i < size; ++i) {
      const uint8_t* p = v_.view_->host_ptr(GuestPhys{addr.value + i});
      if (p) v_.writes_.push_back({addr.value + i, *p});
    }
  }
  void event_delivering(const GuestEvent& event) override {
    // The frame holds EFLAGS: undefined flags in it are the engines' own choices.
    if (event.external || v_.undefined_now_ != 0) touched();
    char text[96];
    std::snprintf(text, sizeof text, " vector %u (error %#x) at eip %08x, cr2 %08x", event.vector, event.error,
                  v_.shadow_cpu_.eip, v_.shadow_cpu_.cr2);
    v_.shadow_events_ += text;
  }
  void shutdown(ShutdownReason) override { touched(); }

 private:
  void touched() { v_.inconclusive_ = true; }
  BlockVerifier& v_;
};

BlockVerifier::BlockVerifier(GuestMemory& mem, CpuHooks& hooks, uint32_t period)
    : mem_(mem), hooks_(hooks), period_(period == 0 ? 1 : period) {}

BlockVerifier::~BlockVerifier() = default;

Status BlockVerifier::init() {
  auto view = GuestMemory::private_view(mem_);
  if (!view) return std::move(view).take_error();
  view_ = std::move(*view);
  shadow_hooks_ = std::make_unique<ShadowHooks>(*this);
  shadow_ = std::make_unique<Interpreter>(shadow_cpu_, *view_, *shadow_hooks_);
  return ok_status();
}

void BlockVerifier::shadow_run(const CpuState& cpu, const Block& block) {
  ++stats_.sampled;
  // All of it, not only the bytes the shadow reported: its page walks set A/D bits too.
  view_->discard_writes(GuestPhys{0}, view_->ram_size());
  view_->sync_map_from(mem_);  // the BIOS's shadow RAM may have changed what is ROM
  writes_.clear();
  snapshots_.clear();
  inconclusive_ = false;
  undefined_now_ = 0;
  shadow_events_.clear();
  block_eip_ = block.key.eip;
  shadow_cpu_ = cpu;
  shadow_->flush_tlb();  // the guest's tables may have changed since the last run
  const uint64_t start = shadow_->retired();
  snapshots_.push_back({0, 0, 0, false, shadow_cpu_});
  // Along the block's straight line: each pc_map entry retires one guest instruction (an
  // inlined PC-thunk call three); a branch taken elsewhere or an event ends the block.
  const auto& map = block.pc_map;
  const Decoder decoder(CodeSize::Bits32);
  uint32_t undefined = 0;
  for (size_t j = 0; j < map.size() && !inconclusive_; ++j) {
    if (shadow_cpu_.eip != map[j].guest_eip) break;
    const uint32_t next = j + 1 < map.size() ? map[j + 1].retired_before : block.guest_insns;
    // The flags this instruction leaves undefined (shr's AF, mul's SF/ZF/AF/PF, ...); a
    // later one that defines them makes them comparable again.
    const GuestPhys phys = block.key.phys + (map[j].guest_eip - block.key.eip);
    const uint8_t* code = mem_.host_ptr(phys);
    Instruction insn;
    if (code && decoder.decode({code, kPageSize - (phys.value & kPageMask)}, &insn) == DecodeStatus::Ok &&
        insn.raw.cpu_flags) {
      const ZydisAccessedFlags& f = *insn.raw.cpu_flags;
      // Reading an undefined flag (pushf after shl, a jcc on mul's ZF) carries the engines'
      // different choices into registers or memory: nothing to compare there.
      if (f.tested & undefined) inconclusive_ = true;
      undefined = (undefined & ~(f.modified | f.set_0 | f.set_1)) | f.undefined;
      undefined_now_ = undefined;
      snapshots_.back().before_rep_string = insn.rep_prefix() != RepPrefix::None;
    }
    bool left = false;
    for (uint32_t k = map[j].retired_before; k < next && !left; ++k) {
      // A long rep string instruction takes several steps (the interpreter pauses it, at the
      // same EIP, every few thousand iterations); too long to shadow: inconclusive.
      const uint64_t retired_before_step = shadow_->retired();
      StepStatus st = shadow_->step();
      for (int pauses = 0; st == StepStatus::Retired && shadow_->retired() == retired_before_step &&
                           shadow_cpu_.eip == map[j].guest_eip;
           ++pauses) {
        if (pauses == 64) {
          inconclusive_ = true;
          break;
        }
        st = shadow_->step();
      }
      if (inconclusive_) break;
      if (st != StepStatus::Retired && st != StepStatus::EventDelivered) {
        inconclusive_ = true;  // hlt, shutdown, something the interpreter cannot do
        break;
      }
      left = st == StepStatus::EventDelivered;
      snapshots_.push_back({shadow_->retired() - start, writes_.size(), undefined, false, shadow_cpu_});
    }
    if (left) break;
  }
}

namespace {

constexpr uint32_t kComparedFlags = flags::Status | flags::DF | flags::IF | flags::TF | flags::IOPL | flags::NT |
                                    flags::AC | flags::ID;
// FXSAVE image: FCW, FSW, abridged FTW; MXCSR; ST0-7 and XMM0-7. Not FOP/FIP/FDP: they
// hold host addresses after native execution and are never shown to the guest.
struct FxRange {
  size_t offset, size;
  const char* name;
};
constexpr FxRange kFxCompared[] = {{0, 5, "fcw/fsw/ftw"}, {24, 4, "mxcsr"}, {32, 128, "st0-7"}, {160, 128, "xmm0-7"}};

void add(std::string& out, const char* name, uint64_t want, uint64_t got) {
  if (want == got) return;
  char line[128];
  std::snprintf(line, sizeof line, "  %-8s interpreter %#" PRIx64 ", translated %#" PRIx64 "\n", name, want, got);
  out += line;
}

std::string disassemble(uint32_t eip, const uint8_t* code, size_t size) {
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  ZydisFormatter formatter;
  ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_INTEL);
  std::string out;
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  for (size_t off = 0; off < size;) {
    char text[96] = "(bad)";
    size_t length = 1;
    if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, code + off, size - off, &insn, ops))) {
      ZydisFormatterFormatInstruction(&formatter, &insn, ops, insn.operand_count_visible, text, sizeof text, eip + off,
                                      nullptr);
      length = insn.length;
    }
    char line[160];
    std::snprintf(line, sizeof line, "  %08" PRIx32 ": %s\n", static_cast<uint32_t>(eip + off), text);
    out += line;
    off += length;
  }
  return out;
}

}  // namespace

std::string BlockVerifier::difference(const CpuState& want, const CpuState& got, uint32_t undefined_flags) const {
  static const char* const kGpr[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  static const char* const kSeg[] = {"es", "cs", "ss", "ds", "fs", "gs"};
  std::string out;
  for (size_t r = 0; r < kNumGprs; ++r) add(out, kGpr[r], want.gpr[r], got.gpr[r]);
  add(out, "eip", want.eip, got.eip);
  const uint32_t compared = kComparedFlags & ~undefined_flags;
  add(out, "eflags", want.eflags & compared, got.eflags & compared);
  for (size_t s = 0; s < 6; ++s) add(out, kSeg[s], want.seg[s].selector, got.seg[s].selector);
  add(out, "cr0", want.cr0, got.cr0);
  add(out, "cr2", want.cr2, got.cr2);
  add(out, "cr3", want.cr3, got.cr3);
  add(out, "cr4", want.cr4, got.cr4);
  for (const FxRange& r : kFxCompared) {
    if (std::memcmp(want.fxsave.data() + r.offset, got.fxsave.data() + r.offset, r.size) != 0) {
      out += std::string("  ") + r.name + " differ\n";
    }
  }
  return out;
}

std::string BlockVerifier::compare(const CpuState& cpu, uint64_t retired, const uint8_t* guest_code, size_t code_size) {
  if (inconclusive_) {
    ++stats_.inconclusive;
    return "";
  }
  std::string first_report;
  // After `retired` instructions there may be two shadow states (before and after an
  // exception the last one raised): either may be what the translated run reached.
  for (auto it = snapshots_.rbegin(); it != snapshots_.rend(); ++it) {
    if (it->retired != retired) continue;
    if (it->before_rep_string && it->cpu.eip == cpu.eip && cpu.eip != 0) {
      ++stats_.inconclusive;  // stopped inside the string instruction
      return "";
    }
    std::string report = difference(it->cpu, cpu, it->undefined_flags);
    std::map<uint64_t, uint8_t> written;
    for (size_t i = 0; i < it->writes; ++i) written[writes_[i].phys] = writes_[i].value;
    for (const auto& [phys, value] : written) {
      const uint8_t* p = mem_.host_ptr(GuestPhys{phys});
      if (p && *p != value) {
        char line[128];
        std::snprintf(line, sizeof line, "  ram %#" PRIx64 ": interpreter %#04x, translated %#04x\n", phys, value, *p);
        report += line;
      }
    }
    if (report.empty()) {
      ++stats_.compared;
      return "";
    }
    if (first_report.empty()) first_report = report;
  }
  char head[200];
  if (first_report.empty()) {
    std::snprintf(head, sizeof head,
                  "verify: the translated block at %08" PRIx32 " retired %" PRIu64
                  " instructions; the interpreter never stopped there (it ran %" PRIu64 ")%s\n",
                  block_eip_, retired, snapshots_.back().retired,
                  shadow_events_.empty() ? "" : (", delivering" + shadow_events_).c_str());
  } else {
    std::snprintf(head, sizeof head,
                  "verify: the translated block at %08" PRIx32 " and the interpreter differ after %" PRIu64
                  " instructions:\n",
                  block_eip_, retired);
  }
  return head + first_report + "guest code of the block:\n" + disassemble(block_eip_, guest_code, code_size);
}

}  // namespace vmm86
