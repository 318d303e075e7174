/* Hardware task switches (SDM Vol. 3 §7.3): lcall/ljmp to a TSS and through a GDT task
   gate, int n and an exception with an error code through IDT task gates, the double
   fault handled by a task as Linux's 32-bit kernel does, iret along the back link, a task
   whose CS is conforming with DPL < RPL, busy bits, NT, CR0.TS, the faults before the
   commit point, the T bit, and CR3: each task in its own address space. */
#include "lib/conformance.h"

#define SEL_TSS_A (6 << 3)       /* called, interrupted into, gated: records and irets */
#define SEL_GATE_A (7 << 3)      /* task gate to SEL_TSS_A, DPL 0 */
#define SEL_CONFORMING (8 << 3)  /* conforming code, DPL 0 */
#define SEL_TSS_B (9 << 3)       /* jumped to: jumps back */
#define SEL_TSS_DF (10 << 3)     /* the #DF task */
#define SEL_TSS_GP (11 << 3)     /* the #GP task */
#define SEL_TSS_SHORT (12 << 3)  /* limit 0x66: too short for a 32-bit TSS */
#define SEL_TSS_ABSENT (13 << 3) /* not present */
#define SEL_TSS_C (14 << 3)      /* ring 3 on the conforming segment */
#define SEL_TSS_TS (15 << 3)     /* the #TS task: a safety net for CPUs that refuse SEL_TSS_C */
#define EFLAGS_NT 0x4000
#define CR0_TS 0x8

static struct tss32 tss_a, tss_b, tss_df, tss_gp, tss_c, tss_ts;
static uint8_t stack_a[4096] __attribute__((aligned(16)));
static uint8_t stack_b[4096] __attribute__((aligned(16)));
static uint8_t stack_df[4096] __attribute__((aligned(16)));
static uint8_t stack_gp[4096] __attribute__((aligned(16)));
static uint8_t stack_c[4096] __attribute__((aligned(16)));
static uint8_t stack_c0[4096] __attribute__((aligned(16)));
static uint8_t stack_ts[4096] __attribute__((aligned(16)));

/* What the tasks saw. */
static volatile uint32_t a_runs, a_tr, a_eflags, a_link, a_main_busy;
static volatile uint32_t b_tr, b_eflags, b_main_type;
static volatile uint32_t gp_error, gp_saved_eip, gp_link;
static volatile uint32_t df_error, df_saved_eip, df_tr;
static volatile uint16_t c_cs, c_ss;
static volatile uint32_t ts_error, ts_link;
static volatile uint32_t debug_eip, debug_tr, debug_dr6;

void task_a_entry(void);
void task_a_again(void);
void task_b_entry(void);
void task_gp_entry(void);
void task_df_entry(void);
void task_c_entry(void);
void task_ts_entry(void);
void gp_fault(void);
void gp_resume(void);
void df_fault(void);
void df_resume(void);

static uint16_t str(void) {
  uint16_t tr;
  __asm__ volatile("str %0" : "=r"(tr));
  return tr;
}

/* The type nibble of a descriptor as LAR reads it (9 available TSS, 0xB busy). */
static uint32_t descriptor_type(uint16_t sel) {
  uint32_t access = 0;
  __asm__ volatile("lar %1, %0" : "=r"(access) : "r"((uint32_t)sel));
  return (access >> 8) & 0xF;
}

static void clts(void) { __asm__ volatile("clts"); }

void task_a_body(void);
void task_a_body(void) {
  ++a_runs;
  a_tr = str();
  a_eflags = read_eflags();
  a_link = tss_a.link;
  a_main_busy = descriptor_type(SEL_TSS);
}

void task_b_body(void);
void task_b_body(void) {
  b_tr = str();
  b_eflags = read_eflags();
  b_main_type = descriptor_type(SEL_TSS);
}

/* The #GP and #DF tasks find the error code on their stack, and send the interrupted
   task on past its faulting instruction by editing its saved EIP. */
