// Hand-built Multiboot kernels for the loader and command-line tests: a valid a.out-kludge
// image and a valid ELF32 image, each with field offsets so a test can break one thing.
// The code at the entry writes kExitValue to port 0xF4 (--debug-exit) and halts.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/loader/test_files.h"

namespace vmm86::test {

/// mov al, kExitValue; out 0xF4, al; cli; hlt; jmp $-2
inline constexpr uint8_t kExitValue = 0x2A;
inline const std::vector<uint8_t> kExitCode = {0xB0, kExitValue, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFC};

inline constexpr uint32_t kMbMagic = 0x1BADB002;
inline constexpr uint32_t kLoadAddr = 0x100000;

/// Writes a Multiboot header (magic, flags, checksum) at `offset`.
inline void put_multiboot_header(std::vector<uint8_t>& image, size_t offset, uint32_t flags) {
  poke<uint32_t>(image, offset, kMbMagic);
  poke<uint32_t>(image, offset + 4, flags);
  poke<uint32_t>(image, offset + 8, 0u - kMbMagic - flags);
}

// ---- The a.out kludge: flags 0x10003, loaded whole at 1 MiB with a bss after it ----

struct AoutLayout {
  static constexpr size_t kHeader = 0x40;  ///< file offset of the Multiboot header
  static constexpr size_t kHeaderAddr = kHeader + 12;
  static constexpr size_t kLoadAddrField = kHeader + 16;
  static constexpr size_t kLoadEnd = kHeader + 20;
  static constexpr size_t kBssEnd = kHeader + 24;
  static constexpr size_t kEntry = kHeader + 28;
  static constexpr size_t kCode = 0x80;
  static constexpr size_t kFileBytes = 0x2000;
  static constexpr uint32_t kBssEndAddr = kLoadAddr + 0x4000;
  static constexpr uint32_t kFlags = 0x00010003;
};

/// An a.out-kludge kernel: the file (0x2000 bytes, a byte pattern) at 1 MiB, bss to
/// 1 MiB + 0x4000, entry at the code.
inline std::vector<uint8_t> make_aout_kernel() {
  using L = AoutLayout;
  std::vector<uint8_t> image(L::kFileBytes);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 13 + 5);
  put_multiboot_header(image, L::kHeader, L::kFlags);
  poke<uint32_t>(image, L::kHeaderAddr, kLoadAddr + L::kHeader);
  poke<uint32_t>(image, L::kLoadAddrField, kLoadAddr);
  poke<uint32_t>(image, L::kLoadEnd, 0);  // the whole file
  poke<uint32_t>(image, L::kBssEnd, L::kBssEndAddr);
  poke<uint32_t>(image, L::kEntry, kLoadAddr + L::kCode);
  std::memcpy(image.data() + L::kCode, kExitCode.data(), kExitCode.size());
  return image;
}

// ---- ELF32: one PT_LOAD at p_paddr 1 MiB, p_vaddr 0xC0100000, entry virtual ----

struct ElfLayout {
  static constexpr size_t kPhoff = 52;
  static constexpr size_t kEntryField = 24;
  static constexpr size_t kPhoffField = 28;
  static constexpr size_t kPhentsizeField = 42;
  static constexpr size_t kPhnumField = 44;
  static constexpr size_t kMachineField = 18;
  static constexpr size_t kTypeField = 16;
  // Fields of the program header at kPhoff.
  static constexpr size_t kPType = kPhoff + 0;
  static constexpr size_t kPOffset = kPhoff + 4;
  static constexpr size_t kPVaddr = kPhoff + 8;
  static constexpr size_t kPPaddr = kPhoff + 12;
  static constexpr size_t kPFilesz = kPhoff + 16;
  static constexpr size_t kPMemsz = kPhoff + 20;
  static constexpr size_t kHeader = 0xC0;  ///< the Multiboot header, after room for 3 program headers
  static constexpr size_t kCode = 0x100;
  static constexpr size_t kFileBytes = 0x1000;
  static constexpr uint32_t kMemBytes = 0x3000;
  static constexpr uint32_t kVirtOffset = 0xC0000000;
  static constexpr uint32_t kFlags = 0x00000003;
};

/// An ELF kernel: the whole file is the segment (so its bytes at 1 MiB equal the file's),
/// 0x2000 bytes of bss after it.
inline std::vector<uint8_t> make_elf_kernel() {
  using L = ElfLayout;
  std::vector<uint8_t> image(L::kFileBytes);
  for (size_t i = L::kCode; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + 1);
  const uint8_t ident[] = {0x7F, 'E', 'L', 'F', 1, 1, 1, 0};
  std::memcpy(image.data(), ident, sizeof ident);
  poke<uint16_t>(image, L::kTypeField, 2);     // ET_EXEC
  poke<uint16_t>(image, L::kMachineField, 3);  // EM_386
  poke<uint32_t>(image, 20, 1);                // e_version
  poke<uint32_t>(image, L::kEntryField, L::kVirtOffset + kLoadAddr + L::kCode);
  poke<uint32_t>(image, L::kPhoffField, L::kPhoff);
  poke<uint16_t>(image, 40, 52);  // e_ehsize
  poke<uint16_t>(image, L::kPhentsizeField, 32);
  poke<uint16_t>(image, L::kPhnumField, 1);
  poke<uint32_t>(image, L::kPType, 1);  // PT_LOAD
  poke<uint32_t>(image, L::kPOffset, 0);
  poke<uint32_t>(image, L::kPVaddr, L::kVirtOffset + kLoadAddr);
  poke<uint32_t>(image, L::kPPaddr, kLoadAddr);
  poke<uint32_t>(image, L::kPFilesz, L::kFileBytes);
  poke<uint32_t>(image, L::kPMemsz, L::kMemBytes);
  poke<uint32_t>(image, L::kPhoff + 24, 7);  // p_flags: RWX
  put_multiboot_header(image, L::kHeader, L::kFlags);
  std::memcpy(image.data() + L::kCode, kExitCode.data(), kExitCode.size());
  return image;
}

}  // namespace vmm86::test
