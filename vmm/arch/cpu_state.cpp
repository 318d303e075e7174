#include "vmm/arch/cpu_state.h"

namespace vmm86 {

void CpuState::reset() {
  *this = CpuState{};
  for (auto& s : seg) {
    s = SegmentCache{0, 0, 0xFFFF, 0x0093};
  }
  // CS = F000 with base FFFF0000, so the first fetch is at FFFFFFF0.
  sreg(SegReg::Cs) = SegmentCache{0xF000, 0xFFFF0000u, 0xFFFF, 0x009B};
  ldtr = SegmentCache{0, 0, 0xFFFF, 0x0082};
  tr = SegmentCache{0, 0, 0xFFFF, 0x008B};
  reg(Gpr::Edx) = 0x00000663;  // family 6 model 6 stepping 3, as CPUID reports
  // FCW=0x037F, MXCSR=0x1F80 at their FXSAVE offsets.
  fxsave[0] = 0x7F;
  fxsave[1] = 0x03;
  fxsave[24] = 0x80;
  fxsave[25] = 0x1F;
}

}  // namespace vmm86
