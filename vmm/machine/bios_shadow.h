// Shadow RAM below 1 MiB as the i440FX's PAM registers control it (82441FX datasheet,
// PAM0-PAM6): each segment of C0000-FFFFF reads either the ROM or the RAM behind it, and
// writes either reach that RAM or are dropped. SeaBIOS turns the segments to RAM, copies
// itself there from the 4 GiB alias, then makes them read-only.
//
// Guest RAM stays one memfd that the shadow MMU maps at guest-physical offsets, so the
// ROM is not mapped in beside it: while a segment reads ROM, the RAM page holds the ROM's
// bytes and the RAM's own bytes wait in a side buffer, swapped back when RAM becomes
// readable again. Writes are dropped wherever RAM is not writable (the region is Rom).
// One approximation: write-only mode (reads ROM, writes RAM) drops the writes too; no
// firmware we know of uses it. After set() returns true the caller makes every cache of
// guest memory forget the segment (windows, translated code, the interpreter's TLB).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "vmm/arch/guest_memory.h"

namespace vmm86 {

class BiosShadow {
 public:
  static constexpr uint32_t kStart = 0xC0000;
  static constexpr uint32_t kEnd = 0x100000;
  static constexpr uint32_t kPiece = 0x4000;  ///< the smallest PAM segment

  /// Takes the ROM's last min(size, 128 KiB) as the ISA BIOS at E0000-FFFFF (C0000-DFFFF
  /// read zeros, as QEMU's option-ROM area does), and starts every segment reading ROM with
  /// writes dropped: the PAM registers' reset state. `mem` holds at least 1 MiB of RAM.
  explicit BiosShadow(GuestMemory& mem);

  /// A PAM segment [base, base + size) (a multiple of 16 KiB in C0000-FFFFF) now reads
  /// RAM when `read_ram`, writes RAM when `write_ram`. Returns true when the guest's view
  /// of memory changed.
  bool set(uint32_t base, uint32_t size, bool read_ram, bool write_ram);

  [[nodiscard]] bool reads_ram(uint32_t addr) const { return pieces_[piece_of(addr)].read_ram; }
  [[nodiscard]] bool writes_ram(uint32_t addr) const { return pieces_[piece_of(addr)].write_ram; }

 private:
  struct Piece {
    bool read_ram = true;
    bool write_ram = true;
  };
  static constexpr size_t kPieces = (kEnd - kStart) / kPiece;
  static size_t piece_of(uint32_t addr) { return (addr - kStart) / kPiece; }
  void show_rom(size_t piece);
  void show_ram(size_t piece);

  GuestMemory& mem_;
  std::vector<uint8_t> rom_;    ///< what reads see in ROM mode, for [kStart, kEnd)
  std::vector<uint8_t> saved_;  ///< the RAM's own bytes while ROM is shown
  std::array<Piece, kPieces> pieces_{};
};

}  // namespace vmm86
