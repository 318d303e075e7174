// Decoder statuses at buffer ends and the operand/prefix helpers the engines use.
#include <gtest/gtest.h>

#include <vector>

#include "decoder/decoder.h"
#include "test_util.h"

namespace vmm86 {
namespace {

Instruction decode_ok(CodeSize size, std::vector<uint8_t> bytes) {
  Instruction insn;
  const DecodeStatus status = Decoder(size).decode(bytes, &insn);
  EXPECT_EQ(status, DecodeStatus::Ok) << test::hex(bytes, bytes.size());
  return insn;
}
Instruction d32(std::vector<uint8_t> bytes) { return decode_ok(CodeSize::Bits32, std::move(bytes)); }
Instruction d16(std::vector<uint8_t> bytes) { return decode_ok(CodeSize::Bits16, std::move(bytes)); }

constexpr uint8_t kEs = 0, kCs = 1, kSs = 2, kDs = 3, kFs = 4, kGs = 5;

TEST(Decoder, EveryTruncationNeedsMoreBytes) {
  // An instruction cut at a page end must never decode as something shorter.
  const std::vector<std::vector<uint8_t>> insns = {
      {0xC7, 0x84, 0x88, 0x00, 0x10, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12},  // mov [eax+ecx*4+0x1000], imm32
      {0x66, 0xF3, 0xA5},                                                  // rep movsw
      {0x2E, 0x0F, 0x22, 0xD8},                                            // cs: mov cr3, eax
      {0x66, 0x0F, 0x28, 0x00},                                            // movapd xmm0, [eax]
      {0xEA, 0x00, 0x00, 0x10, 0x00, 0x08, 0x00},                          // jmp 8:0x100000
      {0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},                    // nopw
  };
  const Decoder decoder(CodeSize::Bits32);
  for (const auto& bytes : insns) {
    Instruction insn;
    ASSERT_EQ(decoder.decode(bytes, &insn), DecodeStatus::Ok) << test::hex(bytes, bytes.size());
    ASSERT_EQ(insn.length(), bytes.size());
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_EQ(decoder.decode(std::span(bytes.data(), n), &insn), DecodeStatus::NeedMoreBytes) << test::hex(bytes, n);
    }
  }
}

TEST(Decoder, LooksAtFifteenBytesAtMost) {
  std::vector<uint8_t> bytes(64, 0x90);  // a long run of nops decodes one nop
  Instruction insn;
  ASSERT_EQ(Decoder(CodeSize::Bits32).decode(bytes, &insn), DecodeStatus::Ok);
  EXPECT_EQ(insn.length(), 1);
}

TEST(Decoder, OperandAndAddressSize) {
  EXPECT_EQ(d32({0x89, 0xD8}).operand_size(), 32);
  EXPECT_EQ(d32({0x66, 0x89, 0xD8}).operand_size(), 16);
  EXPECT_EQ(d16({0x89, 0xD8}).operand_size(), 16);
  EXPECT_EQ(d16({0x66, 0x89, 0xD8}).operand_size(), 32);
  EXPECT_EQ(d32({0x8B, 0x00}).address_size(), 32);
  EXPECT_EQ(d32({0x67, 0x8B, 0x00}).address_size(), 16);
  EXPECT_EQ(d16({0x8B, 0x00}).address_size(), 16);
}

TEST(DecoderHelpers, MemoryOperand) {
  Instruction mov = d32({0x8B, 0x44, 0x24, 0x04});  // mov eax, [esp+4]
  ASSERT_NE(mov.memory_operand(), nullptr);
  EXPECT_EQ(mov.memory_operand(), &mov.operands[1]);
  EXPECT_EQ(mov.memory_operand()->mem.base, ZYDIS_REGISTER_ESP);
  EXPECT_EQ(mov.memory_operand()->mem.disp.value, 4);

  Instruction store = d32({0x89, 0x18});  // mov [eax], ebx: the memory operand is first
  EXPECT_EQ(store.memory_operand(), &store.operands[0]);
  EXPECT_TRUE(store.memory_operand()->actions & ZYDIS_OPERAND_ACTION_WRITE);

  EXPECT_EQ(d32({0x8D, 0x04, 0x24}).memory_operand(), nullptr);  // lea computes, does not access
  EXPECT_EQ(d32({0x01, 0xD8}).memory_operand(), nullptr);        // add eax, ebx
  EXPECT_EQ(d32({0x50}).memory_operand(), nullptr);              // push: implicit stack access only
  EXPECT_EQ(d32({0xA4}).memory_operand(), nullptr);              // movsb: implicit operands only
  Instruction moffs = d32({0xA1, 0x00, 0x10, 0x00, 0x00});       // mov eax, [0x1000]
  ASSERT_NE(moffs.memory_operand(), nullptr);
  EXPECT_EQ(moffs.memory_operand()->mem.base, ZYDIS_REGISTER_NONE);
  EXPECT_EQ(moffs.memory_operand()->mem.disp.value, 0x1000);
}

TEST(DecoderHelpers, EffectiveSegmentDefaults) {
  EXPECT_EQ(effective_segment(*d32({0x8B, 0x00}).memory_operand()), kDs);              // [eax]
  EXPECT_EQ(effective_segment(*d32({0x8B, 0x45, 0x00}).memory_operand()), kSs);        // [ebp]
  EXPECT_EQ(effective_segment(*d32({0x8B, 0x04, 0x24}).memory_operand()), kSs);        // [esp]
  EXPECT_EQ(effective_segment(*d32({0x8B, 0x04, 0x2C}).memory_operand()), kSs);        // [esp+ebp]: base decides
  EXPECT_EQ(effective_segment(*d32({0x8B, 0x04, 0x28}).memory_operand()), kDs);        // [eax+ebp]
  EXPECT_EQ(effective_segment(*d32({0x8B, 0x05, 0, 0, 0, 0}).memory_operand()), kDs);  // [disp32]
  EXPECT_EQ(effective_segment(*d16({0x8B, 0x02}).memory_operand()), kSs);              // [bp+si]
  EXPECT_EQ(effective_segment(*d16({0x8B, 0x03}).memory_operand()), kSs);              // [bp+di]
  EXPECT_EQ(effective_segment(*d16({0x8B, 0x46, 0x02}).memory_operand()), kSs);        // [bp+2]
  EXPECT_EQ(effective_segment(*d16({0x8B, 0x06, 0, 0}).memory_operand()), kDs);        // [disp16]
  EXPECT_EQ(effective_segment(*d16({0x8B, 0x00}).memory_operand()), kDs);              // [bx+si]
}

TEST(DecoderHelpers, EffectiveSegmentOverrides) {
  EXPECT_EQ(effective_segment(*d32({0x64, 0x8B, 0x00}).memory_operand()), kFs);
  EXPECT_EQ(effective_segment(*d32({0x3E, 0x8B, 0x45, 0x00}).memory_operand()), kDs);  // ds:[ebp]
  EXPECT_EQ(effective_segment(*d16({0x26, 0x8B, 0x46, 0x00}).memory_operand()), kEs);
  // Two overrides: the last one counts.
  Instruction two = d32({0x2E, 0x65, 0x8B, 0x00});
  EXPECT_EQ(effective_segment(*two.memory_operand()), kGs);
  EXPECT_EQ(two.segment_override(), kGs);
  // String instructions: the source takes the override, the ES:EDI destination never does.
  Instruction movs = d32({0x64, 0xA5});  // movsd with fs:
  EXPECT_EQ(movs.segment_override(), kFs);
  ASSERT_GE(movs.raw.operand_count, 2);
  EXPECT_EQ(movs.operands[0].mem.base, ZYDIS_REGISTER_EDI);
  EXPECT_EQ(effective_segment(movs.operands[0]), kEs);
  EXPECT_EQ(effective_segment(movs.operands[1]), kFs);
  // xlat's implicit [ebx+al] is DS-relative and takes overrides.
  EXPECT_EQ(effective_segment(d32({0x26, 0xD7}).operands[0]), kEs);
  EXPECT_EQ(d32({0x8B, 0x00}).segment_override(), std::nullopt);
}

TEST(DecoderHelpers, SegmentNumbers) {
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_ES), kEs);
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_CS), kCs);
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_SS), kSs);
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_DS), kDs);
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_FS), kFs);
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_GS), kGs);
  EXPECT_EQ(segment_number(ZYDIS_REGISTER_EAX), std::nullopt);
  // The number is the ModRM reg field of mov Sreg (8E /r): mov fs, ax is 8E E0.
  Instruction mov_fs = d32({0x8E, 0xE0});
  EXPECT_EQ(segment_number(mov_fs.operands[0].reg.value), kFs);
}