void task_gp_body(void);
void task_gp_body(void) {
  gp_saved_eip = conformance_tss.eip;
  gp_link = tss_gp.link;
  conformance_tss.eip = (uint32_t)gp_resume;
}

void task_df_body(void);
void task_df_body(void) {
  df_saved_eip = conformance_tss.eip;
  df_tr = str();
  conformance_tss.eip = (uint32_t)df_resume;
}

/* #TS in a task that could not start: note it, make the main task available again and
   jump back to it (it resumes after its lcall). */
void task_ts_body(void);
void task_ts_body(void) {
  ts_link = tss_ts.link;
  gdt_set(5, (uint32_t)&conformance_tss, sizeof conformance_tss - 1, ACC_PRESENT | ACC_TSS32, 0);
}

__asm__(
    ".text\n"
    "task_a_entry:\n"
    "  call task_a_body\n"
    "  iret\n"
    "task_a_again:\n"
    "  jmp task_a_entry\n"
    "task_b_entry:\n"
    "  call task_b_body\n"
    "  ljmp $0x28, $0\n"
    "  jmp task_b_entry\n"
    "task_gp_entry:\n"
    "  popl gp_error\n"
    "  call task_gp_body\n"
    "  iret\n"
    "  jmp task_gp_entry\n"
    "task_df_entry:\n"
    "  popl df_error\n"
    "  call task_df_body\n"
    "  iret\n"
    "  jmp task_df_entry\n"
    "task_c_entry:\n"
    "  movw %cs, c_cs\n"
    "  movw %ss, c_ss\n"
    "  iret\n"
    "  jmp task_c_entry\n"
    "task_ts_entry:\n"
    "  popl ts_error\n"
    "  call task_ts_body\n"
    "  ljmp $0x28, $0\n"
    "  jmp task_ts_entry\n");

static void tss_init(struct tss32* t, void (*entry)(void), uint8_t* stack_top, uint16_t cs, uint16_t data) {
  *t = (struct tss32){0};
  t->eip = (uint32_t)entry;
  t->eflags = 0x2;
  t->esp = (uint32_t)stack_top;
  t->esp0 = (uint32_t)(stack_c0 + sizeof stack_c0);
  t->ss0 = SEL_DATA;
  t->cs = cs;
  t->ss = t->ds = t->es = t->fs = t->gs = data;
  t->cr3 = read_cr3();
  t->iomap_base = sizeof *t;
  t->link = 0xBEEF; /* a sentinel: only a nesting switch writes the link */
}

static void gdt_tss(unsigned index, struct tss32* t) {
  gdt_set(index, (uint32_t)t, sizeof *t - 1, ACC_PRESENT | ACC_TSS32, 0);
}

/* A task gate in the GDT: the TSS selector sits where a segment's base bits 0-15 are. */
static void gdt_task_gate(unsigned index, uint16_t tss_sel, unsigned dpl) {
  gdt_set(index, tss_sel, 0, ACC_PRESENT | ACC_DPL(dpl) | 0x5, 0);
}

static void setup(void) {
  tss_init(&tss_a, task_a_entry, stack_a + sizeof stack_a, SEL_CODE, SEL_DATA);
  tss_init(&tss_b, task_b_entry, stack_b + sizeof stack_b, SEL_CODE, SEL_DATA);
  tss_init(&tss_gp, task_gp_entry, stack_gp + sizeof stack_gp, SEL_CODE, SEL_DATA);
  tss_init(&tss_df, task_df_entry, stack_df + sizeof stack_df, SEL_CODE, SEL_DATA);
  tss_init(&tss_c, task_c_entry, stack_c + sizeof stack_c, SEL_CONFORMING | 3, SEL_USER_DATA);
  tss_init(&tss_ts, task_ts_entry, stack_ts + sizeof stack_ts, SEL_CODE, SEL_DATA);
  gdt_tss(6, &tss_a);
  gdt_task_gate(7, SEL_TSS_A, 0);
  gdt_set(8, 0, 0xFFFFF, ACC_PRESENT | ACC_CODE_DATA | ACC_CODE | ACC_CONFORMING | ACC_READABLE,
          FLAG_GRAN_4K | FLAG_32BIT);
  gdt_tss(9, &tss_b);
  gdt_tss(10, &tss_df);
  gdt_tss(11, &tss_gp);
  gdt_set(12, (uint32_t)&tss_b, 0x66, ACC_PRESENT | ACC_TSS32, 0);
  gdt_set(13, (uint32_t)&tss_b, sizeof tss_b - 1, ACC_TSS32, 0);
  gdt_tss(14, &tss_c);
  gdt_tss(15, &tss_ts);
}

