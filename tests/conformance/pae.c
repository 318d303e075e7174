/* PAE paging (Intel SDM Vol. 3 §4.4): the CPUID flag, #PF error codes at every level
   (not present, protection, reserved bits with RSVD: PTE, PDE, 2 MiB PDE, bit 63 without
   NX), CR2, accessed and dirty bits in 64-bit PTEs and in a 2 MiB PDE, and the PDPTEs as
   registers: loaded by MOV to CR3, not re-read at each walk, #GP for reserved bits.
   Where QEMU 7.2 departs from the SDM, conformance_test.py's row names the line the SDM
   requires (vmm86 must print it); the checks then test what both agree on. */
#include "lib/conformance.h"

#define P 0x1ull
#define RW 0x2ull
#define A 0x20ull
#define D 0x40ull
#define PS 0x80ull
#define CR0_PG 0x80000000u
#define CR0_WP 0x10000u
#define CR4_PAE 0x20u
#define MIB (1024u * 1024u)

/* volatile: the CPU reads and writes them behind the compiler's back (walks, A/D bits). */
static volatile uint64_t pdpt[4] __attribute__((aligned(32)));
static volatile uint64_t pdpt_reserved[4] __attribute__((aligned(32)));
static volatile uint64_t directory[512] __attribute__((aligned(4096)));
static volatile uint64_t other_directory[512] __attribute__((aligned(4096)));
static volatile uint64_t table[512] __attribute__((aligned(4096)));        /* 16-18 MiB in 4 KiB pages */
static volatile uint64_t other_table[512] __attribute__((aligned(4096)));  /* the same range, elsewhere */

/* Entry stores must be done before the access that walks them (TRY's asm has no memory
   clobber). */
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

static void check_pf(int vector, uint32_t address, uint32_t want_error, const char* name) {
  print("%s: vector %d error 0x%x cr2 0x%x\n", name, vector, caught.error, read_cr2());
  check(vector == 14 && caught.error == want_error && read_cr2() == address, name);
}

/* A reserved-bit fault: the SDM sets P with RSVD (§4.7: "bit 3 ... can be set only if bit 0
   is also set"); QEMU 7.2 leaves P clear. The rest is checked. */
static void check_rsvd(int vector, uint32_t address, uint32_t want_error, const char* name) {
  print("%s, full error code: 0x%x\n", name, caught.error);
  print("%s: vector %d error without P 0x%x cr2 0x%x\n", name, vector, caught.error & ~1u, read_cr2());
  check(vector == 14 && (caught.error & ~1u) == want_error && read_cr2() == address, name);
}

static uint32_t read32(uint32_t address) {
  barrier();
  const uint32_t v = *(volatile uint32_t*)address;
  barrier();
  return v;
}
static void write32(uint32_t address, uint32_t v) {
  barrier();
  *(volatile uint32_t*)address = v;
  barrier();
}

static void setup(void) {
  /* 0-16 MiB and 20-32 MiB identity in 2 MiB pages; 16-18 MiB in 4 KiB pages. */
  for (uint32_t i = 0; i < 16; ++i) directory[i] = (uint64_t)i * 2 * MIB | PS | RW | P;
  directory[8] = (uint32_t)table | RW | P;
  for (uint32_t i = 0; i < 512; ++i) table[i] = (16 * MIB + i * 4096u) | RW | P;
  for (uint32_t i = 0; i < 512; ++i) other_table[i] = (17 * MIB + i * 4096u) | RW | P;
  for (uint32_t i = 0; i < 512; ++i) other_directory[i] = directory[i];
  other_directory[8] = (uint32_t)other_table | RW | P;
  /* Tags to tell frames apart: the first dword of 16 MiB + 0x10000 and of 17 MiB + 0x10000. */
  write32(16 * MIB + 0x10000, 0x16161616);
  write32(17 * MIB + 0x10000, 0x17171717);
  pdpt[0] = (uint32_t)directory | P;
  write_cr3((uint32_t)pdpt);
  write_cr4(read_cr4() | CR4_PAE);
  write_cr0(read_cr0() | CR0_PG | CR0_WP);
}

/* One access after one entry is set: the fault it must take. */
struct fault_case {
  volatile uint64_t* entry; /* null: none */
  uint64_t value;
  uint32_t address;
  bool write;
  uint32_t error; /* without P for reserved-bit faults (see check_rsvd) */
  bool reserved;
  const char* name;
};

