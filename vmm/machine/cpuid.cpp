#include "vmm/machine/cpuid.h"

#include <time.h>
#include <x86intrin.h>

#include <cpuid.h>
#include <cstring>

namespace vmm86 {

namespace {

namespace edx1 {
constexpr uint32_t FPU = 1u << 0, PSE = 1u << 3, TSC = 1u << 4, MSR = 1u << 5, PAE = 1u << 6, CX8 = 1u << 8,
                   APIC = 1u << 9, PGE = 1u << 13, CMOV = 1u << 15, MMX = 1u << 23, FXSR = 1u << 24, SSE = 1u << 25,
                   SSE2 = 1u << 26;
}

constexpr uint32_t kMaxBasicLeaf = 0x16;
/// Leaf 0x15 gives TSC = crystal * numerator / denominator with the crystal in Hz in ECX
/// (32 bits): a numerator of 4 lets the TSC reach 17 GHz.
constexpr uint32_t kTscCrystalRatio = 4;
constexpr uint32_t kMaxExtendedLeaf = 0x80000004;
constexpr char kBrand[48] = "vmm86 virtual P6 CPU";

uint32_t pack(const char* four) {
  uint32_t v = 0;
  std::memcpy(&v, four, 4);
  return v;
}

}  // namespace

uint64_t crystal_hz(uint64_t tsc_hz) { return tsc_hz / kTscCrystalRatio; }

CpuidResult virtual_cpuid(uint32_t leaf, uint32_t subleaf, uint64_t tsc_hz, bool apic) {
  (void)subleaf;
  CpuidResult r;
  switch (leaf) {
    case 0:
      r.eax = kMaxBasicLeaf;
      r.ebx = pack("Genu");
      r.edx = pack("ineI");
      r.ecx = pack("ntel");
      break;
    case 1:
      r.eax = 0x000006D8;  // family 6, model 13, stepping 8 (a P6 core with SSE2)
      r.ebx = 0;           // no CLFLUSH size, one logical CPU, initial APIC ID 0 (bits 31:24)
      r.ecx = 0;
      r.edx = edx1::FPU | edx1::PSE | edx1::TSC | edx1::MSR | edx1::PAE | edx1::CX8 | edx1::PGE | edx1::CMOV |
              edx1::MMX | edx1::FXSR | edx1::SSE | edx1::SSE2;
      // A globally disabled APIC also clears the flag (SDM §10.4.3).
      if (apic) r.edx |= edx1::APIC;
      break;
    case 2:
      r.eax = 0x00000001;  // one round of descriptors, all "null"
      break;
    case 0x15:
      if (tsc_hz != 0) {
        r.eax = 1;
        r.ebx = kTscCrystalRatio;
        r.ecx = static_cast<uint32_t>(crystal_hz(tsc_hz));
      }
      break;
    case 0x16:  // base, maximum and bus frequency in MHz
      r.eax = r.ebx = static_cast<uint32_t>(tsc_hz / 1'000'000);
      r.ecx = tsc_hz != 0 ? 100 : 0;
      break;
    case 0x80000000: r.eax = kMaxExtendedLeaf; break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
      const uint32_t* words = reinterpret_cast<const uint32_t*>(kBrand) + 4 * (leaf - 0x80000002);
      r.eax = words[0];
      r.ebx = words[1];
      r.ecx = words[2];
      r.edx = words[3];
      break;
    }
    default:
      // Leaves beyond the maximum return the highest basic leaf's values on Intel; zeros
      // are what a kernel probing for hypervisor or extended leaves should see here.
      break;
  }
  return r;
}

uint64_t host_tsc_hz() {
  static const uint64_t hz = [] {
    // Invariant TSC (CPUID 0x80000007 EDX bit 8): the same rate in every P-state.
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) return uint64_t{0};
    auto now_ns = [] {
      timespec ts{};
      clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
      return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
    };
    // 20 ms: a few microseconds of jitter at either end is ~100 ppm at worst.
    constexpr uint64_t kSpanNs = 20'000'000;
    const uint64_t t0 = now_ns(), c0 = __rdtsc();
    uint64_t t1 = t0, c1 = c0;
    while (t1 - t0 < kSpanNs) {
      t1 = now_ns();
      c1 = __rdtsc();
    }
    return static_cast<uint64_t>(static_cast<double>(c1 - c0) * 1e9 / static_cast<double>(t1 - t0));
  }();
  return hz;
}

}  // namespace vmm86
