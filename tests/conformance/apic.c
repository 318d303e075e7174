/* The local APIC and the IOAPIC (Intel SDM Vol. 3A ch. 10, the 82093AA's registers): the
   APIC's presence (CPUID, IA32_APIC_BASE), its registers, self-IPIs through the ICR and
   their destinations, NMI by IPI, interrupt priority (TPR, PPR, nesting order), the timer
   in one-shot and periodic modes with its divider, and the IOAPIC routing the PIT (ISA IRQ
   0 on pin 2) and the RTC (IRQ 8, level-triggered, remote IRR until the EOI).
   Rates differ between machines (QEMU's APIC timer counts at 1 GHz, vmm86's at the crystal
   CPUID 0x15 reports): only ratios and events are printed. Time comes from PIT channel 2. */
#include "lib/platform.h"

#define IOAPIC_BASE 0xFEC00000u
enum {
  APIC_ID = 0x20, APIC_VERSION = 0x30, APIC_TPR = 0x80, APIC_PPR = 0xA0, APIC_EOI = 0xB0, APIC_LDR = 0xD0,
  APIC_DFR = 0xE0, APIC_SVR = 0xF0, APIC_ISR = 0x100, APIC_IRR = 0x200, APIC_ESR = 0x280, APIC_ICR_LOW = 0x300,
  APIC_ICR_HIGH = 0x310, APIC_LVT_TIMER = 0x320, APIC_LVT_LINT0 = 0x350, APIC_LVT_LINT1 = 0x360,
  APIC_LVT_ERROR = 0x370, APIC_INITIAL_COUNT = 0x380, APIC_CURRENT_COUNT = 0x390, APIC_DIVIDE = 0x3E0,
};
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define ICR_SELF (1u << 18)
#define ICR_ALL_INCLUDING_SELF (2u << 18)
#define ICR_ALL_EXCLUDING_SELF (3u << 18)
#define ICR_LOGICAL (1u << 11)
#define ICR_NMI (4u << 8)
#define REDIR_LEVEL (1u << 15)
#define REDIR_REMOTE_IRR (1u << 14)
#define REDIR_MASKED (1u << 16)

static bool apic_bit(uint32_t base, unsigned vector) { return (apic_read(base + 0x10 * (vector / 32)) >> (vector % 32)) & 1; }
static uint32_t ioapic_read(uint32_t index) {
  *(volatile uint32_t*)IOAPIC_BASE = index;
  return *(volatile uint32_t*)(IOAPIC_BASE + 0x10);
}
static void ioapic_write(uint32_t index, uint32_t v) {
  *(volatile uint32_t*)IOAPIC_BASE = index;
  *(volatile uint32_t*)(IOAPIC_BASE + 0x10) = v;
}
static void ioapic_route(unsigned pin, uint32_t low, uint8_t destination) {
  ioapic_write(0x10 + 2 * pin, REDIR_MASKED);
  ioapic_write(0x11 + 2 * pin, (uint32_t)destination << 24);
  ioapic_write(0x10 + 2 * pin, low);
}

/* Waits with interrupts enabled until *counter reaches `n` or `max_ms` pass. */
static void wait_for(volatile unsigned* counter, unsigned n, unsigned max_ms) {
  sti();
  for (unsigned ms = 0; ms < max_ms && *counter < n; ++ms) pit_wait_ms(1);
  cli();
}

/* ---- Interrupt handlers: each counts, records what it saw, and EOIs ---- */
static volatile unsigned ipi_count, nmi_count, timer_count, pit_count, rtc_count;
static volatile uint8_t order[4];
static volatile unsigned order_len;
static volatile uint32_t ppr_in_handler;
static volatile bool isr_in_handler, remote_irr_in_handler = true;

static void on_ipi(struct trap_frame* f) {
  ++ipi_count;
  if (order_len < 4) order[order_len++] = (uint8_t)f->vector;
  ppr_in_handler = apic_read(APIC_PPR);
  isr_in_handler = apic_bit(APIC_ISR, f->vector);
  apic_write(APIC_EOI, 0);
}
static void on_nmi(struct trap_frame* f) {
  (void)f;
  ++nmi_count;
}
static void on_timer(struct trap_frame* f) {
  (void)f;
  ++timer_count;
  apic_write(APIC_EOI, 0);
}
static void on_pit(struct trap_frame* f) {
  (void)f;
  ++pit_count;
  apic_write(APIC_EOI, 0);
}
static void on_rtc(struct trap_frame* f) {
  (void)f;
  ++rtc_count;
  /* Level-triggered: remote IRR stays set from delivery to the EOI. */
  remote_irr_in_handler = remote_irr_in_handler && (ioapic_read(0x10 + 2 * 8) & REDIR_REMOTE_IRR);
  outb(0x70, 0x0C);
  (void)inb(0x71); /* reading register C lowers IRQ 8 */
  apic_write(APIC_EOI, 0);
}

