/* The conformance kernels' library (conformance.h). */
#include "conformance.h"

#include <stdarg.h>

#define COM1 0x3F8
#define DEBUG_EXIT_PORT 0xF4 /* QEMU's isa-debug-exit default; vmm86 --debug-exit */
#define EXCEPTION_VECTORS 32

volatile struct caught_trap caught = {-1, 0, 0, false};
volatile uint32_t conformance_resume_eip;
uint32_t multiboot_info_address;
struct tss32 conformance_tss;

static uint64_t gdt[GDT_ENTRIES];
static uint64_t idt[256];
static trap_handler handlers[256];
static unsigned passed, failed;
extern const uint32_t conformance_isr_stubs[256];
extern char conformance_stack_top[];

/* ---- COM1 ---- */
static void serial_init(void) {
  outb(COM1 + 1, 0x00); /* no interrupts */
  outb(COM1 + 3, 0x80); /* DLAB */
  outb(COM1 + 0, 0x01); /* 115200 baud */
  outb(COM1 + 1, 0x00);
  outb(COM1 + 3, 0x03); /* 8N1 */
  outb(COM1 + 2, 0x07); /* FIFOs on and cleared */
}

static void serial_putc(char c) {
  if (c == '\n') serial_putc('\r');
  for (unsigned spins = 0; spins < 100000 && !(inb(COM1 + 5) & 0x20); ++spins) {
  }
  outb(COM1, (uint8_t)c);
}

static void put_unsigned(uint64_t v, unsigned base, unsigned width, char pad) {
  char digits[24];
  unsigned n = 0;
  do {
    unsigned d = (unsigned)(v % base);
    digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v != 0 && n < sizeof digits);
  for (; width > n; --width) serial_putc(pad);
  while (n > 0) serial_putc(digits[--n]);
}

/* printf's %s %c %d %u %x with a width and '0' padding, and the ll length. */
void print(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (const char* p = fmt; *p; ++p) {
    if (*p != '%') {
      serial_putc(*p);
      continue;
    }
    ++p;
    char pad = ' ';
    unsigned width = 0;
    if (*p == '0') {
      pad = '0';
      ++p;
    }
    while (*p >= '0' && *p <= '9') width = width * 10 + (unsigned)(*p++ - '0');
    bool wide = false;
    while (*p == 'l') {
      wide = true;
      ++p;
    }
    switch (*p) {
      case 's':
        for (const char* s = va_arg(ap, const char*); *s; ++s) serial_putc(*s);
        break;
      case 'c':
        serial_putc((char)va_arg(ap, int));
        break;
      case 'd': {
        int64_t v = wide ? va_arg(ap, int64_t) : va_arg(ap, int);
        if (v < 0) {
          serial_putc('-');
          v = -v;
        }
        put_unsigned((uint64_t)v, 10, width, pad);
        break;
      }
      case 'u':
      case 'x':
        put_unsigned(wide ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), *p == 'u' ? 10 : 16, width, pad);
        break;
      case '%':
        serial_putc('%');
        break;
      default:
        serial_putc('?');
        break;
    }
  }
  va_end(ap);
}

bool check(bool ok, const char* name) {
  print("%s %s\n", ok ? "PASS" : "FAIL", name);
  ok ? ++passed : ++failed;
  return ok;
}

bool check_eq(uint64_t got, uint64_t want, const char* name) {
  if (got == want) return check(true, name);
  print("FAIL %s: got 0x%llx want 0x%llx\n", name, got, want);
  ++failed;
  return false;
}

void conformance_exit(void) {
  print("SUMMARY passed=%u failed=%u\n", passed, failed);
  outl(DEBUG_EXIT_PORT, failed == 0 ? 0 : 1);
  for (;;) __asm__ volatile("cli; hlt");
}

/* ---- Descriptor tables ---- */
void gdt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
  if (index >= GDT_ENTRIES) return;
  gdt[index] = (uint64_t)(limit & 0xFFFF) | (uint64_t)(base & 0xFFFFFF) << 16 | (uint64_t)access << 40 |
               (uint64_t)((limit >> 16) & 0xF) << 48 | (uint64_t)(flags & 0xF) << 52 | (uint64_t)(base >> 24) << 56;
}

