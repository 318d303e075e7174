// Runs one generated program on the interpreter alone, and on the BT engine (translated
// code with the interpreter as its slow path), from the same initial state.
#include <sstream>

#include "shadow-mmu/shadow_mmu.h"
#include "tests/differential/harness.h"
#include "tests/support/bare_engine_hooks.h"
#include "vmm/engine/bt_engine.h"
#include "vmm/interp/interpreter.h"

namespace vmm86::difftest {

namespace {

std::unique_ptr<GuestMemory> load(const Program& p) {
  Result<GuestMemory> mem = GuestMemory::create(kRamBytes);
  if (!mem) return nullptr;
  auto out = std::make_unique<GuestMemory>(std::move(mem).value());
  (void)out->write(GuestPhys{kCodeBase}, p.code.data(), p.code.size());
  (void)out->write(GuestPhys{kDataBase}, p.data.data(), p.data.size());
  return out;
}

void snapshot(const GuestMemory& mem, const CpuState& cpu, Outcome* o) {
  o->cpu = cpu;
  o->data.resize(kDataSize);
  (void)mem.read(GuestPhys{kDataBase}, o->data.data(), kDataSize);
  o->stack.resize(2 * kStackCheck);
  (void)mem.read(GuestPhys{kStackTop - kStackCheck}, o->stack.data(), 2 * kStackCheck);
}

/// Nothing ever interrupts. Half of the programs say so to the engine (the translated
/// sti/popf stay inline); the other half leave it at "a request may be waiting", so the
/// way out of translated code after sti and popf is compared as well.
bool never_and_says_so(void* cpu) {
  static_cast<CpuState*>(cpu)->pending.external_interrupt = false;
  return false;
}
bool never(void*) { return false; }

}  // namespace

Outcome run_interpreter(const Program& p) {
  Outcome o;
  auto mem = load(p);
  CpuState cpu = p.initial;
  NoDevices hooks;
  Interpreter interp(cpu, *mem, hooks);
  const RunResult r = interp.run(100000);
  o.completed = r.status == StepStatus::Halted;
  if (!o.completed) o.error = std::string("interpreter stopped: ") + to_string(r.status) + " " + interp.detail();
  snapshot(*mem, cpu, &o);
  return o;
}

Outcome run_translator(const Program& p) {
  Outcome o;
  auto mem = load(p);
  ExecContextPtr ctx = create_exec_context();
  ctx->cpu = p.initial;
  BareEngineHooks hooks;
  ShadowMmu mmu(*mem);
  if (const Status ready = mmu.init(); !ready) {
    o.error = ready.error();
    return o;
  }
  Interpreter interp(ctx->cpu, *mem, hooks);
  BtEngine engine(*ctx, *mem, mmu, interp, 1 << 20);
  hooks.attach(&engine, &mmu);
  if (const Status ready = engine.init(); !ready) {
    o.error = ready.error();
    return o;
  }
  EngineStop stop = EngineStop::Budget;
  bool (*const deliverable)(void*) = p.seed % 2 == 0 ? never_and_says_so : never;
  for (int i = 0; i < 1000 && stop == EngineStop::Budget; ++i) stop = engine.run(100000, deliverable, &ctx->cpu);
  o.completed = stop == EngineStop::Halted;
  if (!o.completed) o.error = "bt engine stopped: " + std::to_string(static_cast<int>(stop)) + " " + engine.detail();
  o.translated_insns = ctx->retired;
  snapshot(*mem, ctx->cpu, &o);
  return o;
}

std::string compare(const Outcome& ref, const Outcome& got) {
  std::ostringstream out;
  if (!ref.completed) out << "reference did not complete: " << ref.error << "\n";
  if (!got.completed) out << "tested did not complete: " << got.error << "\n";
  static const char* names[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  for (int i = 0; i < kNumGprs; ++i) {
    if (ref.cpu.gpr[static_cast<size_t>(i)] != got.cpu.gpr[static_cast<size_t>(i)]) {
      out << names[i] << ": " << std::hex << ref.cpu.gpr[static_cast<size_t>(i)] << " vs "
          << got.cpu.gpr[static_cast<size_t>(i)] << std::dec << "\n";
    }
  }
  if (ref.cpu.eip != got.cpu.eip)
    out << "eip: " << std::hex << ref.cpu.eip << " vs " << got.cpu.eip << std::dec << "\n";
  constexpr uint32_t kCompared = flags::Status | flags::DF | flags::IF;
  if ((ref.cpu.eflags & kCompared) != (got.cpu.eflags & kCompared)) {
    out << "eflags: " << std::hex << (ref.cpu.eflags & kCompared) << " vs " << (got.cpu.eflags & kCompared) << std::dec
        << "\n";
  }
  for (size_t i = 0; i < ref.data.size(); ++i) {
    if (ref.data[i] != got.data[i]) {
      out << "data[" << std::hex << kDataBase + i << "]: " << int(ref.data[i]) << " vs " << int(got.data[i]) << std::dec
          << "\n";
      break;
    }
  }
  for (size_t i = 0; i < ref.stack.size(); ++i) {
    if (ref.stack[i] != got.stack[i]) {
      out << "stack[" << std::hex << kStackTop - kStackCheck + i << "]: " << int(ref.stack[i]) << " vs "
          << int(got.stack[i]) << std::dec << "\n";
      break;
    }
  }
  return out.str();
}

}  // namespace vmm86::difftest
