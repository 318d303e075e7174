// Translator micro-benchmarks (Google Benchmark): the cost of translation, of chained and
// dispatched block transitions, of the inline indirect-branch lookup and of the slow-path
// round trip, the MD5 compute kernel as a CPL-3 guest with paging on against the same C
// code run natively, and the kernel's hot sensitive instructions (page copies and clears,
// small memcpy, interrupt save/restore).
#include <asmjit/x86.h>
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "bench/translator/guest_machine.h"
#include "bench/translator/md5.h"

namespace vmm86::bench {
namespace {

using namespace asmjit;

constexpr uint32_t kCode = 0x400000;
constexpr uint32_t kParams = 0x300000;
constexpr uint32_t kBuffer = 0x800000;
constexpr uint32_t kStack = 0x380000;
constexpr uint32_t kMd5Bytes = 4 << 20;

/// Assembles 32-bit guest code at kCode.
std::vector<uint8_t> assemble(void (*body)(x86::Assembler&, uint32_t), uint32_t arg) {
  CodeHolder code;
  code.init(Environment(Arch::kX86), kCode);
  x86::Assembler a(&code);
  body(a, arg);
  code.flatten();
  code.resolveUnresolvedLinks();
  code.relocateToBase(kCode);
  std::vector<uint8_t> bytes(code.codeSize());
  code.copyFlattenedData(bytes.data(), bytes.size());
  return bytes;
}

GuestMachine& machine() {
  static GuestMachine m(64 << 20, 16 << 20);
  return m;
}

/// Runs `body(iterations)` as CPL-3 guest code once per benchmark iteration.
void run_guest_loop(benchmark::State& state, void (*body)(x86::Assembler&, uint32_t), uint32_t inner) {
  GuestMachine& m = machine();
  const auto code = assemble(body, inner);
  m.load(kCode, code.data(), code.size());
  m.engine().translator().flush();
  for (auto _ : state) {
    m.start(kCode, kStack, true);
    if (!m.run_bt()) state.SkipWithError("guest did not finish");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * inner);
}

void chained_loop(x86::Assembler& a, uint32_t n) {
  Label top = a.newLabel();
  a.mov(x86::ecx, n);
  a.bind(top);
  a.add(x86::eax, x86::ecx);
  a.dec(x86::ecx);
  a.jnz(top);
  a.int3();
}

void call_return_loop(x86::Assembler& a, uint32_t n) {
  Label top = a.newLabel(), fn = a.newLabel();
  a.mov(x86::ecx, n);
  a.bind(top);
  a.call(fn);
  a.dec(x86::ecx);
  a.jnz(top);
  a.int3();
  a.bind(fn);
  a.add(x86::eax, x86::ecx);
  a.ret();
}

void slow_path_loop(x86::Assembler& a, uint32_t n) {
  // cpuid is not translated: each iteration leaves translated code, interprets one
  // instruction and comes back.
  Label top = a.newLabel();
  a.mov(x86::esi, n);
  a.bind(top);
  a.xor_(x86::eax, x86::eax);
  a.cpuid();
  a.dec(x86::esi);
  a.jnz(top);
  a.int3();
}

// ---- Sensitive instructions of the Linux kernel: string copies and the virtual IF ----

constexpr uint32_t kCopyDst = kBuffer + (1 << 20);

/// Like the kernel's copy_page: n copies of a 4 KiB page with rep movsd.
void copy_page_loop(x86::Assembler& a, uint32_t n) {
  Label top = a.newLabel();
  a.mov(x86::ebx, n);
  a.bind(top);
  a.mov(x86::esi, kBuffer);
  a.mov(x86::edi, kCopyDst);
  a.mov(x86::ecx, 1024);
  a.rep().movsd();
  a.dec(x86::ebx);
  a.jnz(top);
  a.int3();
}

/// Like the kernel's clear_page: n times rep stosd over 4 KiB.
void clear_page_loop(x86::Assembler& a, uint32_t n) {
  Label top = a.newLabel();
  a.xor_(x86::eax, x86::eax);
  a.mov(x86::ebx, n);
  a.bind(top);
  a.mov(x86::edi, kCopyDst);
  a.mov(x86::ecx, 1024);
  a.rep().stosd();
  a.dec(x86::ebx);
  a.jnz(top);
  a.int3();
}

/// The kernel's __memcpy of a small struct (60 bytes): rep movsl, then rep movsb for the
/// tail; the pointers advance, as in a loop copying consecutive records.
void small_memcpy_loop(x86::Assembler& a, uint32_t n) {
  Label top = a.newLabel();
  a.mov(x86::ebx, n);
  a.bind(top);
  a.mov(x86::esi, kBuffer);
  a.mov(x86::edi, kCopyDst);
  a.mov(x86::edx, 60);
  a.mov(x86::ecx, x86::edx);
  a.shr(x86::ecx, 2);
  a.rep().movsd();
  a.mov(x86::ecx, x86::edx);
  a.and_(x86::ecx, 3);
  a.rep().movsb();
  a.dec(x86::ebx);
  a.jnz(top);
  a.int3();
}

/// local_irq_save / local_irq_restore as Linux 6.1 compiles them (pushf; pop; cli ...
/// test $IF; jz; sti), with a little work inside. CPL 0.
void irq_save_restore_loop(x86::Assembler& a, uint32_t n) {
  Label top = a.newLabel(), enabled = a.newLabel();
  a.mov(x86::ebx, n);
  a.bind(top);
  a.pushfd();
  a.pop(x86::eax);
  a.cli();
  a.add(x86::edx, x86::ebx);
  a.test(x86::eax, flags::IF);
  a.jz(enabled);
  a.sti();
  a.bind(enabled);
  a.dec(x86::ebx);
  a.jnz(top);
  a.int3();
}

/// The machine's answer when nothing is pending: also tells the engine so.
bool no_request_waiting(void* cpu) {
  static_cast<CpuState*>(cpu)->pending.external_interrupt = false;
  return false;
}
/// Nothing deliverable, and nothing said about what is pending.
bool nothing_deliverable(void*) { return false; }

/// Runs `body(inner)` once per iteration at CPL 0 with IF=1. Argument 0: the dispatcher's
/// callback reports that no interrupt request waits (as the machine does); 1: it does not
/// say, so the engine must assume one may be waiting.
void run_kernel_loop(benchmark::State& state, void (*body)(x86::Assembler&, uint32_t), uint32_t inner) {
  GuestMachine& m = machine();
  const auto code = assemble(body, inner);
  m.load(kCode, code.data(), code.size());
  m.engine().translator().flush();
  const bool told = state.range(0) == 0;
  for (auto _ : state) {
    m.start(kCode, kStack, false);
    m.cpu().eflags |= flags::IF;
    EngineStop stop = EngineStop::Budget;
    while (stop == EngineStop::Budget) {
      stop = m.engine().run(1u << 30, told ? no_request_waiting : nothing_deliverable, &m.cpu());
    }
    if (stop != EngineStop::Halted) state.SkipWithError("guest did not finish");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * inner);
}

void BM_GuestCopyPage(benchmark::State& state) {
  run_guest_loop(state, copy_page_loop, 2000);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2000 * 4096);
}
void BM_GuestClearPage(benchmark::State& state) {
  run_guest_loop(state, clear_page_loop, 2000);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2000 * 4096);
}
void BM_GuestSmallMemcpy(benchmark::State& state) { run_guest_loop(state, small_memcpy_loop, 100000); }
void BM_GuestIrqSaveRestore(benchmark::State& state) { run_kernel_loop(state, irq_save_restore_loop, 100000); }

