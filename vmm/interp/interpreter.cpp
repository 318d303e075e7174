// The step loop: pending events, instruction fetch across pages and the CS limit,
// decoding, dispatch through the handler table, and precise faults.
#include "vmm/interp/interpreter.h"

#include <algorithm>

#include "vmm/interp/core.h"

namespace vmm86 {

namespace interp {

Core::Core(CpuState& cpu_state, GuestMemory& memory, CpuHooks& cpu_hooks)
    : cpu(cpu_state), mem(memory), hooks(cpu_hooks) {}

Exec Core::unimplemented() {
  detail = std::string("unimplemented instruction ") + ZydisMnemonicGetString(insn->mnemonic());
  return Exec::Unimplemented;
}

namespace {

/// Makes a cached decode the current instruction.
void use_decoded(Core& c, const DecodeCache::Entry& e) {
  c.insn = &e.insn;
  c.handler = e.handler;
  std::copy_n(e.bytes.begin(), e.len, c.insn_bytes.begin());
}

/// Fetches and decodes the instruction at CS:EIP. False with `fault` set on #PF/#GP/#UD.
bool fetch_decode(Core& c) {
  const SegmentCache& cs = c.cpu.sreg(SegReg::Cs);
  const uint32_t eip = c.cpu.eip;
  if (eip > cs.limit) return c.raise(vec::GP, 0);
  const uint32_t in_limit = static_cast<uint32_t>(std::min<uint64_t>(15, uint64_t{cs.limit} - eip + 1));
  const uint32_t linear = cs.base + eip;
  const uint32_t first = std::min(in_limit, kPageSize - (linear & kPageMask));
  const bool user = c.cpl() == 3;
  const bool big = cs.default_big();
  MemTarget t;
  if (!c.translate_linear(linear, first, Access::Fetch, user, &t)) return false;
  // Memory with a host pointer (RAM, ROM) can hold cached decodes; an instruction that
  // crosses the page end or the CS limit is always decoded afresh.
  const uint64_t code_phys = t.chunk[0].phys;
  const bool cacheable = t.chunk[0].host != nullptr;
  if (cacheable) {
    if (const DecodeCache::Entry* e = c.decoded.find(code_phys, big, t.chunk[0].host, first)) {
      use_decoded(c, *e);
      return true;
    }
  }
  uint8_t bytes[15] = {};
  c.read_target(t, bytes);
  const Decoder& d = big ? c.dec32 : c.dec16;
  DecodeStatus st = d.decode({bytes, first}, &c.fresh);
  const bool in_first_page = st == DecodeStatus::Ok;
  if (st == DecodeStatus::NeedMoreBytes && first < in_limit) {
    // Only now is the next page touched: its #PF belongs to this instruction.
    if (!c.translate_linear(linear + first, in_limit - first, Access::Fetch, user, &t)) return false;
    c.read_target(t, bytes + first);
    st = d.decode({bytes, in_limit}, &c.fresh);
  }
  std::copy(std::begin(bytes), std::end(bytes), c.insn_bytes.begin());
  switch (st) {
    case DecodeStatus::Ok: break;
    case DecodeStatus::NeedMoreBytes:  // runs past the CS limit
    case DecodeStatus::TooLong: return c.raise(vec::GP, 0);
    case DecodeStatus::Invalid: return c.raise(vec::UD);
  }
  if (c.fresh.classes == InsnClass::Unclassified) return c.raise(vec::UD);
  c.insn = &c.fresh;
  c.handler = handler_for(c.fresh);
  if (in_first_page && cacheable) {
    if (const DecodeCache::Entry* e = c.decoded.insert(code_phys, big, bytes, c.handler, c.fresh)) c.insn = &e->insn;
  }
  return true;
}

constexpr uint32_t kDr6SingleStep = 1u << 14;  ///< DR6.BS
constexpr uint32_t kDr6TaskSwitch = 1u << 15;  ///< DR6.BT

enum class FaultClass : uint8_t { Benign, Contributory, PageFault, DoubleFault };

FaultClass classify_vector(uint8_t v) {
  switch (v) {
    case vec::DE:
    case vec::TS:
    case vec::NP:
    case vec::SS:
    case vec::GP: return FaultClass::Contributory;
    case vec::PF: return FaultClass::PageFault;
    case vec::DF: return FaultClass::DoubleFault;
    default: return FaultClass::Benign;
  }
}

}  // namespace

StepStatus Core::deliver(Event ev) {
  // Each iteration is one delivery attempt; a fault during delivery combines with the
  // event being delivered (SDM Vol. 3 Table 6-5) into #DF, and a fault during #DF shuts down.
  int attempts = 0;
  while (attempts++ < 4) {
    const Snapshot before = take_snapshot();
    task_committed = false;
    task_trap = false;
    const Exec e = deliver_once(ev);
    if (e == Exec::Ok) {
      if (ev.kind == EventKind::Nmi) cpu.pending.nmi_blocked = true;
      if (!task_trap) return StepStatus::EventDelivered;
      // A new task whose TSS has the T bit traps before its first instruction (SDM Vol. 3
      // §7.2.1): a new event, not a combination. A loop, not recursion: every such switch
      // leaves one more TSS busy, so a hostile chain of them ends.
      cpu.dr[6] |= kDr6TaskSwitch;
      ev = Event{vec::DB, EventKind::Exception, false, 0};
      attempts = 0;
      continue;
    }
    // A fault after a task switch's commit point belongs to the new task: keep its state.
    if (!task_committed) restore(before);
    if (e == Exec::Unsupported) return StepStatus::Unsupported;
    // Only exceptions count as the first event: an INT n, an external interrupt or an NMI
    // whose delivery faults is followed by that fault alone (Table 6-5 has no row for them).
    const FaultClass first = ev.kind == EventKind::Exception ? classify_vector(ev.vector) : FaultClass::Benign;
    if (first == FaultClass::DoubleFault) break;
    const FaultClass second = classify_vector(fault.vector);
    const bool to_double = (first == FaultClass::Contributory && second == FaultClass::Contributory) ||
                           (first == FaultClass::PageFault && second != FaultClass::Benign);
    ev = to_double ? Event{vec::DF, EventKind::Exception, true, 0}
                   : Event{fault.vector, EventKind::Exception, fault.has_error, fault.error};
  }
  shutdown = true;
  hooks.shutdown(ShutdownReason::TripleFault);
  return StepStatus::TripleFault;
}

StepStatus Core::debug_trap(uint32_t dr6_bits) {
  cpu.dr[6] |= dr6_bits;
  return deliver(Event{vec::DB, EventKind::Exception, false, 0});
}

StepStatus Core::finish(Exec e) {
  switch (e) {
    case Exec::Ok:
    case Exec::Halt: {
      // MOV SS / POP SS hold the single-step trap back to the next instruction's boundary
      // (SDM Vol. 3 §6.8.3); a task switch loads the new task's TF instead (as Bochs).
      const bool single_step = (snap.eflags & flags::TF) != 0 && !cpu.pending.stack_load_shadow && !task_switched;
      cpu.eip = next_eip;
      ++retired;
      if (e == Exec::Halt) {
        cpu.halted = true;
        return StepStatus::Halted;
      }
      const uint32_t dr6_bits = (single_step ? kDr6SingleStep : 0u) | (task_trap ? kDr6TaskSwitch : 0u);
      if (dr6_bits != 0) {
        const StepStatus s = debug_trap(dr6_bits);
        if (s != StepStatus::EventDelivered) return s;
      }
      return StepStatus::Retired;
    }
    case Exec::Fault:
      // After a task switch's commit point the fault is the new task's: nothing to undo.
      if (!task_committed) restore(snap, !keep_progress_on_fault);
      return deliver(Event{fault.vector, EventKind::Exception, fault.has_error, fault.error});
    case Exec::Unimplemented: restore(snap); return StepStatus::Unimplemented;
    case Exec::Unsupported: restore(snap); return StepStatus::Unsupported;
  }
  return StepStatus::Unimplemented;
}

StepStatus Core::step() {
  if (shutdown) return StepStatus::TripleFault;
  // MOV SS / POP SS block NMIs for one instruction as well (SDM Vol. 3 §6.8.3, and the
  // "blocking by MOV SS" of §24.4.2); STI's shadow leaves them alone.
  if (cpu.pending.nmi_deliverable()) {
    cpu.pending.nmi = false;
    cpu.halted = false;
    return deliver(Event{vec::NMI, EventKind::Nmi, false, 0});
  }
  if (cpu.pending.interrupt_shadow == 0 && (cpu.eflags & flags::IF) != 0 && hooks.interrupt_pending()) {
    const uint8_t vector = hooks.acknowledge_interrupt();
    cpu.halted = false;
    return deliver(Event{vector, EventKind::External, false, 0});
  }
  if (cpu.halted) return StepStatus::Halted;
  // The shadow covers exactly one instruction: this one (finish sees the flag again only
  // if this instruction loads SS itself).
  cpu.pending.interrupt_shadow = 0;
  cpu.pending.stack_load_shadow = false;

  snap = take_snapshot();
  keep_progress_on_fault = false;
  task_committed = false;
  task_switched = false;
  task_trap = false;
  insn_eip = cpu.eip;
  if (!fetch_decode(*this)) return deliver(Event{fault.vector, EventKind::Exception, fault.has_error, fault.error});
  next_eip = insn_eip + insn->length();
  if (!cpu.sreg(SegReg::Cs).default_big()) next_eip &= 0xFFFFu;

  if (handler == nullptr) return finish(unimplemented());
  const ZydisAccessedFlags* accessed = insn->raw.cpu_flags;
  if (accessed && (accessed->tested & undefined_flags)) ++undefined_results;
  // lock-prefixed instructions and xchg with memory are atomic against other vCPUs.
  const bool atomic = insn->has_lock() ||
                      (insn->mnemonic() == ZYDIS_MNEMONIC_XCHG && insn->raw.operand_count_visible == 2 &&
                       (op(0).type == ZYDIS_OPERAND_TYPE_MEMORY || op(1).type == ZYDIS_OPERAND_TYPE_MEMORY));
  Exec outcome{};
  if (!atomic) {
    outcome = handler(*this);
  } else {
    atomic_rmw = AtomicRmw{};
    atomic_rmw.active = true;
    outcome = handler(*this);
    while (atomic_rmw.conflict) {
      restore(snap);
      atomic_rmw.conflict = false;
      atomic_rmw.host = nullptr;
      outcome = handler(*this);
    }
    atomic_rmw.active = false;
  }
  const StepStatus status = finish(outcome);
  if (accessed && status == StepStatus::Retired) {
    undefined_flags = (undefined_flags & ~(accessed->modified | accessed->set_0 | accessed->set_1)) |
                      accessed->undefined;
  }
  return status;
}

}  // namespace interp

const char* to_string(StepStatus s) {
  switch (s) {
    case StepStatus::Retired: return "retired";
    case StepStatus::EventDelivered: return "event delivered";
    case StepStatus::Halted: return "halted";
    case StepStatus::TripleFault: return "triple fault";
    case StepStatus::Unimplemented: return "unimplemented";
    case StepStatus::Unsupported: return "unsupported";
    case StepStatus::Stopped: return "stopped";
  }
  return "?";
}

Interpreter::Interpreter(CpuState& cpu, GuestMemory& mem, CpuHooks& hooks)
    : core_(std::make_unique<interp::Core>(cpu, mem, hooks)) {}

Interpreter::~Interpreter() = default;

StepStatus Interpreter::step() { return core_->step(); }

RunResult Interpreter::run(uint64_t max_steps) {
  RunResult r;
  const uint64_t start = core_->retired;
  // Steps, not retirements, bound the run: a rep string instruction pauses every few
  // thousand iterations without retiring, and one with ECX near 4G must still return.
  for (uint64_t steps = 0; steps < max_steps; ++steps) {
    if (stop_requested_.exchange(false, std::memory_order_relaxed)) {
      r.status = StepStatus::Stopped;
      break;
    }
    const StepStatus s = core_->step();
    if (s != StepStatus::Retired && s != StepStatus::EventDelivered) {
      r.status = s;
      break;
    }
  }
  r.instructions = core_->retired - start;
  return r;
}

void Interpreter::reset() {
  core_->shutdown = false;
  core_->cpu.reset();
  core_->flush_tlb();
}

void Interpreter::flush_tlb() { core_->flush_tlb(); }

void Interpreter::invalidate_page(GuestLinear linear) { core_->invalidate_page(linear.value); }

StepStatus Interpreter::raise_exception(uint8_t vector, bool has_error_code, uint32_t error_code) {
  return core_->deliver(interp::Event{vector, interp::EventKind::Exception, has_error_code, error_code});
}

const std::string& Interpreter::detail() const { return core_->detail; }

uint64_t Interpreter::retired() const { return core_->retired; }

uint64_t Interpreter::undefined_results() const { return core_->undefined_results; }
uint32_t Interpreter::undefined_flags() const { return core_->undefined_flags; }
uint64_t Interpreter::unmappable_accesses() const { return core_->unmappable_accesses; }

}  // namespace vmm86
