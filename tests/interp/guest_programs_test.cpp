// The decoder helper's bare-metal programs (tests/guest-programs/README.md) run to their
// expected outcome in the interpreter: pmode.bin prints PASS, triple_fault.bin shuts down.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {
namespace {

class E9Hooks : public CpuHooks {
 public:
  uint32_t port_in(uint16_t, unsigned) override { return 0xFFFFFFFFu; }
  void port_out(uint16_t port, unsigned, uint32_t value) override {
    if (port == 0xE9) out.push_back(static_cast<char>(value));
  }
  uint32_t mmio_read(GuestPhys, unsigned) override { return 0xFFFFFFFFu; }
  void mmio_write(GuestPhys, unsigned, uint32_t) override {}
  CpuidResult cpuid(uint32_t, uint32_t) override { return {}; }
  uint64_t tsc_clock() override { return 0; }
  std::string out;
};

struct Outcome {
  StepStatus status;
  std::string e9;
  uint64_t instructions;
};

Outcome run_program(const char* path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f) << path;
  const std::vector<uint8_t> image((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto mem = GuestMemory::create(16u << 20);
  EXPECT_TRUE(mem) << mem.error();
  EXPECT_TRUE(mem->write(GuestPhys{0x8000}, image.data(), image.size()));
  CpuState cpu;
  cpu.reset();
  cpu.sreg(SegReg::Cs) = SegmentCache{0, 0, 0xFFFF, 0x009B};
  cpu.eip = 0x8000;
  E9Hooks hooks;
  Interpreter interp(cpu, *mem, hooks);
  Outcome o{StepStatus::Retired, {}, 0};
  // Run until the newline, a halt with IF=0, or another stop.
  while (o.instructions < 50'000'000) {
    const RunResult r = interp.run(10'000);
    o.instructions += r.instructions;
    o.status = r.status;
    if (hooks.out.find('\n') != std::string::npos) break;
    if (r.status != StepStatus::Retired) break;
  }
  o.e9 = hooks.out;
  return o;
}

TEST(GuestPrograms, PmodePasses) {
  const Outcome o = run_program(VMM86_GUEST_PMODE_BIN);
  EXPECT_EQ(o.e9, "PASS\n") << "status " << to_string(o.status) << " after " << o.instructions << " instructions";
}

TEST(GuestPrograms, TripleFaultShutsDown) {
  const Outcome o = run_program(VMM86_GUEST_TRIPLE_FAULT_BIN);
  EXPECT_EQ(o.status, StepStatus::TripleFault);
  EXPECT_EQ(o.e9, "");
}

}  // namespace
}  // namespace vmm86
