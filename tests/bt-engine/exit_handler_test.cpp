// The exit handler (vmm/engine/exit_handler.h) over made-up exits: a fake engine records
// what the handler asked of it; no translated code runs.
#include "vmm/engine/exit_handler.h"

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

namespace vmm86 {
namespace {

class FakeEngine : public ExitServices {
 public:
  Block* chain(ExitRecord& exit) override {
    calls.push_back("chain");
    chained = &exit;
    return target;
  }
  Block* find_block() override {
    calls.push_back("find");
    return target;
  }
  void remember_target(const Block& block) override {
    calls.push_back("remember");
    remembered = &block;
  }
  void forget_target() override { calls.push_back("forget"); }
  void prefill_code_tlb_around() override { calls.push_back("prefill"); }
  bool interpret_one(EngineStop* stop) override {
    calls.push_back("interpret");
    if (!unmappable_per_step.empty()) {
      unmappable += unmappable_per_step.front();
      unmappable_per_step.erase(unmappable_per_step.begin());
    } else {
      unmappable += every_step_unmappable ? 1 : 0;
    }
    if (interpret_stop) *stop = *interpret_stop;
    return !interpret_stop;
  }
  uint64_t unmappable_accesses() const override { return unmappable; }
  void invalidate_block(Block* block) override {
    calls.push_back("invalidate");
    invalidated = block;
  }
  void clear_poll_request() override { calls.push_back("clear_poll"); }
  std::optional<EngineStop> take_callout_stop() override { return std::exchange(callout_stop, std::nullopt); }

  Block* target = nullptr;  ///< what chain() and find_block() find
  std::optional<EngineStop> interpret_stop;
  uint64_t unmappable = 0;
  std::vector<int> unmappable_per_step;  ///< accesses each interpreted instruction makes, in turn
  bool every_step_unmappable = false;    ///< ... and after those
  std::optional<EngineStop> callout_stop;
  std::vector<std::string> calls;
  ExitRecord* chained = nullptr;
  const Block* remembered = nullptr;
  Block* invalidated = nullptr;
};

class ExitHandlerTest : public ::testing::Test {
 protected:
  ExitAction handle(ExitKind kind, ExitRecord* record = nullptr, RedirectedFault fault = {}, bool user = false) {
    return handle_exit(EngineExit{kind, record, fault, user}, state);
  }

