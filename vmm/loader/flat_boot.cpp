#include "vmm/loader/flat_boot.h"

#include <algorithm>

namespace vmm86::flat_boot {

namespace {

constexpr uint16_t kFlatCodeAttr = 0xC09B;  // G D/B P S type=exec/read,accessed
constexpr uint16_t kFlatDataAttr = 0xC093;  // G D/B P S type=read/write,accessed
constexpr uint32_t kDescriptorBytes = 8;

}  // namespace

SegmentCache code_segment(uint16_t selector) { return {selector, 0, 0xFFFFFFFF, kFlatCodeAttr}; }
SegmentCache data_segment(uint16_t selector) { return {selector, 0, 0xFFFFFFFF, kFlatDataAttr}; }

uint64_t descriptor_of(const SegmentCache& seg) {
  const uint32_t limit = seg.granularity() ? seg.limit >> 12 : seg.limit;
  uint64_t d = limit & 0xFFFFu;
  d |= uint64_t{seg.base & 0xFFFFFFu} << 16;
  d |= uint64_t{seg.attr & 0xFFu} << 40;
  d |= uint64_t{(limit >> 16) & 0xFu} << 48;
  d |= uint64_t{(seg.attr >> 12) & 0xFu} << 52;
  d |= uint64_t{seg.base >> 24} << 56;
  return d;
}

std::vector<uint64_t> gdt(const FlatEntry& entry) {
  const uint16_t top = std::max(entry.code_selector, entry.data_selector);
  std::vector<uint64_t> table(top / kDescriptorBytes + 1, 0);
  table[entry.code_selector / kDescriptorBytes] = descriptor_of(code_segment(entry.code_selector));
  table[entry.data_selector / kDescriptorBytes] = descriptor_of(data_segment(entry.data_selector));
  return table;
}

CpuState cpu_state(const FlatEntry& entry) {
  CpuState cpu;
  cpu.reset();
  cpu.gpr = {};
  cpu.reg(Gpr::Esp) = entry.esp;
  cpu.eip = entry.entry;
  cpu.eflags = flags::Reserved1;  // IF = 0
  cpu.cr0 = cr0::PE | cr0::ET;    // protected mode, paging off, caches on as a BIOS leaves them
  for (int s = 0; s < kNumSegRegs; ++s) cpu.seg[static_cast<size_t>(s)] = data_segment(entry.data_selector);
  cpu.sreg(SegReg::Cs) = code_segment(entry.code_selector);
  const auto gdt_bytes = static_cast<uint32_t>(gdt(entry).size() * kDescriptorBytes);
  cpu.gdtr = {static_cast<uint32_t>(entry.gdt.value), static_cast<uint16_t>(gdt_bytes - 1)};
  cpu.idtr = {0, 0};
  return cpu;
}

}  // namespace vmm86::flat_boot
