// Multiboot kernel images (vmm/loader/multiboot_image.h): finding the header, the flags a
// loader must refuse, and the a.out-kludge and ELF32 layouts, each refusal in one line.
#include "vmm/loader/multiboot_image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "tests/loader/multiboot_images.h"
#include "tests/loader/test_files.h"

namespace vmm86::multiboot {
namespace {

using test::AoutLayout;
using test::ElfLayout;
using test::kLoadAddr;
using test::make_aout_kernel;
using test::make_elf_kernel;
using test::poke;
using test::put_multiboot_header;

/// parse_kernel over the bytes of a file, as the loader would read them.
Result<KernelImage> parse_bytes(const std::vector<uint8_t>& file) {
  const std::span<const uint8_t> head(file.data(), std::min<size_t>(file.size(), kSearchBytes));
  auto header = find_header(head);
  if (!header) return std::move(header).take_error();
  if (!*header) return make_error("no Multiboot header");
  const ImageSource source{file.size(), head, [&file](uint64_t offset, std::span<uint8_t> dst) -> Status {
                             if (offset + dst.size() > file.size()) return make_error("read past the end");
                             std::memcpy(dst.data(), file.data() + offset, dst.size());
                             return ok_status();
                           }};
  return parse_kernel(source, **header);
}

void expect_refused(const std::vector<uint8_t>& file, const std::string& needle) {
  auto image = parse_bytes(file);
  ASSERT_FALSE(image.ok()) << "accepted, expected an error containing: " << needle;
  EXPECT_NE(image.error().find(needle), std::string::npos) << "error was: " << image.error();
  EXPECT_EQ(image.error().find('\n'), std::string::npos) << image.error();
}

/// A valid image with one field changed to `value` (`width` bytes), and what its refusal says.
struct BrokenField {
  size_t field;
  uint32_t value;
  const char* needle;
  size_t width = 4;
};

void expect_each_refused(const std::vector<uint8_t>& valid, std::span<const BrokenField> cases) {
  for (const BrokenField& c : cases) {
    std::vector<uint8_t> file = valid;
    if (c.width == 2) {
      poke<uint16_t>(file, c.field, static_cast<uint16_t>(c.value));
    } else {
      poke<uint32_t>(file, c.field, c.value);
    }
    SCOPED_TRACE(c.needle);
    expect_refused(file, c.needle);
  }
}

// ---- The header ---------------------------------------------------------------------

TEST(MultibootHeader, FoundAlignedWithItsChecksum) {
  std::vector<uint8_t> file(0x3000, 0);
  put_multiboot_header(file, 0x1234 & ~3u, 0x3);
  auto header = find_header(std::span<const uint8_t>(file).first(kSearchBytes));
  ASSERT_TRUE(header.ok()) << header.error();
  ASSERT_TRUE(header->has_value());
  EXPECT_EQ((*header)->offset, 0x1234u & ~3u);
  EXPECT_EQ((*header)->flags, 0x3u);
}

TEST(MultibootHeader, NotFoundWhenMisalignedBadChecksumOrTooFar) {
  std::vector<uint8_t> misaligned(0x1000, 0);
  put_multiboot_header(misaligned, 0x102, 0);
  std::vector<uint8_t> bad_checksum(0x1000, 0);
  put_multiboot_header(bad_checksum, 0x100, 0);
  poke<uint32_t>(bad_checksum, 0x108, 0x12345678);
  std::vector<uint8_t> too_far(0x3000, 0);
  put_multiboot_header(too_far, kSearchBytes, 0);  // the first byte after the searched 8 KiB
  for (const auto* file : {&misaligned, &bad_checksum, &too_far}) {
    auto header = find_header(std::span<const uint8_t>(*file).first(std::min<size_t>(file->size(), kSearchBytes)));
    ASSERT_TRUE(header.ok()) << header.error();
    EXPECT_FALSE(header->has_value());
  }
}

TEST(MultibootHeader, AddressFieldsMustFitInTheFirst8KiB) {
  std::vector<uint8_t> file(0x3000, 0);
  put_multiboot_header(file, kSearchBytes - 16, header_flags::AoutKludge);  // 32 bytes from 8176
  auto header = find_header(std::span<const uint8_t>(file).first(kSearchBytes));
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.error().find("runs past the first 8192 bytes"), std::string::npos) << header.error();

  std::vector<uint8_t> short_file(0x40, 0);
  put_multiboot_header(short_file, 0x30, header_flags::AoutKludge);
  expect_refused(short_file, "runs past the end of the file");
}

TEST(MultibootHeader, RequiredFlagsVmm86CannotMeetAreRefused) {
  EXPECT_TRUE(check_flags(0x3).ok());
  EXPECT_TRUE(check_flags(header_flags::AoutKludge | 0x3).ok());
  EXPECT_TRUE(check_flags(1u << 20).ok()) << "bits 16-31 are optional: unknown ones are ignored";
  const Status video = check_flags(header_flags::VideoMode | 0x3);
  ASSERT_FALSE(video.ok());
  EXPECT_NE(video.error().find("video mode (flags bit 2)"), std::string::npos) << video.error();
  const Status unknown = check_flags((1u << 5) | (1u << 15));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("bits 5, 15"), std::string::npos) << unknown.error();

