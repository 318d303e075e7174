// Guest physical memory: one memfd holding all guest RAM (so the shadow MMU can map any
// frame into its windows) and after it the firmware ROM, mapped once into the monitor for
// its own accesses, plus a physical map that says what each guest-physical range is (RAM,
// ROM, MMIO hole) and where in the memfd a RAM or ROM range lives. Guest RAM sits at memfd
// offset == guest-physical address; the ROM is placed (its `backing`) wherever the map
// says, e.g. just below 4 GiB, where a PC's firmware is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/arch/types.h"

namespace vmm86 {

/// What a guest-physical range is backed by.
enum class PhysKind : uint8_t {
  Ram,       ///< read/write memory in the memfd
  Rom,       ///< in the memfd, guest writes are ignored
  Mmio,      ///< emulated by a device; never mapped
  Unbacked,  ///< nothing there: reads return all-ones, writes are dropped
};

struct PhysRegion {
  GuestPhys start;
  uint64_t size = 0;
  PhysKind kind = PhysKind::Unbacked;
  std::string name;
  /// Ram/Rom: memfd offset of `start`'s byte. Guest RAM's own ranges have backing == start.
  uint64_t backing = 0;
};

class GuestMemory {
 public:
  /// Creates `ram_bytes` of guest RAM (a multiple of 4 KiB, at most 3 GiB) in a memfd, and
  /// `rom_bytes` (a multiple of 4 KiB) of ROM after it (rom_area(); map it with add_region).
  static Result<GuestMemory> create(uint64_t ram_bytes, uint64_t rom_bytes = 0);
  /// A copy-on-write view of `of`: reads see its RAM as it is now and later, writes stay
  /// private to the view (until discard_writes). The same memory map. For running code
  /// "on the side" (the block verifier) without touching the guest.
  static Result<GuestMemory> private_view(const GuestMemory& of);
  /// In a private view: forgets the view's own writes to [addr, addr + len) (page-wise),
  /// so it reads the RAM it views again.
  void discard_writes(GuestPhys addr, uint64_t len);

  GuestMemory(GuestMemory&& other) noexcept;
  GuestMemory& operator=(GuestMemory&& other) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  [[nodiscard]] uint64_t ram_size() const { return ram_size_; }
  /// The memfd (for the shadow MMU's window mappings).
  [[nodiscard]] int fd() const { return fd_; }

  /// Adds a region to the physical map; later regions take precedence over earlier ones.
  void add_region(PhysRegion region);
  /// Replaces the region of the same name (keeping its precedence), or adds it.
  void set_region(PhysRegion region);
  /// Changes with every add_region/set_region: a private view compares it with its
  /// source's to know when to take the source's map again (sync_map_from).
  [[nodiscard]] uint64_t map_generation() const { return map_generation_; }
  /// A private view's physical map made the same as `source`'s (the firmware's shadow-RAM
  /// control changes it while the guest runs).
  void sync_map_from(const GuestMemory& source);
  /// The ROM after guest RAM in the memfd (empty without one), for the firmware loader.
  [[nodiscard]] std::span<uint8_t> rom_area() const {
    return {base_ + ram_size_, static_cast<size_t>(mapped_size_ - ram_size_)};
  }
  /// The region that holds `addr`; Unbacked past everything mapped.
  [[nodiscard]] PhysKind kind_at(GuestPhys addr) const;
  [[nodiscard]] const std::vector<PhysRegion>& regions() const { return regions_; }

  /// True when [addr, addr+len) lies entirely inside guest RAM.
  [[nodiscard]] bool in_ram(GuestPhys addr, uint64_t len) const {
    return addr.value <= ram_size_ && len <= ram_size_ - addr.value;
  }
  /// Host pointer to guest RAM or ROM at `addr` for `len` bytes (all in one region), or
  /// nullptr if that is not memory.
  [[nodiscard]] uint8_t* host_ptr(GuestPhys addr, uint64_t len = 1) const {
    return in_ram(addr, len) ? base_ + addr.value : backed_ptr(addr, len);
  }
  /// All of RAM as bytes (for loaders and tests).
  [[nodiscard]] std::span<uint8_t> ram() const { return {base_, static_cast<size_t>(ram_size_)}; }

  /// Checked copies; return false when the range is not entirely RAM (read: or one ROM).
  [[nodiscard]] bool read(GuestPhys addr, void* dst, size_t len) const;
  [[nodiscard]] bool write(GuestPhys addr, const void* src, size_t len);

 private:
  GuestMemory(int fd, uint8_t* base, uint64_t ram_size, uint64_t mapped_size)
      : fd_(fd), base_(base), ram_size_(ram_size), mapped_size_(mapped_size) {}
  void release();
  /// The region that holds `addr` (the latest added wins), or nullptr.
  [[nodiscard]] const PhysRegion* region_at(GuestPhys addr) const;
  /// host_ptr outside guest RAM: a ROM region's bytes.
  [[nodiscard]] uint8_t* backed_ptr(GuestPhys addr, uint64_t len) const;

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t ram_size_ = 0;
  uint64_t mapped_size_ = 0;  ///< RAM and the ROM after it
  uint64_t map_generation_ = 0;
  std::vector<PhysRegion> regions_;
};

}  // namespace vmm86
