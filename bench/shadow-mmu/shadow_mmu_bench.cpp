// Shadow-MMU micro-benchmarks (Google Benchmark): what one fill costs (host fault + walk +
// mmap), what a CR3 switch costs with N pages mapped, the first touch of 10,000 pages
// under 4 KiB and 4 MiB guest pages, and the design decision itself: loads through the
// windows against loads through an inline software TLB (QEMU-style: hash the page number,
// compare the tag, add the host offset; walk on a miss) on the same access patterns.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "shadow-mmu/shadow_mmu.h"

namespace vmm86::bench {
namespace {

constexpr uint64_t kRam = 256u << 20;
constexpr uint32_t kDirA = 0x1000, kDirB = 0x2000;  // two address spaces
constexpr uint32_t kTables = 0x100000;              // user page tables, shared by both
constexpr uint32_t kUserBase = 0x10000000;          // user working sets live here
constexpr uint32_t kMaxUserPages = 16384;           // 64 MiB
constexpr uint32_t kFirstFrame = 0x1000;            // user frames from 16 MiB
constexpr uint32_t kKernelBase = 0xC0000000;        // all of RAM in global 4 MiB pages
constexpr uint32_t kP = 1, kW = 2, kU = 4, kA = 0x20, kD = 0x40, kPs = 0x80, kG = 0x100;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "shadow_mmu_bench: %s\n", what);
  std::exit(1);
}

/// Guest RAM, page tables and a ShadowMmu: user pages on shuffled frames (no two
/// neighbours share a host mapping, as in a long-running guest), the kernel in global
/// 4 MiB pages (as Linux maps low memory).
class Rig {
 public:
  Rig() {
    auto m = GuestMemory::create(kRam);
    if (!m) fail(m.error().c_str());
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
    mmu_ = std::make_unique<ShadowMmu>(*mem_);
    if (const Status s = mmu_->init(); !s) fail(s.error().c_str());
    for (uint32_t dir : {kDirA, kDirB}) {
      for (uint32_t t = 0; t < kMaxUserPages / 1024; ++t) {
        poke(dir + ((kUserBase >> 22) + t) * 4, (kTables + t * kPageSize) | kP | kW | kU);
      }
      for (uint32_t pde = 0; pde < kRam >> 22; ++pde) {
        poke(dir + ((kKernelBase >> 22) + pde) * 4, (pde << 22) | kP | kW | kPs | kA | kD | kG);
      }
    }
    for (uint32_t i = 0; i < kMaxUserPages; ++i) {
      // An odd multiplier permutes the pages; neighbours land far apart.
      const uint32_t frame = kFirstFrame + ((i * 7919u) % kMaxUserPages);
      poke(kTables + i * 4, (frame << kPageShift) | kP | kW | kU | kA | kD);
    }
    switch_to(kDirA);
  }

  ShadowMmu& mmu() { return *mmu_; }
  GuestMemory& mem() { return *mem_; }
  uint32_t cr3() const { return mmu_->mode().cr3; }
  void switch_to(uint32_t cr3) { mmu_->set_mode(PagingMode{cr0::PE | cr0::PG | cr0::WP, cr3, cr4::PSE | cr4::PGE}); }
  void switch_address_space() { switch_to(cr3() == kDirA ? kDirB : kDirA); }

 private:
  void poke(uint32_t phys, uint32_t v) {
    if (!mem_->write(GuestPhys{phys}, &v, 4)) fail("page tables outside RAM");
  }
  std::unique_ptr<GuestMemory> mem_;
  std::unique_ptr<ShadowMmu> mmu_;
};

Rig& rig() {
  static Rig r;
  return r;
}

// The benchmark's own fault handler: fill and retry, as the engine's does for translated
// code (which only answers faults from the code cache).
void on_segv(int, siginfo_t* si, void* raw) {
  ShadowMmu& mmu = rig().mmu();
  const auto* uc = static_cast<const ucontext_t*>(raw);
  for (bool user : {false, true}) {
    AddressWindow& w = mmu.window(user);
    if (!w.contains(si->si_addr)) continue;
    const bool write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    if (mmu.fill(user, w.linear_of(si->si_addr), write).outcome == FillOutcome::Mapped) return;
  }
  static const char kMsg[] = "shadow_mmu_bench: unexpected fault\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  _exit(1);
}

