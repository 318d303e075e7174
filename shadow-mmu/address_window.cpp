#include "shadow-mmu/address_window.h"

#include <sys/mman.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace vmm86 {

namespace {
// A call inside one VMA leaves up to three where there was one.
constexpr uint64_t kVmasPerCall = 2;
}  // namespace

AddressWindow::~AddressWindow() {
  if (reservation_) munmap(reservation_, kSpan + 2 * kGuard);
}

Status AddressWindow::reserve() {
  void* p = mmap(nullptr, kSpan + 2 * kGuard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return make_error("cannot reserve a 4 GiB guest window: {}", std::strerror(errno));
  reservation_ = static_cast<uint8_t*>(p);
  base_ = reservation_ + kGuard;
  // Different flags keep the guards from ever merging with the window's own PROT_NONE
  // filler, so the window's edges stay VMA boundaries and unmap_all() never splits one
  // (a split is what fails at vm.max_map_count). A guard holds nothing worth dumping.
  if (madvise(reservation_, kGuard, MADV_DONTDUMP) != 0 || madvise(base_ + kSpan, kGuard, MADV_DONTDUMP) != 0) {
    return make_error("madvise on the guest window guards: {}", std::strerror(errno));
  }
  return ok_status();
}

bool AddressWindow::map(GuestLinear linear, const GuestMemory& mem, GuestPhys phys, uint32_t pages, bool writable) {
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  if (!mem.in_ram(phys, bytes) || uint64_t{linear.value} + bytes > kSpan) return false;
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(base_ + linear.value, bytes, prot, MAP_SHARED | MAP_FIXED, mem.fd(), static_cast<off_t>(phys.value));
  ++map_calls_;
  if (p == MAP_FAILED) return false;
  vma_bound_ += kVmasPerCall;
  return true;
}

bool AddressWindow::protect(GuestLinear linear, uint32_t pages, bool writable) {
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  if (mprotect(base_ + linear.value, uint64_t{pages} << kPageShift, prot) != 0) return false;
  vma_bound_ += kVmasPerCall;
  return true;
}

bool AddressWindow::unmap(GuestLinear linear, uint64_t pages) {
  // Replacing with a fresh PROT_NONE anonymous mapping drops the memfd pages and keeps the
  // reservation, so nothing else in the process can be placed inside the window.
  const uint64_t bytes = pages << kPageShift;
  void* p = mmap(base_ + linear.value, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
                 0);
  if (p == MAP_FAILED) return false;
  vma_bound_ += kVmasPerCall;
  return true;
}

bool AddressWindow::map_identity(const GuestMemory& mem) {
  return map(GuestLinear{0}, mem, GuestPhys{0}, static_cast<uint32_t>(mem.ram_size() >> kPageShift), true);
}

bool AddressWindow::unmap_all() {
  if (!unmap(GuestLinear{0}, kSpan >> kPageShift)) {
    // munmap may leave the process just over vm.max_map_count, and then mmap refuses every
    // call, even one that would free mappings. munmap does not, and needs no split here.
    // Re-reserve at once, without MAP_FIXED: a mapping another thread placed in the gap
    // meanwhile must make this fail, not be clobbered.
    if (munmap(base_, kSpan) != 0) return false;
    void* p = mmap(base_, kSpan, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != base_) return false;
  }
  vma_bound_ = 1;
  return true;
}

uint64_t AddressWindow::recount_vmas() {
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return vma_bound_;  // keep the bound: it is safe, only pessimistic
  const auto lo = reinterpret_cast<uintptr_t>(base_);
  const uintptr_t hi = lo + kSpan;
  uint64_t count = 0;
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    uintptr_t start = 0, end = 0;
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2 && start < hi && end > lo) ++count;
    // A line longer than the buffer (a long path) continues in the next fgets: skip it.
    while (!std::strchr(line, '\n') && std::fgets(line, sizeof line, f)) {
    }
  }
  std::fclose(f);
  vma_bound_ = count;
  return count;
}

}  // namespace vmm86
