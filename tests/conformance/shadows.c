/* The instruction boundaries where events wait (SDM Vol. 3 §6.8.3): after MOV SS and
   POP SS no interrupt, NMI or debug trap is taken until the next instruction completed,
   so a stack switch by mov ss; mov esp is never split; after STI maskable interrupts wait
   one instruction. Single-stepping over mov ss traps once, after the instruction after it;
   a timer interrupt kept pending across thousands of mov ss and sti never lands inside
   their shadows. */
#include "lib/conformance.h"

#define PIC1 0x20
#define PIT_CHANNEL0 0x40
#define PIT_MODE 0x43
#define TIMER_VECTOR 0x20

void step_start(void);
void ss_shadowed(void);
void sti_shadowed(void);

/* ---- Single step ---- */
static volatile uint32_t trap_eips[16];
static volatile unsigned traps;

static void on_debug(struct trap_frame* frame) {
  if (traps < 16) trap_eips[traps] = frame->eip;
  ++traps;
}

static void single_step(void) {
  set_trap_handler(1, on_debug);
  __asm__ volatile(
      "pushl %%ss\n\t"
      "pushfl\n\t"
      "orl $0x100, (%%esp)\n\t"
      "popfl\n"                   /* TF: the first trap follows the next instruction */
      "step_start:\n\t"           /* offsets: */
      "nop\n\t"                   /* 0 */
      "movl %%ss, %%eax\n\t"      /* 1 */
      "movl %%eax, %%ss\n\t"      /* 3: no trap after it */
      "nop\n\t"                   /* 5 */
      "nop\n\t"                   /* 6 */
      "popl %%ss\n\t"             /* 7: no trap after it */
      "nop\n\t"                   /* 8 */
      "nop\n\t"                   /* 9 */
      "cli\n\t"                   /* a */
      "sti\n\t"                   /* b: traps (STI holds back interrupts only) */
      "nop\n\t"                   /* c */
      "cli\n\t"                   /* d */
      "pushfl\n\t"                /* e */
      "andl $~0x100, (%%esp)\n\t" /* f */
      "popfl"                     /* 16: TF was set when it began: traps to 17 */
      :
      :
      : "eax", "memory", "cc");
  set_trap_handler(1, 0);
  /* SDM Vol. 3 §6.8.3: after the traps at 1 and 3, none at 5 (the instruction after
     mov ss completes first) and none at 8. */
  print("single-step trap offsets:");
  for (unsigned i = 0; i < traps && i < 16; ++i) print(" %x", trap_eips[i] - (uint32_t)step_start);
  print("\n");
}

/* ---- A pending timer interrupt against the shadows ---- */
static volatile unsigned ticks, ss_violations, sti_violations;

static void on_timer(struct trap_frame* frame) {
  ++ticks;
  if (frame->eip == (uint32_t)ss_shadowed) ++ss_violations;
  if (frame->eip == (uint32_t)sti_shadowed) ++sti_violations;
  outb(PIC1, 0x20); /* EOI */
}

/* 8259A pair: vectors 0x20-0x2F (a BIOS leaves IRQ 0 on vector 8, #DF's), all masked. */
static void pic_init(void) {
  outb(0x20, 0x11);
  outb(0x21, TIMER_VECTOR);
  outb(0x21, 0x04);
  outb(0x21, 0x01);
  outb(0xA0, 0x11);
  outb(0xA1, 0x28);
  outb(0xA1, 0x02);
  outb(0xA1, 0x01);
  outb(0xA1, 0xFF);
  outb(0x21, 0xFF);
}

static void timer_start(void) {
  /* IRQ 0 only, from the 8254's channel 0 at about 10 kHz. */
  outb(0x21, 0xFE);
  outb(PIT_MODE, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
  outb(PIT_CHANNEL0, 119);
  outb(PIT_CHANNEL0, 0);
}

static void timer_stop(void) {
  cli();
  outb(0x21, 0xFF);
}

static void interrupts_against_shadows(void) {
  set_trap_handler(TIMER_VECTOR, on_timer);
  timer_start();
  /* Until 20 ticks (2 ms), at most 2^26 rounds: each round is mov ss; add; sti; add with
     IF set, so a tick that arrives in a shadow is taken one instruction later. */
  uint32_t rounds = 0;
  while (ticks < 20 && rounds < (1u << 26)) {
    __asm__ volatile(
        "movl %%ss, %%eax\n\t"
        "movl %%eax, %%ss\n"
        "ss_shadowed:\n\t"
        "addl $1, %0\n\t"
        "cli\n\t"
        "sti\n"
        "sti_shadowed:\n\t"
        "addl $0, %0"
        : "+r"(rounds)
        :
        : "eax", "memory", "cc");
  }
  timer_stop();
  set_trap_handler(TIMER_VECTOR, 0);
  check(ticks >= 20, "the timer interrupted the loop");
  check_eq(ss_violations, 0, "no interrupt between mov ss and the next instruction");
  check_eq(sti_violations, 0, "no interrupt between sti and the next instruction");
}

void test_main(void) {
  pic_init(); /* the single-step sequence runs an sti */
  single_step();
  interrupts_against_shadows();
}
