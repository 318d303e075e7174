// The translator handles each instruction as its table row's route says: the block a
// short guest program becomes shows which instructions were rewritten inline, which run
// as callouts, and where the block ends for the interpreter.
#include <algorithm>

#include "tests/translator/translator_fixture.h"

namespace vmm86::translator_test {
namespace {

ExitRecord* no_exit_callout(ExecContext*, const CalloutSite*) { return nullptr; }

class RoutingTest : public TranslatorTest {
 protected:
  /// Translates the block at kCodeBase (callouts installed, never run here).
  Block* translate(const std::function<void(x86::Assembler&)>& body) {
    ctx_->callout = no_exit_callout;
    load(body);
    Block* block = nullptr;
    return translator_->block_for_current(*source_, &block) == TranslateStatus::Ok ? block : nullptr;
  }
  static bool ends_with_interpret_at(const Block& block, uint32_t eip) {
    return std::any_of(block.exits.begin(), block.exits.end(),
                       [&](const auto& x) { return x->kind == ExitKind::Interpret && x->target_eip == eip; });
  }
};

TEST_F(RoutingTest, CalloutRoutesRunInPlaceAndEndBlockRoutesEndTheBlock) {
  uint32_t int_eip = 0;
  Block* block = translate([&](x86::Assembler& a) {
    a.mov(x86::eax, 1);       // Copy
    a.out(0x80, x86::al);     // Callout (port I/O)
    a.mov(x86::ds, x86::ax);  // Callout (segment load, Refine::MovSpecial)
    a.push(x86::ecx);         // Stack
    int_eip = kCodeBase + static_cast<uint32_t>(a.offset());
    a.int_(0x80);  // EndBlock
    a.hlt();
  });
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->pc_map.size(), 4u);
  ASSERT_EQ(block->callouts.size(), 2u);
  EXPECT_EQ(block->callouts[0]->eip, block->pc_map[1].guest_eip);
  EXPECT_EQ(block->callouts[1]->eip, block->pc_map[2].guest_eip);
  EXPECT_TRUE(ends_with_interpret_at(*block, int_eip));
}

TEST_F(RoutingTest, AnEndBlockRouteFirstIsTheInterpretersAlone) {
  EXPECT_EQ(translate([](x86::Assembler& a) { a.int_(0x80); }), nullptr);
  EXPECT_EQ(translate([](x86::Assembler& a) { a.hlt(); }), nullptr);
}

// A rewrite that declines a form (16-bit push) hands it to its fallback route: a callout
// for a stack operation, the end of the block for a string one in a non-flat mode.
TEST_F(RoutingTest, DeclinedFormsTakeTheirFallbackRoute) {
  Block* block = translate([](x86::Assembler& a) {
    a.push(x86::ax);  // Stack, declined: 16-bit
    a.nop();
    a.hlt();
  });
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->callouts.size(), 1u);
  EXPECT_EQ(block->pc_map.size(), 2u);

  ctx_->cpu.sreg(SegReg::Es) = SegmentCache{0x18, 0x1000, 0xFFFFFFFF, 0xC093};  // not flat
  EXPECT_EQ(translate([](x86::Assembler& a) { a.stosd(); }), nullptr);
}

}  // namespace
}  // namespace vmm86::translator_test
