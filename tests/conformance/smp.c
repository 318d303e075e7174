/* Several CPUs (Intel SDM Vol. 3A §8.4, §10.6, §8.1): the BSP starts the AP with INIT and two
   start-up IPIs into a real-mode trampoline (smp_code.S); the AP's APIC ID and CPUID initial
   APIC ID; lock-prefixed increments, a cmpxchg8b counter and a ticket spinlock run by both
   CPUs at once (atomicity across CPUs); fixed IPIs between them, by destination and by the
   all-excluding-self shorthand; cross-modifying code (the AP rewrites a function the BSP has
   run, the BSP serializes and runs the new code); a second INIT and start-up IPI restart the
   AP. Only the BSP prints. Run with two CPUs (QEMU -smp 2, vmm86 --smp 2). */
#include "lib/platform.h"

enum { APIC_ID = 0x20, APIC_EOI = 0xB0, APIC_SVR = 0xF0, APIC_ICR_LOW = 0x300, APIC_ICR_HIGH = 0x310 };
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_PENDING (1u << 12)
#define ICR_ALL_EXCLUDING_SELF (3u << 18)
#define TRAMPOLINE 0x70000u
#define TRAMPOLINE_VECTOR (TRAMPOLINE >> 12)
#define VECTOR_TO_AP 0x40
#define VECTOR_TO_BSP 0x41
#define ROUNDS 20000u

extern char smp_trampoline[], smp_trampoline_end[], smp_trampoline_gdtr[];
extern uint32_t xmc_function(void);
extern volatile uint32_t xmc_immediate;
void ap_main(void);

static void send_ipi(uint8_t destination, uint32_t low) {
  apic_write(APIC_ICR_HIGH, (uint32_t)destination << 24);
  apic_write(APIC_ICR_LOW, low);
  while (apic_read(APIC_ICR_LOW) & ICR_PENDING) {
  }
}

/* Waits until *value reaches `n` or 2 s pass (interrupts as they are). */
static bool wait_until(volatile uint32_t* value, uint32_t n) {
  for (unsigned ms = 0; ms < 2000 && *value < n; ++ms) pit_wait_ms(1);
  return *value >= n;
}

static volatile uint32_t ap_starts, ap_apic_id = 0xFF, ap_cpuid_id = 0xFF;
static volatile uint32_t go, ap_done, command, xmc_done;
static volatile uint32_t lock_counter, plain_counter, ticket_next, ticket_serving;
static volatile uint64_t cx8_counter;
static volatile uint32_t ap_ipis, bsp_ipis;
static struct {
  uint16_t limit;
  uint32_t base;
} __attribute__((packed)) idtr;

static void locked_increment(volatile uint32_t* p) { __asm__ volatile("lock incl %0" : "+m"(*p) : : "memory"); }
static void cx8_increment(volatile uint64_t* p) {
  uint32_t lo = (uint32_t)*p, hi = (uint32_t)(*p >> 32);
  for (;;) {
    const uint64_t next = (((uint64_t)hi << 32) | lo) + 1;
    uint8_t ok;
    __asm__ volatile("lock cmpxchg8b %1; sete %0"
                     : "=q"(ok), "+m"(*p), "+a"(lo), "+d"(hi)
                     : "b"((uint32_t)next), "c"((uint32_t)(next >> 32))
                     : "memory", "cc");
    if (ok) return;
  }
}
static void ticket_lock(void) {
  uint32_t ticket = 1;
  __asm__ volatile("lock xaddl %0, %1" : "+r"(ticket), "+m"(ticket_next) : : "memory");
  while (ticket_serving != ticket) __asm__ volatile("pause" ::: "memory");
}
static void ticket_unlock(void) { ticket_serving = ticket_serving + 1; }

/* What both CPUs run at once. */
static void work(void) {
  for (uint32_t i = 0; i < ROUNDS; ++i) {
    locked_increment(&lock_counter);
    cx8_increment(&cx8_counter);
    ticket_lock();
    plain_counter = plain_counter + 1;
    ticket_unlock();
  }
}

static void on_ipi_to_ap(struct trap_frame* f) {
  (void)f;
  ++ap_ipis;
  apic_write(APIC_EOI, 0);
  send_ipi(0, VECTOR_TO_BSP); /* the answer */
}
static void on_ipi_to_bsp(struct trap_frame* f) {
  (void)f;
  ++bsp_ipis;
  apic_write(APIC_EOI, 0);
}