  std::vector<uint8_t> file = make_aout_kernel();
  put_multiboot_header(file, AoutLayout::kHeader, AoutLayout::kFlags | header_flags::VideoMode);
  expect_refused(file, "video mode");
}

// ---- The a.out kludge -----------------------------------------------------------------

TEST(MultibootAout, LoadsTheFileWithItsBss) {
  auto image = parse_bytes(make_aout_kernel());
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_TRUE(image->aout_kludge);
  ASSERT_EQ(image->segments.size(), 1u);
  const Segment& seg = image->segments[0];
  EXPECT_EQ(seg.phys, kLoadAddr);
  EXPECT_EQ(seg.file_offset, 0u);
  EXPECT_EQ(seg.file_size, AoutLayout::kFileBytes);
  EXPECT_EQ(seg.end(), AoutLayout::kBssEndAddr);
  EXPECT_EQ(image->entry, kLoadAddr + AoutLayout::kCode);
  EXPECT_EQ(image->start, kLoadAddr);
  EXPECT_EQ(image->end, AoutLayout::kBssEndAddr);
}

TEST(MultibootAout, TextMayStartAfterTheFileStartAndEndBeforeItsEnd) {
  std::vector<uint8_t> file = make_aout_kernel();
  // The header is 0x40 into the file; load_addr only 0x20 before header_addr: the text
  // starts at file offset 0x20. load_end_addr stops 0x100 bytes before the file's end.
  poke<uint32_t>(file, AoutLayout::kLoadAddrField, kLoadAddr + 0x20);
  poke<uint32_t>(file, AoutLayout::kLoadEnd, kLoadAddr + AoutLayout::kFileBytes - 0x100);
  poke<uint32_t>(file, AoutLayout::kBssEnd, 0);  // no bss
  auto image = parse_bytes(file);
  ASSERT_TRUE(image.ok()) << image.error();
  const Segment& seg = image->segments[0];
  EXPECT_EQ(seg.phys, kLoadAddr + 0x20);
  EXPECT_EQ(seg.file_offset, 0x20u);
  EXPECT_EQ(seg.file_size, AoutLayout::kFileBytes - 0x120);
  EXPECT_EQ(seg.mem_size, seg.file_size);
}

TEST(MultibootAout, InconsistentAddressFieldsAreRefused) {
  const BrokenField cases[] = {
      {AoutLayout::kHeaderAddr, kLoadAddr - 4, "header_addr 0xffffc is below load_addr"},
      {AoutLayout::kLoadAddrField, kLoadAddr - 0x100, "header is only 0x40 bytes into the file"},
      {AoutLayout::kLoadEnd, kLoadAddr - 1, "load_end_addr 0xfffff is below load_addr"},
      {AoutLayout::kLoadEnd, kLoadAddr + AoutLayout::kFileBytes + 1, "truncated"},
      {AoutLayout::kBssEnd, kLoadAddr + AoutLayout::kFileBytes - 1, "bss_end_addr"},
      {AoutLayout::kEntry, kLoadAddr - 1, "entry point 0xfffff is outside the loaded image"},
      {AoutLayout::kEntry, kLoadAddr + AoutLayout::kFileBytes, "outside the loaded image"},  // in the bss
  };
  expect_each_refused(make_aout_kernel(), cases);
}

TEST(MultibootAout, NothingToLoadOrPast4GiBIsRefused) {
  std::vector<uint8_t> empty = make_aout_kernel();
  poke<uint32_t>(empty, AoutLayout::kLoadEnd, kLoadAddr);
  poke<uint32_t>(empty, AoutLayout::kBssEnd, 0);
  expect_refused(empty, "loads nothing");

  std::vector<uint8_t> high = make_aout_kernel();
  poke<uint32_t>(high, AoutLayout::kHeaderAddr, 0xFFFFF040);
  poke<uint32_t>(high, AoutLayout::kLoadAddrField, 0xFFFFF000);
  poke<uint32_t>(high, AoutLayout::kBssEnd, 0);
  poke<uint32_t>(high, AoutLayout::kEntry, 0xFFFFF080);
  expect_refused(high, "runs past 4 GiB");
}

// ---- ELF32 ----------------------------------------------------------------------------

TEST(MultibootElf, LoadsAtThePhysicalAddressAndMovesTheEntryThere) {
  auto image = parse_bytes(make_elf_kernel());
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_FALSE(image->aout_kludge);
  ASSERT_EQ(image->segments.size(), 1u);
  EXPECT_EQ(image->segments[0].phys, kLoadAddr);
  EXPECT_EQ(image->segments[0].file_size, ElfLayout::kFileBytes);
  EXPECT_EQ(image->segments[0].mem_size, ElfLayout::kMemBytes);
  EXPECT_EQ(image->entry, kLoadAddr + ElfLayout::kCode) << "e_entry is virtual: it moves with its segment";
}

