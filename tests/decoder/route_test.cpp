// The routing columns of the table: encodings whose refinement changes where an engine
// handles them, and the string forms both engines read.
#include <gtest/gtest.h>

#include <string>

#include "decoder/classify.h"
#include "decoder/decoder.h"
#include "test_util.h"

namespace vmm86 {
namespace {

struct RouteCase {
  const char* bytes;
  Route route;
  Interp interp;
};

Instruction decode32(const char* hex_bytes) {
  Instruction insn;
  const auto bytes = test::parse_hex(hex_bytes);
  EXPECT_TRUE(bytes.has_value());
  EXPECT_EQ(Decoder(CodeSize::Bits32).decode(*bytes, &insn), DecodeStatus::Ok) << hex_bytes;
  return insn;
}

TEST(Route, RefinedEncodings) {
  const RouteCase cases[] = {
      {"89 C8", Route::Copy, Interp::Mov},                     // mov eax, ecx
      {"8E D8", Route::Callout, Interp::MovSreg},              // mov ds, eax
      {"8C D8", Route::Callout, Interp::Mov},                  // mov eax, ds
      {"0F 22 D8", Route::Callout, Interp::MovCr},             // mov cr3, eax
      {"0F 20 C0", Route::Callout, Interp::MovCr},             // mov eax, cr0
      {"0F 23 F8", Route::Callout, Interp::MovDr},             // mov dr7, eax
      {"0F C3 08", Route::Copy, Interp::Mov},                  // movnti [eax], ecx: no FPU state
      {"A5", Route::String, Interp::String},                   // movsd (string)
      {"F2 0F 10 C1", Route::Copy, Interp::Fpu},               // movsd xmm0, xmm1
      {"A7", Route::String, Interp::String},                   // cmpsd (string)
      {"6C", Route::EndBlock, Interp::String},                 // insb
      {"EA 00 00 00 00 08 00", Route::EndBlock, Interp::Jmp},  // jmp far ptr16:32
      {"FF 28", Route::EndBlock, Interp::Jmp},                 // jmp far [eax]
      {"FF E0", Route::Branch, Interp::Jmp},                   // jmp eax
      {"E8 00 00 00 00", Route::Call, Interp::Call},           // call rel32
      {"0F A0", Route::Stack, Interp::Push},                   // push fs
      {"1F", Route::Callout, Interp::Pop},                     // pop ds
      {"82 C0 01", Route::Callout, Interp::Binop},             // add al, 1 (82 alias)
      {"40", Route::Copy, Interp::Incdec},                     // inc eax (40-4F)
      {"9D", Route::Flags, Interp::Popf},                      // popfd
      {"66 9D", Route::Callout, Interp::Popf},                 // popf (16-bit)
      {"0F 31", Route::Time, Interp::Rdtsc},                   // rdtsc
      {"CD 80", Route::EndBlock, Interp::Int},                 // int 0x80
      {"E6 80", Route::Callout, Interp::Out},                  // out 0x80, al
      {"DD 30", Route::EndBlock, Interp::Fpu},                 // fnsave [eax]
  };
  for (const RouteCase& c : cases) {
    const Instruction insn = decode32(c.bytes);
    EXPECT_EQ(route_name(insn.route), route_name(c.route)) << c.bytes;
    EXPECT_EQ(static_cast<int>(insn.interp), static_cast<int>(c.interp)) << c.bytes;
  }
}

// Every string operation, and nothing else, has a string form; the SSE2 movsd/cmpsd
// share the mnemonic but not the form.
TEST(Route, StringFormsCoverStringOps) {
  test::walk_opcode_space([](const test::Sample& s) {
    const std::optional<StringForm> form = string_form(s.insn.mnemonic(), s.insn.classes);
    EXPECT_EQ(form.has_value(), s.insn.has(InsnClass::StringOp)) << ZydisMnemonicGetString(s.insn.mnemonic());
    if (form) {
      EXPECT_EQ(form->opcode, s.insn.raw.opcode & 0xFE) << ZydisMnemonicGetString(s.insn.mnemonic());
    }
  });
}

// The route a rewrite falls back to agrees with the row's own Callout/EndBlock routes.
TEST(Route, FallbackOfEveryDecodedForm) {
  test::walk_opcode_space([](const test::Sample& s) {
    if (s.insn.route == Route::Callout || s.insn.route == Route::EndBlock) {
      EXPECT_EQ(route_name(fallback_route(s.insn.classes)), route_name(s.insn.route))
          << ZydisMnemonicGetString(s.insn.mnemonic());
    }
  });
}

}  // namespace
}  // namespace vmm86
