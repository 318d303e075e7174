#include "tests/support/bt_machine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

namespace vmm86::bttest {

using namespace asmjit;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bt-engine test machine: %s\n", what.c_str());
  std::abort();
}

CodeHolder* prepare(CodeHolder& code, uint32_t base) {
  if (code.init(Environment(Arch::kX86), base) != kErrorOk) fail("asmjit: cannot init a 32-bit code holder");
  return &code;
}

}  // namespace

bool has_error_code(unsigned vector) { return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17; }

// ---- GuestCode ----

GuestCode::GuestCode(uint32_t base) : base_(base), assembler_(prepare(code_, base)) {}

const std::vector<uint8_t>& GuestCode::finish() {
  if (finished_) return bytes_;
  if (code_.flatten() != kErrorOk || code_.resolveUnresolvedLinks() != kErrorOk ||
      code_.relocateToBase(base_) != kErrorOk) {
    fail("asmjit: cannot resolve guest code");
  }
  bytes_.resize(code_.codeSize());
  code_.copyFlattenedData(bytes_.data(), bytes_.size());
  finished_ = true;
  return bytes_;
}

uint32_t GuestCode::addr(const Label& label) const {
  return base_ + static_cast<uint32_t>(code_.labelOffsetFromBase(label));
}

void emit_toggle_cr3(x86::Assembler& a, uint32_t other) {
  a.mov(x86::eax, x86::cr3);
  a.xor_(x86::eax, kPageDir ^ other);
  a.mov(x86::cr3, x86::eax);
}

const char* to_string(RunEnd e) {
  switch (e) {
    case RunEnd::Halted: return "halted";
    case RunEnd::TripleFault: return "triple fault";
    case RunEnd::Unimplemented: return "unimplemented";
    case RunEnd::Timeout: return "timeout";
  }
  return "?";
}

std::string compare_records(const BtMachine& got, const BtMachine& want) {
  std::ostringstream out;
  if (got.record_count() != want.record_count()) {
    out << "exception records: " << got.record_count() << " vs " << want.record_count() << "\n";
    return out.str();
  }
  static const char* const kNames[] = {"vector",   "error", "eip", "cs",  "eflags", "outer_esp",
                                       "outer_ss", "cr2",   "edi", "esi", "ebp",    "handler_esp",
                                       "ebx",      "edx",   "ecx", "eax"};
  constexpr size_t kFields = sizeof(ExceptionRecord) / 4;
  static_assert(std::size(kNames) == kFields);
  for (uint32_t i = 0; i < got.record_count() && i < kMaxRecords; ++i) {
    const ExceptionRecord g = got.record(i), w = want.record(i);
    uint32_t gf[kFields], wf[kFields];
    std::memcpy(gf, &g, sizeof g);
    std::memcpy(wf, &w, sizeof w);
    const bool from_user = (w.cs & 3) != 0;
    for (size_t f = 0; f < kFields; ++f) {
      const bool outer = f == offsetof(ExceptionRecord, outer_esp) / 4 || f == offsetof(ExceptionRecord, outer_ss) / 4;
      if ((outer && !from_user) || gf[f] == wf[f]) continue;
      out << "record " << i << " " << kNames[f] << ": " << std::hex << gf[f] << " vs " << wf[f] << std::dec << "\n";
    }
  }
  return out.str();
}

// ---- BtMachine ----

BtMachine::BtMachine(size_t code_cache_bytes) {
  auto m = GuestMemory::create(kRamBytes);
  if (!m) fail(m.error());
  mem_ = std::make_unique<GuestMemory>(std::move(*m));
  ctx_ = create_exec_context();
  if (!ctx_) fail("cannot create the execution context");
  mmu_ = std::make_unique<ShadowMmu>(*mem_);
  if (const Status s = mmu_->init(); !s) fail(s.error());
  interp_ = std::make_unique<Interpreter>(ctx_->cpu, *mem_, *this);
  engine_ = std::make_unique<BtEngine>(*ctx_, *mem_, *mmu_, *interp_, code_cache_bytes);
  if (const Status s = engine_->init(); !s) fail(s.error());
  build_tables();
  build_handlers();
}