/* The 8259s remapped to 0x20-0x2F and fully masked: every interrupt here comes through the
   APICs (on QEMU the firmware left the PIT unmasked on vector 8). */
static void quiet_pics(void) {
  const uint8_t init[][2] = {{0x20, 0x11}, {0x21, 0x20}, {0x21, 0x04}, {0x21, 0x01}, {0x21, 0xFF},
                             {0xA0, 0x11}, {0xA1, 0x28}, {0xA1, 0x02}, {0xA1, 0x01}, {0xA1, 0xFF}};
  for (unsigned i = 0; i < sizeof init / sizeof init[0]; ++i) outb(init[i][0], init[i][1]);
}

static void presence(void) {
  const struct cpuid_regs r = cpuid(1, 0);
  check((r.edx >> 9) & 1, "CPUID.1:EDX.APIC");
  const uint64_t base = rdmsr(0x1B);
  print("IA32_APIC_BASE 0x%x\n", (uint32_t)base & 0xFFFFF900u);
  check_eq(r.ebx >> 24, apic_read(APIC_ID) >> 24, "CPUID initial APIC ID is the ID register's");
  print("version 0x%x\n", apic_read(APIC_VERSION));
}

static void registers(void) {
  apic_write(APIC_SVR, 0x3FF); /* bit 9 is not an xAPIC bit */
  print("SVR after writing 0x3FF: 0x%x\n", apic_read(APIC_SVR));
  apic_write(APIC_TPR, 0xFFFFFFFF);
  print("TPR after writing all ones: 0x%x\n", apic_read(APIC_TPR));
  apic_write(APIC_TPR, 0);
  apic_write(APIC_DFR, 0xFFFFFFFF);
  print("DFR flat: 0x%x\n", apic_read(APIC_DFR));
  apic_write(APIC_LDR, 0xFFFFFFFF);
  print("LDR after writing all ones: 0x%x\n", apic_read(APIC_LDR));
  apic_write(APIC_DIVIDE, 0xFFFFFFFF);
  print("divide configuration after writing all ones: 0x%x\n", apic_read(APIC_DIVIDE));
  apic_write(APIC_LVT_LINT0, LVT_MASKED | 0x700);
  apic_write(APIC_LVT_LINT1, LVT_MASKED | 0x400);
  apic_write(APIC_LVT_ERROR, LVT_MASKED | 0xFE);
  (void)apic_read(0x2F0); /* reserved with 6 LVT entries */
  apic_write(APIC_ESR, 0);
  print("ESR after a reserved register read: 0x%x\n", apic_read(APIC_ESR));
}

static void self_ipis(void) {
  set_trap_handler(0x40, on_ipi);
  apic_write(APIC_ICR_LOW, ICR_SELF | 0x40);
  check(apic_bit(APIC_IRR, 0x40), "self-IPI waits in the IRR while IF=0");
  check_eq(ipi_count, 0, "no delivery while IF=0");
  wait_for(&ipi_count, 1, 500);
  check_eq(ipi_count, 1, "self-IPI delivered after sti");
  check(isr_in_handler, "its ISR bit is set in the handler");
  check(!apic_bit(APIC_ISR, 0x40) && !apic_bit(APIC_IRR, 0x40), "EOI cleared it");
  print("PPR in the handler: 0x%x\n", ppr_in_handler);

  const uint8_t id = (uint8_t)(apic_read(APIC_ID) >> 24);
  struct {
    uint32_t low;
    uint8_t destination;
    bool delivered;
    const char* name;
  } const cases[] = {
      {0x40, id, true, "physical, own ID"},
      {0x40, (uint8_t)(id ^ 0x0F), false, "physical, another ID"},
      {0x40, 0xFF, true, "physical broadcast"},
      {ICR_ALL_INCLUDING_SELF | 0x40, 0, true, "all including self"},
      {ICR_ALL_EXCLUDING_SELF | 0x40, 0, false, "all excluding self"},
      {ICR_LOGICAL | 0x40, 0x01, true, "logical flat, own LDR bit"},
      {ICR_LOGICAL | 0x40, 0x06, false, "logical flat, other bits"},
  };
  apic_write(APIC_LDR, 0x01000000);
  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    ipi_count = 0;
    apic_write(APIC_ICR_HIGH, (uint32_t)cases[i].destination << 24);
    apic_write(APIC_ICR_LOW, cases[i].low);
    wait_for(&ipi_count, 1, cases[i].delivered ? 500 : 2);
    check_eq(ipi_count, cases[i].delivered, cases[i].name);
  }
  apic_write(APIC_ICR_HIGH, 0);

  set_trap_handler(2, on_nmi);
  apic_write(APIC_ICR_LOW, ICR_ALL_INCLUDING_SELF | ICR_NMI);
  for (unsigned ms = 0; ms < 500 && nmi_count == 0; ++ms) pit_wait_ms(1); /* soon, not at once */
  check_eq(nmi_count, 1, "NMI by IPI, with IF=0");
}