  CpuState cpu{};
  FakeEngine engine;
  BtEngineStats stats;
  PendingRefill refill;
  EngineState state{cpu, engine, stats, refill};
  Block block;
};

TEST_F(ExitHandlerTest, DirectExitChainsAndCarriesTheTarget) {
  ExitRecord record{ExitKind::Direct};
  engine.target = &block;
  const ExitAction a = handle(ExitKind::Direct, &record);
  EXPECT_FALSE(a.stop);
  EXPECT_EQ(a.carried, &block);
  EXPECT_EQ(engine.chained, &record);
  EXPECT_EQ(stats.exits_direct, 1u);
}

TEST_F(ExitHandlerTest, IndirectExitTeachesTheTable) {
  engine.target = &block;
  cpu.cr0 = cr0::PE | cr0::PG;
  const ExitAction a = handle(ExitKind::Indirect);
  EXPECT_EQ(a.carried, &block);
  EXPECT_EQ(engine.remembered, &block);
  EXPECT_EQ(engine.calls, (std::vector<std::string>{"find", "remember"}));  // no prefetch
  EXPECT_EQ(stats.exits_indirect, 1u);
}

TEST_F(ExitHandlerTest, CodeTlbMissPrefetchesOnlyWithPaging) {
  engine.target = &block;
  cpu.cr0 = cr0::PE | cr0::PG;
  (void)handle(ExitKind::CodeTlbMiss);
  EXPECT_EQ(engine.calls, (std::vector<std::string>{"find", "remember", "prefill"}));
  engine.calls.clear();
  cpu.cr0 = cr0::PE;
  (void)handle(ExitKind::CodeTlbMiss);
  EXPECT_EQ(engine.calls, (std::vector<std::string>{"find", "remember"}));
  EXPECT_EQ(stats.exits_code_tlb, 2u);
}

TEST_F(ExitHandlerTest, TargetNotExecutableForgetsTheTableEntry) {
  cpu.cr0 = cr0::PE | cr0::PG;
  const ExitAction a = handle(ExitKind::CodeTlbMiss);
  EXPECT_FALSE(a.stop);
  EXPECT_EQ(a.carried, nullptr);
  EXPECT_EQ(engine.calls, (std::vector<std::string>{"find", "forget"}));
}

TEST_F(ExitHandlerTest, InterpretExitStopsWhenTheInterpreterDoes) {
  EXPECT_FALSE(handle(ExitKind::Interpret).stop);
  engine.interpret_stop = EngineStop::Halted;
  const ExitAction a = handle(ExitKind::Interpret);
  EXPECT_TRUE(a.stop);
  EXPECT_EQ(a.reason, EngineStop::Halted);
  EXPECT_EQ(stats.exits_interpret, 2u);
}

TEST_F(ExitHandlerTest, GuestPageFaultArmsARefillForTheRetry) {
  cpu.eip = 0x401000;
  cpu.cr3 = 0x5000;
  const ExitAction a = handle(ExitKind::Fault, nullptr,
                              {SIGSEGV, FillOutcome::GuestPageFault, GuestLinear{0x8048123}, true}, true);
  EXPECT_FALSE(a.stop);
  EXPECT_EQ(engine.calls, (std::vector<std::string>{"interpret"}));
  EXPECT_TRUE(refill.armed);
  EXPECT_EQ(refill.eip, 0x401000u);
  EXPECT_EQ(refill.linear.value, 0x8048123u);
  EXPECT_EQ(refill.cr3, 0x5000u);
  EXPECT_TRUE(refill.write);
  EXPECT_TRUE(refill.user);
  EXPECT_EQ(stats.exits_fault, 1u);
}

TEST_F(ExitHandlerTest, OtherFaultsArmNoRefill) {
  for (FillOutcome outcome : {FillOutcome::Mmio, FillOutcome::CodeWrite}) {
    (void)handle(ExitKind::Fault, nullptr, {SIGSEGV, outcome, GuestLinear{0xFEE00000}, false});
  }
  (void)handle(ExitKind::Fault, nullptr, {SIGFPE, FillOutcome::Mapped, GuestLinear{}, false});  // #DE
  EXPECT_FALSE(refill.armed);
  EXPECT_EQ(stats.exits_fault, 3u);
}

TEST_F(ExitHandlerTest, GuestPageFaultThatStopsTheMachineArmsNothing) {
  engine.interpret_stop = EngineStop::TripleFault;
  const ExitAction a = handle(ExitKind::Fault, nullptr,
                              {SIGSEGV, FillOutcome::GuestPageFault, GuestLinear{0x1000}, false});
  EXPECT_TRUE(a.stop);
  EXPECT_EQ(a.reason, EngineStop::TripleFault);
  EXPECT_FALSE(refill.armed);
}

TEST_F(ExitHandlerTest, MmioExitInterpretsOnWhileTheInstructionsTouchUnmappableMemory) {
  engine.unmappable_per_step = {1, 2, 1, 0, 1};
  const ExitAction a = handle(ExitKind::Fault, nullptr, {SIGSEGV, FillOutcome::Mmio, GuestLinear{0xFEE00300}, true});
  EXPECT_FALSE(a.stop);
  // The faulting one, two more that touch such memory, the first that does not; not the fifth.
  EXPECT_EQ(engine.calls, (std::vector<std::string>(4, "interpret")));
  EXPECT_EQ(stats.interpreted_after_mmio, 3u);
  EXPECT_FALSE(refill.armed);
}

TEST_F(ExitHandlerTest, MmioRunIsBounded) {
  engine.every_step_unmappable = true;
  (void)handle(ExitKind::Fault, nullptr, {SIGSEGV, FillOutcome::Mmio, GuestLinear{0xA0000}, true});
  EXPECT_EQ(engine.calls.size(), kUnmappableRun);
}

TEST_F(ExitHandlerTest, MmioRunEndsWhenTheInterpreterStopsOrHalts) {
  engine.every_step_unmappable = true;
  engine.interpret_stop = EngineStop::Unimplemented;
  ExitAction a = handle(ExitKind::Fault, nullptr, {SIGSEGV, FillOutcome::Mmio, GuestLinear{0xA0000}, true});
  EXPECT_TRUE(a.stop);
  EXPECT_EQ(engine.calls.size(), 1u);
  engine.interpret_stop.reset();
  engine.calls.clear();
  cpu.halted = true;
  a = handle(ExitKind::Fault, nullptr, {SIGSEGV, FillOutcome::Mmio, GuestLinear{0xA0000}, true});
  EXPECT_EQ(engine.calls.size(), 1u);
}

TEST_F(ExitHandlerTest, OtherFaultExitsInterpretOneInstruction) {
  engine.every_step_unmappable = true;
  for (FillOutcome outcome : {FillOutcome::GuestPageFault, FillOutcome::CodeWrite}) {
    (void)handle(ExitKind::Fault, nullptr, {SIGSEGV, outcome, GuestLinear{0x1000}, true});
  }
  EXPECT_EQ(engine.calls.size(), 2u);
}

TEST_F(ExitHandlerTest, PollExitDisarmsAndLetsTheMachineRun) {
  const ExitAction a = handle(ExitKind::Poll);
  EXPECT_TRUE(a.stop);
  EXPECT_EQ(a.reason, EngineStop::Budget);
  EXPECT_EQ(engine.calls, (std::vector<std::string>{"clear_poll"}));
  EXPECT_EQ(stats.exits_poll, 1u);
}

TEST_F(ExitHandlerTest, StaleExitDropsTheBlockItLeft) {
  ExitRecord record{ExitKind::Stale, &block};
  const ExitAction a = handle(ExitKind::Stale, &record);
  EXPECT_FALSE(a.stop);
  EXPECT_EQ(engine.invalidated, &block);
  EXPECT_EQ(stats.exits_stale, 1u);
}

TEST_F(ExitHandlerTest, CalloutExitStopsOnceWithTheCalloutsReason) {
  engine.callout_stop = EngineStop::Unimplemented;
  const ExitAction first = handle(ExitKind::Callout);
  EXPECT_TRUE(first.stop);
  EXPECT_EQ(first.reason, EngineStop::Unimplemented);
  EXPECT_FALSE(handle(ExitKind::Callout).stop);
  EXPECT_EQ(stats.exits_callout, 2u);
}

}  // namespace
}  // namespace vmm86