TEST(DecoderHelpers, LockAndRepPrefixes) {
  EXPECT_TRUE(d32({0xF0, 0x01, 0x18}).has_lock());  // lock add [eax], ebx
  EXPECT_FALSE(d32({0x01, 0x18}).has_lock());
  EXPECT_EQ(d32({0xA5}).rep_prefix(), RepPrefix::None);
  EXPECT_EQ(d32({0xF3, 0xA5}).rep_prefix(), RepPrefix::Rep);
  EXPECT_EQ(d32({0xF2, 0xA5}).rep_prefix(), RepPrefix::Rep);  // F2 repeats movs unconditionally
  EXPECT_EQ(d32({0xF3, 0xAB}).rep_prefix(), RepPrefix::Rep);
  EXPECT_EQ(d32({0xF3, 0x6C}).rep_prefix(), RepPrefix::Rep);  // rep insb
  EXPECT_EQ(d32({0xF3, 0xA6}).rep_prefix(), RepPrefix::RepE);
  EXPECT_EQ(d32({0xF2, 0xA6}).rep_prefix(), RepPrefix::RepNE);
  EXPECT_EQ(d32({0xF3, 0xAE}).rep_prefix(), RepPrefix::RepE);
  EXPECT_EQ(d32({0xF2, 0xAF}).rep_prefix(), RepPrefix::RepNE);
  EXPECT_EQ(d16({0xF3, 0xA4}).rep_prefix(), RepPrefix::Rep);
  // Not string instructions: F3/F2 are mandatory (SSE) or ignored (rep ret, pause).
  EXPECT_EQ(d32({0xF3, 0xC3}).rep_prefix(), RepPrefix::None);
  EXPECT_EQ(d32({0xF3, 0x90}).rep_prefix(), RepPrefix::None);
  EXPECT_EQ(d32({0xF3, 0x0F, 0x10, 0xC1}).rep_prefix(), RepPrefix::None);  // movss
  EXPECT_EQ(d32({0xF2, 0x0F, 0x10, 0xC1}).rep_prefix(), RepPrefix::None);  // SSE2 movsd
}

