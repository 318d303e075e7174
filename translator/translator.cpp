#include "translator/translator.h"

#include <asmjit/x86.h>

#include <algorithm>
#include <cstring>

#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

namespace {

/// True when the instruction writes memory (explicit or hidden operands: push, call, stos...).
bool writes_memory(const Instruction& insn) {
  for (uint8_t i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.type == ZYDIS_MEMOP_TYPE_MEM &&
        (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
      return true;
    }
  }
  return false;
}

/// Instructions no rewrite rule translates that the block runs through a callout (the
/// interpreter, in place) rather than ending before them: anything but control flow (its
/// successor is not the next instruction), FPU/SSE (the guest's FPU state is live in the
/// host FPU, the interpreter keeps it in CpuState) and string operations (rep may run long).
bool runs_as_callout(const Instruction& insn) {
  return !insn.has(InsnClass::ControlFlow) && !insn.has(InsnClass::FloatingPoint) && !insn.has(InsnClass::StringOp) &&
         !insn.has(InsnClass::Unclassified);
}

/// `call T` where T holds `mov reg, [esp]; ret` (get_pc_thunk: how i386 position-
/// independent code finds itself, called all the time) becomes what the pair does: the
/// push of the return address (it may fault like the call's), and reg = that address. The
/// block goes on instead of ending twice. The thunk's page becomes the block's second page
/// (write-protected, its mapping checked at entry) unless it is the block's own.
RewriteStatus inline_pc_thunk_call(BlockBuilder& b, const Instruction& insn, CodeSource& source, Block* block) {
  if (insn.mnemonic() != ZYDIS_MNEMONIC_CALL || insn.operand_size() != 32 || !(b.mode & tmode::FlatData) ||
      insn.operands[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE || block->verifies_code) {
    return RewriteStatus::NotHandled;
  }
  const uint32_t target = b.next_eip + static_cast<uint32_t>(insn.operands[0].imm.value.s);
  CodeSource::Bytes thunk;
  if (!source.fetch(target, &thunk) || thunk.verify || thunk.available < 4) return RewriteStatus::NotHandled;
  const uint8_t* c = thunk.host;
  const unsigned reg = (c[1] >> 3) & 7;
  if (c[0] != 0x8B || (c[1] & 0xC7) != 0x04 || c[2] != 0x24 || c[3] != 0xC3 || reg == 4) return RewriteStatus::NotHandled;
  const uint32_t linear_page = target >> kPageShift;
  const uint64_t phys_page = thunk.phys >> kPageShift;
  const bool own_page = linear_page == (block->key.eip >> kPageShift) && phys_page == block->first_page;
  if (!own_page) {
    if (block->has_second_page && (block->second_linear_page != linear_page || block->last_page != phys_page)) {
      return RewriteStatus::NotHandled;  // one second page per block
    }
    block->has_second_page = true;
    block->second_linear_page = linear_page;
    block->last_page = phys_page;
  }
  b.a.mov(guest_dword(x86::r12d, -4), b.next_eip);
  b.a.mov(guest_gp32(reg), b.next_eip);
  return RewriteStatus::Emitted;
}

constexpr uint32_t kMaxBlockInsns = 64;
constexpr uint32_t kMaxInsnBytes = 15;
constexpr uint32_t kGuestFlagsInHost = flags::Status | flags::DF;
/// EFLAGS bits that stay in cpu.eflags while translated code runs (pushf reads them as 0).
constexpr uint32_t kFlagsKeptInCpu = flags::RF | flags::VM;
constexpr uint32_t kSystemFlags = ~(kGuestFlagsInHost | flags::IF | flags::Reserved1 | kFlagsKeptInCpu);

constexpr size_t gpr_off(unsigned i) { return offsetof(ExecContext, cpu) + offsetof(CpuState, gpr) + 4 * i; }
constexpr size_t kEipOff = offsetof(ExecContext, cpu) + offsetof(CpuState, eip);
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

/// Assembles into a fresh CodeHolder, then copies the result into the code cache.
struct Emission {
  CodeHolder code;
  std::unique_ptr<x86::Assembler> a;
  Emission() {
    code.init(Environment(Arch::kX64));
    a = std::make_unique<x86::Assembler>(&code);
  }
  /// Places the code in `cache`; returns its address or nullptr when the cache is full.
  uint8_t* place(CodeCache& cache, size_t* size_out) {
    if (code.flatten() != kErrorOk || code.resolveUnresolvedLinks() != kErrorOk) return nullptr;
    const size_t size = code.codeSize();
    uint8_t* mem = cache.allocate(size);
    if (!mem) return nullptr;
    if (code.relocateToBase(reinterpret_cast<uint64_t>(mem)) != kErrorOk) return nullptr;
    code.copyFlattenedData(cache.writable(mem), size, CopySectionFlags::kPadSectionBuffer);
    *size_out = size;
    return mem;
  }
};

}  // namespace

Translator::Translator(ExecContext& ctx, size_t cache_bytes)
    : ctx_(ctx), cache_(cache_bytes), code_tlb_(ctx), indirect_index_bits_(__builtin_cpu_supports("bmi2") ? kIndirectIndexBitsWide : kIndirectIndexBits),
      // calloc: large enough to come from mmap, so its zero pages cost nothing until used.
      indirect_table_(static_cast<IndirectEntry*>(std::calloc(size_t{1} << indirect_index_bits_, sizeof(IndirectEntry)))) {
  ctx_.indirect_table = indirect_table_.get();
}

Translator::~Translator() = default;

bool Translator::init(std::string* error) {
  if (!cache_.ok()) {
    if (error) *error = "cannot allocate the code cache (memfd_create or mmap failed)";
    return false;
  }
  if (!indirect_table_) {
    if (error) *error = "cannot allocate the indirect-branch table";
    return false;
  }
  // Enter: ExitRecord* enter(ExecContext* ctx /*rdi*/, const uint8_t* code /*rsi*/).
  // Equivalent C: save host callee-saved state; load guest GPRs, flags and FPU; goto code.
  {
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
    uint8_t* p = e.place(cache_, &size);
    if (!p) return false;
    enter_ = reinterpret_cast<EnterFn>(p);
  }
  // Exit: entered by a jump with r13 = ExitRecord*; stores the guest state and returns r13.
  // It runs on the host stack: the return stack may be full (a push would hit its guard).
  // Callout: entered by a call with r13 = CalloutSite*; stores the guest state, calls
  // ExecContext::callout, and either reloads the guest state and returns to the block, or
  // (the callout returned an ExitRecord) leaves like an exit.
  {
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
    exit_trampoline_ = e.place(cache_, &size);
    if (!exit_trampoline_) return false;
    callout_trampoline_ = exit_trampoline_ + e.code.labelOffsetFromBase(callout);
  }
  // Return misses (target in r13d): a guest ret whose host ret found no host call to pair
  // with (the return stack's bottom slot leads here: the stub puts RSP back on it), and a
  // paired one whose guest target was not the call's return address. Both look the target
  // up in the inline table like any indirect branch.
  {
    Emission e;
    auto& a = *e.a;
    BlockBuilder b{a, true, 0, 0, 0, {}, a.newLabel(), false, 0, false, {}};
    b.indirect_index_bits = indirect_index_bits_;
    const Label mismatch = a.newLabel();
    a.lea(x86::rsp, x86::ptr(x86::rsp, -8));
    a.bind(mismatch);
    emit_count(a, offsetof(ExecContext, return_misses));
    emit_indirect_jump(b);
    a.bind(b.indirect_exit);
    a.mov(x86::r13, reinterpret_cast<uint64_t>(&return_miss_exit_));
    a.jmp(Imm(reinterpret_cast<uint64_t>(exit_trampoline_)));
    size_t size = 0;
    uint8_t* underflow = e.place(cache_, &size);
    if (!underflow) return false;
    return_mismatch_ = underflow + e.code.labelOffsetFromBase(mismatch);
    std::memcpy(reinterpret_cast<void*>(ctx_.return_stack_top), &underflow, sizeof underflow);
  }
  cache_.mark_permanent();
  return true;
}

void Translator::update_segment_code_bases() {
  // FS/GS (per-CPU data, TLS) have a base that changes at run time but no useful limit:
  // translated fs:/gs: operands add the base; anything else about them is the interpreter's.
  auto usable = [](const SegmentCache& s) {
    const bool base_only = s.selector > 3 && s.present() && !s.is_system() && !s.is_code() && (s.type() & 2) &&
                           !s.expand_down() && s.limit == 0xFFFFFFFFu;
    return base_only;
  };
  const SegReg segs[2] = {SegReg::Fs, SegReg::Gs};
  for (int i = 0; i < 2; ++i) {
    const SegmentCache& s = ctx_.cpu.sreg(segs[i]);
    ctx_.segment_code_base[i] = usable(s) ? s.base : 0;
    ctx_.segment_code_guard[i] = usable(s) ? 0 : kUnusableSegmentBase;
  }
}

uint32_t Translator::current_mode() const {
  const CpuState& cpu = ctx_.cpu;
  if (!cpu.protected_mode() || cpu.v86_mode()) return kNotTranslatable;
  const SegmentCache& cs = cpu.sreg(SegReg::Cs);
  const uint8_t cpl = cpu.cpl();
  // Translated code does not check EIP against the CS limit: only a 4 GiB CS runs translated.
  if (!cs.default_big() || cs.base != 0 || cs.limit != 0xFFFFFFFFu || (cpl != 0 && cpl != 3)) return kNotTranslatable;
  // Single-stepping traps after every instruction: the interpreter does that.
  if (cpu.eflags & flags::TF) return kNotTranslatable;
  uint32_t mode = tmode::Code32 | (cpl == 3 ? tmode::Cpl3 : 0);
  // Window accesses check nothing but the page: a segment is flat only if no access
  // through it within 4 GiB can fault for segment reasons (null, read-only, expand-down).
  auto flat = [](const SegmentCache& s) {
    return s.present() && !s.is_system() && !s.is_code() && (s.type() & 2) && !s.expand_down() && s.base == 0 &&
           s.limit == 0xFFFFFFFFu;
  };
  const SegmentCache& ss = cpu.sreg(SegReg::Ss);
  if (flat(cpu.sreg(SegReg::Ds)) && flat(cpu.sreg(SegReg::Es)) && flat(ss) && ss.default_big()) {
    mode |= tmode::FlatData;
  }
  if (cs.type() & 2) mode |= tmode::ReadableCs;
  if (cpu.msr.tsc_offset == 0 && (!(cpu.cr4 & cr4::TSD) || cpl == 0)) mode |= tmode::HostTsc;
  if (cpu.cr0 & (cr0::TS | cr0::EM)) mode |= tmode::FpuTraps;
  if (!(cpu.cr4 & cr4::OSFXSR)) mode |= tmode::NoSse;
  return mode;
}

TranslateStatus Translator::block_for_current(CodeSource& source, Block** out) {
  const uint32_t mode = current_mode();
  if (mode == kNotTranslatable) return TranslateStatus::NeedsInterpreter;
  CodeSource::Bytes bytes;
  if (!source.fetch(ctx_.cpu.eip, &bytes)) return TranslateStatus::NeedsInterpreter;
  const BlockKey key{bytes.phys, ctx_.cpu.eip, mode};
  code_tlb_.fill((mode & tmode::Cpl3) != 0, ctx_.cpu.eip, bytes.phys, bytes.global, bytes.large);
  Block* b = cache_.find(key);
  if (!b) {
    const TranslateStatus st = translate(source, key, &b);
    if (st != TranslateStatus::Ok) return st;
  }
  if (b->has_second_page) {
    // Its entry checks that page too: it must map to where the block's code came from.
    CodeSource::Bytes second;
    const uint32_t second_linear = b->second_linear_page << kPageShift;
    if (!source.fetch(second_linear, &second) || (second.phys >> kPageShift) != b->last_page) {
      return TranslateStatus::NeedsInterpreter;  // not present (#PF) or other code there
    }
    code_tlb_.fill((mode & tmode::Cpl3) != 0, second_linear, second.phys, second.global, second.large);
  }
  *out = b;
  return TranslateStatus::Ok;
}

ExitRecord* Translator::enter(const Block* block) {
  return enter_at(block->dispatch_entry());
}

ExitRecord* Translator::enter_at(const uint8_t* host_code) {
  ++stats_.enters;
  ExitRecord* exit = enter_(&ctx_, host_code);
  if (exit->kind == ExitKind::Indirect) ++stats_.indirect_misses;
  if (exit->kind == ExitKind::CodeTlbMiss) ++stats_.code_tlb_misses;
  return exit;
}

Block* Translator::try_chain(ExitRecord* exit, CodeSource& source) {
  Block* target = nullptr;
  if (block_for_current(source, &target) != TranslateStatus::Ok) return nullptr;
  if (exit->kind != ExitKind::Direct || exit->chained_to || !exit->from || !exit->from->valid) return target;
  // The jump happens without the dispatcher looking at the vCPU state again. A block that
  // does not depend on the unsalted mode bits (rdtsc) runs in any mode with the same other bits (the
  // source runs only in such modes); one that does is entered directly only from a block
  // of exactly its mode, from others through its mode check.
  const Block& from = *exit->from;
  if (salted_mode(from.key.mode) != salted_mode(target->key.mode) || target->key.eip != exit->target_eip) return target;
  // Another page may map to other code in another address space: a jump to another page
  // enters through the checked entry, which compares the target page's code TLB entry
  // (and leaves for the dispatcher where that page holds other code). So does a block whose
  // last instruction ends on the next page: it compares that page's mapping too.
  const bool same_page = ((exit->target_eip ^ from.key.eip) >> kPageShift) == 0;
  const bool direct = !target->mode_sensitive || (from.mode_sensitive && from.key.mode == target->key.mode);
  const uint8_t* entry = !same_page || target->has_second_page ? target->checked_entry
                         : direct                            ? target->host_code
                                                             : target->mode_entry;
  if (cache_.chain(exit, target, entry)) {
    ++stats_.chains;
  }
  return target;
}

bool Translator::in_code_cache(const void* host_pc) const {
  return cache_.block_at(host_pc) != nullptr;
}

bool Translator::locate(const void* host_pc, GuestLocation* out) const {
  const Block* b = cache_.block_at(host_pc);
  return b && translate_back(*b, static_cast<uint32_t>(static_cast<const uint8_t*>(host_pc) - b->host_code), out);
}

void Translator::remember_indirect_target(uint32_t eip, const Block* block) {
  IndirectEntry& e = indirect_table_[indirect_slot(eip)];
  const uint32_t linear_page = eip >> kPageShift;
  e.neg_key = 0u - (eip + ctx_.lookup_salt);
  e.neg_tag = 0u - CodeTlb::tag(linear_page, static_cast<uint32_t>(block->key.phys >> kPageShift));
  e.tlb_offset = static_cast<uint32_t>(CodeTlb::entry_offset((block->key.mode & tmode::Cpl3) != 0, linear_page));
  e.host_code = reinterpret_cast<uint64_t>(table_entry(*block));
}

const uint8_t* Translator::indirect_target(uint32_t eip) const {
  const IndirectEntry& e = indirect_table_[indirect_slot(eip)];
  if (e.neg_key + eip + ctx_.lookup_salt != 0) return nullptr;
  uint32_t tag = 0;
  std::memcpy(&tag, reinterpret_cast<const uint8_t*>(&ctx_) + e.tlb_offset, sizeof tag);
  return tag + e.neg_tag == 0 ? reinterpret_cast<const uint8_t*>(e.host_code) : nullptr;
}

void Translator::forget_indirect_target(const Block& block) {
  // A block has at most one entry: the slot of its EIP.
  IndirectEntry& e = indirect_table_[indirect_slot(block.key.eip)];
  if (e.host_code == reinterpret_cast<uint64_t>(table_entry(block))) e = IndirectEntry{};
}

void Translator::forget_indirect_target(uint32_t eip) {
  indirect_table_[indirect_slot(eip)] = IndirectEntry{};
}

void Translator::invalidate_block(Block* block) {
  if (!block->valid) return;
  forget_indirect_target(*block);
  cache_.invalidate(block);
  ++stats_.invalidated_blocks;
}

void Translator::clear_indirect_table() {
  std::memset(static_cast<void*>(indirect_table_.get()), 0, sizeof(IndirectEntry) << indirect_index_bits_);
}

size_t Translator::invalidate_page(uint64_t phys_page) {
  if (const std::vector<Block*>* blocks = cache_.blocks_on_page(phys_page)) {
    for (const Block* b : *blocks) forget_indirect_target(*b);
  }
  const size_t n = cache_.invalidate_page(phys_page);
  stats_.invalidated_blocks += n;
  return n;
}

void Translator::flush() {
  cache_.flush();
  clear_indirect_table();
}

TranslateStatus Translator::translate(CodeSource& source, const BlockKey& key, Block** out) {
  Emission e;
  auto& a = *e.a;
  BlockBuilder b{a, count_indirect_, key.mode, key.eip, key.eip, {}, a.newLabel(), false, 0, false, {}};
  b.indirect_index_bits = indirect_index_bits_;
  if (return_prediction_) b.return_mismatch = return_mismatch_;
  auto block = std::make_unique<Block>();
  block->key = key;
  block->first_page = block->last_page = key.phys >> kPageShift;
  CodeSource::Bytes first;
  if (source.fetch(key.eip, &first)) {
    block->verifies_code = first.verify;
  }

  // Prologue (where chained jumps and the dispatcher enter): the interrupt poll (a load
  // that faults when an exit is requested), then the count of the block's guest
  // instructions (lea: flag-neutral; its disp32 patched below).
  const Label main_entry = a.newLabel();
  a.bind(main_entry);
  a.mov(x86::r13d, x86::dword_ptr(x86::r15, kPollPageOffset));
  const Label check_code = a.newLabel(), body = a.newLabel();
  if (block->verifies_code) {
    a.jmp(check_code);
    a.bind(body);
  }
  // One lea per count segment (BlockBuilder::segment); each disp32 is patched below.
  std::vector<uint32_t> segment_patch, segment_end;
  auto open_segment = [&] {
    static constexpr uint8_t kLeaR14Disp32[] = {0x4D, 0x8D, 0xB6, 0, 0, 0, 0};
    segment_patch.push_back(static_cast<uint32_t>(a.offset()) + 3);
    a.embed(kLeaR14Disp32, sizeof(kLeaR14Disp32));
  };
  open_segment();
  std::vector<uint32_t> pc_segment;  // segment of each pc_map entry

  const Decoder decoder(CodeSize::Bits32);
  const uint32_t page = key.eip >> kPageShift;
  uint32_t eip = key.eip;
  uint32_t insns = 0;    // translated instructions
  uint32_t retired = 0;  // guest instructions they retire (see inline_pc_thunk_call)
  bool stored = false;  // the last instruction wrote memory (see below)
  for (;;) {
    CodeSource::Bytes bytes;
    b.retired_after = retired;  // for the exits the loop itself makes, before this instruction
    // A block that checks its code at entry ends after each store: a store may rewrite the
    // instructions that follow, and only a block entry would notice.
    if (insns == kMaxBlockInsns || (eip >> kPageShift) != page || (block->verifies_code && stored) ||
        !source.fetch(eip, &bytes)) {
      b.jump_to_exit(ExitKind::Direct, eip);
      break;
    }
    Instruction insn;
    DecodeStatus ds = decoder.decode({bytes.host, bytes.available}, &insn);
    if (ds == DecodeStatus::NeedMoreBytes && insns > 0) {
      // It starts the next block: fetching its second page now would walk that page (and
      // set its accessed bit) for code the instructions before it may never reach.
      b.jump_to_exit(ExitKind::Direct, eip);
      break;
    }
    if (ds == DecodeStatus::NeedMoreBytes && !block->verifies_code && !block->has_second_page) {
      // The instruction continues on the next page: it ends the block, which then depends on
      // that page's mapping too (checked at entry) and on its bytes (write-protected).
      CodeSource::Bytes next;
      const uint32_t next_linear = (eip | kPageMask) + 1;
      if (next_linear != 0 && source.fetch(next_linear, &next)) {
        uint8_t spliced[kMaxInsnBytes];
        const uint32_t head = std::min<uint32_t>(bytes.available, kMaxInsnBytes);
        std::memcpy(spliced, bytes.host, head);
        std::memcpy(spliced + head, next.host, std::min<uint32_t>(kMaxInsnBytes - head, next.available));
        ds = decoder.decode({spliced, kMaxInsnBytes}, &insn);
        if (ds == DecodeStatus::Ok) {
          block->has_second_page = true;
          block->second_linear_page = next_linear >> kPageShift;
          block->last_page = next.phys >> kPageShift;
        }
      }
    }
    RewriteStatus rs = RewriteStatus::NotHandled;
    uint32_t retires = 1;
    const auto host_offset = static_cast<uint32_t>(a.offset());
    if (ds == DecodeStatus::Ok) {
      b.eip = eip;
      b.next_eip = eip + insn.length();
      b.retired_after = retired + 1;
      stored = writes_memory(insn);
      b.next_in_block = insns + 1 < kMaxBlockInsns && (b.next_eip >> kPageShift) == page &&
                        !(block->verifies_code && stored);
      rs = inline_pc_thunk_call(b, insn, source, block.get());
      if (rs != RewriteStatus::NotHandled) retires = 3;
      if (rs == RewriteStatus::NotHandled) rs = rewrite_branch(b, insn);
      if (rs == RewriteStatus::NotHandled) rs = rewrite_stack(b, insn);
      if (rs == RewriteStatus::NotHandled) rs = rewrite_flags(b, insn);
      if (rs == RewriteStatus::NotHandled) rs = rewrite_string(b, insn);
      if (rs == RewriteStatus::NotHandled) rs = rewrite_time(b, insn);
      if (rs == RewriteStatus::NotHandled) rs = rewrite_ident(b, insn);
    }
    if (rs == RewriteStatus::NotHandled) {
      // Bytes a failed rule may have emitted for this instruction are dead: cut them off.
      a.setOffset(host_offset);
      if (ds == DecodeStatus::Ok && ctx_.callout && runs_as_callout(insn) && !block->verifies_code) {
        auto site = std::make_unique<CalloutSite>();
        site->eip = eip;
        site->next_eip = b.next_eip;
        site->block = block.get();
        a.mov(context_field(kEipOff, 4), eip);
        a.mov(x86::r13, reinterpret_cast<uint64_t>(site.get()));
        a.call(Imm(reinterpret_cast<uint64_t>(callout_trampoline_)));
        block->callouts.push_back(std::move(site));
        ++stats_.callout_sites;
        rs = b.next_in_block ? RewriteStatus::Emitted : RewriteStatus::EndsBlock;
        if (rs == RewriteStatus::EndsBlock) b.jump_to_exit(ExitKind::Direct, b.next_eip);
      }
    }
    if (rs == RewriteStatus::NotHandled) {
      if (insns == 0) return TranslateStatus::NeedsInterpreter;
      b.retired_after = retired;
      b.jump_to_exit(ExitKind::Interpret, eip);
      break;
    }
    block->pc_map.push_back({host_offset, eip, retired, 0});
    pc_segment.push_back(b.segment);
    ++insns;
    retired += retires;
    eip = b.next_eip;
    if (rs == RewriteStatus::EndsBlock) break;
    if (rs == RewriteStatus::SideExit) {
      segment_end.push_back(retired);
      open_segment();
      ++b.segment;
    }
  }
  segment_end.push_back(retired);
  for (size_t i = 0; i < block->pc_map.size(); ++i) block->pc_map[i].counted = segment_end[pc_segment[i]];

  // Exit stubs: store the target EIP, name the exit, leave through the exit trampoline.
  if (block->verifies_code) {
    a.bind(check_code);
    b.retired_after = 0;  // nothing counted yet on this path
    b.segment = kNoSegment;
    emit_code_check(b, key.eip, first.host, eip - key.eip, body);
  }

  for (PendingExit& pe : b.exits) {
    auto rec = std::make_unique<ExitRecord>();
    rec->kind = pe.kind;
    rec->target_eip = pe.target_eip;
    rec->from = block.get();
    a.bind(pe.stub);
    // An exit in the middle of a count segment: its lea counted instructions that did not
    // run. Such an exit is never chained: a chained jump would skip this correction.
    const uint32_t counted = pe.segment == kNoSegment ? 0 : segment_end[pe.segment];
    if (counted != pe.retired) {
      a.lea(x86::r14, x86::ptr(x86::r14, -static_cast<int32_t>(counted - pe.retired)));
      pe.patchable = false;
    }
    a.mov(context_field(kEipOff, 4), pe.target_eip);
    a.mov(x86::r13, reinterpret_cast<uint64_t>(rec.get()));
    a.jmp(Imm(reinterpret_cast<uint64_t>(exit_trampoline_)));
    block->exits.push_back(std::move(rec));
  }
  // Checked entry (where the inline indirect table leads; emitted last because only now is
  // it known whether the block depends on the unsalted mode bits (rdtsc), which the table's salt
  // leaves out): does this EIP's page still map to the block's guest-physical page in this
  // address space, and, if the block depends on them, are those bits the same?
  // Flag-neutral: lea + jecxz.
  const Label checked_entry = a.newLabel(), mode_entry = a.newLabel();
  {
    const Label miss = a.newLabel(), hit = a.newLabel(), mode_check = a.newLabel();
    const uint32_t linear_page = key.eip >> kPageShift;
    const uint32_t tag = CodeTlb::tag(linear_page, static_cast<uint32_t>(key.phys >> kPageShift));
    const bool user = (key.mode & tmode::Cpl3) != 0;
    a.bind(checked_entry);
    a.mov(x86::r8, x86::rcx);
    a.mov(x86::ecx, x86::dword_ptr(x86::r15, CodeTlb::entry_offset(user, linear_page)));
    a.lea(x86::ecx, x86::ptr(x86::rcx, static_cast<int32_t>(0u - tag)));
    if (block->has_second_page) {
      const Label first_ok = a.newLabel();
      const uint32_t second = block->second_linear_page;
      const uint32_t tag2 = CodeTlb::tag(second, static_cast<uint32_t>(block->last_page));
      a.jecxz(x86::rcx, first_ok);
      a.jmp(miss);
      a.bind(first_ok);
      a.mov(x86::ecx, x86::dword_ptr(x86::r15, CodeTlb::entry_offset(user, second)));
      a.lea(x86::ecx, x86::ptr(x86::rcx, static_cast<int32_t>(0u - tag2)));
    }
    a.jecxz(x86::rcx, b.mode_sensitive ? mode_check : hit);
    a.jmp(miss);
    if (b.mode_sensitive) {
      // Chained jumps from blocks that may run in another mode come in here: same page, so
      // only the mode needs checking.
      a.bind(mode_entry);
      a.mov(x86::r8, x86::rcx);
      a.bind(mode_check);
      a.mov(x86::ecx, x86::dword_ptr(x86::r15, static_cast<int32_t>(offsetof(ExecContext, mode))));
      a.lea(x86::ecx, x86::ptr(x86::rcx, static_cast<int32_t>(0u - key.mode)));
      a.jecxz(x86::rcx, hit);
    }
    a.bind(miss);
    a.mov(x86::rcx, x86::r8);
    auto rec = std::make_unique<ExitRecord>();
    rec->kind = ExitKind::CodeTlbMiss;
    rec->from = block.get();
    a.mov(context_field(kEipOff, 4), key.eip);
    a.mov(x86::r13, reinterpret_cast<uint64_t>(rec.get()));
    a.jmp(Imm(reinterpret_cast<uint64_t>(exit_trampoline_)));
    block->exits.push_back(std::move(rec));
    a.bind(hit);
    a.mov(x86::rcx, x86::r8);
    a.jmp(main_entry);
  }
  if (b.indirect_used) {
    auto rec = std::make_unique<ExitRecord>();
    rec->kind = ExitKind::Indirect;
    rec->from = block.get();
    a.bind(b.indirect_exit);
    a.mov(x86::r13, reinterpret_cast<uint64_t>(rec.get()));
    a.jmp(Imm(reinterpret_cast<uint64_t>(exit_trampoline_)));
    block->exits.push_back(std::move(rec));
  }

  const auto code_bytes = static_cast<uint32_t>(a.offset());  // without section padding
  size_t size = 0;
  uint8_t* code = e.place(cache_, &size);
  if (!code) return TranslateStatus::CacheFull;
  for (size_t i = 0; i < segment_patch.size(); ++i) {
    const uint32_t count = segment_end[i] - (i ? segment_end[i - 1] : 0);
    std::memcpy(cache_.writable(code + segment_patch[i]), &count, 4);
  }
  for (auto& site : block->callouts) {
    const auto at = std::find_if(block->pc_map.begin(), block->pc_map.end(),
                                 [&](const PcMapEntry& m) { return m.guest_eip == site->eip; });
    site->insns_after = at->counted - at->retired_before - 1;
  }
  for (size_t i = 0; i < b.exits.size(); ++i) {
    ExitRecord* rec = block->exits[i].get();
    rec->stub = code + e.code.labelOffsetFromBase(b.exits[i].stub);
    if (b.exits[i].patchable) rec->patch_rel32 = code + e.code.labelOffsetFromBase(b.exits[i].after_jump) - 4;
  }
  block->host_code = code;
  block->checked_entry = code + e.code.labelOffsetFromBase(checked_entry);
  block->mode_sensitive = b.mode_sensitive;
  block->mode_entry = b.mode_sensitive ? code + e.code.labelOffsetFromBase(mode_entry) : block->host_code;
  block->host_size = code_bytes;
  block->guest_size = eip - key.eip;
  block->guest_insns = retired;
  block->host_pointer_sites = std::move(b.host_pointer_sites);
  stats_.blocks_translated++;
  stats_.guest_insns_translated += insns;
  *out = cache_.insert(std::move(block));
  return TranslateStatus::Ok;
}

}  // namespace vmm86