void install_handler() {
  static bool installed = [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSEGV, &sa, nullptr) == 0;
  }();
  if (!installed) fail("sigaction");
}

uint32_t touch(bool user, uint32_t linear) {
  return *reinterpret_cast<const volatile uint32_t*>(rig().mmu().window(user).base() + linear);
}

uint32_t user_page(uint32_t i) { return kUserBase + (i << kPageShift); }

void per_item(benchmark::State& state, int64_t items_per_iteration, const char* name) {
  state.counters[name] = benchmark::Counter(static_cast<double>(state.iterations() * items_per_iteration),
                                            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// --- The cost of one fill ---------------------------------------------------------------

/// Runs `fill_one(linear)` on one fresh user page per iteration, emptying the windows
/// (untimed) whenever the pages run out.
template <typename FillOne>
void fill_fresh_pages(benchmark::State& state, FillOne fill_one) {
  Rig& r = rig();
  r.mmu().flush_all();
  uint32_t i = 0;
  for (auto _ : state) {
    if (i == kMaxUserPages) {
      state.PauseTiming();
      r.mmu().flush_all();
      i = 0;
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(fill_one(user_page(i++)));
  }
  per_item(state, 1, "per_fill");
}

/// fill() called directly: the walk, A/D, bookkeeping and one mmap, without the signal.
void BM_FillDirect(benchmark::State& state) {
  fill_fresh_pages(state, [](uint32_t linear) { return rig().mmu().fill(true, GuestLinear{linear}, false); });
}

/// A load from an unmapped window page: host #PF, SIGSEGV delivery, fill(), sigreturn,
/// and the retried load (with the host's own minor fault on the new mapping).
void BM_FillViaFault(benchmark::State& state) {
  install_handler();
  fill_fresh_pages(state, [](uint32_t linear) { return touch(true, linear); });
}

// --- First touch of 10,000 pages --------------------------------------------------------

constexpr uint32_t kTouchPages = 10000;

/// 4 KiB guest pages: 10,000 fills. 4 MiB guest pages: 10 fills of 1024 pages each.
void BM_FirstTouch10k(benchmark::State& state) {
  install_handler();
  const bool large = state.range(0) != 0;
  Rig& r = rig();
  for (auto _ : state) {
    state.PauseTiming();
    r.mmu().flush_all();
    const uint64_t fills = r.mmu().stats().fills;
    state.ResumeTiming();
    uint32_t sum = 0;
    for (uint32_t i = 0; i < kTouchPages; ++i) {
      sum += large ? touch(false, kKernelBase + (16u << 20) + (i << kPageShift)) : touch(true, user_page(i));
    }
    benchmark::DoNotOptimize(sum);
    state.counters["fills"] = static_cast<double>(r.mmu().stats().fills - fills);
  }
  per_item(state, kTouchPages, "per_page");
  state.SetLabel(large ? "4 MiB guest pages" : "4 KiB guest pages");
}

/// The host alone: first touch of 10,000 pages of a fresh shared mapping of the memfd.
void BM_FirstTouch10kHostOnly(benchmark::State& state) {
  Rig& r = rig();
  const size_t bytes = size_t{kTouchPages} << kPageShift;
  for (auto _ : state) {
    state.PauseTiming();
    void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, r.mem().fd(), 16 << 20);
    if (p == MAP_FAILED) fail("mmap");
    state.ResumeTiming();
    uint32_t sum = 0;
    for (uint32_t i = 0; i < kTouchPages; ++i) sum += static_cast<const volatile uint32_t*>(p)[i << 10];
    benchmark::DoNotOptimize(sum);
    state.PauseTiming();
    munmap(p, bytes);
    state.ResumeTiming();
  }
  per_item(state, kTouchPages, "per_page");
}

/// The host's own floor per guest page a window shows: one MAP_FIXED mmap of a scattered
/// memfd frame, the first touch, and later the unmap (a PROT_NONE mapping over it), for
/// 10,000 neighbouring linear pages. range(0) = 1 places them in a PROT_NONE reservation,
/// as the windows are (each map splits it); 0 in address space nobody reserved (the host
/// then splits nothing, but another mapping could land there: not what a window may do).
/// Counters: map_touch and unmap, each per page.
void BM_HostMapScatteredPage(benchmark::State& state) {
  Rig& r = rig();
  const bool reserved = state.range(0) != 0;
  const size_t span = size_t{kTouchPages} << kPageShift;
  auto now = [] {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  };
  double map_touch = 0, unmap = 0;
  for (auto _ : state) {
    auto* base = static_cast<uint8_t*>(
        mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base == MAP_FAILED) fail("mmap");
    if (!reserved) munmap(base, span);  // a free range of the right size, left free
    const double t0 = now();
    for (uint32_t i = 0; i < kTouchPages; ++i) {
      const auto frame = static_cast<off_t>(kFirstFrame + ((i * 7919u) % kMaxUserPages)) << kPageShift;
      uint8_t* page = base + (size_t{i} << kPageShift);
      if (mmap(page, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r.mem().fd(), frame) == MAP_FAILED) {
        fail("mmap");
      }
      benchmark::DoNotOptimize(*static_cast<volatile uint8_t*>(page));
    }
    const double t1 = now();
    for (uint32_t i = 0; i < kTouchPages; ++i) {
      uint8_t* page = base + (size_t{i} << kPageShift);
      if (reserved) {
        mmap(page, kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
      } else {
        munmap(page, kPageSize);
      }
    }
    const double t2 = now();
    if (reserved) munmap(base, span);
    map_touch += t1 - t0;
    unmap += t2 - t1;
  }
  const auto pages = static_cast<double>(state.iterations()) * kTouchPages;
  state.counters["map_touch_us"] = map_touch / pages * 1e6;
  state.counters["unmap_us"] = unmap / pages * 1e6;
  state.SetLabel(reserved ? "in a reservation (as the windows)" : "in unreserved address space");
}

// --- CR3 switches ------------------------------------------------------------------------

/// A CR3 write with N user pages mapped (plus the global kernel 4 MiB page, which stays).
/// range(1) is the stride between the user pages: 1 = one run (one unmap call), 2 = every
/// page isolated (one unmap call each). With range(2), the time to touch the N pages
/// again is included: what the switch really costs the guest.
void BM_Cr3Switch(benchmark::State& state) {
  install_handler();
  const auto n = static_cast<uint32_t>(state.range(0));
  const auto stride = static_cast<uint32_t>(state.range(1));
  const bool retouch = state.range(2) != 0;
  Rig& r = rig();
  r.mmu().flush_all();
  for (auto _ : state) {
    state.PauseTiming();
    (void)touch(false, kKernelBase);
    for (uint32_t i = 0; i < n; ++i) (void)touch(true, user_page(i * stride));
    state.ResumeTiming();
    r.switch_address_space();
    if (retouch) {
      for (uint32_t i = 0; i < n; ++i) benchmark::DoNotOptimize(touch(true, user_page(i * stride)));
    }
  }
}

// --- Windows against an inline software TLB ----------------------------------------------

/// QEMU's scheme (CPUTLBEntry: tag + addend): per access, index by page number, compare
/// the tag (alignment bits included, so a misaligned access takes the slow path as in
/// QEMU), add the host offset. A miss walks the guest tables with the shared walker.
/// KeepFlags adds what our translator would pay where the guest's flags are live in
/// RFLAGS (DESIGN.md §4): save them around the compare (lahf/seto, add/sahf).
template <unsigned Bits, bool KeepFlags = false>
class SoftTlb {
 public:
  explicit SoftTlb(Rig& r) : rig_(r) { flush(); }
  uint32_t load(uint32_t linear) {
    uint64_t saved = 0;
    if constexpr (KeepFlags) asm volatile("lahf\n\tseto %%al" : "=a"(saved));
    const Entry& e = entries_[(linear >> kPageShift) & (kSize - 1)];
    const uint32_t v = __builtin_expect(e.tag != (linear & (~kPageMask | 3u)), 0)
                           ? miss(linear)
                           : *reinterpret_cast<const uint32_t*>(e.addend + linear);
    if constexpr (KeepFlags) asm volatile("addb $0x7f, %%al\n\tsahf" : : "a"(saved) : "cc");
    return v;
  }
  void switch_address_space() {
    rig_.switch_address_space();  // the windows are not used here; only the CR3 value is
    flush();
  }
  void warm(uint32_t ws_bytes) {
    for (uint32_t off = 0; off < ws_bytes; off += kPageSize) benchmark::DoNotOptimize(load(kUserBase + off));
  }

 private:
  static constexpr uint32_t kSize = 1u << Bits;
  static constexpr uint32_t kInvalid = 4;  // an access tag never has bit 2 set
  struct Entry {
    uint32_t tag = kInvalid;
    uintptr_t addend = 0;
  };
  void flush() { entries_.fill(Entry{}); }
  [[gnu::noinline]] uint32_t miss(uint32_t linear) {
    const WalkResult w = walk_page_tables(rig_.mem(), rig_.mmu().mode(), GuestLinear{linear}, {false, true, false});
    uint8_t* host = w.ok ? rig_.mem().host_ptr(GuestPhys{w.phys.value & ~uint64_t{kPageMask}}, kPageSize) : nullptr;
    if (!host) fail("software TLB miss on an unmapped page");
    Entry& e = entries_[(linear >> kPageShift) & (kSize - 1)];
    e.tag = linear & ~kPageMask;
    e.addend = reinterpret_cast<uintptr_t>(host) - (linear & ~kPageMask);
    return *reinterpret_cast<const uint32_t*>(e.addend + linear);
  }
  Rig& rig_;
  std::array<Entry, kSize> entries_;
};

/// Plain loads at window base + linear; the host MMU is the TLB, fill() the miss path.
class WindowAccess {
 public:
  explicit WindowAccess(Rig& r) : rig_(r) {}
  uint32_t load(uint32_t linear) { return *reinterpret_cast<const uint32_t*>(base_ + linear); }
  void switch_address_space() { rig_.switch_address_space(); }
  void warm(uint32_t ws_bytes) {
    for (uint32_t off = 0; off < ws_bytes; off += kPageSize) benchmark::DoNotOptimize(touch(true, kUserBase + off));
  }

 private:
  Rig& rig_;
  uint8_t* const base_ = rig_.mmu().window(true).base();
};

/// range(0): working set in MiB; range(1): 0 = sequential words, 1 = random words;
/// range(2): accesses between CR3 switches (0 = none).
template <class Access>
void BM_Access(benchmark::State& state) {
  install_handler();
  const auto ws = static_cast<uint32_t>(state.range(0)) << 20;
  const bool random = state.range(1) != 0;
  const auto switch_every = static_cast<uint64_t>(state.range(2));
  // Enough accesses for several switches, but bounded: a switch can cost milliseconds.
  const uint64_t n = switch_every ? 4 * switch_every : uint64_t{1} << 22;
  Rig& r = rig();
  r.mmu().flush_all();
  Access access(r);
  access.warm(ws);
  const uint64_t fills = r.mmu().stats().fills;
  uint32_t sum = 0, x = 0x9E3779B9u;
  for (auto _ : state) {
    uint64_t until_switch = switch_every;
    for (uint64_t i = 0; i < n; ++i) {
      uint32_t offset;
      if (random) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift32
        offset = x & (ws - 4);
      } else {
        offset = static_cast<uint32_t>(i * 4) & (ws - 1);
      }
      sum += access.load(kUserBase + offset);
      if (switch_every && --until_switch == 0) {
        access.switch_address_space();
        until_switch = switch_every;
      }
    }
  }
  benchmark::DoNotOptimize(sum);
  per_item(state, static_cast<int64_t>(n), "per_access");
  state.counters["fills"] = benchmark::Counter(static_cast<double>(r.mmu().stats().fills - fills),
                                               benchmark::Counter::kAvgIterations);
}

void access_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"MiB", "random", "switch_every"});
  for (int64_t mib : {4, 64}) {
    for (int64_t random : {0, 1}) {
      for (int64_t every : {0, 1 << 20, 1 << 16}) b->Args({mib, random, every});
    }
  }
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_FillDirect)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FillViaFault)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FirstTouch10k)->ArgName("large")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FirstTouch10kHostOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HostMapScatteredPage)->ArgName("reserved")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cr3Switch)
    ->ArgNames({"pages", "stride", "retouch"})
    ->ArgsProduct({{16, 256, 4096}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Access<WindowAccess>)->Apply(access_args);
BENCHMARK(BM_Access<SoftTlb<8>>)->Apply(access_args);
BENCHMARK(BM_Access<SoftTlb<12>>)->Apply(access_args);
BENCHMARK(BM_Access<SoftTlb<8, true>>)->Apply(access_args);

}  // namespace
}  // namespace vmm86::bench

BENCHMARK_MAIN();
