// Test support for the interpreter: a small PC-like machine with guest RAM, a flat
// protected-mode (or real-mode) setup, recording hooks, and helpers to assemble 32-bit
// code with asmjit, so each test is a few lines of code plus expected state.
#pragma once

#include <asmjit/x86.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/interp/interpreter.h"

namespace vmm86::test {

// Guest-physical layout of the test machine.
inline constexpr uint32_t kGdt = 0x1000;
inline constexpr uint32_t kIdt = 0x2000;
inline constexpr uint32_t kVectorStubs = 0x3000;  ///< vector v's handler: `hlt` at kVectorStubs + 8*v
inline constexpr uint32_t kTss = 0x4000;
inline constexpr uint32_t kIoBitmap = 0x4068;  ///< 8 KiB + terminator, right after the TSS
inline constexpr uint32_t kCode = 0x10000;
inline constexpr uint32_t kStackTop = 0x80000;
inline constexpr uint32_t kRing0Stack = 0x90000;
inline constexpr uint32_t kPageDir = 0x100000;
inline constexpr uint32_t kPageTables = 0x101000;  ///< identity tables for the first 16 MiB
inline constexpr uint32_t kData = 0x200000;
inline constexpr uint64_t kMmioBase = 0xF0000000;
inline constexpr uint64_t kRamSize = 32u << 20;

// GDT selectors.
inline constexpr uint16_t kCode32 = 0x08, kData32 = 0x10, kUserCode = 0x1B, kUserData = 0x23, kTssSel = 0x28,
                          kCode16 = 0x30, kSmallData = 0x38, kExpandDown = 0x40, kReadOnly = 0x48, kCallGate = 0x50,
                          kUserCallGate = 0x5B;
inline constexpr uint32_t kGateTarget = 0x18000;  ///< ring-0 target of the call gates

enum class Mode : uint8_t { Flat32, Real };

using Asm = asmjit::x86::Assembler;

class Machine : public CpuHooks {
 public:
  explicit Machine(Mode mode = Mode::Flat32);

  // ---- hooks ----
  uint32_t port_in(uint16_t port, unsigned size) override;
  void port_out(uint16_t port, unsigned size, uint32_t value) override;
  uint32_t mmio_read(GuestPhys addr, unsigned size) override;
  void mmio_write(GuestPhys addr, unsigned size, uint32_t value) override;
  CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) override;
  uint64_t tsc_clock() override { return tsc += 1000; }
  bool interrupt_pending() override { return irq.has_value(); }
  uint8_t acknowledge_interrupt() override {
    const uint8_t v = *irq;
    irq.reset();
    return v;
  }
  void shutdown(ShutdownReason) override { ++shutdowns; }

  // ---- setup ----
  /// Assembles 32-bit code at `at` (default kCode) with asmjit; appends nothing.
  std::vector<uint8_t> assemble(const std::function<void(Asm&)>& body, uint32_t at = kCode);
  /// Assembles, loads at kCode, appends `hlt`, points EIP at it.
  void code(const std::function<void(Asm&)>& body);
  /// Loads raw bytes at kCode (plus a final `hlt`) and points EIP (or IP) at them.
  void code_bytes(const std::vector<uint8_t>& bytes);
  void poke(uint32_t phys, const std::vector<uint8_t>& bytes);
  void poke32(uint32_t phys, uint32_t v);
  [[nodiscard]] uint32_t peek32(uint32_t phys) const;
  [[nodiscard]] uint8_t peek8(uint32_t phys) const;
  /// GDT entry `index` (selector = index*8).
  void set_descriptor(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags_nibble);
  void set_gate(uint32_t table, unsigned index, uint16_t sel, uint32_t offset, uint8_t type_attr, uint8_t params = 0);
  /// Identity-maps the first 16 MiB with 4 KiB pages (U/S and R/W set) and turns paging on.
  void enable_paging(bool wp = true);
  /// Rewrites the PTE of `linear` (identity table) with these low flag bits.
  void set_pte_flags(uint32_t linear, uint32_t flag_bits);
  [[nodiscard]] uint32_t pte(uint32_t linear) const;
  /// Drops to ring 3 at `eip` with flat user segments and ESP = kStackTop (TSS ESP0 = kRing0Stack).
  void enter_ring3();
  /// Loads a flat protected-mode data segment register from the GDT.
  void load_seg(SegReg s, uint16_t sel);

  // ---- running ----
  RunResult run(uint64_t max = 10000);
  /// The vector whose handler stub halted, or -1 when the guest halted elsewhere.
  [[nodiscard]] int vector() const;
  /// Dword at SS:ESP + 4*i (flat stacks only).
  [[nodiscard]] uint32_t stack(unsigned i) const;

  // ---- state ----
  CpuState cpu;
  GuestMemory mem;
  Interpreter interp;

  std::string e9;                            ///< bytes written to port 0xE9
  std::map<uint16_t, uint32_t> port_values;  ///< what port_in returns (default 0xFF..)
  std::vector<std::pair<uint16_t, uint32_t>> port_writes;
  std::vector<std::pair<uint64_t, uint32_t>> mmio_writes;
  uint32_t mmio_value = 0x12345678;
  std::optional<uint8_t> irq;  ///< an asserted interrupt request and its vector
  uint64_t tsc = 0;
  int shutdowns = 0;
  Mode mode;
};

}  // namespace vmm86::test
