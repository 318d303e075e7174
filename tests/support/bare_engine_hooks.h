// CpuHooks for a bare vCPU (no devices) whose code runs on a BtEngine: what the machine
// does for the engine, without the platform — code-page writes made by the interpreter
// invalidate translations, and CR writes / INVLPG reach the shadow MMU.
#pragma once

#include "shadow-mmu/shadow_mmu.h"
#include "tests/support/no_devices.h"
#include "vmm/engine/bt_engine.h"

namespace vmm86 {

class BareEngineHooks : public NoDevices {
 public:
  /// Both must outlive the hooks; until attached, nothing is watched.
  void attach(BtEngine* engine, ShadowMmu* mmu) {
    engine_ = engine;
    mmu_ = mmu;
  }
  bool is_watched_page(GuestPhys page) override { return mmu_ && mmu_->is_code_page(page.page()); }
  void watched_write(GuestPhys addr, unsigned size) override {
    if (engine_) engine_->physical_write(addr, size);
  }
  void paging_written() override {
    if (engine_) engine_->paging_written();
  }
  void page_invalidated(GuestLinear linear) override {
    if (engine_) engine_->invlpg(linear);
  }

 private:
  BtEngine* engine_ = nullptr;
  ShadowMmu* mmu_ = nullptr;
};

}  // namespace vmm86