TEST(DecoderHelpers, GprRefs) {
  struct Case {
    ZydisRegister reg;
    uint8_t index, width;
    bool high;
  };
  const Case cases[] = {
      {ZYDIS_REGISTER_EAX, 0, 32, false}, {ZYDIS_REGISTER_ESP, 4, 32, false}, {ZYDIS_REGISTER_EDI, 7, 32, false},
      {ZYDIS_REGISTER_AX, 0, 16, false},  {ZYDIS_REGISTER_BP, 5, 16, false},  {ZYDIS_REGISTER_AL, 0, 8, false},
      {ZYDIS_REGISTER_BL, 3, 8, false},   {ZYDIS_REGISTER_AH, 0, 8, true},    {ZYDIS_REGISTER_BH, 3, 8, true},
      {ZYDIS_REGISTER_CH, 1, 8, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(ZydisRegisterGetString(c.reg));
    const auto ref = gpr_ref(c.reg);
    ASSERT_TRUE(ref.has_value());
    EXPECT_EQ(ref->index, c.index);
    EXPECT_EQ(ref->width, c.width);
    EXPECT_EQ(ref->high_byte, c.high);
  }
  EXPECT_FALSE(gpr_ref(ZYDIS_REGISTER_CS).has_value());
  EXPECT_FALSE(gpr_ref(ZYDIS_REGISTER_CR0).has_value());
  EXPECT_FALSE(gpr_ref(ZYDIS_REGISTER_XMM1).has_value());
  EXPECT_FALSE(gpr_ref(ZYDIS_REGISTER_RAX).has_value());
  // Decoded: the ModRM encoding of mov bh, ah (88 E7) gives back rm=7 -> bh, reg=4 -> ah.
  Instruction mov = d32({0x88, 0xE7});
  EXPECT_EQ(gpr_ref(mov.operands[0].reg.value)->index, 3);
  EXPECT_TRUE(gpr_ref(mov.operands[0].reg.value)->high_byte);
  EXPECT_EQ(gpr_ref(mov.operands[1].reg.value)->index, 0);
}

TEST(DecoderHelpers, ClassNamesRoundTrip) {
  for (unsigned c = 0; c < static_cast<unsigned>(InsnClass::Count); ++c) {
    const auto name = insn_class_name(static_cast<InsnClass>(c));
    EXPECT_NE(name, "?");
    EXPECT_EQ(test::parse_classes(name), InsnClassSet{static_cast<InsnClass>(c)});
  }
}

}  // namespace
}  // namespace vmm86
