// Loads a guest with vmm86's Linux loader and writes it out for trampoline.s: plan.bin
// (entry registers, GDTR, destinations) and the pieces of guest RAM the loader filled.
// Prints QEMU's -initrd argument (the module list) on stdout.
//   handoff_dump OUT_DIR MEM_MIB KERNEL INITRD CMDLINE
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "vmm/loader/linux_boot.h"

namespace {

using namespace vmm86;
using namespace vmm86::linux_boot;

bool write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: handoff_dump OUT_DIR MEM_MIB KERNEL INITRD CMDLINE\n");
    return 2;
  }
  const std::string dir = argv[1];
  auto guest = load_guest(std::stoull(argv[2]) << 20, {argv[3], argv[4], argv[5], {}});
  if (!guest) {
    std::fprintf(stderr, "handoff_dump: %s\n", guest.error().c_str());
    return 1;
  }
  const CpuState& cpu = guest->cpu;
  const BootLayout& layout = guest->layout;
  struct Piece {
    const char* name;
    uint64_t start;
    uint64_t size;
  };
  // Low memory from the GDT to the end of the command line covers boot_params too.
  const uint64_t low_end = layout.cmdline.value + std::string(argv[5]).size() + 1;
  const Piece pieces[] = {
      {"low.bin", layout.gdt.value, low_end - layout.gdt.value},
      {"kernel.bin", layout.kernel.load_addr, guest->kernel.code_bytes},
      {"initrd.bin", layout.initrd.value, layout.initrd_size},
  };
  std::vector<uint32_t> plan = {cpu.eip,
                                cpu.reg(Gpr::Esi),
                                cpu.reg(Gpr::Esp),
                                cpu.sreg(SegReg::Cs).selector,
                                cpu.sreg(SegReg::Ds).selector,
                                cpu.gdtr.limit,
                                cpu.gdtr.base};
  std::string modules = dir + "/plan.bin";
  for (const Piece& p : pieces) {
    if (p.size == 0) continue;
    const std::string path = dir + "/" + p.name;
    if (!write_file(path, guest->memory.host_ptr(GuestPhys{p.start}, p.size), p.size)) return 1;
    plan.push_back(static_cast<uint32_t>(p.start));
    modules += "," + path;
  }
  if (!write_file(dir + "/plan.bin", plan.data(), plan.size() * sizeof(uint32_t))) return 1;
  std::printf("%s\n", modules.c_str());
  return 0;
}
