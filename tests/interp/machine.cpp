#include "tests/interp/machine.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace vmm86::test {

namespace {

GuestMemory make_memory() {
  auto m = GuestMemory::create(kRamSize);
  if (!m) {
    std::fprintf(stderr, "guest memory: %s\n", m.error().c_str());
    std::abort();
  }
  m->add_region({GuestPhys{kMmioBase}, 0x1000, PhysKind::Mmio, "test-mmio"});
  return std::move(*m);
}

SegmentCache cache_from_gdt(const GuestMemory& mem, uint16_t sel) {
  uint32_t raw[2];
  (void)mem.read(GuestPhys{kGdt + (sel & 0xFFF8u)}, raw, 8);
  const uint32_t lo = raw[0], hi = raw[1];
  uint32_t limit = (lo & 0xFFFF) | (hi & 0xF0000);
  if (hi & (1u << 23)) limit = (limit << 12) | 0xFFF;
  const uint32_t base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000u);
  return SegmentCache{sel, base, limit, static_cast<uint16_t>(((hi >> 8) & 0xFF) | ((hi >> 8) & 0xF000))};
}

}  // namespace

Machine::Machine(Mode m) : mem(make_memory()), interp(cpu, mem, *this), mode(m) {
  cpu.reset();
  // Every vector's handler is a lone `hlt`, so a test can tell which one ran.
  for (unsigned v = 0; v < 256; ++v) poke(kVectorStubs + v * 8, {0xF4});
  if (mode == Mode::Real) {
    for (unsigned v = 0; v < 256; ++v) poke32(v * 4, (uint32_t{kVectorStubs >> 4} << 16) | (v * 8));
    for (SegReg s : {SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs}) cpu.sreg(s) = SegmentCache{0, 0, 0xFFFF, 0x93};
    cpu.sreg(SegReg::Cs) = SegmentCache{kCode >> 4, kCode, 0xFFFF, 0x9B};
    cpu.sreg(SegReg::Ss) = SegmentCache{(kStackTop - 0x10000) >> 4, kStackTop - 0x10000, 0xFFFF, 0x93};
    cpu.reg(Gpr::Esp) = 0xFFF0;
    cpu.eip = 0;
    cpu.idtr = DescriptorTableReg{0, 0x3FF};
    return;
  }
  set_descriptor(1, 0, 0xFFFFF, 0x9A, 0xC);
  set_descriptor(2, 0, 0xFFFFF, 0x92, 0xC);
  set_descriptor(3, 0, 0xFFFFF, 0xFA, 0xC);
  set_descriptor(4, 0, 0xFFFFF, 0xF2, 0xC);
  set_descriptor(5, kTss, 0x68 + 0x2000, 0x89, 0x0);
  set_descriptor(6, 0, 0xFFFF, 0x9A, 0x0);
  set_descriptor(7, kData, 0xFFF, 0x92, 0x4);
  set_descriptor(8, 0, 0xFFFF, 0x96, 0x4);
  set_descriptor(9, 0, 0xFFFFF, 0x90, 0xC);
  set_gate(kGdt, 10, kCode32, kGateTarget, 0x8C);
  set_gate(kGdt, 11, kCode32, kGateTarget, 0xEC, 2);
  for (unsigned v = 0; v < 256; ++v) set_gate(kIdt, v, kCode32, kVectorStubs + v * 8, 0xEE);
  poke32(kTss + 4, kRing0Stack);
  poke32(kTss + 8, kData32);
  poke32(kTss + 0x64, 0x68u << 16);
  std::vector<uint8_t> deny(0x2001, 0xFF);
  poke(kIoBitmap, deny);

  cpu.cr0 = cr0::PE | cr0::ET;
  cpu.gdtr = DescriptorTableReg{kGdt, 0x5F};
  cpu.idtr = DescriptorTableReg{kIdt, 256 * 8 - 1};
  cpu.sreg(SegReg::Cs) = cache_from_gdt(mem, kCode32);
  for (SegReg s : {SegReg::Ss, SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs}) load_seg(s, kData32);
  cpu.tr = cache_from_gdt(mem, kTssSel);
  cpu.tr.attr = static_cast<uint16_t>((cpu.tr.attr & ~0xFu) | 0xB);  // busy
  cpu.ldtr = SegmentCache{0, 0, 0, 0};
  cpu.reg(Gpr::Esp) = kStackTop;
  cpu.eip = kCode;
  cpu.eflags = flags::Reserved1;
}

uint32_t Machine::port_in(uint16_t port, unsigned size) {
  auto it = port_values.find(port);
  const uint32_t v = it == port_values.end() ? 0xFFFFFFFFu : it->second;
  return size == 4 ? v : v & ((1u << (size * 8)) - 1);
}

void Machine::port_out(uint16_t port, unsigned size, uint32_t value) {
  if (port == 0xE9 && size == 1) e9.push_back(static_cast<char>(value));
  port_writes.emplace_back(port, value);
}