BtMachine::~BtMachine() = default;

void BtMachine::poke(uint32_t phys, const void* bytes, size_t size) {
  if (!mem_->write(GuestPhys{phys}, bytes, size)) fail("write outside guest RAM");
}

void BtMachine::poke32(uint32_t phys, uint32_t value) { poke(phys, &value, 4); }

uint32_t BtMachine::peek32(uint32_t phys) const {
  uint32_t v = 0;
  if (!mem_->read(GuestPhys{phys}, &v, 4)) fail("read outside guest RAM");
  return v;
}

uint8_t BtMachine::peek8(uint32_t phys) const {
  uint8_t v = 0;
  if (!mem_->read(GuestPhys{phys}, &v, 1)) fail("read outside guest RAM");
  return v;
}

void BtMachine::load(GuestCode& code) { load_at(code, code.base()); }

void BtMachine::load_at(GuestCode& code, uint32_t phys) {
  const std::vector<uint8_t>& bytes = code.finish();
  poke(phys, bytes.data(), bytes.size());
}

ExceptionRecord BtMachine::record(uint32_t i) const {
  ExceptionRecord r{};
  if (i >= kMaxRecords || !mem_->read(GuestPhys{kRecords + i * sizeof(ExceptionRecord)}, &r, sizeof r)) {
    fail("no such exception record");
  }
  return r;
}

uint32_t BtMachine::new_directory() {
  if (next_table_ >= kTablePoolEnd) fail("page-table pool exhausted");
  const uint32_t dir = next_table_;
  next_table_ += kPageSize;
  const std::vector<uint8_t> zero(kPageSize, 0);
  poke(dir, zero.data(), zero.size());
  return dir;
}

void BtMachine::map_page(uint32_t dir, uint32_t linear, uint32_t phys, uint32_t flags) {
  const uint32_t pde_addr = dir + 4 * (linear >> 22);
  uint32_t pde = peek32(pde_addr);
  if (!(pde & kPresent)) {
    pde = new_directory() | kUserRw;  // a zeroed page serves as an empty table too
    poke32(pde_addr, pde);
  }
  poke32((pde & ~kPageMask) + 4 * ((linear >> kPageShift) & 0x3FF), (phys & ~kPageMask) | flags);
}

void BtMachine::identity_map(uint32_t dir, uint32_t bytes, uint32_t flags) {
  for (uint32_t a = 0; a < bytes; a += kPageSize) map_page(dir, a, a, flags);
}

uint32_t BtMachine::pte_addr(uint32_t dir, uint32_t linear) const {
  const uint32_t pde = peek32(dir + 4 * (linear >> 22));
  if (!(pde & kPresent)) fail("pte_addr: no page table");
  return (pde & ~kPageMask) + 4 * ((linear >> kPageShift) & 0x3FF);
}

uint32_t BtMachine::new_identity_directory() {
  const uint32_t dir = new_directory();
  for (uint32_t i = 0; i < (kIdentityBytes >> 22); ++i) poke32(dir + 4 * i, peek32(kPageDir + 4 * i));
  return dir;
}

uint32_t BtMachine::two_spaces(uint32_t linear, uint32_t frame, uint32_t other_frame) {
  if (linear < kIdentityBytes) fail("two_spaces: the spaces share the identity map's tables");
  const uint32_t other = new_identity_directory();
  map_page(kPageDir, linear, frame, kUserRw);
  map_page(other, linear, other_frame, kUserRw);
  install_service([other](x86::Assembler& a) { emit_toggle_cr3(a, other); });
  return other;
}

