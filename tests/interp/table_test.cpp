// The dispatch table has no gaps: every encodable one- and two-byte-map instruction of
// the modelled CPU (integer P6 sets) decodes to a mnemonic with a handler.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "decoder/decoder.h"
#include "vmm/interp/core.h"

namespace vmm86::interp {
namespace {

TEST(HandlerTable, NoGapsInIntegerOpcodeSpace) {
  std::set<std::string> missing;
  int checked = 0;
  for (CodeSize size : {CodeSize::Bits32, CodeSize::Bits16}) {
    Decoder d(size);
    for (int map = 0; map < 2; ++map) {
      for (int opcode = 0; opcode < 256; ++opcode) {
        for (int modrm = 0; modrm < 256; modrm += 1) {
          uint8_t bytes[15] = {};
          int n = 0;
          if (map == 1) bytes[n++] = 0x0F;
          bytes[n++] = static_cast<uint8_t>(opcode);
          bytes[n++] = static_cast<uint8_t>(modrm);
          Instruction insn;
          if (d.decode({bytes, sizeof(bytes)}, &insn) != DecodeStatus::Ok) continue;
          if (!is_supported_isa(insn)) continue;
          ++checked;
          if (handler_for(insn) == nullptr) missing.insert(ZydisMnemonicGetString(insn.mnemonic()));
        }
      }
    }
  }
  std::string list;
  for (const auto& s : missing) list += s + " ";
  EXPECT_TRUE(missing.empty()) << "no handler for: " << list;
  EXPECT_GT(checked, 10000);
}

TEST(HandlerTable, EntryCount) { EXPECT_GT(handled_mnemonic_count(), 200u); }

}  // namespace
}  // namespace vmm86::interp