static void call_and_iret(void) {
  clts();
  uint32_t eax = 0x1234, ebx = 0x5678;
  __asm__ volatile("lcall %2, $0" : "+a"(eax), "+b"(ebx) : "i"(SEL_TSS_A) : "memory");
  check_eq(a_runs, 1, "lcall to a TSS runs the task");
  check_eq(a_tr, SEL_TSS_A, "the new task's TR");
  check(a_eflags & EFLAGS_NT, "a called task has NT set");
  check_eq(a_link, SEL_TSS, "its back link is the caller's TSS");
  check_eq(a_main_busy, 0xB, "the caller stays busy while nested");
  check_eq(str(), SEL_TSS, "iret returns to the caller's TSS");
  check(eax == 0x1234 && ebx == 0x5678, "the caller's registers come back from its TSS");
  check(!(read_eflags() & EFLAGS_NT), "the caller's NT stays clear");
  check(read_cr0() & CR0_TS, "a task switch sets CR0.TS");
  check_eq(descriptor_type(SEL_TSS_A), 0x9, "iret leaves the returning task available");
  check(!(tss_a.eflags & EFLAGS_NT), "iret saves the task's EFLAGS with NT clear");
}

static void gates(void) {
  __asm__ volatile("lcall %0, $0" : : "i"(SEL_GATE_A) : "memory");
  check_eq(a_runs, 2, "lcall through a GDT task gate");
  check_eq(a_link, SEL_TSS, "the gate's task links back to the caller");
  idt_set_gate(0x50, 0, SEL_TSS_A, 0x5, 0);
  __asm__ volatile("int $0x50" : : : "memory");
  check_eq(a_runs, 3, "int 0x50 through an IDT task gate");
  check(a_eflags & EFLAGS_NT, "an interrupt task is nested");
  idt_set_gate(0x50, idt_default_handler(0x50), SEL_CODE, 0xE, 0);
}

static void jump(void) {
  tss_b.link = 0xBEEF;
  __asm__ volatile("ljmp %0, $0" : : "i"(SEL_TSS_B) : "memory");
  check_eq(b_tr, SEL_TSS_B, "ljmp to a TSS");
  check(!(b_eflags & EFLAGS_NT), "a jumped-to task is not nested");
  check_eq(b_main_type, 0x9, "ljmp frees the task it leaves");
  check_eq(tss_b.link, 0xBEEF, "ljmp writes no back link");
  check_eq(str(), SEL_TSS, "the task jumped back");
  check_eq(descriptor_type(SEL_TSS_B), 0x9, "and freed the other");
}

