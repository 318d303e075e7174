// The trampolines between the monitor and translated code (see trampolines.h).
#include "translator/trampolines.h"

#include <cstring>

#include "translator/block_builder.h"
#include "translator/emission.h"

namespace vmm86 {

using namespace asmjit;

namespace {

constexpr uint32_t kGuestFlagsInHost = flags::Status | flags::DF;
/// EFLAGS bits that stay in cpu.eflags while translated code runs (pushf reads them as 0).
constexpr uint32_t kFlagsKeptInCpu = flags::RF | flags::VM;
constexpr uint32_t kSystemFlags = ~(kGuestFlagsInHost | flags::IF | flags::Reserved1 | kFlagsKeptInCpu);

constexpr size_t gpr_off(unsigned i) { return offsetof(ExecContext, cpu) + offsetof(CpuState, gpr) + 4 * i; }
constexpr size_t kEflagsOff = offsetof(ExecContext, cpu) + offsetof(CpuState, eflags);
constexpr size_t kFxsaveOff = offsetof(ExecContext, cpu) + offsetof(CpuState, fxsave);
constexpr size_t kVirtualIfOff = offsetof(ExecContext, virtual_if);
constexpr size_t kSystemFlagsOff = offsetof(ExecContext, system_flags);

/// Guest EFLAGS, GPRs and the retired count from the context into host registers (the
/// tail of entering translated code). Clobbers nothing else; ends with host flags = guest's.
void emit_load_guest_registers(x86::Assembler& a) {
  a.mov(x86::r14, context_field(offsetof(ExecContext, retired), 8));
  a.mov(x86::eax, context_field(kEflagsOff, 4));
  // IF and the system flags become virtual (DESIGN.md §4); see ExecContext::virtual_if.
  a.mov(x86::ecx, x86::eax);
  a.and_(x86::ecx, flags::IF);
  a.mov(context_field(kVirtualIfOff, 4), x86::ecx);
  a.mov(x86::ecx, x86::eax);
  a.and_(x86::ecx, kSystemFlags);
  a.mov(context_field(kSystemFlagsOff, 4), x86::ecx);
  a.and_(x86::eax, kGuestFlagsInHost);
  a.or_(x86::eax, flags::Reserved1);
  a.push(x86::rax);
  a.popfq();
  for (unsigned i = 0; i < 8; ++i) a.mov(guest_gp32(i), context_field(gpr_off(i), 4));
}

/// The reverse: guest GPRs, the merged EFLAGS and the retired count into the context.
void emit_store_guest_registers(x86::Assembler& a) {
  a.pushfq();
  for (unsigned i = 0; i < 8; ++i) a.mov(context_field(gpr_off(i), 4), guest_gp32(i));
  a.pop(x86::rax);
  a.and_(x86::eax, kGuestFlagsInHost);
  a.or_(x86::eax, context_field(kVirtualIfOff, 4));
  a.or_(x86::eax, context_field(kSystemFlagsOff, 4));
  a.or_(x86::eax, flags::Reserved1);
  a.mov(x86::ecx, context_field(kEflagsOff, 4));
  a.and_(x86::ecx, kFlagsKeptInCpu);
  a.or_(x86::ecx, x86::eax);
  a.mov(context_field(kEflagsOff, 4), x86::ecx);
  a.mov(context_field(offsetof(ExecContext, retired), 8), x86::r14);
}

}  // namespace

bool Trampolines::generate(CodeCache& cache, ExecContext& ctx, uint32_t indirect_index_bits) {
  return emit_enter(cache) && emit_exit_and_callout(cache) && emit_return_miss(cache, ctx, indirect_index_bits);
}

bool Trampolines::emit_enter(CodeCache& cache) {
  // Enter: ExitRecord* enter(ExecContext* ctx /*rdi*/, const uint8_t* code /*rsi*/).
  // Equivalent C: save host callee-saved state; load guest GPRs, flags and FPU; goto code.
  Emission e;
  auto& a = *e.a;
  for (const x86::Gp& r : {x86::rbx, x86::rbp, x86::r12, x86::r13, x86::r14, x86::r15}) a.push(r);
  a.sub(x86::rsp, 8);  // 16-byte alignment for anything the guest side calls
  a.mov(x86::r15, x86::rdi);
  a.mov(context_field(offsetof(ExecContext, host_rsp), 8), x86::rsp);
  a.stmxcsr(context_field(offsetof(ExecContext, host_mxcsr), 4));
  a.fnstcw(context_field(offsetof(ExecContext, host_fcw), 2));
  a.fxrstor(context_field(kFxsaveOff, 0));
  a.mov(x86::r13, x86::rsi);
  emit_load_guest_registers(a);
  a.mov(x86::rsp, context_field(offsetof(ExecContext, return_stack_top), 8));  // an empty return stack
  a.jmp(x86::r13);
  size_t size = 0;
  uint8_t* p = e.place(cache, &size);
  if (!p) return false;
  enter_ = reinterpret_cast<EnterFn>(p);
  return true;
}

bool Trampolines::emit_exit_and_callout(CodeCache& cache) {
  // Exit: entered by a jump with r13 = ExitRecord*; stores the guest state and returns r13.
  // It runs on the host stack: the return stack may be full (a push would hit its guard).
  // Callout: entered by a call with r13 = CalloutSite*; stores the guest state, calls
  // ExecContext::callout, and either reloads the guest state and returns to the block, or
  // (the callout returned an ExitRecord) leaves like an exit.
  Emission e;
  auto& a = *e.a;
  const Label exit_tail = a.newLabel(), callout = a.newLabel(), leave = a.newLabel();
  a.mov(x86::rsp, context_field(offsetof(ExecContext, host_rsp), 8));
  emit_store_guest_registers(a);
  a.bind(exit_tail);
  a.fxsave(context_field(kFxsaveOff, 0));
  a.fninit();  // the SysV ABI wants an empty x87 stack
  a.fldcw(context_field(offsetof(ExecContext, host_fcw), 2));
  a.ldmxcsr(context_field(offsetof(ExecContext, host_mxcsr), 4));
  a.cld();
  a.mov(x86::rax, x86::r13);
  a.mov(x86::rsp, context_field(offsetof(ExecContext, host_rsp), 8));
  a.add(x86::rsp, 8);
  for (const x86::Gp& r : {x86::r15, x86::r14, x86::r13, x86::r12, x86::rbp, x86::rbx}) a.pop(r);
  a.ret();

  // The x87 state stays in the FPU (the monitor's C++ does not use x87); XMM0-7 and MXCSR
  // are the guest's and the C++ side may use SSE, so they are saved around the call.
  // The C++ side runs on the host stack (16-byte aligned at host_rsp), not on the return
  // stack, whose guard a deep call could hit; nothing is pushed before the switch.
  a.bind(callout);
  a.mov(context_field(offsetof(ExecContext, callout_rsp), 8), x86::rsp);
  a.mov(x86::rsp, context_field(offsetof(ExecContext, host_rsp), 8));
  emit_store_guest_registers(a);  // pushfq/pop inside
  for (unsigned i = 0; i < 8; ++i) {
    a.movdqu(context_field(offsetof(ExecContext, callout_xmm) + 16 * i, 16), x86::xmm(i));
  }
  a.stmxcsr(context_field(offsetof(ExecContext, callout_mxcsr), 4));
  a.ldmxcsr(context_field(offsetof(ExecContext, host_mxcsr), 4));
  a.cld();
  a.mov(x86::rdi, x86::r15);
  a.mov(x86::rsi, x86::r13);
  a.call(x86::qword_ptr(x86::r15, static_cast<int32_t>(offsetof(ExecContext, callout))));
  a.ldmxcsr(context_field(offsetof(ExecContext, callout_mxcsr), 4));
  for (unsigned i = 0; i < 8; ++i) {
    a.movdqu(x86::xmm(i), context_field(offsetof(ExecContext, callout_xmm) + 16 * i, 16));
  }
  a.test(x86::rax, x86::rax);
  a.jnz(leave);
  emit_load_guest_registers(a);
  a.mov(x86::rsp, context_field(offsetof(ExecContext, callout_rsp), 8));
  a.ret();
  a.bind(leave);
  a.mov(x86::r13, x86::rax);
  a.jmp(exit_tail);  // the callout left ExecContext::retired as it should be

  size_t size = 0;
  exit_ = e.place(cache, &size);
  if (!exit_) return false;
  callout_ = e.address_of(exit_, callout);
  return true;
}

bool Trampolines::emit_return_miss(CodeCache& cache, ExecContext& ctx, uint32_t indirect_index_bits) {
  // Return misses (target in r13d): a guest ret whose host ret found no host call to pair
  // with (the return stack's bottom slot leads here: the stub puts RSP back on it), and a
  // paired one whose guest target was not the call's return address. Both look the target
  // up in the inline table like any indirect branch.
  Emission e;
  auto& a = *e.a;
  BlockBuilder b{a, BlockConfig{.count_indirect = true, .indirect_index_bits = indirect_index_bits}};
  const Label mismatch = a.newLabel();
  a.lea(x86::rsp, x86::ptr(x86::rsp, -8));
  a.bind(mismatch);
  emit_count(a, offsetof(ExecContext, return_misses));
  emit_indirect_jump(b);
  a.bind(b.indirect_exit);
  a.mov(x86::r13, reinterpret_cast<uint64_t>(&return_miss_exit_));
  a.jmp(Imm(reinterpret_cast<uint64_t>(exit_)));
  size_t size = 0;
  uint8_t* underflow = e.place(cache, &size);
  if (!underflow) return false;
  return_mismatch_ = e.address_of(underflow, mismatch);
  std::memcpy(reinterpret_cast<void*>(ctx.return_stack_top), &underflow, sizeof underflow);
  return true;
}

}  // namespace vmm86
