// The architectural state of one IA-32 vCPU, shared by every engine (interpreter,
// translator, loaders). Plain standard-layout data: the translator addresses fields by
// offset from R15, so keep it free of virtual functions and owning members.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vmm86 {

/// General-purpose register numbers in ModRM encoding order.
enum class Gpr : uint8_t { Eax, Ecx, Edx, Ebx, Esp, Ebp, Esi, Edi };
inline constexpr int kNumGprs = 8;

/// Segment registers in the encoding order of mov Sreg (ES CS SS DS FS GS).
enum class SegReg : uint8_t { Es, Cs, Ss, Ds, Fs, Gs };
inline constexpr int kNumSegRegs = 6;

/// EFLAGS bits.
namespace flags {
inline constexpr uint32_t CF = 1u << 0;
inline constexpr uint32_t Reserved1 = 1u << 1;  ///< always reads as 1
inline constexpr uint32_t PF = 1u << 2;
inline constexpr uint32_t AF = 1u << 4;
inline constexpr uint32_t ZF = 1u << 6;
inline constexpr uint32_t SF = 1u << 7;
inline constexpr uint32_t TF = 1u << 8;
inline constexpr uint32_t IF = 1u << 9;
inline constexpr uint32_t DF = 1u << 10;
inline constexpr uint32_t OF = 1u << 11;
inline constexpr uint32_t IOPL = 3u << 12;
inline constexpr uint32_t NT = 1u << 14;
inline constexpr uint32_t RF = 1u << 16;
inline constexpr uint32_t VM = 1u << 17;
inline constexpr uint32_t AC = 1u << 18;
inline constexpr uint32_t VIF = 1u << 19;
inline constexpr uint32_t VIP = 1u << 20;
inline constexpr uint32_t ID = 1u << 21;
/// The six arithmetic status flags.
inline constexpr uint32_t Status = CF | PF | AF | ZF | SF | OF;
/// Bits software can change on a P6 (others are reserved).
inline constexpr uint32_t Writable = Status | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;
}  // namespace flags

namespace cr0 {
inline constexpr uint32_t PE = 1u << 0;
inline constexpr uint32_t MP = 1u << 1;
inline constexpr uint32_t EM = 1u << 2;
inline constexpr uint32_t TS = 1u << 3;
inline constexpr uint32_t ET = 1u << 4;
inline constexpr uint32_t NE = 1u << 5;
inline constexpr uint32_t WP = 1u << 16;
inline constexpr uint32_t AM = 1u << 18;
inline constexpr uint32_t NW = 1u << 29;
inline constexpr uint32_t CD = 1u << 30;
inline constexpr uint32_t PG = 1u << 31;
}  // namespace cr0

namespace cr4 {
inline constexpr uint32_t VME = 1u << 0;
inline constexpr uint32_t PVI = 1u << 1;
inline constexpr uint32_t TSD = 1u << 2;
inline constexpr uint32_t DE = 1u << 3;
inline constexpr uint32_t PSE = 1u << 4;
inline constexpr uint32_t PAE = 1u << 5;
inline constexpr uint32_t MCE = 1u << 6;
inline constexpr uint32_t PGE = 1u << 7;
inline constexpr uint32_t PCE = 1u << 8;
inline constexpr uint32_t OSFXSR = 1u << 9;
inline constexpr uint32_t OSXMMEXCPT = 1u << 10;
}  // namespace cr4

/// The hidden part of a segment register (the descriptor cache), in unpacked form.
struct SegmentCache {
  uint16_t selector = 0;
  uint32_t base = 0;
  uint32_t limit = 0xFFFF;  ///< byte-granular effective limit (G already applied)
  /// Descriptor attribute bits 40..47 and 52..55 packed as in VMX: type(4) S(1) DPL(2)
  /// P(1) | AVL(1) L(1) D/B(1) G(1) at bits 12..15.
  uint16_t attr = 0x0093;  ///< present, writable data, accessed (real-mode default)

  [[nodiscard]] constexpr uint8_t type() const { return attr & 0xF; }
  [[nodiscard]] constexpr bool is_system() const { return (attr & 0x10) == 0; }
  [[nodiscard]] constexpr uint8_t dpl() const { return (attr >> 5) & 3; }
  [[nodiscard]] constexpr bool present() const { return (attr & 0x80) != 0; }
  [[nodiscard]] constexpr bool default_big() const { return (attr & 0x4000) != 0; }  ///< D/B
  [[nodiscard]] constexpr bool granularity() const { return (attr & 0x8000) != 0; }
  [[nodiscard]] constexpr bool is_code() const { return !is_system() && (attr & 0x8) != 0; }
  /// Expand-down data segment.
  [[nodiscard]] constexpr bool expand_down() const { return !is_system() && (attr & 0xC) == 0x4; }
};

/// GDTR / IDTR.
struct DescriptorTableReg {
  uint32_t base = 0;
  uint16_t limit = 0xFFFF;
};

