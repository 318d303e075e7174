#include "vmm/machine/trace.h"

#include <cerrno>
#include <cinttypes>
#include <cstring>

#include "decoder/decoder.h"

namespace vmm86 {

namespace {

/// Intel-syntax text of the instruction at the start of `code` (and its length).
std::string disassemble(std::span<const uint8_t> code, uint32_t eip, bool code32, uint8_t* length) {
  ZydisDisassembledInstruction insn;
  const ZydisMachineMode mode = code32 ? ZYDIS_MACHINE_MODE_LEGACY_32 : ZYDIS_MACHINE_MODE_LEGACY_16;
  if (ZYAN_SUCCESS(ZydisDisassembleIntel(mode, eip, code.data(), code.size(), &insn))) {
    *length = insn.info.length;
    return insn.text;
  }
  *length = 1;
  return "(bad)";
}

}  // namespace

Tracer::~Tracer() {
  if (file_) std::fclose(file_);
}

Status Tracer::open(const std::string& path, uint64_t limit) {
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) return make_error("cannot open trace file '{}': {}", path, std::strerror(errno));
  limit_ = limit;
  return ok_status();
}

void Tracer::count() {
  ++records_;
  if (!active()) {
    std::fprintf(file_, "--- trace limit of %" PRIu64 " records reached ---\n", limit_);
    std::fflush(file_);
  }
}

void Tracer::block(uint32_t eip, std::span<const uint8_t> code, uint32_t insns) {
  if (!active()) return;
  std::fprintf(file_, "----------------\nIN:\n");
  size_t offset = 0;
  for (uint32_t i = 0; i < insns && offset < code.size(); ++i) {
    uint8_t length = 0;
    const std::string text = disassemble(code.subspan(offset), eip + static_cast<uint32_t>(offset), true, &length);
    std::fprintf(file_, "0x%08x:  %s\n", eip + static_cast<uint32_t>(offset), text.c_str());
    offset += length;
  }
  std::fprintf(file_, "\n");
  count();
}

void Tracer::instruction(const CpuState& c, std::span<const uint8_t> code) {
  if (!active()) return;
  uint8_t length = 0;
  const bool code32 = c.protected_mode() && c.sreg(SegReg::Cs).default_big();
  const std::string text = disassemble(code, c.eip, code32, &length);
  std::fprintf(
      file_, "EXEC %04x:%08x  %-40s eax=%08x ecx=%08x edx=%08x ebx=%08x esp=%08x ebp=%08x esi=%08x edi=%08x fl=%08x\n",
      c.sreg(SegReg::Cs).selector, c.eip, text.c_str(), c.gpr[0], c.gpr[1], c.gpr[2], c.gpr[3], c.gpr[4], c.gpr[5],
      c.gpr[6], c.gpr[7], c.eflags);
  count();
}

void Tracer::event(const CpuState& c, const GuestEvent& ev) {
  if (!active()) return;
  // The shape of QEMU's -d int lines.
  std::fprintf(file_, "%6" PRIu64 ": v=%02x e=%04x i=%d cpl=%u IP=%04x:%08x pc=%08x SP=%04x:%08x", events_++, ev.vector,
               ev.has_error ? ev.error : 0, ev.software ? 1 : 0, c.cpl(), c.sreg(SegReg::Cs).selector, c.eip,
               c.sreg(SegReg::Cs).base + c.eip, c.sreg(SegReg::Ss).selector, c.gpr[4]);
  if (ev.vector == 14 && !ev.software && !ev.external) std::fprintf(file_, " CR2=%08x", c.cr2);
  std::fprintf(file_, " env->regs[R_EAX]=%08x%s\n", c.gpr[0], ev.external ? " (external)" : "");
  std::fflush(file_);  // the events before a crash are the ones that matter
  count();
}

}  // namespace vmm86