static void error_codes(void) {
  const struct fault_case cases[] = {
      {&table[5], 0, 16 * MIB + 0x5008, false, 0x0, false, "not-present PTE read"},
      {&table[6], (16 * MIB + 0x6000) | P, 16 * MIB + 0x6ffc, true, 0x3, false, "read-only PTE write (WP)"},
      {&table[7], (16 * MIB + 0x7000) | RW | P | (1ull << 40), 16 * MIB + 0x7000, false, 0x8, true,
       "PTE bit 40 (reserved) read"},
      {&table[7], (16 * MIB + 0x7000) | RW | P | (1ull << 40), 16 * MIB + 0x7004, true, 0xa, true,
       "PTE bit 40 (reserved) write"},
      {&table[9], (16 * MIB + 0x9000) | RW | P | (1ull << 63), 16 * MIB + 0x9000, false, 0x8, true,
       "PTE bit 63 (XD, reserved without NX) read"},
      {&directory[9], (uint32_t)other_table | RW | P | (1ull << 36), 18 * MIB, false, 0x8, true,
       "PDE bit 36 (reserved) read"},
      {&directory[9], (18 * MIB) | PS | RW | P | (1ull << 13), 18 * MIB + 4, false, 0x8, true,
       "2 MiB PDE bit 13 (reserved) read"},
      {&directory[9], 0, 18 * MIB + 8, false, 0x0, false, "not-present PDE read"},
      {0, 0, 0x40000000u, false, 0x0, false, "not-present PDPTE read"}, /* PDPTE 1 */
  };
  for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    const struct fault_case* c = &cases[i];
    if (c->entry) *c->entry = c->value;
    barrier();
    const int v = c->write ? TRY("movl %%eax, (%0)", : : "r"(c->address), "a"(1))
                           : TRY("movl (%0), %%eax", : : "r"(c->address) : "eax");
    if (c->reserved) {
      check_rsvd(v, c->address, c->error, c->name);
    } else {
      check_pf(v, c->address, c->error, c->name);
    }
  }
}

static void accessed_dirty(void) {
  table[10] = (16 * MIB + 0xA000) | RW | P;
  (void)read32(16 * MIB + 0xA000);
  check_eq(table[10] & (A | D), A, "a read sets A in the PTE");
  write32(16 * MIB + 0xA000, 1);
  check_eq(table[10] & (A | D), A | D, "a write sets D in the PTE");
  check_eq(table[10] >> 32, 0, "the PTE's high dword stays");
  directory[10] = (20 * MIB) | PS | RW | P; /* 20-22 MiB */
  (void)read32(20 * MIB + 0x123456);
  check_eq(directory[10] & (A | D), A, "a read sets A in a 2 MiB PDE");
  write32(20 * MIB + 0x1ffffc, 2);
  check_eq(directory[10] & (A | D), A | D, "a write sets D in a 2 MiB PDE");
  check_eq(read32(20 * MIB + 0x1ffffc), 2, "the 2 MiB page's last dword");
}

static void pdpte_registers(void) {
  /* The PDPT now names another directory, whose 16-18 MiB table maps 17 MiB frames. The
     TLB entry of 16 MiB + 0x10000 is flushed, yet the walk uses the PDPTE loaded by the
     last MOV to CR3 (SDM §4.4.1)... */
  (void)read32(16 * MIB + 0x10000);
  pdpt[0] = (uint32_t)other_directory | P;
  __asm__ volatile("invlpg (%0)" : : "r"(16 * MIB + 0x10000) : "memory");
  /* QEMU 7.2 reads the PDPTEs from memory at each walk: it sees the new one already. */
  print("PDPTE register after the PDPT changed, without a CR3 write: reads 0x%x\n", read32(16 * MIB + 0x10000));
  /* ...until CR3 is written again, even with the same value. */
  write_cr3((uint32_t)pdpt);
  check_eq(read32(16 * MIB + 0x10000), 0x17171717, "after a CR3 write the new PDPTE is used");
  /* A present PDPTE with a reserved bit: the MOV to CR3 raises #GP(0) and changes nothing. */
  pdpt_reserved[0] = pdpt[0];
  pdpt_reserved[3] = (uint32_t)directory | P | 0x4; /* bit 2 is reserved */
  barrier();
  /* QEMU 7.2 loads no PDPTEs, so it raises nothing here. */
  int v = TRY("movl %0, %%cr3", : : "r"((uint32_t)pdpt_reserved));
  print("MOV to CR3 of a PDPT with a reserved bit: vector %d error 0x%x, CR3 %s\n", v, caught.error,
        read_cr3() == (uint32_t)pdpt ? "unchanged" : "changed");
  write_cr3((uint32_t)pdpt);
}

void test_main(void) {
  check((cpuid(1, 0).edx >> 6) & 1, "CPUID.1:EDX.PAE");
  setup();
  check_eq(read32(16 * MIB + 0x10000), 0x16161616, "16 MiB through a 4 KiB PAE page");
  error_codes();
  accessed_dirty();
  pdpte_registers();
  write_cr0(read_cr0() & ~CR0_PG);
  write_cr4(read_cr4() & ~CR4_PAE);
}