uint32_t BtMachine::pae_mirror(uint32_t dir) {
  constexpr uint32_t kLargePage = 0x80;
  const uint32_t pdpt = new_directory();
  // The table a 64-bit entry at `entry_addr` names; made (zeroed, with `bits`) if absent.
  auto pae_table = [this](uint32_t entry_addr, uint32_t bits) {
    uint32_t entry = peek32(entry_addr);
    if (!(entry & kPresent)) {
      entry = new_directory() | bits;
      poke32(entry_addr, entry);
    }
    return entry & ~kPageMask;
  };
  for (uint32_t i = 0; i < 1024; ++i) {
    const uint32_t pde = peek32(dir + 4 * i);
    if (!(pde & kPresent)) continue;
    if (pde & kLargePage) fail("pae_mirror: 4 MiB pages are not mirrored");
    for (uint32_t j = 0; j < 1024; ++j) {
      const uint32_t pte = peek32((pde & ~kPageMask) + 4 * j);
      if (!(pte & kPresent)) continue;
      const uint32_t linear = (i << 22) | (j << kPageShift);
      const uint32_t directory = pae_table(pdpt + 8 * (linear >> 30), kPresent);  // a PDPTE has no R/W, U/S
      const uint32_t table = pae_table(directory + 8 * ((linear >> 21) & 0x1FF), pde & kPageMask);
      poke32(table + 8 * ((linear >> kPageShift) & 0x1FF), pte);  // the high dword stays 0
    }
  }
  return pdpt;
}

void BtMachine::make_hole(uint32_t linear, uint32_t pte) {
  const uint32_t page = linear & ~kPageMask;
  if (page >= kIdentityBytes) fail("make_hole: not in the identity map");
  set_pte(kPageDir, page, pte);
  set_fix(pte_addr(kPageDir, page), page | kUserRw);
  set_action(14, HandlerAction::FixPte);
}

void BtMachine::set_descriptor(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags_nibble) {
  const uint64_t d = (limit & 0xFFFFull) | (uint64_t{base & 0xFFFFFF} << 16) | (uint64_t{access} << 40) |
                     (uint64_t{(limit >> 16) & 0xF} << 48) | (uint64_t{flags_nibble} << 52) |
                     (uint64_t{base >> 24} << 56);
  poke(kGdt + 8 * index, &d, 8);
}

void BtMachine::set_gate(uint8_t vector, uint32_t handler, uint8_t dpl) {
  const uint64_t gate = (handler & 0xFFFF) | (uint64_t{kKernelCs} << 16) |
                        (uint64_t{0x8E00u | (uint32_t{dpl} << 13)} << 32) | (uint64_t{handler >> 16} << 48);
  poke(kIdt + 8u * vector, &gate, 8);
}

void BtMachine::set_fix(uint32_t pte_address, uint32_t value) {
  poke32(kFixPteAddr, pte_address);
  poke32(kFixPteValue, value);
}

void BtMachine::install_service(const Emit& body, uint8_t vector, uint32_t at) {
  GuestCode h(at);
  body(h.a());
  h.a().iretd();
  load(h);
  set_gate(vector, at, 3);
}

void BtMachine::build_tables() {
  set_descriptor(1, 0, 0xFFFFF, 0x9B, 0xC);  // 0x08 ring-0 code
  set_descriptor(2, 0, 0xFFFFF, 0x93, 0xC);  // 0x10 ring-0 data
  set_descriptor(3, 0, 0xFFFFF, 0xFB, 0xC);  // 0x18 ring-3 code
  set_descriptor(4, 0, 0xFFFFF, 0xF3, 0xC);  // 0x20 ring-3 data
  set_descriptor(5, kTss, 0x67, 0x8B, 0x0);  // 0x28 busy 32-bit TSS
  poke32(kTss + 4, kRing0StackTop);          // ESP0
  poke32(kTss + 8, kKernelDs);               // SS0
  poke32(kTss + 0x64, 0x68u << 16);          // no I/O bitmap

  if (new_directory() != kPageDir) fail("the identity directory must come first from the pool");
  identity_map(kPageDir, kIdentityBytes, kUserRw);
  for (uint32_t a = 0; a < kIdentityBytes; a += kPageSize) {
    const bool system = a < 0x10000 || (a >= kTablePool && a < kHandlersEnd);
    if (system) set_pte(kPageDir, a, a | kPresent | kWritable);
  }
}

