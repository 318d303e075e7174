// The interpreter's handlers by the classification table's Interp column: the row of an
// instruction (decoder/classify.cpp) names its handler, Interp::FooBar being h_foo_bar.
// Every Interp value has exactly one handler (a gap or a duplicate fails to compile).
#include <array>

#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

using I = Interp;

struct Entry {
  Interp interp;
  Handler handler;
};

// clang-format off
constexpr Entry kEntries[] = {
    {I::Binop, h_binop}, {I::Incdec, h_incdec}, {I::Neg, h_neg}, {I::Not, h_not}, {I::Shift, h_shift},
    {I::Shxd, h_shxd}, {I::Mul, h_mul}, {I::Imul, h_imul}, {I::Div, h_div}, {I::Bit, h_bit},
    {I::Bitscan, h_bitscan}, {I::Bcd, h_bcd}, {I::Aam, h_aam}, {I::Aad, h_aad}, {I::Setcc, h_setcc},
    {I::Cmovcc, h_cmovcc}, {I::Cmpxchg, h_cmpxchg}, {I::Cmpxchg8b, h_cmpxchg8b}, {I::Xadd, h_xadd},
    {I::Bswap, h_bswap}, {I::Mov, h_mov}, {I::Movx, h_movx}, {I::Lea, h_lea}, {I::Xchg, h_xchg},
    {I::Convert, h_convert}, {I::Flagop, h_flagop}, {I::Lahf, h_lahf}, {I::Sahf, h_sahf}, {I::Salc, h_salc},
    {I::Nop, h_nop}, {I::Clflush, h_clflush}, {I::Xlat, h_xlat}, {I::Bound, h_bound}, {I::Ud, h_ud},
    {I::Jmp, h_jmp}, {I::Jcc, h_jcc}, {I::Call, h_call}, {I::Ret, h_ret}, {I::Loop, h_loop}, {I::Jcxz, h_jcxz},
    {I::Int, h_int}, {I::Iret, h_iret}, {I::Push, h_push}, {I::Pop, h_pop}, {I::Pusha, h_pusha},
    {I::Popa, h_popa}, {I::Pushf, h_pushf}, {I::Popf, h_popf}, {I::Enter, h_enter}, {I::Leave, h_leave},
    {I::String, h_string}, {I::In, h_in}, {I::Out, h_out}, {I::MovSreg, h_mov_sreg},
    {I::LoadFarPointer, h_load_far_pointer}, {I::LarLsl, h_lar_lsl}, {I::VerrVerw, h_verr_verw},
    {I::Arpl, h_arpl}, {I::Cli, h_cli}, {I::Sti, h_sti}, {I::Hlt, h_hlt}, {I::LoadDtr, h_load_dtr},
    {I::StoreDtr, h_store_dtr}, {I::Lldt, h_lldt}, {I::Ltr, h_ltr}, {I::SldtStr, h_sldt_str}, {I::Smsw, h_smsw},
    {I::Lmsw, h_lmsw}, {I::Clts, h_clts}, {I::MovCr, h_mov_cr}, {I::MovDr, h_mov_dr}, {I::Invlpg, h_invlpg},
    {I::Cache, h_cache}, {I::Cpuid, h_cpuid}, {I::Rdtsc, h_rdtsc}, {I::Rdmsr, h_rdmsr}, {I::Wrmsr, h_wrmsr},
    {I::Rdpmc, h_rdpmc}, {I::Sysenter, h_sysenter}, {I::Sysexit, h_sysexit}, {I::Fpu, h_fpu},
};
// clang-format on

constexpr auto kHandlers = [] {
  std::array<Handler, static_cast<size_t>(Interp::Count)> t{};
  // Filled slots are tracked apart: with -fsanitize, GCC does not fold comparing a
  // function's address with nullptr in a constant expression.
  std::array<bool, static_cast<size_t>(Interp::Count)> filled{};
  for (const Entry& e : kEntries) {
    // Throwing is not allowed in a constant expression: a duplicate is a compile error.
    if (filled[static_cast<size_t>(e.interp)]) throw "duplicate Interp in the handler table";
    filled[static_cast<size_t>(e.interp)] = true;
    t[static_cast<size_t>(e.interp)] = e.handler;
  }
  for (bool f : filled) {
    if (!f) throw "an Interp value without a handler";
  }
  return t;
}();

}  // namespace

Handler handler_for(const Instruction& insn) { return kHandlers[static_cast<size_t>(insn.interp)]; }

}  // namespace vmm86::interp
