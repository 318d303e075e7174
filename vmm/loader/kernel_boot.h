// `vmm86 run --kernel FILE`: which boot protocol the file speaks, and loading it with the
// right loader. The choice is QEMU's (x86_load_linux): a Linux setup header ("HdrS" at
// 0x202) means the Linux boot protocol even if the file also carries a Multiboot header;
// otherwise a Multiboot header in the first 8192 bytes means Multiboot; anything else goes
// to the Linux loader, whose error says what the file is.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/loader/kernel_request.h"

namespace vmm86::kernel_boot {

/// The boot protocols `--kernel` speaks.
enum class KernelFormat : uint8_t {
  LinuxBzImage,  ///< Linux/x86 boot protocol (vmm/loader/linux_boot.h)
  Multiboot,     ///< Multiboot version 1 (vmm/loader/multiboot.h)
};

/// The format of a file whose first bytes are `head` (at least its first 8192, or all of it).
[[nodiscard]] KernelFormat format_of(std::span<const uint8_t> head);

/// Opens `path` and reads enough of it to decide.
[[nodiscard]] Result<KernelFormat> detect_format(const std::string& path);

/// Smallest guest RAM that boots `request` (whole MiB); opens the files to find out.
[[nodiscard]] Result<uint64_t> required_ram_bytes(const KernelRequest& request, KernelFormat format);

/// A guest ready to run.
struct LoadedKernel {
  GuestMemory memory;
  CpuState cpu;
};

/// Creates `ram_bytes` of guest RAM and loads `request` into it with the format's loader.
[[nodiscard]] Result<LoadedKernel> load_kernel(uint64_t ram_bytes, const KernelRequest& request, KernelFormat format);

}  // namespace vmm86::kernel_boot