static void faults_before_commit(void) {
  int v = TRY("lcall %0, $0", : : "i"(SEL_TSS) : "memory");
  print("lcall to the running (busy) TSS: vector %d error 0x%x\n", v, caught.error);
  check(v == 13 && caught.error == SEL_TSS, "#GP(selector) for a busy TSS");
  v = TRY("ljmp %0, $0", : : "i"(SEL_TSS_SHORT) : "memory");
  print("ljmp to a TSS with limit 0x66: vector %d error 0x%x\n", v, caught.error);
  check(v == 10 && caught.error == SEL_TSS_SHORT, "#TS(selector) for a TSS limit below 0x67");
  v = TRY("lcall %0, $0", : : "i"(SEL_TSS_ABSENT) : "memory");
  print("lcall to a not-present TSS: vector %d error 0x%x\n", v, caught.error);
  check(v == 11 && caught.error == SEL_TSS_ABSENT, "#NP(selector) for a not-present TSS");
  check_eq(str(), SEL_TSS, "no switch happened");
  /* iret with NT to a back link that names an available (not busy) TSS: #TS(link). */
  conformance_tss.link = SEL_TSS_B;
  v = TRY("pushfl; orl $0x4000, (%%esp); popfl; iret", : : : "memory");
  __asm__ volatile("pushfl; andl $~0x4000, (%%esp); popfl" : : : "memory", "cc");
  print("iret with NT to an available TSS: vector %d error 0x%x\n", v, caught.error);
  check(v == 10 && caught.error == SEL_TSS_B, "#TS(back link) for a back link that is not busy");
  conformance_tss.link = 0;
}

static __attribute__((noinline)) void error_code_task(void) {
  idt_set_gate(13, 0, SEL_TSS_GP, 0x5, 0);
  __asm__ volatile(
      "movl $0x1000, %%eax\n"
      "gp_fault:\n\t"
      "movl %%eax, %%ds\n"
      "gp_resume:"
      :
      :
      : "eax", "memory");
  idt_set_gate(13, idt_default_handler(13), SEL_CODE, 0xE, 0);
  check_eq(gp_error, 0x1000, "#GP through a task gate pushes its error code on the new task's stack");
  check_eq(gp_saved_eip, (uint32_t)gp_fault, "the faulting task's saved EIP is the faulting instruction");
  check_eq(gp_link, SEL_TSS, "an exception task links back");
}

static __attribute__((noinline)) void double_fault_task(void) {
  /* Linux's 32-bit kernel handles #DF with a task gate. A #GP whose IDT gate is not present
     raises #NP while it is delivered: two contributory faults are a double fault. */
  struct __attribute__((packed)) {
    uint16_t limit;
    uint32_t base;
  } idtr;
  __asm__ volatile("sidt %0" : "=m"(idtr));
  volatile uint32_t* gp_gate_high = (volatile uint32_t*)(idtr.base + 13 * 8 + 4);
  idt_set_gate(8, 0, SEL_TSS_DF, 0x5, 0);
  *gp_gate_high &= ~0x8000u;
  __asm__ volatile(
      "movl $0x1000, %%eax\n"
      "df_fault:\n\t"
      "movl %%eax, %%ds\n"
      "df_resume:"
      :
      :
      : "eax", "memory");
  *gp_gate_high |= 0x8000u;
  idt_set_gate(8, idt_default_handler(8), SEL_CODE, 0xE, 0);
  check_eq(df_tr, SEL_TSS_DF, "#DF through a task gate runs the #DF task");
  check_eq(df_error, 0, "#DF pushes error code 0 on the new task's stack");
  check_eq(df_saved_eip, (uint32_t)df_fault, "the interrupted task's saved EIP is the first fault's");
}

static void conforming(void) {
  /* CS = conforming, DPL 0, selector RPL 3: valid (SDM Vol. 3 §5.8.1.2: a conforming
     segment's RPL is not checked against its DPL), the task runs at CPL 3 with an SS of DPL
     3. kvm-unit-tests' taskswitch2 found hardware agreeing; a CPU model that raises #TS
     instead lands in the #TS task, which sends the main task on. */
  idt_set_gate(10, 0, SEL_TSS_TS, 0x5, 0);
  __asm__ volatile("lcall %0, $0" : : "i"(SEL_TSS_C) : "memory");
  idt_set_gate(10, idt_default_handler(10), SEL_CODE, 0xE, 0);
  if (ts_link != 0) {
    print("conforming task: #TS error 0x%x in task 0x%x\n", ts_error, ts_link);
  } else {
    print("conforming task: ran with cs 0x%x ss 0x%x\n", c_cs, c_ss);
  }
  gdt_tss(14, &tss_c);
  check_eq(str(), SEL_TSS, "back in the main task");
}