void ap_main(void) {
  __asm__ volatile("lidt %0" : : "m"(idtr));
  ap_apic_id = apic_read(APIC_ID) >> 24;
  ap_cpuid_id = cpuid(1, 0).ebx >> 24;
  apic_write(APIC_SVR, 0x1FF);
  locked_increment(&ap_starts);
  if (ap_starts > 1) { /* the restart: nothing more to do */
    for (;;) __asm__ volatile("cli; hlt");
  }
  while (!go) __asm__ volatile("pause" ::: "memory");
  work();
  ap_done = 1;
  sti();
  for (;;) {
    if (command == 1) {
      command = 0;
      xmc_immediate = 2;
      xmc_done = 1;
    }
    __asm__ volatile("pause" ::: "memory");
  }
}

static void start_ap(void) {
  send_ipi(1, ICR_INIT | ICR_LEVEL_ASSERT);
  pit_wait_ms(10);
  send_ipi(1, ICR_STARTUP | TRAMPOLINE_VECTOR);
  pit_wait_ms(1);
  send_ipi(1, ICR_STARTUP | TRAMPOLINE_VECTOR);
}

void test_main(void) {
  /* The 8259s masked: after firmware (QEMU runs SeaBIOS before -kernel) the PIT ticks through
     them at vector 8, which would look like #DF here. */
  outb(0x21, 0xFF);
  outb(0xA1, 0xFF);
  check_eq(cpuid(1, 0).ebx >> 24, 0, "BSP initial APIC ID (CPUID.1:EBX[31:24])");
  check_eq(apic_read(APIC_ID) >> 24, 0, "BSP APIC ID register");
  apic_write(APIC_SVR, 0x1FF);
  set_trap_handler(VECTOR_TO_AP, on_ipi_to_ap);
  set_trap_handler(VECTOR_TO_BSP, on_ipi_to_bsp);
  __asm__ volatile("sidt %0" : "=m"(idtr));

  char* trampoline = (char*)TRAMPOLINE;
  for (char* p = smp_trampoline; p < smp_trampoline_end; ++p) trampoline[p - smp_trampoline] = *p;
  __asm__ volatile("sgdt %0" : "=m"(*(trampoline + (smp_trampoline_gdtr - smp_trampoline))) : : "memory");

  start_ap();
  check(wait_until(&ap_starts, 1), "AP started by INIT, SIPI, SIPI");
  check_eq(ap_apic_id, 1, "AP APIC ID register");
  check_eq(ap_cpuid_id, 1, "AP initial APIC ID (CPUID.1:EBX[31:24])");

  go = 1;
  work();
  check(wait_until(&ap_done, 1), "AP finished its rounds");
  check_eq(lock_counter, 2 * ROUNDS, "lock inc from both CPUs");
  check_eq(cx8_counter, 2 * ROUNDS, "lock cmpxchg8b from both CPUs");
  check_eq(plain_counter, 2 * ROUNDS, "counter under a ticket spinlock");

  sti();
  send_ipi(1, VECTOR_TO_AP);
  check(wait_until(&bsp_ipis, 1), "fixed IPI to the AP, its answer to the BSP");
  send_ipi(0, ICR_ALL_EXCLUDING_SELF | VECTOR_TO_AP);
  check(wait_until(&bsp_ipis, 2), "all-excluding-self IPI reaches the AP only");
  cli();
  check_eq(ap_ipis, 2, "IPIs the AP took");
  check_eq(bsp_ipis, 2, "IPIs the BSP took");

  uint32_t before = 0;
  for (int i = 0; i < 1000; ++i) before += xmc_function();
  check_eq(before, 1000, "function before the AP rewrites it");
  command = 1;
  check(wait_until(&xmc_done, 1), "AP rewrote the function");
  (void)cpuid(0, 0); /* serializing: the BSP must now run the new code (SDM §8.1.3) */
  check_eq(xmc_function(), 2, "cross-modifying code: new code after serializing");

  send_ipi(1, ICR_INIT | ICR_LEVEL_ASSERT);
  pit_wait_ms(10);
  send_ipi(1, ICR_STARTUP | TRAMPOLINE_VECTOR);
  check(wait_until(&ap_starts, 2), "AP restarted by INIT and SIPI");
  conformance_exit();
}