void idt_set_gate(unsigned vector, uint32_t handler, uint16_t selector, uint8_t type, unsigned dpl) {
  if (vector > 255) return;
  idt[vector] = (uint64_t)(handler & 0xFFFF) | (uint64_t)selector << 16 |
                (uint64_t)(0x80 | (dpl & 3) << 5 | (type & 0xF)) << 40 | (uint64_t)(handler >> 16) << 48;
}

uint32_t idt_default_handler(unsigned vector) { return vector < 256 ? conformance_isr_stubs[vector] : 0; }

void set_trap_handler(unsigned vector, trap_handler handler) {
  if (vector < 256) handlers[vector] = handler;
}

struct __attribute__((packed)) table_register {
  uint16_t limit;
  uint32_t base;
};

static void load_tables(void) {
  gdt_set(1, 0, 0xFFFFF, ACC_PRESENT | ACC_CODE_DATA | ACC_CODE | ACC_READABLE, FLAG_GRAN_4K | FLAG_32BIT);
  gdt_set(2, 0, 0xFFFFF, ACC_PRESENT | ACC_CODE_DATA | ACC_WRITABLE, FLAG_GRAN_4K | FLAG_32BIT);
  gdt_set(3, 0, 0xFFFFF, ACC_PRESENT | ACC_DPL(3) | ACC_CODE_DATA | ACC_CODE | ACC_READABLE,
          FLAG_GRAN_4K | FLAG_32BIT);
  gdt_set(4, 0, 0xFFFFF, ACC_PRESENT | ACC_DPL(3) | ACC_CODE_DATA | ACC_WRITABLE, FLAG_GRAN_4K | FLAG_32BIT);
  conformance_tss.ss0 = SEL_DATA;
  conformance_tss.esp0 = (uint32_t)conformance_stack_top;
  conformance_tss.iomap_base = sizeof conformance_tss; /* no I/O permission map */
  gdt_set(5, (uint32_t)&conformance_tss, sizeof conformance_tss - 1, ACC_PRESENT | ACC_TSS32, 0);
  struct table_register gdtr = {sizeof gdt - 1, (uint32_t)gdt};
  __asm__ volatile(
      "lgdt %0\n\t"
      "ljmp %1, $1f\n"
      "1:\n\t"
      "movl %2, %%eax\n\t"
      "movl %%eax, %%ds\n\t"
      "movl %%eax, %%es\n\t"
      "movl %%eax, %%fs\n\t"
      "movl %%eax, %%gs\n\t"
      "movl %%eax, %%ss\n\t"
      "movw %3, %%ax\n\t"
      "ltr %%ax"
      :
      : "m"(gdtr), "i"(SEL_CODE), "i"(SEL_DATA), "i"(SEL_TSS)
      : "eax", "memory");
  for (unsigned v = 0; v < 256; ++v) idt_set_gate(v, conformance_isr_stubs[v], SEL_CODE, 0xE, v == 3 || v == 4 ? 3 : 0);
  struct table_register idtr = {sizeof idt - 1, (uint32_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

/* ---- Entry and the common exception path ---- */
void conformance_isr(struct trap_frame* frame);
void conformance_isr(struct trap_frame* frame) {
  const unsigned vector = frame->vector;
  if (handlers[vector] != 0) {
    handlers[vector](frame);
    return;
  }
  if (vector < EXCEPTION_VECTORS && conformance_resume_eip != 0) {
    caught.vector = (int)vector;
    caught.error = frame->error;
    caught.eip = frame->eip;
    caught.after = frame->eip == conformance_resume_eip;
    frame->eip = conformance_resume_eip;
    conformance_resume_eip = 0;
    return;
  }
  print("FAIL unexpected %s %u (error 0x%x) at eip 0x%08x\n", vector < EXCEPTION_VECTORS ? "exception" : "interrupt",
        vector, frame->error, frame->eip);
  ++failed;
  conformance_exit();
}

void conformance_start(uint32_t magic, uint32_t info);
void conformance_start(uint32_t magic, uint32_t info) {
  serial_init();
  load_tables();
  multiboot_info_address = info;
  check_eq(magic, 0x2BADB002, "multiboot magic");
  test_main();
  conformance_exit();
}