TEST(MultibootElf, PhysicalEntryAndSeveralSegments) {
  std::vector<uint8_t> file = make_elf_kernel();
  // A second program header: file bytes 0x800-0xA00 at 4 MiB, and a PT_NOTE to skip.
  std::vector<uint8_t> more(ElfLayout::kFileBytes + 64, 0);
  std::copy(file.begin(), file.end(), more.begin());
  poke<uint16_t>(more, ElfLayout::kPhnumField, 3);
  poke<uint32_t>(more, ElfLayout::kPFilesz, 0x800);
  poke<uint32_t>(more, ElfLayout::kPMemsz, 0x800);
  const size_t second = ElfLayout::kPhoff + 32;
  poke<uint32_t>(more, second + 0, 1);
  poke<uint32_t>(more, second + 4, 0x800);
  poke<uint32_t>(more, second + 8, 0x400000);
  poke<uint32_t>(more, second + 12, 0x400000);
  poke<uint32_t>(more, second + 16, 0x200);
  poke<uint32_t>(more, second + 20, 0x1000);
  poke<uint32_t>(more, second + 32, 4);                                        // PT_NOTE
  poke<uint32_t>(more, ElfLayout::kEntryField, kLoadAddr + ElfLayout::kCode);  // already physical
  auto image = parse_bytes(more);
  ASSERT_TRUE(image.ok()) << image.error();
  ASSERT_EQ(image->segments.size(), 2u);
  EXPECT_EQ(image->segments[1].phys, 0x400000u);
  EXPECT_EQ(image->segments[1].file_offset, 0x800u);
  EXPECT_EQ(image->entry, kLoadAddr + ElfLayout::kCode);
  EXPECT_EQ(image->start, kLoadAddr);
  EXPECT_EQ(image->end, 0x401000u);
}

TEST(MultibootElf, WhatIsNotA32BitI386ExecutableIsRefused) {
  std::vector<uint8_t> not_elf = make_elf_kernel();
  not_elf[1] = 'X';
  expect_refused(not_elf, "the file is not ELF");
  std::vector<uint8_t> elf64 = make_elf_kernel();
  elf64[4] = 2;  // ELFCLASS64
  expect_refused(elf64, "a 64-bit ELF file");
  std::vector<uint8_t> big_endian = make_elf_kernel();
  big_endian[5] = 2;
  expect_refused(big_endian, "not a 32-bit little-endian ELF file");
  // The ELF header itself cut short: 48 bytes with the Multiboot header inside them.
  std::vector<uint8_t> stub(48, 0);
  std::copy_n(make_elf_kernel().begin(), 16, stub.begin());
  put_multiboot_header(stub, 0x20, ElfLayout::kFlags);
  expect_refused(stub, "truncated ELF header");
}

TEST(MultibootElf, BrokenProgramHeadersAreRefused) {
  const BrokenField cases[] = {
      {ElfLayout::kPhnumField, 0, "no program headers", 2},
      {ElfLayout::kPhentsizeField, 16, "program header size 16", 2},
      {ElfLayout::kPhoffField, ElfLayout::kFileBytes - 8, "truncated: the ELF program headers"},
      {ElfLayout::kPFilesz, ElfLayout::kMemBytes + 1, "larger than its memory size"},
      {ElfLayout::kPOffset, 0x800, "truncated: ELF segment 0"},
      {ElfLayout::kPPaddr, 0xFFFFF000, "runs past 4 GiB"},
      {ElfLayout::kPType, 4, "no loadable segment"},
      {ElfLayout::kPMemsz, 0, "no loadable segment"},
      {ElfLayout::kEntryField, 0x200000, "entry point 0x200000 is outside the loaded image"},
      {ElfLayout::kEntryField, 0xC0100000 + ElfLayout::kFileBytes, "outside the loaded image"},  // its bss
      {ElfLayout::kMachineField, 40, "machine 40, not i386", 2},
      {ElfLayout::kTypeField, 1, "not an executable", 2},
  };
  expect_each_refused(make_elf_kernel(), cases);
}

TEST(MultibootElf, OverlappingSegmentsAreRefused) {
  std::vector<uint8_t> file = make_elf_kernel();
  poke<uint16_t>(file, ElfLayout::kPhnumField, 2);
  const size_t second = ElfLayout::kPhoff + 32;  // inside the file, before the Multiboot header
  poke<uint32_t>(file, second + 0, 1);
  poke<uint32_t>(file, second + 4, 0);
  poke<uint32_t>(file, second + 8, kLoadAddr + 0x2000);
  poke<uint32_t>(file, second + 12, kLoadAddr + 0x2000);  // inside the first one's bss
  poke<uint32_t>(file, second + 16, 0x10);
  poke<uint32_t>(file, second + 20, 0x10);
  expect_refused(file, "segments 0x100000-0x103000 and 0x102000-0x102010 overlap");
}

}  // namespace
}  // namespace vmm86::multiboot