void BM_ChainedBlock(benchmark::State& state) { run_guest_loop(state, chained_loop, 1000000); }
void BM_CallReturnIndirectLookup(benchmark::State& state) { run_guest_loop(state, call_return_loop, 1000000); }
void BM_SlowPathRoundTrip(benchmark::State& state) { run_guest_loop(state, slow_path_loop, 20000); }

void BM_TranslateBlocks(benchmark::State& state) {
  // Translation speed over the MD5 guest program's code (~300 instructions).
  GuestMachine& m = machine();
  const auto image = read_file(VMM86_MD5_GUEST_BIN);
  m.load(kCode, image.data(), image.size());
  m.start(kCode, kStack, false);
  Translator& t = m.engine().translator();
  uint64_t insns = 0;
  for (auto _ : state) {
    t.flush();
    const uint64_t before = t.stats().guest_insns_translated;
    for (uint32_t off = 0; off < image.size(); off += 16) {
      m.cpu().eip = kCode + off;
      Block* b = nullptr;
      benchmark::DoNotOptimize(t.block_for_current(m.engine().code_source(), &b));
    }
    insns += t.stats().guest_insns_translated - before;
  }
  state.counters["guest_insns_per_s"] = benchmark::Counter(static_cast<double>(insns), benchmark::Counter::kIsRate);
}

void fill_buffer(std::vector<uint8_t>& buf) {
  uint32_t x = 12345;
  for (auto& b : buf) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
}

void BM_Md5Native(benchmark::State& state) {
  std::vector<uint8_t> buf(kMd5Bytes);
  fill_buffer(buf);
  unsigned char digest[16];
  for (auto _ : state) {
    md5(buf.data(), kMd5Bytes, digest);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kMd5Bytes);
}

void BM_Md5GuestUser(benchmark::State& state) {
  GuestMachine& m = machine();
  const auto image = read_file(VMM86_MD5_GUEST_BIN);
  m.load(kCode, image.data(), image.size());
  std::vector<uint8_t> buf(kMd5Bytes);
  fill_buffer(buf);
  m.load(kBuffer, buf.data(), buf.size());
  struct {
    uint32_t data, len, rounds;
    uint8_t digest[16];
  } params{kBuffer, kMd5Bytes, 1, {}};
  m.load(kParams, &params, sizeof params);
  m.engine().translator().flush();
  for (auto _ : state) {
    m.start(kCode, kStack, true);
    if (!m.run_bt()) state.SkipWithError("guest did not finish");
  }
  unsigned char expect[16], got[16];
  md5(buf.data(), kMd5Bytes, expect);
  (void)m.mem().read(GuestPhys{kParams + 12}, got, 16);
  if (std::memcmp(expect, got, 16) != 0) state.SkipWithError("guest md5 digest is wrong");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kMd5Bytes);
  state.counters["translated_share"] = static_cast<double>(m.ctx().retired) /
                                       static_cast<double>(m.ctx().retired + m.interpreter().retired() + 1);
}

BENCHMARK(BM_TranslateBlocks)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChainedBlock)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CallReturnIndirectLookup)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SlowPathRoundTrip)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Md5Native)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Md5GuestUser)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GuestCopyPage)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GuestClearPage)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GuestSmallMemcpy)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GuestIrqSaveRestore)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vmm86::bench

BENCHMARK_MAIN();