/// The model-specific registers a P6-class OS touches.
struct Msrs {
  uint64_t tsc_offset = 0;  ///< virtual TSC = clock-derived count + offset
  uint32_t sysenter_cs = 0;
  uint32_t sysenter_esp = 0;
  uint32_t sysenter_eip = 0;
  uint64_t apic_base = 0xFEE00900;  ///< BSP, enabled, default base
  uint64_t pat = 0x0007040600070406ULL;
  uint64_t misc_enable = 1;  ///< fast strings
  uint64_t mtrr_def_type = 0;
  std::array<uint64_t, 16> mtrr_var{};  ///< PHYSBASE0/PHYSMASK0 .. PHYSBASE7/PHYSMASK7
  std::array<uint64_t, 11> mtrr_fixed{};
  uint64_t mcg_status = 0;
  uint64_t bios_sign_id = 0;
};

/// PAE's four page-directory-pointer-table entries, as the CPU holds them in registers:
/// loaded from memory by a MOV to CR0/CR3/CR4 that leaves PAE paging on (SDM Vol. 3
/// §4.4.1), never re-read by a walk.
using Pdptes = std::array<uint64_t, 4>;

/// Event kinds waiting to be delivered before the next instruction.
struct PendingEvents {
  bool external_interrupt = false;  ///< the PIC has an unmasked request (level)
  bool nmi = false;
  /// Number of instructions for which interrupts stay blocked (sti / mov ss shadow).
  uint8_t interrupt_shadow = 0;
  /// The shadow comes from MOV SS / POP SS: the next instruction's boundary also holds back
  /// NMIs and single-step traps (SDM Vol. 3 §6.8.3), which STI's shadow does not.
  bool stack_load_shadow = false;
  /// An NMI handler runs: further NMIs wait until the next IRET (SDM Vol. 3 §6.7.1).
  bool nmi_blocked = false;

  /// An NMI is latched and may be delivered at this instruction boundary.
  [[nodiscard]] bool nmi_deliverable() const { return nmi && !nmi_blocked && !stack_load_shadow; }
};

/// The complete architectural state of one vCPU.
/// CpuState::a20_mask with address line 20 enabled, and masked (bit 20 forced to 0).
inline constexpr uint32_t kA20Enabled = 0xFFFFFFFFu;
inline constexpr uint32_t kA20Masked = ~(1u << 20);

struct CpuState {
  std::array<uint32_t, kNumGprs> gpr{};
  uint32_t eip = 0xFFF0;
  uint32_t eflags = flags::Reserved1;
  std::array<SegmentCache, kNumSegRegs> seg{};
  SegmentCache ldtr{};
  SegmentCache tr{};
  DescriptorTableReg gdtr{};
  DescriptorTableReg idtr{};
  uint32_t cr0 = cr0::ET | cr0::CD | cr0::NW;
  uint32_t cr2 = 0;
  uint32_t cr3 = 0;
  uint32_t cr4 = 0;
  Pdptes pdpte{};  ///< meaningful with CR4.PAE and CR0.PG
  std::array<uint32_t, 8> dr{0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400};
  Msrs msr{};
  PendingEvents pending{};
  bool halted = false;
  /// The A20M# input: every physical address the CPU forms is ANDed with it. Bit 20 is
  /// clear while the chipset masks address line 20 (port 0x92 and the i8042 both off).
  uint32_t a20_mask = kA20Enabled;
  /// x87/MMX/SSE state in FXSAVE layout; the guest's own, loaded into the host FPU
  /// around guest floating-point instructions.
  alignas(16) std::array<uint8_t, 512> fxsave{};

  [[nodiscard]] uint32_t& reg(Gpr r) { return gpr[static_cast<size_t>(r)]; }
  [[nodiscard]] uint32_t reg(Gpr r) const { return gpr[static_cast<size_t>(r)]; }
  [[nodiscard]] SegmentCache& sreg(SegReg s) { return seg[static_cast<size_t>(s)]; }
  [[nodiscard]] const SegmentCache& sreg(SegReg s) const { return seg[static_cast<size_t>(s)]; }

  [[nodiscard]] bool protected_mode() const { return (cr0 & cr0::PE) != 0; }
  [[nodiscard]] bool paging() const { return (cr0 & cr0::PG) != 0; }
  [[nodiscard]] bool v86_mode() const { return (eflags & flags::VM) != 0; }
  /// Current privilege level: CS.RPL in protected mode (SS.DPL equals it), 0 in real mode,
  /// 3 in virtual-8086 mode.
  [[nodiscard]] uint8_t cpl() const {
    if (!protected_mode()) return 0;
    if (v86_mode()) return 3;
    return static_cast<uint8_t>(sreg(SegReg::Cs).selector & 3);
  }
  [[nodiscard]] uint8_t iopl() const { return static_cast<uint8_t>((eflags >> 12) & 3); }

  /// Resets to the state after power-on (Intel SDM Vol. 3 §9.1.1).
  void reset();
};

static_assert(std::is_standard_layout_v<CpuState>);

}  // namespace vmm86