uint32_t Machine::mmio_read(GuestPhys, unsigned size) {
  return size == 4 ? mmio_value : mmio_value & ((1u << (size * 8)) - 1);
}

void Machine::mmio_write(GuestPhys addr, unsigned, uint32_t value) { mmio_writes.emplace_back(addr.value, value); }

CpuidResult Machine::cpuid(uint32_t leaf, uint32_t) {
  if (leaf == 0) return {1, 0x756E6547, 0x6C65746E, 0x49656E69};  // "GenuineIntel"
  return {0x663, 0, 0, 0x0383FBFF};
}

std::vector<uint8_t> Machine::assemble(const std::function<void(Asm&)>& body, uint32_t at) {
  asmjit::Environment env(asmjit::Arch::kX86);
  asmjit::CodeHolder holder;
  holder.init(env, at);
  Asm a(&holder);
  body(a);
  holder.flatten();
  holder.resolveUnresolvedLinks();
  holder.relocateToBase(at);
  std::vector<uint8_t> out(holder.codeSize());
  holder.copyFlattenedData(out.data(), out.size());
  return out;
}

void Machine::code(const std::function<void(Asm&)>& body) { code_bytes(assemble(body)); }

void Machine::code_bytes(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> b = bytes;
  b.push_back(0xF4);
  poke(kCode, b);
}

void Machine::poke(uint32_t phys, const std::vector<uint8_t>& bytes) {
  if (!mem.write(GuestPhys{phys}, bytes.data(), bytes.size())) std::abort();
}

void Machine::poke32(uint32_t phys, uint32_t v) {
  if (!mem.write(GuestPhys{phys}, &v, 4)) std::abort();
}

uint32_t Machine::peek32(uint32_t phys) const {
  uint32_t v = 0;
  if (!mem.read(GuestPhys{phys}, &v, 4)) std::abort();
  return v;
}

uint8_t Machine::peek8(uint32_t phys) const {
  uint8_t v = 0;
  if (!mem.read(GuestPhys{phys}, &v, 1)) std::abort();
  return v;
}

void Machine::set_descriptor(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags_nibble) {
  const uint32_t lo = ((base & 0xFFFF) << 16) | (limit & 0xFFFF);
  const uint32_t hi = (base & 0xFF000000u) | ((base >> 16) & 0xFF) | (limit & 0xF0000) | (uint32_t{access} << 8) |
                      (uint32_t{flags_nibble} << 20);
  poke32(kGdt + index * 8, lo);
  poke32(kGdt + index * 8 + 4, hi);
}

void Machine::set_gate(uint32_t table, unsigned index, uint16_t sel, uint32_t offset, uint8_t type_attr,
                       uint8_t params) {
  poke32(table + index * 8, (uint32_t{sel} << 16) | (offset & 0xFFFF));
  poke32(table + index * 8 + 4, (offset & 0xFFFF0000u) | (uint32_t{type_attr} << 8) | params);
}

void Machine::enable_paging(bool wp) {
  for (uint32_t t = 0; t < 4; ++t) poke32(kPageDir + t * 4, (kPageTables + t * 0x1000) | 7);
  for (uint32_t p = 0; p < 4096; ++p) poke32(kPageTables + p * 4, (p << 12) | 7);
  cpu.cr3 = kPageDir;
  cpu.cr0 |= cr0::PG | (wp ? cr0::WP : 0u);
  interp.flush_tlb();
}

void Machine::set_pte_flags(uint32_t linear, uint32_t flag_bits) {
  poke32(kPageTables + (linear >> 12) * 4, (linear & ~0xFFFu) | flag_bits);
  interp.flush_tlb();
}

uint32_t Machine::pte(uint32_t linear) const { return peek32(kPageTables + (linear >> 12) * 4); }

void Machine::enter_ring3() {
  cpu.sreg(SegReg::Cs) = cache_from_gdt(mem, kUserCode);
  for (SegReg s : {SegReg::Ss, SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs}) load_seg(s, kUserData);
}

void Machine::load_seg(SegReg s, uint16_t sel) { cpu.sreg(s) = cache_from_gdt(mem, sel); }

RunResult Machine::run(uint64_t max) { return interp.run(max); }

int Machine::vector() const {
  const uint32_t linear = cpu.sreg(SegReg::Cs).base + cpu.eip - 1;
  if (linear < kVectorStubs || linear >= kVectorStubs + 256 * 8 || (linear - kVectorStubs) % 8 != 0) return -1;
  return static_cast<int>((linear - kVectorStubs) / 8);
}

uint32_t Machine::stack(unsigned i) const { return peek32(cpu.sreg(SegReg::Ss).base + cpu.reg(Gpr::Esp) + 4 * i); }

}  // namespace vmm86::test
