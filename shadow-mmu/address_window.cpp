#include "shadow-mmu/address_window.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace vmm86 {

AddressWindow::~AddressWindow() {
  if (reservation_) munmap(reservation_, kSpan + 2 * kGuard);
}

bool AddressWindow::reserve(std::string* error) {
  void* p = mmap(nullptr, kSpan + 2 * kGuard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    if (error) *error = std::string("cannot reserve a 4 GiB guest window: ") + std::strerror(errno);
    return false;
  }
  reservation_ = static_cast<uint8_t*>(p);
  base_ = reservation_ + kGuard;
  return true;
}

bool AddressWindow::map(GuestLinear linear, const GuestMemory& mem, GuestPhys phys, uint32_t pages, bool writable) {
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  if (!mem.in_ram(phys, bytes) || uint64_t{linear.value} + bytes > kSpan) return false;
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(base_ + linear.value, bytes, prot, MAP_SHARED | MAP_FIXED, mem.fd(), static_cast<off_t>(phys.value));
  ++map_calls_;
  return p != MAP_FAILED;
}

bool AddressWindow::protect(GuestLinear linear, uint32_t pages, bool writable) {
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  return mprotect(base_ + linear.value, uint64_t{pages} << kPageShift, prot) == 0;
}

bool AddressWindow::unmap(GuestLinear linear, uint64_t pages) {
  // Replacing with a fresh PROT_NONE anonymous mapping drops the memfd pages and keeps the
  // reservation, so nothing else in the process can be placed inside the window.
  const uint64_t bytes = pages << kPageShift;
  void* p = mmap(base_ + linear.value, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p != MAP_FAILED;
}

bool AddressWindow::map_identity(const GuestMemory& mem) {
  return map(GuestLinear{0}, mem, GuestPhys{0}, static_cast<uint32_t>(mem.ram_size() >> kPageShift), true);
}

void AddressWindow::unmap_all() { (void)unmap(GuestLinear{0}, kSpan >> kPageShift); }

}  // namespace vmm86
