/* Shutdown (SDM Vol. 3 §6.15, interrupt 8): an exception while the processor delivers a
   double fault ends in shutdown - a triple fault. Here the IDT's limit is 0: int3 cannot
   read its gate (#GP), nor can that #GP (#DF), nor the #DF. The machine stops without
   another line. */
#include "lib/conformance.h"

void test_main(void) {
  struct __attribute__((packed)) {
    uint16_t limit;
    uint32_t base;
  } empty = {0, 0};
  print("triple fault next\n");
  __asm__ volatile("lidt %0\n\tint3" : : "m"(empty) : "memory");
  print("FAIL still running after the triple fault\n");
}
