// Integer ALU semantics of IA-32 with exact P6 flags: pure functions over values and
// EFLAGS, used by the interpreter and checked against the host CPU in tests/alu/.
// Sizes are in bytes (1, 2, 4); inputs are masked to the size and results zero-extended.
// Only the six status flags of the returned EFLAGS ever differ from the input.
// "Undefined" flags follow what a P6-family CPU does (see docs/interpreter-flags.md).
#pragma once

#include <cstdint>

namespace vmm86::alu {

/// Two-operand arithmetic/logic in the order of the 0x80 group's ModRM.reg field, then Test.
/// Cmp and Test write nothing: their Result::value is `dst` unchanged.
enum class BinOp : uint8_t { Add, Or, Adc, Sbb, And, Sub, Xor, Cmp, Test };
inline constexpr unsigned kNumBinOps = static_cast<unsigned>(BinOp::Test) + 1;  ///< keep last

/// Shifts and rotates in the order of the 0xC0/0xD0 group's ModRM.reg field
/// (Sal is the undocumented /6 alias of Shl).
enum class ShiftOp : uint8_t { Rol, Ror, Rcl, Rcr, Shl, Shr, Sal, Sar };
inline constexpr unsigned kNumShiftOps = static_cast<unsigned>(ShiftOp::Sar) + 1;  ///< keep last

/// Bit tests in the order of the 0x0FBA group's ModRM.reg field minus 4.
enum class BitOp : uint8_t { Bt, Bts, Btr, Btc };
inline constexpr unsigned kNumBitOps = static_cast<unsigned>(BitOp::Btc) + 1;  ///< keep last

/// The operand-less BCD adjusts (aam/aad take an immediate and have their own functions).
enum class BcdOp : uint8_t { Daa, Das, Aaa, Aas };
inline constexpr unsigned kNumBcdOps = static_cast<unsigned>(BcdOp::Aas) + 1;  ///< keep last

/// A result value with the complete new EFLAGS.
struct Result {
  uint32_t value = 0;
  uint32_t eflags = 0;
};

[[nodiscard]] Result binary(BinOp op, unsigned size, uint32_t dst, uint32_t src, uint32_t eflags);
[[nodiscard]] Result inc(unsigned size, uint32_t value, uint32_t eflags);  ///< CF unchanged
[[nodiscard]] Result dec(unsigned size, uint32_t value, uint32_t eflags);  ///< CF unchanged
[[nodiscard]] Result neg(unsigned size, uint32_t value, uint32_t eflags);
/// Count is the raw operand; it is masked to 5 bits as the CPU does. A masked count of 0
/// leaves the flags unchanged, and so does an rcl/rcr count that is a multiple of size*8+1.
[[nodiscard]] Result shift(ShiftOp op, unsigned size, uint32_t value, uint8_t count, uint32_t eflags);
/// shld/shrd (sizes 2 and 4): `value` is the destination, `fill` the source register. The
/// count is masked to 5 bits; a 16-bit count above 16 shifts dst:fill:dst as the P6 does.
[[nodiscard]] Result shld(unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags);
[[nodiscard]] Result shrd(unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags);

/// mul/imul with the one-operand form: result is (high:low) of size*2, i.e. AH:AL, DX:AX or
/// EDX:EAX, each half `size` bytes wide.
struct WideResult {
  uint32_t low = 0;
  uint32_t high = 0;
  uint32_t eflags = 0;
};
[[nodiscard]] WideResult mul(unsigned size, uint32_t a, uint32_t b, uint32_t eflags);
[[nodiscard]] WideResult imul(unsigned size, uint32_t a, uint32_t b, uint32_t eflags);
/// Two/three-operand imul (truncated result, CF=OF=overflow).
[[nodiscard]] Result imul_trunc(unsigned size, uint32_t a, uint32_t b, uint32_t eflags);

/// div/idiv of (high:low) by divisor; the halves are AH:AL, DX:AX or EDX:EAX. The quotient
/// goes to AL/AX/EAX, the remainder to AH/DX/EDX. `ok` false means #DE (divide by zero or
/// quotient overflow); then nothing is written and eflags is the input.
struct DivResult {
  uint32_t quotient = 0;
  uint32_t remainder = 0;
  uint32_t eflags = 0;
  bool ok = false;
};
[[nodiscard]] DivResult div(unsigned size, uint32_t low, uint32_t high, uint32_t divisor, uint32_t eflags);
[[nodiscard]] DivResult idiv(unsigned size, uint32_t low, uint32_t high, uint32_t divisor, uint32_t eflags);

/// Bit test family on a register-sized value; `bit` is taken modulo size*8 (the memory
/// forms address the right word first). Bt returns `value` unchanged.
[[nodiscard]] Result bit_test(BitOp op, unsigned size, uint32_t value, uint32_t bit, uint32_t eflags);
/// bsf/bsr: on a zero source ZF=1 and the destination is unchanged (value = old_dst).
[[nodiscard]] Result bsf(unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags);
[[nodiscard]] Result bsr(unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags);

/// BCD adjusts on AL (daa/das) or AX (aaa/aas): `ax` in, new AX out (daa/das keep AH).
[[nodiscard]] Result bcd(BcdOp op, uint32_t ax, uint32_t eflags);
/// aam imm8: quotient = AL / base is the new AH, remainder = AL % base the new AL;
/// `ok` false means #DE (base 0).
[[nodiscard]] DivResult aam(uint32_t ax, uint8_t base, uint32_t eflags);
/// aad imm8: new AX = (AL + AH * base) & 0xFF.
[[nodiscard]] Result aad(uint32_t ax, uint8_t base, uint32_t eflags);

/// Parity flag of the low byte.
[[nodiscard]] constexpr bool parity_even(uint32_t value) { return (__builtin_popcount(value & 0xFF) & 1) == 0; }

}  // namespace vmm86::alu