static void priorities(void) {
  set_trap_handler(0x45, on_ipi);
  set_trap_handler(0x61, on_ipi);
  ipi_count = 0;
  apic_write(APIC_TPR, 0x50);
  apic_write(APIC_ICR_LOW, ICR_SELF | 0x45);
  wait_for(&ipi_count, 1, 2);
  check_eq(ipi_count, 0, "TPR 0x50 holds vector 0x45");
  apic_write(APIC_TPR, 0x40);
  wait_for(&ipi_count, 1, 2);
  check_eq(ipi_count, 0, "TPR 0x40 holds it too (same class)");
  print("PPR with TPR 0x40: 0x%x\n", apic_read(APIC_PPR));
  apic_write(APIC_TPR, 0x3F);
  wait_for(&ipi_count, 1, 500);
  check_eq(ipi_count, 1, "TPR 0x3F lets it through");
  print("PPR in its handler: 0x%x\n", ppr_in_handler);
  apic_write(APIC_TPR, 0);

  order_len = 0;
  apic_write(APIC_ICR_LOW, ICR_SELF | 0x45);
  apic_write(APIC_ICR_LOW, ICR_SELF | 0x61);
  wait_for(&order_len, 2, 500);
  print("delivery order: 0x%x 0x%x (%u)\n", order[0], order[1], order_len);
  check(order_len == 2 && order[0] == 0x61 && order[1] == 0x45, "the higher class first");
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t)hi << 32 | lo;
}
/* The APIC's current count and the TSC at the same moment: of 32 reads between two TSC
   reads, the one they bracket most tightly (a host preemption in between would skew it). */
static void sample(uint32_t* count, uint64_t* tsc) {
  uint64_t best = ~0ull;
  for (int i = 0; i < 32; ++i) {
    const uint64_t t0 = rdtsc();
    const uint32_t c = apic_read(APIC_CURRENT_COUNT);
    const uint64_t t1 = rdtsc();
    if (t1 - t0 < best) {
      best = t1 - t0;
      *count = c;
      *tsc = t0 + (t1 - t0) / 2;
    }
  }
}
/* APIC timer counts per 2^20 TSC cycles with `divide` (the LVT masked), over `counts`
   counts. The TSC's rate cancels out of the ratios between divisors. */
static uint32_t rate(uint32_t divide, uint32_t counts) {
  apic_write(APIC_LVT_TIMER, LVT_MASKED | 0x50);
  apic_write(APIC_DIVIDE, divide);
  apic_write(APIC_INITIAL_COUNT, 0xFFFFFFFF);
  uint32_t c0 = 0, c1 = 0;
  uint64_t t0 = 0, t1 = 0;
  sample(&c0, &t0);
  while (c0 - apic_read(APIC_CURRENT_COUNT) < counts) {
  }
  sample(&c1, &t1);
  apic_write(APIC_INITIAL_COUNT, 0);
  return t1 > t0 ? (uint32_t)(((uint64_t)(c0 - c1) << 20) / (t1 - t0)) : 0;
}

