// The fixture of the translator tests: flat protected-mode guest code (paging off, RAM
// mapped 1:1 into one window) assembled as 32-bit code with asmjit and run in the code
// cache without a dispatcher: direct exits are chained, indirect ones remembered, and
// any other exit ends the run so that tests can look at it.
#pragma once

#include <asm/prctl.h>
#include <asmjit/x86.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "shadow-mmu/address_window.h"
#include "translator/translator.h"

namespace vmm86::translator_test {

using namespace asmjit;

inline constexpr uint32_t kCodeBase = 0x10000;
inline constexpr uint32_t kStackTop = 0x80000;
inline constexpr uint8_t kHlt = 0xF4;

class RamSource : public CodeSource {
 public:
  explicit RamSource(GuestMemory& mem) : mem_(mem) {}
  bool fetch(GuestLinear linear, Bytes* out) override {
    const uint32_t avail = kPageSize - linear.page_offset();
    out->host = mem_.host_ptr(GuestPhys{linear.value}, avail);
    out->available = avail;
    out->phys = GuestPhys{linear.value};
    return out->host != nullptr;
  }

 private:
  GuestMemory& mem_;
};

class TranslatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::create(16 << 20);
    ASSERT_TRUE(m) << m.error();
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
    const Status reserved = window_.reserve();
    ASSERT_TRUE(reserved) << reserved.error();
    ASSERT_TRUE(window_.map_identity(*mem_));
    ASSERT_EQ(syscall(SYS_arch_prctl, ARCH_SET_GS, window_.base()), 0);
    ctx_ = create_exec_context();
    ASSERT_TRUE(ctx_);
    CpuState& cpu = ctx_->cpu;
    cpu.reset();
    cpu.cr0 |= cr0::PE;
    for (auto& s : cpu.seg) s = SegmentCache{0x18, 0, 0xFFFFFFFF, 0xC093};
    cpu.sreg(SegReg::Cs) = SegmentCache{0x10, 0, 0xFFFFFFFF, 0xC09B};
    cpu.eip = kCodeBase;
    cpu.reg(Gpr::Esp) = kStackTop;
    ctx_->window_base = reinterpret_cast<uint64_t>(window_.base());
    translator_ = std::make_unique<Translator>(*ctx_, 4 << 20);
    const Status ready = translator_->init();
    ASSERT_TRUE(ready) << ready.error();
    source_ = std::make_unique<RamSource>(*mem_);
  }

  /// Assembles 32-bit guest code at `base` (kCodeBase by default).
  void load(const std::function<void(x86::Assembler&)>& body, uint32_t base = kCodeBase) {
    CodeHolder code;
    code.init(Environment(Arch::kX86));
    x86::Assembler a(&code);
    body(a);
    ASSERT_EQ(code.flatten(), kErrorOk);
    ASSERT_EQ(code.resolveUnresolvedLinks(), kErrorOk);
    ASSERT_EQ(code.relocateToBase(base), kErrorOk);
    const size_t size = code.codeSize();
    ASSERT_EQ(code.copyFlattenedData(mem_->host_ptr(GuestPhys{base}, size), size), kErrorOk);
  }

  /// Runs translated code, chaining direct exits and filling the indirect table, until an
  /// exit the dispatcher would have to act on (Interpret, Callout, ...). nullptr when the
  /// block at the current EIP cannot be translated (or after `max_exits`).
  ExitRecord* run_translated(int max_exits = 100000) {
    for (int i = 0; i < max_exits; ++i) {
      Block* block = nullptr;
      if (translator_->block_for_current(*source_, &block) != TranslateStatus::Ok) return nullptr;
      ExitRecord* exit = translator_->enter(block);
      if (exit->kind == ExitKind::Direct) {
        translator_->try_chain(exit, *source_);
      } else if (exit->kind == ExitKind::Indirect) {
        Block* target = nullptr;
        if (translator_->block_for_current(*source_, &target) == TranslateStatus::Ok) {
          translator_->remember_indirect_target(ctx_->cpu.eip, target);
        }
      } else {
        return exit;
      }
    }
    return nullptr;
  }

  /// Runs translated code until the guest reaches hlt; false if it stops elsewhere.
  bool run_to_hlt(int max_exits = 100000) {
    ExitRecord* exit = run_translated(max_exits);
    if (exit && exit->kind != ExitKind::Interpret) return false;
    return *mem_->host_ptr(GuestPhys{ctx_->cpu.eip}) == kHlt;
  }

  uint32_t reg(Gpr r) const { return ctx_->cpu.reg(r); }
  uint32_t read32(uint32_t addr) const {
    uint32_t v = 0;
    EXPECT_TRUE(mem_->read(GuestPhys{addr}, &v, 4));
    return v;
  }

  std::unique_ptr<GuestMemory> mem_;
  AddressWindow window_;
  ExecContextPtr ctx_;
  std::unique_ptr<Translator> translator_;
  std::unique_ptr<RamSource> source_;
};

}  // namespace vmm86::translator_test
