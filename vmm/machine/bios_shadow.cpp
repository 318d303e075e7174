#include "vmm/machine/bios_shadow.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "vmm/loader/firmware.h"

namespace vmm86 {

BiosShadow::BiosShadow(GuestMemory& mem) : mem_(mem), rom_(kEnd - kStart, 0), saved_(kEnd - kStart, 0) {
  VMM86_CHECK(mem.ram_size() >= kEnd, "the BIOS shadow needs RAM up to 1 MiB");
  const std::span<const uint8_t> rom = mem.rom_area();
  const size_t isa = std::min<size_t>(rom.size(), firmware::kIsaBiosBytes);
  std::memcpy(rom_.data() + rom_.size() - isa, rom.data() + rom.size() - isa, isa);
  // The pieces start as plain RAM (pieces_' default); the PAM reset state turns them to ROM.
  (void)set(kStart, kEnd - kStart, false, false);
}

void BiosShadow::show_rom(size_t piece) {
  uint8_t* ram = mem_.ram().data() + kStart + piece * kPiece;
  std::memcpy(saved_.data() + piece * kPiece, ram, kPiece);
  std::memcpy(ram, rom_.data() + piece * kPiece, kPiece);
}

void BiosShadow::show_ram(size_t piece) {
  std::memcpy(mem_.ram().data() + kStart + piece * kPiece, saved_.data() + piece * kPiece, kPiece);
}

bool BiosShadow::set(uint32_t base, uint32_t size, bool read_ram, bool write_ram) {
  VMM86_CHECK(base >= kStart && size <= kEnd - base && base % kPiece == 0 && size % kPiece == 0,
              "PAM segment outside C0000-FFFFF");
  bool changed = false;
  for (uint32_t addr = base; addr < base + size; addr += kPiece) {
    const size_t piece = piece_of(addr);
    Piece& p = pieces_[piece];
    if (p.read_ram == read_ram && p.write_ram == write_ram) continue;
    if (p.read_ram && !read_ram) show_rom(piece);
    if (!p.read_ram && read_ram) show_ram(piece);
    p = {read_ram, write_ram};
    const PhysKind kind = read_ram && write_ram ? PhysKind::Ram : PhysKind::Rom;
    mem_.set_region({GuestPhys{addr}, kPiece, kind, fmt::format("shadow-{:05x}", addr), addr});
    changed = true;
  }
  return changed;
}

}  // namespace vmm86