static void timer(void) {
  set_trap_handler(0x50, on_timer);
  /* The divider: the rate at divide by 2 and 16 against divide by 1, within 10%, each
     measured over a few milliseconds. */
  const uint32_t by1 = rate(0xB, 4000000), by2 = rate(0x0, 2000000), by16 = rate(0x3, 250000);
  check(by1 > 0 && by2 > 0 && by16 > 0, "the timer counts (masked)");
  check(by2 * 18u < by1 * 10u && by1 * 10u < by2 * 22u, "divide by 2 halves the rate");
  check(by16 * 144u < by1 * 10u && by1 * 10u < by16 * 176u, "divide by 16");
  /* One-shot: 1 ms at QEMU's 1 GHz / 16, about that at vmm86's crystal. */
  const uint32_t per_ms = 62500;
  apic_write(APIC_DIVIDE, 0x3);
  apic_write(APIC_LVT_TIMER, 0x50);
  apic_write(APIC_INITIAL_COUNT, per_ms);
  const uint32_t c0 = apic_read(APIC_CURRENT_COUNT);
  check(c0 <= per_ms, "one-shot current count starts at most at the initial count");
  wait_for(&timer_count, 1, 500);
  check_eq(timer_count, 1, "one-shot fires");
  check_eq(apic_read(APIC_CURRENT_COUNT), 0, "one-shot stays at zero");
  wait_for(&timer_count, 2, 10);
  check_eq(timer_count, 1, "one-shot fires once");
  /* Periodic. */
  timer_count = 0;
  apic_write(APIC_LVT_TIMER, LVT_PERIODIC | 0x50);
  apic_write(APIC_INITIAL_COUNT, per_ms);
  wait_for(&timer_count, 5, 1000);
  check(timer_count >= 5, "periodic fires again and again");
  check(apic_read(APIC_CURRENT_COUNT) != 0, "periodic reloads");
  apic_write(APIC_LVT_TIMER, LVT_MASKED | LVT_PERIODIC | 0x50);
  wait_for(&timer_count, ~0u, 1); /* one that fired before the mask may still come */
  const unsigned seen = timer_count;
  wait_for(&timer_count, seen + 1, 10);
  check_eq(timer_count, seen, "masked: no more interrupts");
  apic_write(APIC_INITIAL_COUNT, 0);
  check_eq(apic_read(APIC_CURRENT_COUNT), 0, "initial count 0 stops it");
}

static void ioapic(void) {
  print("IOAPIC version 0x%x\n", ioapic_read(0x01));
  const uint32_t id = ioapic_read(0x00);
  ioapic_write(0x00, 0xFFFFFFFF);
  print("IOAPIC ID after writing all ones: 0x%x\n", ioapic_read(0x00));
  ioapic_write(0x00, id);
  const uint8_t apic_id = (uint8_t)(apic_read(APIC_ID) >> 24);

  /* The PIT, ISA IRQ 0, on pin 2 at 1 kHz. */
  set_trap_handler(0x60, on_pit);
  outb(0x43, 0x34);
  outb(0x40, 1193 & 0xFF);
  outb(0x40, 1193 >> 8);
  ioapic_route(2, 0x60, apic_id);
  wait_for(&pit_count, 3, 500);
  check(pit_count >= 3, "PIT on IOAPIC pin 2");
  ioapic_write(0x10 + 2 * 2, REDIR_MASKED | 0x60);
  wait_for(&pit_count, ~0u, 1);
  const unsigned seen = pit_count;
  wait_for(&pit_count, seen + 1, 10);
  check_eq(pit_count, seen, "masked pin 2: no more");

  /* The RTC's periodic interrupt, IRQ 8, level-triggered on pin 8 at 1024 Hz. */
  set_trap_handler(0x68, on_rtc);
  outb(0x70, 0x0A);
  outb(0x71, (uint8_t)((inb(0x71) & 0xF0) | 0x06));
  outb(0x70, 0x0C);
  (void)inb(0x71);
  ioapic_route(8, REDIR_LEVEL | 0x68, apic_id);
  outb(0x70, 0x0B);
  outb(0x71, (uint8_t)(inb(0x71) | 0x40)); /* periodic interrupt enable */
  wait_for(&rtc_count, 3, 500);
  outb(0x70, 0x0B);
  outb(0x71, (uint8_t)(inb(0x71) & ~0x40));
  outb(0x70, 0x0C);
  (void)inb(0x71);
  wait_for(&rtc_count, ~0u, 2); /* one that came before PIE went off is taken and EOIed */
  check(rtc_count >= 3, "RTC on IOAPIC pin 8, level-triggered");
  check(remote_irr_in_handler, "remote IRR set while the handler runs");
  check(!(ioapic_read(0x10 + 2 * 8) & REDIR_REMOTE_IRR), "the EOI cleared remote IRR");
  ioapic_write(0x10 + 2 * 8, REDIR_MASKED | 0x68);
}

void test_main(void) {
  quiet_pics();
  presence();
  registers();
  self_ipis();
  priorities();
  timer();
  ioapic();
}
