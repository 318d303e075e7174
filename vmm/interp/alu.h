// Integer ALU semantics of IA-32 with exact P6 flags: pure functions over values and
// EFLAGS, used by the interpreter and checked against the host CPU in tests/interp/.
// Sizes are in bytes (1, 2, 4); values are zero-extended to 32 bits and results masked.
// "Undefined" flags follow what a P6-family CPU does (see docs/interpreter.md).
#pragma once

#include <cstdint>

namespace vmm86::alu {

/// Two-operand arithmetic/logic in the order of the 0x80 group's ModRM.reg field.
enum class BinOp : uint8_t { Add, Or, Adc, Sbb, And, Sub, Xor, Cmp, Test };
/// Shifts and rotates in the order of the 0xC0/0xD0 group's ModRM.reg field
/// (Sal is the undocumented /6 alias of Shl).
enum class ShiftOp : uint8_t { Rol, Ror, Rcl, Rcr, Shl, Shr, Sal, Sar };
enum class BitOp : uint8_t { Bt, Bts, Btr, Btc };
enum class BcdOp : uint8_t { Daa, Das, Aaa, Aas };

/// A result value with the complete new EFLAGS (only status flags differ from the input).
struct Result {
  uint32_t value = 0;
  uint32_t eflags = 0;
};

[[nodiscard]] Result binary(BinOp op, unsigned size, uint32_t dst, uint32_t src, uint32_t eflags);
[[nodiscard]] Result inc(unsigned size, uint32_t value, uint32_t eflags);  ///< CF unchanged
[[nodiscard]] Result dec(unsigned size, uint32_t value, uint32_t eflags);  ///< CF unchanged
[[nodiscard]] Result neg(unsigned size, uint32_t value, uint32_t eflags);
/// Count is the raw operand; it is masked to 5 bits as the CPU does. A masked count of 0
/// leaves the flags unchanged.
[[nodiscard]] Result shift(ShiftOp op, unsigned size, uint32_t value, uint8_t count, uint32_t eflags);
/// shld/shrd: `value` is the destination, `fill` the source register.
[[nodiscard]] Result shld(unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags);
[[nodiscard]] Result shrd(unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags);

/// mul/imul with the one-operand form: result is (high:low) of size*2.
struct WideResult {
  uint32_t low = 0;
  uint32_t high = 0;
  uint32_t eflags = 0;
};
[[nodiscard]] WideResult mul(unsigned size, uint32_t a, uint32_t b, uint32_t eflags);
[[nodiscard]] WideResult imul(unsigned size, uint32_t a, uint32_t b, uint32_t eflags);
/// Two/three-operand imul (truncated result, CF=OF=overflow).
[[nodiscard]] Result imul_trunc(unsigned size, uint32_t a, uint32_t b, uint32_t eflags);

/// div/idiv of (high:low) by divisor. `ok` false means #DE (divide by zero or quotient
/// overflow); then nothing is written.
struct DivResult {
  uint32_t quotient = 0;
  uint32_t remainder = 0;
  uint32_t eflags = 0;
  bool ok = false;
};
[[nodiscard]] DivResult div(unsigned size, uint32_t low, uint32_t high, uint32_t divisor, uint32_t eflags);
[[nodiscard]] DivResult idiv(unsigned size, uint32_t low, uint32_t high, uint32_t divisor, uint32_t eflags);

/// Bit test family on a register-sized value; `bit` already reduced to the operand size.
[[nodiscard]] Result bit_test(BitOp op, unsigned size, uint32_t value, uint32_t bit, uint32_t eflags);
/// bsf/bsr: on a zero source ZF=1 and the destination is unchanged (value = old_dst).
[[nodiscard]] Result bsf(unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags);
[[nodiscard]] Result bsr(unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags);

/// BCD adjusts on AL (daa/das) or AX (aaa/aas): `ax` in, new AX out.
[[nodiscard]] Result bcd(BcdOp op, uint32_t ax, uint32_t eflags);
/// aam imm8: `ok` false means #DE (base 0).
[[nodiscard]] DivResult aam(uint32_t ax, uint8_t base, uint32_t eflags);
[[nodiscard]] Result aad(uint32_t ax, uint8_t base, uint32_t eflags);

/// Parity flag of the low byte.
[[nodiscard]] constexpr bool parity_even(uint32_t value) {
  return (__builtin_popcount(value & 0xFF) & 1) == 0;
}

}  // namespace vmm86::alu