void BtMachine::build_handlers() {
  // Stub v (an exception; from 32 on, an external interrupt): [push 0]; push v; jmp common.
  // Common: record the frame, CR2 and the registers at the exception, then do
  // kActions[vector].
  GuestCode code(kHandlers);
  auto& a = code.a();
  Label common = a.newLabel(), halt = a.newLabel(), fix = a.newLabel();
  std::vector<Label> stubs;
  for (unsigned v = 0; v < kStubVectors; ++v) {
    stubs.push_back(a.newLabel());
    a.bind(stubs.back());
    if (!has_error_code(v)) a.push(0);
    a.push(v);
    a.jmp(common);
  }
  a.bind(common);
  a.pushad();
  a.cld();
  a.mov(x86::edi, x86::dword_ptr(kRecordCount));
  a.cmp(x86::edi, kMaxRecords);  // an exception storm: stop where the records end
  a.jae(halt);
  a.shl(x86::edi, 6);
  a.add(x86::edi, kRecords);
  a.lea(x86::esi, x86::ptr(x86::esp, 32));
  a.mov(x86::ecx, 7);
  a.rep().movsd();  // vector, error, eip, cs, eflags, outer esp, outer ss
  a.mov(x86::eax, x86::cr2);
  a.stosd();
  a.mov(x86::esi, x86::esp);
  a.mov(x86::ecx, 8);
  a.rep().movsd();  // the pushad area
  a.inc(x86::dword_ptr(kRecordCount));
  a.mov(x86::eax, x86::dword_ptr(x86::esp, 32));
  a.mov(x86::eax, x86::dword_ptr(kActions, x86::eax, 2));
  a.cmp(x86::eax, static_cast<uint32_t>(HandlerAction::FixPte));
  a.je(fix);
  a.bind(halt);
  a.hlt();
  a.jmp(halt);
  a.bind(fix);
  a.mov(x86::eax, x86::dword_ptr(kFixPteAddr));
  a.mov(x86::ecx, x86::dword_ptr(kFixPteValue));
  a.mov(x86::dword_ptr(x86::eax), x86::ecx);
  a.popad();
  a.add(x86::esp, 8);
  a.iretd();
  load(code);
  if (code.bytes().size() > kHandlersStubEnd - kHandlers) fail("the exception stubs outgrew their space");
  for (unsigned v = 0; v < kStubVectors; ++v) set_gate(static_cast<uint8_t>(v), code.addr(stubs[v]));
}

void BtMachine::raise_irq(uint8_t vector) {
  irq_vector_.store(vector, std::memory_order_relaxed);
  irq_pending_.store(true, std::memory_order_release);
}

void BtMachine::port_out(uint16_t port, unsigned size, uint32_t value) {
  (void)size;
  if (port == kIrqPort) raise_irq(static_cast<uint8_t>(value));
}

uint8_t BtMachine::acknowledge_interrupt() {
  irq_pending_.store(false, std::memory_order_relaxed);
  acknowledged_at = std::chrono::steady_clock::now();
  ++acknowledged;
  return irq_vector_.load(std::memory_order_relaxed);
}

bool BtMachine::is_watched_page(GuestPhys page) { return mmu_->is_code_page(page.page()); }

void BtMachine::watched_write(GuestPhys addr, unsigned size) { engine_->physical_write(addr, size); }

void BtMachine::paging_written() { engine_->paging_written(); }

void BtMachine::page_invalidated(GuestLinear linear) { engine_->invlpg(linear); }

void BtMachine::start(uint32_t eip, uint32_t esp, bool user, bool paging, uint32_t eflags) {
  CpuState& cpu = ctx_->cpu;
  cpu.reset();
  cpu.cr0 = cr0::PE | cr0::ET | cr0::NE | (paging ? cr0::PG | cr0::WP : 0);
  cpu.cr3 = kPageDir;
  cpu.gdtr = DescriptorTableReg{kGdt, 8 * 8 - 1};
  cpu.idtr = DescriptorTableReg{kIdt, 256 * 8 - 1};
  cpu.tr = SegmentCache{kTssSel, kTss, 0x67, 0x008B};
  cpu.ldtr = SegmentCache{0, 0, 0, 0};
  const uint16_t dpl = user ? 0x60 : 0;
  for (auto& s : cpu.seg) {
    s = SegmentCache{user ? kUserDs : kKernelDs, 0, 0xFFFFFFFF, static_cast<uint16_t>(0xC093 | dpl)};
  }
  cpu.sreg(SegReg::Cs) = SegmentCache{user ? kUserCs : kKernelCs, 0, 0xFFFFFFFF, static_cast<uint16_t>(0xC09B | dpl)};
  cpu.eip = eip;
  cpu.reg(Gpr::Esp) = esp;
  cpu.eflags = eflags | flags::Reserved1;
}

