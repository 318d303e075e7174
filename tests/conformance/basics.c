/* The library's own checks and the exceptions every later kernel relies on: the vector,
   error code and fault/trap kind of #DE, #BP, #OF, #BR, #UD, #GP and #NP, a software
   interrupt through a DPL-3 gate, and a page fault's CR2 and error code with 4 MiB and
   4 KiB pages. */
#include "lib/conformance.h"

static uint32_t page_directory[1024] __attribute__((aligned(4096)));
static uint32_t page_table[1024] __attribute__((aligned(4096)));
static volatile uint32_t software_interrupt_eax;

static void on_int_0x40(struct trap_frame* frame) {
  software_interrupt_eax = frame->eax;
  frame->eax = 0x600D;
}

static void check_trap(int vector, int want_vector, bool want_after, const char* name) {
  print("%s: vector %d error 0x%x %s\n", name, vector, caught.error, caught.after ? "trap" : "fault");
  check(vector == want_vector && caught.after == want_after, name);
}

static void exceptions(void) {
  uint32_t zero = 0, quotient = 0;
  check_trap(TRY("divl %2", : "=a"(quotient), "+d"(zero) : "r"(zero), "a"(7)), 0, false, "#DE on divide by zero");
  check_trap(TRY("int3"), 3, true, "#BP is a trap");
  check_trap(TRY("movl $0x7fffffff, %%eax; addl $1, %%eax; into", : : : "eax"), 4, true, "#OF from into is a trap");
  static int32_t bounds[2] = {10, 20};
  check_trap(TRY("boundl %%eax, %0", : : "m"(bounds), "a"(30)), 5, false, "#BR on bound out of range");
  check_trap(TRY("boundl %%eax, %0", : : "m"(bounds), "a"(15)), -1, false, "bound in range");
  check_trap(TRY("ud2"), 6, false, "#UD on ud2");
  int v = TRY("movl %0, %%ds", : : "r"(SEL_TSS));
  check_trap(v, 13, false, "#GP loading a TSS selector into DS");
  check_eq(caught.error, SEL_TSS, "#GP error code is the selector");
  gdt_set(GDT_FIRST_FREE, 0, 0xFFFFF, ACC_DPL(0) | ACC_CODE_DATA | ACC_WRITABLE, FLAG_GRAN_4K | FLAG_32BIT);
  v = TRY("movl %0, %%es", : : "r"(GDT_FIRST_FREE << 3));
  check_trap(v, 11, false, "#NP loading a not-present data segment");
  check_eq(caught.error, GDT_FIRST_FREE << 3, "#NP error code is the selector");
  __asm__ volatile("movl %0, %%es" : : "r"(SEL_DATA));
  check_trap(TRY("movl (%0), %%eax", : : "r"(0x12345678), "r"(0) : "eax"), -1, false, "flat read anywhere");
}

static void software_interrupt(void) {
  set_trap_handler(0x40, on_int_0x40);
  uint32_t eax = 0x1234;
  __asm__ volatile("int $0x40" : "+a"(eax));
  check_eq(software_interrupt_eax, 0x1234, "int 0x40 handler sees eax");
  check_eq(eax, 0x600D, "int 0x40 handler's eax comes back through iret");
  set_trap_handler(0x40, 0);
}

static void page_faults(void) {
  for (uint32_t i = 0; i < 1024; ++i) page_directory[i] = i * 0x400000u | 0x83; /* 4 MiB, present, writable */
  for (uint32_t i = 0; i < 1024; ++i) page_table[i] = (0x800000u + i * 4096u) | 0x03;
  page_table[5] = 0;                                  /* 0x805000: not present */
  page_table[6] = (0x800000u + 6 * 4096u) | 0x01;     /* 0x806000: read-only */
  page_directory[2] = (uint32_t)page_table | 0x03;    /* 8-12 MiB in 4 KiB pages */
  write_cr3((uint32_t)page_directory);
  write_cr4(read_cr4() | 0x10); /* PSE */
  write_cr0(read_cr0() | 0x80010000u); /* PG, WP */
  check_trap(TRY("movl (%0), %%eax", : : "r"(0x805004) : "eax"), 14, false, "#PF reading a not-present page");
  check_eq(read_cr2(), 0x805004, "CR2 of the not-present read");
  check_eq(caught.error, 0x0, "error code of the not-present read");
  check_trap(TRY("movl %%eax, (%0)", : : "r"(0x806ffc), "a"(1)), 14, false, "#PF writing a read-only page (WP)");
  check_eq(read_cr2(), 0x806ffc, "CR2 of the read-only write");
  check_eq(caught.error, 0x3, "error code of the read-only write");
  check_trap(TRY("movl (%0), %%eax", : : "r"(0x806ffc) : "eax"), -1, false, "reading the read-only page");
  check_eq(page_table[6] & 0x60, 0x20, "the read set the accessed bit only");
  write_cr0(read_cr0() & ~0x80000000u);
}

void test_main(void) {
  exceptions();
  software_interrupt();
  page_faults();
}
