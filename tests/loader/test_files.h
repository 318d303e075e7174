// Scratch files and synthetic bzImages for the loader tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "vmm/loader/boot_params.h"

namespace vmm86::test {

/// A file in the test's temporary directory, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) / (std::string("vmm86-") + (info ? info->name() : "x") + "-" +
                                                           std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Writes a little-endian value at `offset`.
template <typename T>
void poke(std::vector<uint8_t>& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

/// Reads a little-endian value at `offset`.
template <typename T>
T peek(const std::vector<uint8_t>& bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

/// What a synthetic bzImage looks like.
struct FakeKernel {
  uint16_t protocol = 0x020F;
  uint8_t setup_sects = 4;
  uint32_t code_bytes = 64 * 1024;  ///< a multiple of 16
  bool relocatable = true;
  uint32_t alignment = 0x200000;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x400000;
  uint32_t cmdline_size = 2047;
  uint8_t loadflags = vmm86::linux_boot::loadflags::LoadedHigh;
  uint16_t xloadflags = 0;
  const char* version = "6.99.0-test (fake)";
};

/// Builds a bzImage whose setup header says what `k` says; the code is a byte pattern.
inline std::vector<uint8_t> make_bzimage(const FakeKernel& k) {
  using namespace vmm86::linux_boot;
  const size_t setup = (size_t{k.setup_sects == 0 ? 4u : k.setup_sects} + 1) * 512;
  std::vector<uint8_t> image(setup + k.code_bytes, 0);
  poke<uint8_t>(image, VMM86_HDR_OFFSET(setup_sects), k.setup_sects);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(syssize), k.code_bytes / 16);
  poke<uint16_t>(image, VMM86_HDR_OFFSET(boot_flag), kBootFlag);
  // jmp short to the end of the setup header (0x26C = 0x202 + 0x6A)
  poke<uint8_t>(image, 0x200, 0xEB);
  poke<uint8_t>(image, 0x201, 0x6A);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(header), kHeaderMagic);
  poke<uint16_t>(image, VMM86_HDR_OFFSET(version), k.protocol);
  poke<uint8_t>(image, VMM86_HDR_OFFSET(loadflags), k.loadflags);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(code32_start), 0x100000);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(initrd_addr_max), 0x7FFFFFFF);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(kernel_alignment), k.alignment);
  poke<uint8_t>(image, VMM86_HDR_OFFSET(relocatable_kernel), k.relocatable ? 1 : 0);
  poke<uint16_t>(image, VMM86_HDR_OFFSET(xloadflags), k.xloadflags);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(cmdline_size), k.cmdline_size);
  poke<uint64_t>(image, VMM86_HDR_OFFSET(pref_address), k.pref_address);
  poke<uint32_t>(image, VMM86_HDR_OFFSET(init_size), k.init_size);
  if (k.version) {
    constexpr size_t kVersionAt = 0x300;
    poke<uint16_t>(image, VMM86_HDR_OFFSET(kernel_version), static_cast<uint16_t>(kVersionAt - 0x200));
    std::memcpy(image.data() + kVersionAt, k.version, std::strlen(k.version) + 1);
  }
  for (size_t i = setup; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + 3);
  return image;
}

}  // namespace vmm86::test