bool BtMachine::interrupt_deliverable() {
  CpuState& cpu = ctx_->cpu;
  const bool intr = irq_pending_.load(std::memory_order_acquire);
  cpu.pending.external_interrupt = intr;
  // As the machine's: a latched NMI that nothing blocks stops translated code too.
  return (intr && (cpu.eflags & flags::IF) && cpu.pending.interrupt_shadow == 0) || cpu.pending.nmi_deliverable();
}

bool BtMachine::deliverable_thunk(void* self) { return static_cast<BtMachine*>(self)->interrupt_deliverable(); }

RunEnd BtMachine::run_bt(std::chrono::milliseconds limit) {
  // A watchdog makes translated code leave (through the poll page) once `limit` passed, so
  // that a guest stuck in a chained loop fails the test instead of hanging it.
  std::atomic<bool> timed_out{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, limit, [&] { return done; })) return;
    timed_out.store(true);
    while (!done) {
      request_exit(ctx_.get());
      cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return done; });
    }
  });
  RunEnd end = RunEnd::Timeout;
  for (bool running = true; running;) {
    if (timed_out.load()) break;
    switch (engine_->run(1u << 20, deliverable_thunk, this)) {
      case EngineStop::Budget: break;
      case EngineStop::Interrupt:
        // The machine's part: the interpreter delivers the interrupt.
        switch (interp_->step()) {
          case StepStatus::Retired:
          case StepStatus::EventDelivered: break;
          case StepStatus::Halted:
            end = RunEnd::Halted;
            running = false;
            break;
          case StepStatus::TripleFault:
            end = RunEnd::TripleFault;
            running = false;
            break;
          default:
            detail_ = interp_->detail();
            end = RunEnd::Unimplemented;
            running = false;
            break;
        }
        break;
      case EngineStop::Halted:
        end = RunEnd::Halted;
        running = false;
        break;
      case EngineStop::TripleFault:
        end = RunEnd::TripleFault;
        running = false;
        break;
      case EngineStop::Unimplemented:
        detail_ = engine_->detail();
        end = RunEnd::Unimplemented;
        running = false;
        break;
    }
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  clear_exit_request(ctx_.get());
  return end;
}

RunEnd BtMachine::run_interp(uint64_t max_instructions) {
  const RunResult r = interp_->run(max_instructions);
  switch (r.status) {
    case StepStatus::Halted: return RunEnd::Halted;
    case StepStatus::TripleFault: return RunEnd::TripleFault;
    case StepStatus::Retired:
    case StepStatus::EventDelivered: return RunEnd::Timeout;
    default: detail_ = interp_->detail(); return RunEnd::Unimplemented;
  }
}

void TwoRuns::run_and_compare(std::chrono::milliseconds limit) {
  ASSERT_EQ(ref.run_interp(), RunEnd::Halted) << ref.detail();
  ASSERT_EQ(bt.run_bt(limit), RunEnd::Halted) << bt.detail();
  EXPECT_EQ(compare_records(bt, ref), "");
  static const char* const kNames[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  for (size_t r = 0; r < kNumGprs; ++r) EXPECT_EQ(bt.cpu().gpr[r], ref.cpu().gpr[r]) << kNames[r];
  EXPECT_EQ(bt.cpu().eip, ref.cpu().eip);
  EXPECT_EQ(bt.cpu().eflags, ref.cpu().eflags);
  EXPECT_EQ(bt.acknowledged, ref.acknowledged) << "interrupts taken";
  EXPECT_EQ(bt.retired(), ref.interp().retired()) << "retired guest instructions";
  EXPECT_GT(bt.ctx().retired, 0u) << "nothing ran translated";
}

}  // namespace vmm86::bttest
