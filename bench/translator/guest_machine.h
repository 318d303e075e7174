// A bare guest machine for the translator benchmarks: guest RAM, a BT engine, and helpers
// to build a flat protected-mode environment (GDT, IDT, TSS, 4 KiB page tables) so that
// guest code can run at CPL 3 with paging on, and come back to the monitor via int3.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shadow-mmu/shadow_mmu.h"
#include "vmm/engine/bt_engine.h"
#include "vmm/interp/interpreter.h"

namespace vmm86::bench {

class GuestMachine {
 public:
  /// `ram` bytes of guest RAM with tables for an identity-mapped, user-accessible first
  /// `mapped` bytes. Aborts with a message on failure (benchmarks have no error path).
  GuestMachine(uint64_t ram, uint64_t mapped);
  ~GuestMachine();

  GuestMemory& mem() { return *mem_; }
  CpuState& cpu() { return ctx_->cpu; }
  BtEngine& engine() { return *engine_; }
  Interpreter& interpreter() { return *interp_; }
  ExecContext& ctx() { return *ctx_; }

  /// Copies bytes into guest physical memory.
  void load(uint32_t addr, const void* bytes, size_t size);
  /// Sets the vCPU to start at `eip` with `esp`, at CPL 3 (user) or CPL 0, paging on.
  void start(uint32_t eip, uint32_t esp, bool user);
  /// Runs the BT engine until the guest halts (int3 from user mode lands on a hlt).
  /// Returns false if it stopped for another reason.
  bool run_bt();
  /// Runs the interpreter alone until the guest halts.
  bool run_interp();

 private:
  std::unique_ptr<GuestMemory> mem_;
  ExecContextPtr ctx_;
  std::unique_ptr<CpuHooks> hooks_;
  std::unique_ptr<ShadowMmu> mmu_;
  std::unique_ptr<Interpreter> interp_;
  std::unique_ptr<BtEngine> engine_;
};

/// Reads a file produced at build time (the guest program).
std::vector<uint8_t> read_file(const std::string& path);

}  // namespace vmm86::bench
