// Runs IA-32 ALU instructions natively on the x86-64 host with chosen incoming status
// flags, as the reference for the ALU differential tests. Each wrapper loads the flags
// with popfq, executes one instruction on registers of the operand width T (the assembler
// takes the width from the register names) and reads the flags back with pushfq.
#pragma once

#include <cstdint>

#if !defined(__x86_64__)
#error "tests/alu runs the reference instructions natively and needs an x86-64 host"
#endif

namespace vmm86::alu::host {

/// A value and the host RFLAGS (low 32 bits) after the instruction.
struct Out {
  uint32_t value = 0;
  uint32_t flags = 0;
};
/// One-operand mul/imul and div/idiv: the two halves as the interface returns them.
struct WideOut {
  uint32_t low = 0;
  uint32_t high = 0;
  uint32_t flags = 0;
};

// pushfq/popfq write below RSP, where the compiler may keep red-zone locals: step over
// the 128-byte red zone first. lea leaves the flags alone.
#define VMM86_HOST_FLAGS_IN "lea -128(%%rsp), %%rsp\n\tpush %[f]\n\tpopfq\n\t"
#define VMM86_HOST_FLAGS_OUT "\n\tpushfq\n\tpop %[f]\n\tlea 128(%%rsp), %%rsp"

/// dst = dst OP src (cmp/test leave dst alone).
#define VMM86_HOST_BINARY(name, mnemonic)                               \
  template <typename T>                                                 \
  Out name(uint32_t dst, uint32_t src, uint32_t flags) {                \
    T d = static_cast<T>(dst);                                          \
    const T s = static_cast<T>(src);                                    \
    uint64_t f = flags;                                                 \
    asm(VMM86_HOST_FLAGS_IN mnemonic " %[s], %[d]" VMM86_HOST_FLAGS_OUT \
        : [d] "+r"(d), [f] "+r"(f)                                      \
        : [s] "r"(s)                                                    \
        : "cc");                                                        \
    return {d, static_cast<uint32_t>(f)};                               \
  }

/// dst = OP dst.
#define VMM86_HOST_UNARY(name, mnemonic)                                                                \
  template <typename T>                                                                                 \
  Out name(uint32_t dst, uint32_t flags) {                                                              \
    T d = static_cast<T>(dst);                                                                          \
    uint64_t f = flags;                                                                                 \
    asm(VMM86_HOST_FLAGS_IN mnemonic " %[d]" VMM86_HOST_FLAGS_OUT : [d] "+r"(d), [f] "+r"(f) : : "cc"); \
    return {d, static_cast<uint32_t>(f)};                                                               \
  }

/// dst = dst OP cl (the CPU masks the count itself).
#define VMM86_HOST_SHIFT(name, mnemonic)                                \
  template <typename T>                                                 \
  Out name(uint32_t dst, uint8_t count, uint32_t flags) {               \
    T d = static_cast<T>(dst);                                          \
    uint64_t f = flags;                                                 \
    asm(VMM86_HOST_FLAGS_IN mnemonic " %[c], %[d]" VMM86_HOST_FLAGS_OUT \
        : [d] "+r"(d), [f] "+r"(f)                                      \
        : [c] "c"(count)                                                \
        : "cc");                                                        \
    return {d, static_cast<uint32_t>(f)};                               \
  }

/// shld/shrd dst, fill, cl.
#define VMM86_HOST_DOUBLE_SHIFT(name, mnemonic)                               \
  template <typename T>                                                       \
  Out name(uint32_t dst, uint32_t fill, uint8_t count, uint32_t flags) {      \
    T d = static_cast<T>(dst);                                                \
    const T s = static_cast<T>(fill);                                         \
    uint64_t f = flags;                                                       \
    asm(VMM86_HOST_FLAGS_IN mnemonic " %[c], %[s], %[d]" VMM86_HOST_FLAGS_OUT \
        : [d] "+r"(d), [f] "+r"(f)                                            \
        : [s] "r"(s), [c] "c"(count)                                          \
        : "cc");                                                              \
    return {d, static_cast<uint32_t>(f)};                                     \
  }

/// One-operand forms on the accumulator pair: mul/imul (a in AL/AX/EAX) and div/idiv
/// (dividend in AX, DX:AX or EDX:EAX). The 8-bit forms use AX for both halves.
#define VMM86_HOST_ACCUMULATOR(name, mnemonic)                                   \
  template <typename T>                                                          \
  WideOut name(uint32_t low, uint32_t high, uint32_t operand, uint32_t flags) {  \
    constexpr bool kByte = sizeof(T) == 1;                                       \
    uint32_t eax = kByte ? ((high & 0xFF) << 8) | (low & 0xFF) : low;            \
    uint32_t edx = kByte ? 0 : high;                                             \
    const T src = static_cast<T>(operand);                                       \
    uint64_t f = flags;                                                          \
    asm(VMM86_HOST_FLAGS_IN mnemonic " %[s]" VMM86_HOST_FLAGS_OUT                \
        : "+a"(eax), "+d"(edx), [f] "+r"(f)                                      \
        : [s] "r"(src)                                                           \
        : "cc");                                                                 \
    if (kByte) return {eax & 0xFF, (eax >> 8) & 0xFF, static_cast<uint32_t>(f)}; \
    constexpr uint32_t kMask = static_cast<T>(~T{0});                            \
    return {eax & kMask, edx & kMask, static_cast<uint32_t>(f)};                 \
  }

VMM86_HOST_BINARY(add, "add")
VMM86_HOST_BINARY(or_, "or")
VMM86_HOST_BINARY(adc, "adc")
VMM86_HOST_BINARY(sbb, "sbb")
VMM86_HOST_BINARY(and_, "and")
VMM86_HOST_BINARY(sub, "sub")
VMM86_HOST_BINARY(xor_, "xor")
VMM86_HOST_BINARY(cmp, "cmp")
VMM86_HOST_BINARY(test, "test")
VMM86_HOST_BINARY(imul2, "imul")  // 16/32-bit only
VMM86_HOST_BINARY(bt, "bt")       // 16/32-bit only; the bit offset is taken modulo the width
VMM86_HOST_BINARY(bts, "bts")
VMM86_HOST_BINARY(btr, "btr")
VMM86_HOST_BINARY(btc, "btc")
VMM86_HOST_BINARY(bsf, "bsf")  // 16/32-bit only; dst is the old destination
VMM86_HOST_BINARY(bsr, "bsr")

VMM86_HOST_UNARY(inc, "inc")
VMM86_HOST_UNARY(dec, "dec")
VMM86_HOST_UNARY(neg, "neg")

VMM86_HOST_SHIFT(rol, "rol")
VMM86_HOST_SHIFT(ror, "ror")
VMM86_HOST_SHIFT(rcl, "rcl")
VMM86_HOST_SHIFT(rcr, "rcr")
VMM86_HOST_SHIFT(shl, "shl")
VMM86_HOST_SHIFT(shr, "shr")
// The assembler encodes "sal" as /4 like shl; /6 is the same operation in hardware.
VMM86_HOST_SHIFT(sal, "sal")
VMM86_HOST_SHIFT(sar, "sar")

VMM86_HOST_DOUBLE_SHIFT(shld, "shld")
VMM86_HOST_DOUBLE_SHIFT(shrd, "shrd")

VMM86_HOST_ACCUMULATOR(mul, "mul")
VMM86_HOST_ACCUMULATOR(imul, "imul")
VMM86_HOST_ACCUMULATOR(div, "div")
VMM86_HOST_ACCUMULATOR(idiv, "idiv")

#undef VMM86_HOST_BINARY
#undef VMM86_HOST_UNARY
#undef VMM86_HOST_SHIFT
#undef VMM86_HOST_DOUBLE_SHIFT
#undef VMM86_HOST_ACCUMULATOR
#undef VMM86_HOST_FLAGS_IN
#undef VMM86_HOST_FLAGS_OUT

}  // namespace vmm86::alu::host
