/* The conformance kernels' library (tests/conformance/README.md): a flat ring-0 protected
   mode machine with a known GDT, IDT and TSS, COM1 output, checks that print PASS/FAIL
   lines, exceptions caught and reported, and the end through isa-debug-exit. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* ---- Selectors of the library's GDT (entries 6-15 are free for tests) ---- */
#define SEL_CODE 0x08      /* ring-0 flat code */
#define SEL_DATA 0x10      /* ring-0 flat data */
#define SEL_USER_CODE 0x1B /* ring-3 flat code */
#define SEL_USER_DATA 0x23 /* ring-3 flat data */
#define SEL_TSS 0x28       /* the library's 32-bit TSS (ESP0 = the ring-0 stack) */
#define GDT_FIRST_FREE 6
#define GDT_ENTRIES 16

/* Descriptor access bytes and flags for gdt_set(). */
#define ACC_PRESENT 0x80
#define ACC_DPL(n) ((n) << 5)
#define ACC_CODE_DATA 0x10 /* S = 1 */
#define ACC_CODE 0x08
#define ACC_CONFORMING 0x04 /* code */
#define ACC_READABLE 0x02   /* code */
#define ACC_WRITABLE 0x02   /* data */
#define ACC_TSS32 0x09      /* available 32-bit TSS (system) */
#define FLAG_GRAN_4K 0x8
#define FLAG_32BIT 0x4

/* ---- Ports, control registers, MSRs ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
#define CR_ACCESSORS(n)                               \
  static inline uint32_t read_cr##n(void) {           \
    uint32_t v;                                       \
    __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); \
    return v;                                         \
  }                                                   \
  static inline void write_cr##n(uint32_t v) { __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
CR_ACCESSORS(0)
CR_ACCESSORS(2)
CR_ACCESSORS(3)
CR_ACCESSORS(4)
static inline uint64_t rdmsr(uint32_t index) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
  return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t index, uint64_t v) {
  __asm__ volatile("wrmsr" : : "c"(index), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
struct cpuid_regs {
  uint32_t eax, ebx, ecx, edx;
};
static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf) {
  struct cpuid_regs r;
  __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
  return r;
}
static inline uint32_t read_eflags(void) {
  uint32_t v;
  __asm__ volatile("pushfl; popl %0" : "=r"(v));
  return v;
}
static inline void sti(void) { __asm__ volatile("sti"); }
static inline void cli(void) { __asm__ volatile("cli"); }
/* Waits for an interrupt with interrupts enabled (sti; hlt: no interrupt is lost between). */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

/* ---- Output and checks ---- */
void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PASS name" or "FAIL name"; counts toward the summary. Returns ok. */
bool check(bool ok, const char* name);
/* "PASS name" or "FAIL name: got 0x.. want 0x..". */
bool check_eq(uint64_t got, uint64_t want, const char* name);
/* Ends the run now: "SUMMARY ..." and isa-debug-exit with 0 (all passed) or 1. */
__attribute__((noreturn)) void conformance_exit(void);

/* ---- Descriptor tables ---- */
void gdt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
/* An interrupt (type 0xE) or trap (0xF) gate, or a task gate (0x5: handler = 0, selector = TSS). */
void idt_set_gate(unsigned vector, uint32_t handler, uint16_t selector, uint8_t type, unsigned dpl);
/* The address of the library's stub for a vector (to put its gate back). */
uint32_t idt_default_handler(unsigned vector);
/* The library's TSS (a test may change ESP0, the I/O map base, ...). */
struct tss32 {
  uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
  uint32_t es, cs, ss, ds, fs, gs, ldt;
  uint16_t trap, iomap_base;
} __attribute__((packed));
extern struct tss32 conformance_tss;

/* ---- Exceptions and interrupts ---- */
/* What isr_common pushed (lowest address first). */
struct trap_frame {
  uint32_t gs, fs, es, ds;
  uint32_t edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
  uint32_t vector, error;
  uint32_t eip, cs, eflags;
  uint32_t esp, ss; /* only when the CPU switched stacks (a privilege change) */
};
/* A C handler for a vector (interrupts, int n): called with the frame, which it may change.
   Null puts the default back (an exception is a test failure unless caught by TRY). */
typedef void (*trap_handler)(struct trap_frame* frame);
void set_trap_handler(unsigned vector, trap_handler handler);

/* The last exception caught by TRY: vector (-1: none), error code, the EIP the CPU
   pushed, and whether that EIP was already the resume point (a trap rather than a fault). */
struct caught_trap {
  int vector;
  uint32_t error;
  uint32_t eip;
  bool after;
};
extern volatile struct caught_trap caught;
extern volatile uint32_t conformance_resume_eip;

/* Runs the instructions of `code` (an asm string; the rest are the asm's operand lists,
   starting with ':') and returns the vector of the exception they raised, or -1.
   Execution resumes after `code` either way.
     int v = TRY("rdmsr", : "=a"(lo), "=d"(hi) : "c"(index));
     int v = TRY("ud2");                                                                */
#define TRY(code, ...)                                                          \
  ({                                                                            \
    caught.vector = -1;                                                         \
    caught.error = 0;                                                           \
    __asm__ volatile("movl $1111f, conformance_resume_eip\n\t" code             \
                     "\n1111:\n\tmovl $0, conformance_resume_eip" __VA_ARGS__); \
    caught.vector;                                                              \
  })

/* The Multiboot information the loader passed (EBX). */
extern uint32_t multiboot_info_address;

/* Each kernel defines this: the checks, in order. Returning ends the run. */
void test_main(void);
