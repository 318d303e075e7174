// The interpreter's handlers come from the classification table's Interp column: every
// decodable instruction of the modelled CPU reaches a handler, the FPU handler runs
// exactly the FloatingPoint class, and no handler is dead.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "decoder/decoder.h"
#include "vmm/interp/core.h"

namespace vmm86::interp {
namespace {

TEST(HandlerTable, EveryDecodedFormHasItsRowsHandler) {
  std::set<std::string> mismatched;
  int checked = 0;
  for (CodeSize size : {CodeSize::Bits32, CodeSize::Bits16}) {
    Decoder d(size);
    for (int map = 0; map < 2; ++map) {
      for (uint8_t prefix : {0x00, 0x66, 0xF2, 0xF3}) {
        for (int opcode = 0; opcode < 256; ++opcode) {
          for (int modrm = 0; modrm < 256; ++modrm) {
            uint8_t bytes[15] = {};
            int n = 0;
            if (prefix) bytes[n++] = prefix;
            if (map == 1) bytes[n++] = 0x0F;
            bytes[n++] = static_cast<uint8_t>(opcode);
            bytes[n++] = static_cast<uint8_t>(modrm);
            Instruction insn;
            if (d.decode({bytes, sizeof(bytes)}, &insn) != DecodeStatus::Ok) continue;
            if (insn.classes == InsnClass::Unclassified) continue;
            ++checked;
            const Handler h = handler_for(insn);
            // One FPU classification: the table's FloatingPoint class is what h_fpu runs.
            if (h == nullptr || (h == &h_fpu) != insn.has(InsnClass::FloatingPoint) ||
                (h == &h_string) != insn.has(InsnClass::StringOp)) {
              mismatched.insert(ZydisMnemonicGetString(insn.mnemonic()));
            }
          }
        }
      }
    }
  }
  std::string list;
  for (const auto& s : mismatched) list += s + " ";
  EXPECT_TRUE(mismatched.empty()) << "handler disagrees with the row for: " << list;
  EXPECT_GT(checked, 10000);
}

TEST(HandlerTable, EveryHandlerServesARow) {
  std::set<Interp> used;
  for (const ClassEntry& row : classification_table()) used.insert(row.interp);
  // Reached only through refinements (Refine::MovSpecial).
  used.insert(Interp::MovSreg);
  used.insert(Interp::MovCr);
  used.insert(Interp::MovDr);
  for (size_t i = 0; i < static_cast<size_t>(Interp::Count); ++i) {
    EXPECT_TRUE(used.count(static_cast<Interp>(i))) << "Interp value " << i << " names no row";
  }
}

}  // namespace
}  // namespace vmm86::interp
