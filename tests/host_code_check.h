// The static half of the isolation proof: decodes a translated block's host code and lists
// every memory access that does not provably stay in the guest window or the monitor's own
// structures. Allowed:
// - gs: with 32-bit addressing (the window: the CPU wraps the address at 4 GiB), or
//   gs:[r11] with 64-bit addressing (ea + an fs:/gs: segment base, guest_mem_operand: at
//   most 8 GiB past the window base, inside the window or its 4 GiB guard);
// - R15 (the ExecContext), R9 (the indirect table entry the lookup computed), RSP (the
//   host/return stack: pushfq/popfq, host call/ret);
// - a host string instruction recorded as a HostPointerSite (RSI/RDI = window base + a
//   32-bit guest value);
// - a RIP-relative address constant read by a jmp/call (an absolute jump to a trampoline).
#pragma once

#include <Zydis/Zydis.h>

#include <sstream>
#include <string>

#include "translator/code_cache.h"

namespace vmm86::testing_support {

struct HostAccessCount {
  int guest = 0;   ///< gs: accesses
  int string = 0;  ///< host string instruction operands
};

/// Empty when every memory access of `block`'s host code is allowed; else one line per
/// offending instruction.
inline std::string unwindowed_accesses(const Block& block, HostAccessCount* count = nullptr) {
  auto is_host_pointer_site = [&](uint32_t off) {
    for (const HostPointerSite& site : block.host_pointer_sites) {
      if (site.host_offset == off) return true;
    }
    return false;
  };
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  std::ostringstream problems;
  for (uint32_t off = 0; off < block.host_size;) {
    ZydisDecodedInstruction d;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, block.host_code + off, block.host_size - off, &d, ops))) {
      problems << "undecodable host code at offset " << off << "\n";
      break;
    }
    for (int k = 0; k < d.operand_count; ++k) {  // hidden operands (stack, string) too
      const ZydisDecodedOperand& op = ops[k];
      if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || op.mem.type != ZYDIS_MEMOP_TYPE_MEM) continue;
      const ZydisRegister base = op.mem.base;
      bool ok = false;
      if (op.mem.segment == ZYDIS_REGISTER_GS) {
        // A bit-string instruction with a register offset reaches ea + offset / 8 (±256 MiB):
        // from gs:[r11] (up to 8 GiB past the window base) that could pass the guard.
        const bool register_bit_offset = (d.mnemonic == ZYDIS_MNEMONIC_BT || d.mnemonic == ZYDIS_MNEMONIC_BTS ||
                                          d.mnemonic == ZYDIS_MNEMONIC_BTR || d.mnemonic == ZYDIS_MNEMONIC_BTC) &&
                                         ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER;
        ok = d.address_width == 32 || (base == ZYDIS_REGISTER_R11 && op.mem.index == ZYDIS_REGISTER_NONE &&
                                       op.mem.disp.value == 0 && !register_bit_offset);
        if (ok && count) ++count->guest;
      } else if (base == ZYDIS_REGISTER_RSI || base == ZYDIS_REGISTER_RDI) {
        ok = is_host_pointer_site(off);
        if (ok && count) ++count->string;
      } else if (base == ZYDIS_REGISTER_RIP) {
        ok = d.meta.category == ZYDIS_CATEGORY_UNCOND_BR || d.meta.category == ZYDIS_CATEGORY_CALL;
      } else {
        ok = base == ZYDIS_REGISTER_R15 || base == ZYDIS_REGISTER_R9 || base == ZYDIS_REGISTER_RSP;
      }
      if (!ok) {
        problems << "host offset " << off << ": " << ZydisMnemonicGetString(d.mnemonic) << " base "
                 << (base == ZYDIS_REGISTER_NONE ? "none" : ZydisRegisterGetString(base)) << " segment "
                 << ZydisRegisterGetString(op.mem.segment) << " address width " << int{d.address_width} << "\n";
      }
    }
    off += d.length;
  }
  return problems.str();
}

}  // namespace vmm86::testing_support
