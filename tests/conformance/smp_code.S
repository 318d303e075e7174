/* Assembly for the smp kernel. The application processors' start: a start-up IPI with vector 0x70 starts an AP in real
   mode at 7000:0000. The BSP copies [smp_trampoline, smp_trampoline_end) to 0x70000 and
   fills in the GDT register image first; the code is position-independent in real mode
   (DS = CS) and jumps to ap_entry32 at its link address in flat protected mode. */
#define SEL_CODE 0x08
#define SEL_DATA 0x10

        .text
        .code16
        .globl smp_trampoline, smp_trampoline_end, smp_trampoline_gdtr
smp_trampoline:
        cli
        movw %cs, %ax
        movw %ax, %ds
        lgdtl smp_trampoline_gdtr - smp_trampoline
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $SEL_CODE, $ap_entry32
        .align 4
smp_trampoline_gdtr:
        .word 0
        .long 0
smp_trampoline_end:

        .code32
ap_entry32:
        movl $SEL_DATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %fs
        movl %eax, %gs
        movl %eax, %ss
        movl $ap_stack_top, %esp
        call ap_main
1:      cli
        hlt
        jmp 1b

/* Cross-modifying code: a function alone on its page that returns the immediate an AP
   rewrites (xmc_immediate) while the BSP may have it translated. */
        .balign 4096
        .globl xmc_function, xmc_immediate
xmc_function:
        .byte 0xB8                /* mov $imm32, %eax */
xmc_immediate:
        .long 1
        ret
        .balign 4096

        .section .bss
        .align 16
ap_stack:
        .skip 16384
ap_stack_top:

        .section .note.GNU-stack, "", @progbits
