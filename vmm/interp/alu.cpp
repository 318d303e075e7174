// IA-32 integer ALU. Every operation computes its value and the six status flags from
// a few shared rules (an adder, the SF/ZF/PF of a result, the OF of a left or right shift)
// so that an op's flags are stated once. Choices for "undefined" flags are listed, with
// their reasons, in docs/interpreter-flags.md.
#include "vmm/interp/alu.h"

#include <bit>
#include <cassert>

#include "vmm/arch/cpu_state.h"

namespace vmm86::alu {
namespace {

using flags::AF;
using flags::CF;
using flags::OF;
using flags::PF;
using flags::SF;
using flags::ZF;
constexpr uint32_t kStatus = flags::Status;

/// Operand width derived from the size in bytes.
struct Width {
  unsigned bits;
  uint32_t mask;
  uint32_t sign;
};

constexpr Width width_of(unsigned size) {
  assert(size == 1 || size == 2 || size == 4);
  const unsigned bits = size * 8;
  return {bits, static_cast<uint32_t>((uint64_t{1} << bits) - 1), 1u << (bits - 1)};
}

constexpr uint32_t flag_if(bool condition, uint32_t flag) { return condition ? flag : 0; }

/// Sign-extends the low `bits` bits of `v` to 64 bits.
constexpr int64_t sign_extend(uint64_t v, unsigned bits) {
  const unsigned unused = 64 - bits;
  return static_cast<int64_t>(v << unused) >> unused;
}

/// SF, ZF and PF of a result; the other status flags clear (the logic-op pattern).
constexpr uint32_t szp(Width w, uint32_t r) {
  return flag_if((r & w.sign) != 0, SF) | flag_if(r == 0, ZF) | flag_if(parity_even(r), PF);
}

/// Replaces the status flags selected by `which` with those in `status`.
constexpr uint32_t merge(uint32_t eflags, uint32_t which, uint32_t status) {
  return (eflags & ~which) | (status & which);
}

/// d + s + carry_in with all six flags. A subtraction d - s - borrow is the addition
/// d + ~s + !borrow whose carry and auxiliary carry are the inverted borrows.
constexpr Result add_sub(Width w, uint32_t d, uint32_t s, bool carry_in, bool subtract) {
  const uint32_t addend = subtract ? (~s & w.mask) : s;
  const bool carry = subtract ? !carry_in : carry_in;
  const uint64_t wide = uint64_t{d} + addend + (carry ? 1 : 0);
  const auto r = static_cast<uint32_t>(wide) & w.mask;
  const bool carry_out = ((wide >> w.bits) & 1) != 0;
  const bool aux = ((d ^ addend ^ r) & 0x10) != 0;
  const uint32_t status = szp(w, r) | flag_if(carry_out != subtract, CF) | flag_if(aux != subtract, AF) |
                          flag_if((~(d ^ addend) & (d ^ r) & w.sign) != 0, OF);
  return {r, status};
}

/// OF after a left shift/rotate: the new top bit differs from the last bit shifted out
/// (the SDM's count-1 rule, applied to every count as P6 models and AMD hardware do).
constexpr uint32_t of_left(Width w, uint32_t r, bool cf) { return flag_if(((r & w.sign) != 0) != cf, OF); }
/// OF after a right shift/rotate: the two top result bits differ (the count-1 rule).
constexpr uint32_t of_right(Width w, uint32_t r) { return flag_if((((r >> 1) ^ r) & (w.sign >> 1)) != 0, OF); }

/// Rotates the low `n` bits of `v` left by k (0 <= k < n <= 33).
constexpr uint64_t rotate_left(uint64_t v, unsigned k, unsigned n) {
  const uint64_t mask = (uint64_t{1} << n) - 1;
  return ((v << k) | (v >> (n - k))) & mask;
}

/// rol/ror/rcl/rcr by a masked, non-zero count: only CF and OF change.
Result rotate(ShiftOp op, Width w, uint32_t v, unsigned count, uint32_t eflags) {
  const bool left = op == ShiftOp::Rol || op == ShiftOp::Rcl;
  const bool through_carry = op == ShiftOp::Rcl || op == ShiftOp::Rcr;
  // rcl/rcr rotate the (bits+1)-bit value CF:v; rol/ror the bits-bit value v.
  const unsigned n = w.bits + (through_carry ? 1 : 0);
  unsigned k = count % n;
  if (through_carry && k == 0) return {v, eflags};
  if (!left) k = (n - k) % n;  // a right rotation by k is a left rotation by n-k
  const uint64_t wide = through_carry ? (uint64_t{(eflags & CF) != 0} << w.bits) | v : v;
  const uint64_t rotated = rotate_left(wide, k, n);
  const auto r = static_cast<uint32_t>(rotated) & w.mask;
  bool cf;
  if (through_carry) {
    cf = ((rotated >> w.bits) & 1) != 0;
  } else {
    cf = left ? (r & 1) != 0 : (r & w.sign) != 0;  // the bit that wrapped around
  }
  const uint32_t status = flag_if(cf, CF) | (left ? of_left(w, r, cf) : of_right(w, r));
  return {r, merge(eflags, CF | OF, status)};
}

/// The concatenation shld/shrd shift. For 32 bits it is dst:fill (shld) or fill:dst
/// (shrd). For 16 bits the P6 shifts dst:fill:dst so that counts 17..31 bring dst bits
/// back in; for counts up to 16 that equals the documented 32-bit concatenation.
/// The result lies at bits [32, 32+n) for shld and [0, n) for shrd, before shifting.
constexpr uint64_t double_operand(Width w, uint32_t dst, uint32_t fill, bool left) {
  if (w.bits == 16) return (uint64_t{dst} << 32) | (uint64_t{fill} << 16) | dst;
  return left ? (uint64_t{dst} << 32) | fill : (uint64_t{fill} << 32) | dst;
}

Result double_shift(bool left, unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags) {
  assert(size == 2 || size == 4);
  const Width w = width_of(size);
  value &= w.mask;
  fill &= w.mask;
  const unsigned c = count & 31u;
  if (c == 0) return {value, eflags};
  const uint64_t cat = double_operand(w, value, fill, left);
  uint32_t r;
  bool cf;
  if (left) {
    r = static_cast<uint32_t>((cat << c) >> 32) & w.mask;
    cf = ((cat >> (32 + w.bits - c)) & 1) != 0;
  } else {
    r = static_cast<uint32_t>(cat >> c) & w.mask;
    cf = ((cat >> (c - 1)) & 1) != 0;
  }
  const uint32_t status = szp(w, r) | flag_if(cf, CF) | (left ? of_left(w, r, cf) : of_right(w, r));
  return {r, merge(eflags, kStatus, status)};
}

/// Flags after a multiplication: CF=OF=overflow; SF/ZF/PF from the low half, AF=0 (P6).
constexpr uint32_t mul_flags(Width w, uint32_t low, bool overflow, uint32_t eflags) {
  return merge(eflags, kStatus, szp(w, low) | flag_if(overflow, CF | OF));
}

/// inc/dec: an add/sub of 1 that keeps CF.
Result step(bool subtract, unsigned size, uint32_t value, uint32_t eflags) {
  const Width w = width_of(size);
  const Result r = add_sub(w, value & w.mask, 1, false, subtract);
  return {r.value, merge(eflags, kStatus & ~CF, r.eflags)};
}

/// bsf (forward) / bsr (reverse). For a non-zero source the P6 sets the flags of a logic
/// op on the index (CF=OF=AF=0, SF/PF of the index) with ZF=0; a zero source only sets
/// ZF and keeps the destination.
Result bit_scan(bool reverse, unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags) {
  const Width w = width_of(size);
  src &= w.mask;
  if (src == 0) return {old_dst & w.mask, eflags | ZF};
  const int index = reverse ? 31 - std::countl_zero(src) : std::countr_zero(src);
  const auto r = static_cast<uint32_t>(index);
  return {r, merge(eflags, kStatus, szp(w, r) & ~ZF)};
}

DivResult divide_error(uint32_t eflags) { return {0, 0, eflags, false}; }

/// Shared by daa (add) and das (subtract), following the SDM pseudo-code: a low-nibble
/// adjust by 6, then a high-nibble adjust by 0x60 decided on the original AL and CF.
Result decimal_adjust(bool subtract, uint32_t ax, uint32_t eflags) {
  const uint32_t old_al = ax & 0xFF;
  const bool old_cf = (eflags & CF) != 0;
  uint32_t al = old_al;
  bool cf = false;
  bool af = false;
  if ((old_al & 0xF) > 9 || (eflags & AF) != 0) {
    // The carry/borrow of this step only matters for DAS: for DAA it implies AL > 0x99.
    cf = old_cf || (subtract ? old_al < 6 : old_al > 0xF9);
    al = subtract ? al - 6 : al + 6;
    af = true;
  }
  if (old_al > 0x99 || old_cf) {
    al = subtract ? al - 0x60 : al + 0x60;
    cf = true;
  }
  al &= 0xFF;
  // OF is undefined; P6-family parts clear it (as Bochs, validated on Intel hardware).
  const uint32_t status = szp(width_of(1), al) | flag_if(cf, CF) | flag_if(af, AF);
  return {(ax & 0xFF00) | al, merge(eflags, kStatus, status)};
}

/// aaa (add) / aas (subtract): AX +/- 0x106 when the low nibble needs an adjust; the P6
/// adds to AX as a whole, so a carry out of AL reaches AH too.
Result ascii_adjust(bool subtract, uint32_t ax, uint32_t eflags) {
  ax &= 0xFFFF;
  const bool adjust = (ax & 0xF) > 9 || (eflags & AF) != 0;
  if (adjust) ax = (subtract ? ax - 0x106 : ax + 0x106) & 0xFFFF;
  ax &= 0xFF0F;
  // OF/SF/ZF/PF are undefined: P6 sets them as a logic op on the final AL (SF is then 0).
  const uint32_t status = szp(width_of(1), ax & 0xFF) | flag_if(adjust, CF | AF);
  return {ax, merge(eflags, kStatus, status)};
}

}  // namespace

Result binary(BinOp op, unsigned size, uint32_t dst, uint32_t src, uint32_t eflags) {
  const Width w = width_of(size);
  dst &= w.mask;
  src &= w.mask;
  const bool cf_in = (eflags & CF) != 0;
  Result r{};
  switch (op) {
    case BinOp::Add: r = add_sub(w, dst, src, false, false); break;
    case BinOp::Adc: r = add_sub(w, dst, src, cf_in, false); break;
    case BinOp::Sub:
    case BinOp::Cmp: r = add_sub(w, dst, src, false, true); break;
    case BinOp::Sbb: r = add_sub(w, dst, src, cf_in, true); break;
    case BinOp::And:
    case BinOp::Test: r.value = dst & src; break;
    case BinOp::Or: r.value = dst | src; break;
    case BinOp::Xor: r.value = dst ^ src; break;
  }
  const bool logic = op == BinOp::And || op == BinOp::Or || op == BinOp::Xor || op == BinOp::Test;
  // Logic ops clear CF and OF (SDM) and AF (undefined; Intel and AMD parts clear it).
  const uint32_t status = logic ? szp(w, r.value) : r.eflags;
  const bool writes = op != BinOp::Cmp && op != BinOp::Test;
  return {writes ? r.value : dst, merge(eflags, kStatus, status)};
}

Result inc(unsigned size, uint32_t value, uint32_t eflags) { return step(false, size, value, eflags); }

Result dec(unsigned size, uint32_t value, uint32_t eflags) { return step(true, size, value, eflags); }

Result neg(unsigned size, uint32_t value, uint32_t eflags) {
  const Width w = width_of(size);
  const Result r = add_sub(w, 0, value & w.mask, false, true);  // CF = (value != 0)
  return {r.value, merge(eflags, kStatus, r.eflags)};
}

Result shift(ShiftOp op, unsigned size, uint32_t value, uint8_t count, uint32_t eflags) {
  const Width w = width_of(size);
  value &= w.mask;
  const unsigned c = count & 31u;
  if (c == 0) return {value, eflags};
  uint32_t r = 0;
  bool cf = false;  // the last bit shifted out
  switch (op) {
    case ShiftOp::Rol:
    case ShiftOp::Ror:
    case ShiftOp::Rcl:
    case ShiftOp::Rcr: return rotate(op, w, value, c, eflags);
    case ShiftOp::Shl:
    case ShiftOp::Sal: {
      // Counts above the width shift everything out, CF included.
      const uint64_t wide = uint64_t{value} << c;
      r = static_cast<uint32_t>(wide) & w.mask;
      cf = ((wide >> w.bits) & 1) != 0;
      break;
    }
    case ShiftOp::Shr:
      r = value >> c;
      cf = ((value >> (c - 1)) & 1) != 0;
      break;
    case ShiftOp::Sar: {
      const int64_t s = sign_extend(value, w.bits);
      r = static_cast<uint32_t>(s >> c) & w.mask;
      cf = ((s >> (c - 1)) & 1) != 0;
      break;
    }
  }
  const bool left = op == ShiftOp::Shl || op == ShiftOp::Sal;
  // AF is undefined for non-zero counts: P6 leaves it clear, as after a logic op.
  const uint32_t status = szp(w, r) | flag_if(cf, CF) | (left ? of_left(w, r, cf) : of_right(w, r));
  return {r, merge(eflags, kStatus, status)};
}

Result shld(unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags) {
  return double_shift(true, size, value, fill, count, eflags);
}

Result shrd(unsigned size, uint32_t value, uint32_t fill, uint8_t count, uint32_t eflags) {
  return double_shift(false, size, value, fill, count, eflags);
}

WideResult mul(unsigned size, uint32_t a, uint32_t b, uint32_t eflags) {
  const Width w = width_of(size);
  const uint64_t product = uint64_t{a & w.mask} * (b & w.mask);
  const auto low = static_cast<uint32_t>(product) & w.mask;
  const auto high = static_cast<uint32_t>(product >> w.bits) & w.mask;
  return {low, high, mul_flags(w, low, high != 0, eflags)};
}

WideResult imul(unsigned size, uint32_t a, uint32_t b, uint32_t eflags) {
  const Width w = width_of(size);
  // Both factors fit in 32 signed bits, so the product fits in int64_t.
  const int64_t product = sign_extend(a, w.bits) * sign_extend(b, w.bits);
  const auto bits = static_cast<uint64_t>(product);
  const auto low = static_cast<uint32_t>(bits) & w.mask;
  const auto high = static_cast<uint32_t>(bits >> w.bits) & w.mask;
  return {low, high, mul_flags(w, low, sign_extend(low, w.bits) != product, eflags)};
}

Result imul_trunc(unsigned size, uint32_t a, uint32_t b, uint32_t eflags) {
  const WideResult r = imul(size, a, b, eflags);
  return {r.low, r.eflags};
}

// Divisions leave the (undefined) flags unchanged, as the P6 does not compute them.
DivResult div(unsigned size, uint32_t low, uint32_t high, uint32_t divisor, uint32_t eflags) {
  const Width w = width_of(size);
  divisor &= w.mask;
  if (divisor == 0) return divide_error(eflags);
  const uint64_t dividend = (uint64_t{high & w.mask} << w.bits) | (low & w.mask);
  const uint64_t quotient = dividend / divisor;
  if (quotient > w.mask) return divide_error(eflags);
  return {static_cast<uint32_t>(quotient), static_cast<uint32_t>(dividend % divisor), eflags, true};
}

DivResult idiv(unsigned size, uint32_t low, uint32_t high, uint32_t divisor, uint32_t eflags) {
  const Width w = width_of(size);
  const int64_t d = sign_extend(divisor, w.bits);
  if (d == 0) return divide_error(eflags);
  const int64_t dividend = sign_extend((uint64_t{high & w.mask} << w.bits) | (low & w.mask), 2 * w.bits);
  // INT64_MIN / -1 overflows in C++ too; its quotient 2^63 is out of range anyway.
  if (d == -1 && dividend == INT64_MIN) return divide_error(eflags);
  const int64_t quotient = dividend / d;
  const int64_t limit = int64_t{1} << (w.bits - 1);
  if (quotient < -limit || quotient >= limit) return divide_error(eflags);
  return {static_cast<uint32_t>(quotient) & w.mask, static_cast<uint32_t>(dividend % d) & w.mask, eflags, true};
}

Result bit_test(BitOp op, unsigned size, uint32_t value, uint32_t bit, uint32_t eflags) {
  const Width w = width_of(size);
  value &= w.mask;
  const uint32_t m = 1u << (bit & (w.bits - 1));
  uint32_t r = value;
  switch (op) {
    case BitOp::Bt: break;
    case BitOp::Bts: r = value | m; break;
    case BitOp::Btr: r = value & ~m; break;
    case BitOp::Btc: r = value ^ m; break;
  }
  // Only CF: ZF is documented unchanged and the P6 leaves OF/SF/AF/PF alone too.
  return {r, merge(eflags, CF, flag_if((value & m) != 0, CF))};
}

Result bsf(unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags) {
  return bit_scan(false, size, src, old_dst, eflags);
}

Result bsr(unsigned size, uint32_t src, uint32_t old_dst, uint32_t eflags) {
  return bit_scan(true, size, src, old_dst, eflags);
}

Result bcd(BcdOp op, uint32_t ax, uint32_t eflags) {
  switch (op) {
    case BcdOp::Daa: return decimal_adjust(false, ax & 0xFFFF, eflags);
    case BcdOp::Das: return decimal_adjust(true, ax & 0xFFFF, eflags);
    case BcdOp::Aaa: return ascii_adjust(false, ax, eflags);
    case BcdOp::Aas: return ascii_adjust(true, ax, eflags);
  }
  assert(false && "unknown BcdOp");
  return {ax, eflags};
}

// aam/aad: SF/ZF/PF from the new AL; OF/AF/CF are undefined and the P6 clears them.
DivResult aam(uint32_t ax, uint8_t base, uint32_t eflags) {
  if (base == 0) return divide_error(eflags);
  const uint32_t al = ax & 0xFF;
  const uint32_t rem = al % base;
  return {al / base, rem, merge(eflags, kStatus, szp(width_of(1), rem)), true};
}

Result aad(uint32_t ax, uint8_t base, uint32_t eflags) {
  const uint32_t al = ((ax & 0xFF) + ((ax >> 8) & 0xFF) * base) & 0xFF;
  return {al, merge(eflags, kStatus, szp(width_of(1), al))};
}

}  // namespace vmm86::alu