static void on_debug(struct trap_frame* frame) {
  uint32_t dr6;
  __asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
  debug_eip = frame->eip;
  debug_tr = str();
  debug_dr6 = dr6;
}

static void trap_bit(void) {
  /* SDM Vol. 3 §7.2.1: T = 1 raises #DB after the switch, before the new task's first
     instruction, with DR6.BT. */
  set_trap_handler(1, on_debug);
  tss_a.trap = 1;
  __asm__ volatile("lcall %0, $0" : : "i"(SEL_TSS_A) : "memory");
  tss_a.trap = 0;
  set_trap_handler(1, 0);
  print("T bit: #DB at %s in task 0x%x, DR6.BT %u\n",
        debug_eip == (uint32_t)task_a_again ? "the task's next instruction" : "?", debug_tr, (debug_dr6 >> 15) & 1);
}

/* ---- Address spaces: a 32-bit TSS loads CR3 ---- */
#define SHARED_LINEAR 0x40000000u /* 4 MiB page 256: another frame in each address space */
static uint32_t directory_main[1024] __attribute__((aligned(4096)));
static uint32_t directory_task[1024] __attribute__((aligned(4096)));
static struct tss32 tss_d;
static uint8_t stack_d[4096] __attribute__((aligned(16)));
static volatile uint32_t d_view, d_cr3;
void task_d_entry(void);
__asm__(
    ".text\n"
    "task_d_entry:\n"
    "  movl 0x40000000, %eax\n"
    "  movl %eax, d_view\n"
    "  movl %cr3, %eax\n"
    "  movl %eax, d_cr3\n"
    "  ljmp $0x28, $0\n"
    "  jmp task_d_entry\n");

static void address_spaces(void) {
  for (uint32_t i = 0; i < 1024; ++i) directory_main[i] = directory_task[i] = i * 0x400000u | 0x83;
  directory_main[SHARED_LINEAR >> 22] = 0xC00000u | 0x83;
  directory_task[SHARED_LINEAR >> 22] = 0x800000u | 0x83;
  *(volatile uint32_t*)0xC00000u = 0x3A1F;
  *(volatile uint32_t*)0x800000u = 0x7A5C;
  tss_init(&tss_d, task_d_entry, stack_d + sizeof stack_d, SEL_CODE, SEL_DATA);
  tss_d.cr3 = (uint32_t)directory_task;
  conformance_tss.cr3 = (uint32_t)directory_main; /* what the jump back loads */
  gdt_tss(9, &tss_d);
  write_cr3((uint32_t)directory_main);
  write_cr4(read_cr4() | 0x10);        /* PSE */
  write_cr0(read_cr0() | 0x80000000u); /* PG */
  const uint32_t before = *(volatile uint32_t*)SHARED_LINEAR;
  __asm__ volatile("ljmp %0, $0" : : "i"(SEL_TSS_B) : "memory");
  const uint32_t after = *(volatile uint32_t*)SHARED_LINEAR;
  const uint32_t cr3 = read_cr3();
  write_cr0(read_cr0() & ~0x80000000u);
  check_eq(before, 0x3A1F, "the main task's view of the shared page");
  check_eq(d_cr3, (uint32_t)directory_task, "a task switch loads the new TSS's CR3");
  check_eq(d_view, 0x7A5C, "the new task sees its own address space");
  check_eq(cr3, (uint32_t)directory_main, "the switch back loads the main TSS's CR3");
  check_eq(after, 0x3A1F, "and the main task its own view again");
}

void test_main(void) {
  setup();
  call_and_iret();
  gates();
  jump();
  faults_before_commit();
  error_code_task();
  double_fault_task();
  conforming();
  trap_bit();
  address_spaces();
}
