// --trace: a text log of what the vCPU does, in the spirit of QEMU's `-d in_asm,int,exec`
// so that a vmm86 run and a QEMU run of the same guest can be compared line by line:
//   IN: (block translated)           guest code of each new translated block, disassembled
//   EXEC eip (interpreter)           every instruction the interpreter runs, with registers
//   INT v=.. e=.. (event)            every exception/interrupt delivered, with the state
// Records stop after --trace-limit of them (0: no limit).
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "common/result.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {

class Tracer {
 public:
  Tracer() = default;
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  /// Opens `path` for writing.
  [[nodiscard]] Status open(const std::string& path, uint64_t limit);
  [[nodiscard]] bool active() const { return file_ != nullptr && (limit_ == 0 || records_ < limit_); }

  /// A translated block: its guest code bytes starting at `eip`.
  void block(uint32_t eip, std::span<const uint8_t> code, uint32_t insns);
  /// One instruction about to run in the interpreter.
  void instruction(const CpuState& cpu, std::span<const uint8_t> code);
  /// An exception or interrupt about to be delivered.
  void event(const CpuState& cpu, const GuestEvent& ev);

 private:
  void count();

  std::FILE* file_ = nullptr;
  uint64_t limit_ = 0;
  uint64_t records_ = 0;
  uint64_t events_ = 0;
};

}  // namespace vmm86
