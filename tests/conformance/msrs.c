/* RDMSR/WRMSR (SDM Vol. 2): #GP(0) for an MSR the CPU does not have, for a value that sets
   reserved bits or names an undefined memory type (Vol. 3 §11.11.2 MTRRs, §11.12.2 PAT),
   and the MSRs a P6 has reading and writing back. */
#include "lib/conformance.h"

static void absent(uint32_t index, const char* what) {
  uint32_t lo = 0, hi = 0;
  int v = TRY("rdmsr", : "=a"(lo), "=d"(hi) : "c"(index));
  print("rdmsr 0x%x (%s): vector %d error 0x%x\n", index, what, v, caught.error);
  v = TRY("wrmsr", : : "c"(index), "a"(0), "d"(0));
  print("wrmsr 0x%x (%s): vector %d error 0x%x\n", index, what, v, caught.error);
}

static void reserved(uint32_t index, uint64_t value, const char* what) {
  int v = TRY("wrmsr", : : "c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
  print("wrmsr 0x%x <- 0x%llx (%s): vector %d error 0x%x\n", index, value, what, v, caught.error);
}

void test_main(void) {
  absent(0xC0000081, "STAR, an AMD MSR");
  absent(0x12345678, "no MSR");
  check(TRY("rdmsr", : : "c"(0x10) : "eax", "edx") == -1, "rdmsr TSC");
  wrmsr(0x174, 0x10);
  check_eq(rdmsr(0x174), 0x10, "SYSENTER_CS written and read back");
  wrmsr(0x174, 0);
  check_eq(rdmsr(0x277), 0x0007040600070406ULL, "PAT at reset");
  reserved(0x277, 0x0007040600070402ULL, "PAT entry 0 type 2 is reserved");
  reserved(0x277, 0x0007040600070406ULL, "PAT as Linux writes it");
  reserved(0x2FF, 0x100, "MTRRdefType bit 8 is reserved");
  reserved(0x2FF, 0x006, "MTRRdefType WB, disabled");
}
