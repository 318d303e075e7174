#include "vmm/arch/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vmm86 {

namespace {

constexpr uint64_t kMaxRam = 3ull << 30;
constexpr uint64_t kMaxRom = 16ull << 20;  ///< a PC's firmware flash is at most 16 MiB below 4 GiB

/// The host call that failed, with errno's text; closes `fd` (when open) after reading errno.
Error host_error(const char* what, int fd = -1) {
  Error error = make_error("{}: {}", what, std::strerror(errno));
  if (fd >= 0) close(fd);
  return error;
}

}  // namespace

Result<GuestMemory> GuestMemory::create(uint64_t ram_bytes, uint64_t rom_bytes) {
  if (ram_bytes == 0 || (ram_bytes & kPageMask) != 0 || ram_bytes > kMaxRam) {
    return make_error("guest RAM size must be a non-zero multiple of 4 KiB, at most 3 GiB");
  }
  if ((rom_bytes & kPageMask) != 0 || rom_bytes > kMaxRom) {
    return make_error("ROM size must be a multiple of 4 KiB, at most 16 MiB");
  }
  const uint64_t total = ram_bytes + rom_bytes;
  int fd = memfd_create("vmm86-guest-ram", MFD_CLOEXEC);
  if (fd < 0) return host_error("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(total)) != 0) return host_error("ftruncate of guest RAM", fd);
  void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (base == MAP_FAILED) return host_error("mmap of guest RAM", fd);
  GuestMemory mem(fd, static_cast<uint8_t*>(base), ram_bytes, total);
  mem.add_region({GuestPhys{0}, ram_bytes, PhysKind::Ram, "ram"});
  return mem;
}

Result<GuestMemory> GuestMemory::private_view(const GuestMemory& of) {
  const int fd = dup(of.fd_);
  if (fd < 0) return host_error("dup of guest RAM");
  void* base = mmap(nullptr, of.mapped_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  if (base == MAP_FAILED) return host_error("mmap of a private view of guest RAM", fd);
  GuestMemory view(fd, static_cast<uint8_t*>(base), of.ram_size_, of.mapped_size_);
  view.regions_ = of.regions_;
  view.map_generation_ = of.map_generation_;
  return view;
}

void GuestMemory::discard_writes(GuestPhys addr, uint64_t len) {
  if (!in_ram(addr, len) || len == 0) return;
  const uint64_t first = addr.value & ~uint64_t{kPageMask};
  const uint64_t end = (addr.value + len + kPageMask) & ~uint64_t{kPageMask};
  // MADV_DONTNEED drops a private mapping's copied pages: they map the file's pages again.
  (void)madvise(base_ + first, end - first, MADV_DONTNEED);
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      base_(std::exchange(other.base_, nullptr)),
      ram_size_(std::exchange(other.ram_size_, 0)),
      mapped_size_(std::exchange(other.mapped_size_, 0)),
      map_generation_(other.map_generation_),
      regions_(std::move(other.regions_)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    base_ = std::exchange(other.base_, nullptr);
    ram_size_ = std::exchange(other.ram_size_, 0);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
    map_generation_ = other.map_generation_;
    regions_ = std::move(other.regions_);
  }
  return *this;
}

GuestMemory::~GuestMemory() { release(); }

void GuestMemory::release() {
  if (base_) munmap(base_, mapped_size_);
  if (fd_ >= 0) close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

void GuestMemory::add_region(PhysRegion region) {
  regions_.push_back(std::move(region));
  ++map_generation_;
}

void GuestMemory::set_region(PhysRegion region) {
  for (auto& r : regions_) {
    if (r.name == region.name) {
      r = std::move(region);
      ++map_generation_;
      return;
    }
  }
  add_region(std::move(region));
}

void GuestMemory::sync_map_from(const GuestMemory& source) {
  if (map_generation_ == source.map_generation_) return;
  regions_ = source.regions_;
  map_generation_ = source.map_generation_;
}

const PhysRegion* GuestMemory::region_at(GuestPhys addr) const {
  for (auto it = regions_.rbegin(); it != regions_.rend(); ++it) {
    if (addr.value >= it->start.value && addr.value - it->start.value < it->size) return &*it;
  }
  return nullptr;
}

uint8_t* GuestMemory::backed_ptr(GuestPhys addr, uint64_t len) const {
  const PhysRegion* r = region_at(addr);
  if (!r || (r->kind != PhysKind::Ram && r->kind != PhysKind::Rom)) return nullptr;
  const uint64_t offset = addr.value - r->start.value;
  if (len > r->size - offset || r->backing + offset + len > mapped_size_) return nullptr;
  return base_ + r->backing + offset;
}

PhysKind GuestMemory::kind_at(GuestPhys addr) const {
  const PhysRegion* r = region_at(addr);
  return r ? r->kind : PhysKind::Unbacked;
}

bool GuestMemory::read(GuestPhys addr, void* dst, size_t len) const {
  const uint8_t* p = host_ptr(addr, len);
  if (!p) return false;
  std::memcpy(dst, p, len);
  return true;
}

bool GuestMemory::write(GuestPhys addr, const void* src, size_t len) {
  if (!in_ram(addr, len)) return false;  // never into the ROM
  uint8_t* p = host_ptr(addr, len);
  std::memcpy(p, src, len);
  return true;
}

}  // namespace vmm86
