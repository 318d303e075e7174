// Differential testing of the translator against the interpreter (DESIGN.md §8): random
// instruction sequences start from identical random states in both engines and must end
// in identical registers, flags, memory and EIP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/arch/cpu_state.h"

namespace vmm86::difftest {

/// Guest layout of a test program (flat 32-bit protected mode, paging off).
inline constexpr uint32_t kCodeBase = 0x10000;
inline constexpr uint32_t kDataBase = 0x40000;
inline constexpr uint32_t kDataSize = 0x2000;
inline constexpr uint32_t kStackTop = 0x60000;
inline constexpr uint32_t kStackCheck = 0x400;  ///< bytes below and above ESP compared
inline constexpr uint32_t kFsBase = 0x41000;    ///< FS points into the data area (non-flat)
inline constexpr uint32_t kRamBytes = 1 << 20;

/// One generated test case.
struct Program {
  uint64_t seed = 0;
  std::vector<uint8_t> code;         ///< at kCodeBase, ends in hlt
  std::vector<uint8_t> data;         ///< initial contents of the data area
  CpuState initial{};                ///< initial vCPU state
  std::vector<std::string> listing;  ///< what was generated (for failure reports)
};

/// Generates a program of about `length` instructions from `seed`.
[[nodiscard]] Program generate(uint64_t seed, int length);

/// The outcome of running a program on one engine.
struct Outcome {
  bool completed = false;  ///< reached hlt
  std::string error;
  CpuState cpu{};
  std::vector<uint8_t> data;
  std::vector<uint8_t> stack;     ///< [kStackTop - kStackCheck, kStackTop + kStackCheck)
  uint64_t translated_insns = 0;  ///< guest instructions retired in translated code (bt only)
};

[[nodiscard]] Outcome run_interpreter(const Program& p);
[[nodiscard]] Outcome run_translator(const Program& p);

/// Empty when equal; otherwise what differs between the reference run `ref` and the tested `got`.
[[nodiscard]] std::string compare(const Outcome& ref, const Outcome& got);

}  // namespace vmm86::difftest
