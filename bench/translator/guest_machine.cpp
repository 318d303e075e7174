#include "bench/translator/guest_machine.h"
#include "tests/support/no_devices.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace vmm86::bench {

namespace {

constexpr uint32_t kGdt = 0x1000, kIdt = 0x2000, kHandler = 0x3000, kTss = 0x4000, kRing0Stack = 0x9000;
constexpr uint32_t kPageDir = 0x10000, kPageTables = 0x11000;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench guest machine: %s\n", what.c_str());
  std::exit(1);
}

uint64_t descriptor(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
  return (limit & 0xFFFFull) | (uint64_t{base & 0xFFFFFF} << 16) | (uint64_t{access} << 40) |
         (uint64_t{(limit >> 16) & 0xF} << 48) | (uint64_t{flags} << 52) | (uint64_t{base >> 24} << 56);
}

bool never(void*) { return false; }

}  // namespace

GuestMachine::GuestMachine(uint64_t ram, uint64_t mapped) {
  auto m = GuestMemory::create(ram);
  if (!m) fail(m.error());
  mem_ = std::make_unique<GuestMemory>(std::move(*m));
  ctx_ = create_exec_context();
  hooks_ = std::make_unique<NoDevices>();
  mmu_ = std::make_unique<ShadowMmu>(*mem_);
  if (const Status s = mmu_->init(); !s) fail(s.error());
  interp_ = std::make_unique<Interpreter>(ctx_->cpu, *mem_, *hooks_);
  engine_ = std::make_unique<BtEngine>(*ctx_, *mem_, *mmu_, *interp_, 16 << 20);
  if (const Status s = engine_->init(); !s) fail(s.error());

  const uint64_t gdt[] = {0,
                          descriptor(0, 0xFFFFF, 0x9B, 0xC),   // 0x08 ring-0 code
                          descriptor(0, 0xFFFFF, 0x93, 0xC),   // 0x10 ring-0 data
                          descriptor(0, 0xFFFFF, 0xFB, 0xC),   // 0x18 ring-3 code
                          descriptor(0, 0xFFFFF, 0xF3, 0xC),   // 0x20 ring-3 data
                          descriptor(kTss, 0x67, 0x8B, 0x0)};  // 0x28 busy TSS
  load(kGdt, gdt, sizeof gdt);
  // int3 (vector 3): a DPL-3 interrupt gate to a ring-0 hlt.
  const uint64_t gate = (kHandler & 0xFFFF) | (uint64_t{0x08} << 16) | (uint64_t{0xEE00} << 32) |
                        (uint64_t{kHandler >> 16} << 48);
  load(kIdt + 3 * 8, &gate, 8);
  const uint8_t hlt[] = {0xF4, 0xEB, 0xFD};  // hlt; jmp $-1
  load(kHandler, hlt, sizeof hlt);
  uint32_t tss[26] = {};
  tss[1] = kRing0Stack;  // esp0
  tss[2] = 0x10;         // ss0
  load(kTss, tss, sizeof tss);
  const auto pages = static_cast<uint32_t>(mapped >> kPageShift);
  for (uint32_t i = 0; i < (pages + 1023) / 1024; ++i) {
    const uint32_t pde = (kPageTables + i * kPageSize) | 0x7;  // present, writable, user
    load(kPageDir + 4 * i, &pde, 4);
  }
  for (uint32_t p = 0; p < pages; ++p) {
    const uint32_t pte = (p << kPageShift) | 0x7;
    load(kPageTables + 4 * p, &pte, 4);
  }
}

GuestMachine::~GuestMachine() = default;

void GuestMachine::load(uint32_t addr, const void* bytes, size_t size) {
  if (!mem_->write(GuestPhys{addr}, bytes, size)) fail("load outside guest RAM");
}

void GuestMachine::start(uint32_t eip, uint32_t esp, bool user) {
  CpuState& cpu = ctx_->cpu;
  cpu.reset();
  cpu.cr0 = cr0::PE | cr0::PG | cr0::WP | cr0::ET | cr0::NE;
  cpu.cr3 = kPageDir;
  cpu.gdtr = {kGdt, 6 * 8 - 1};
  cpu.idtr = {kIdt, 256 * 8 - 1};
  cpu.tr = SegmentCache{0x28, kTss, 0x67, 0x008B};
  const uint16_t code = user ? 0x1B : 0x08, data = user ? 0x23 : 0x10;
  const uint16_t dpl = user ? 0x60 : 0;
  for (auto& s : cpu.seg) s = SegmentCache{data, 0, 0xFFFFFFFF, static_cast<uint16_t>(0xC093 | dpl)};
  cpu.sreg(SegReg::Cs) = SegmentCache{code, 0, 0xFFFFFFFF, static_cast<uint16_t>(0xC09B | dpl)};
  cpu.eip = eip;
  cpu.reg(Gpr::Esp) = esp;
}

bool GuestMachine::run_bt() {
  for (;;) {
    const EngineStop stop = engine_->run(1u << 30, never, nullptr);
    if (stop == EngineStop::Halted) return true;
    if (stop != EngineStop::Budget) return false;
  }
}

bool GuestMachine::run_interp() {
  for (;;) {
    const RunResult r = interp_->run(1u << 30);
    if (r.status == StepStatus::Halted) return true;
    if (r.status != StepStatus::Retired) return false;
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace vmm86::bench
