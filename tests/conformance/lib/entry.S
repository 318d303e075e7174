/* Multiboot (v1) entry of every conformance kernel, and the 256 IDT stubs.
   The loader (QEMU's -kernel, vmm86's --kernel) enters _start in flat 32-bit protected
   mode with EAX = the Multiboot magic and EBX = the information structure. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* modules page-aligned, memory fields wanted */

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .section .bss
        .align 16
        .globl conformance_stack_top
conformance_stack:
        .skip 65536
conformance_stack_top:

        .text
        .globl _start
_start:
        cli
        cld
        movl $conformance_stack_top, %esp
        pushl %ebx
        pushl %eax
        call conformance_start
1:      cli
        hlt
        jmp 1b

/* One stub per vector: the CPU pushes an error code for 8, 10-14 and 17; for the others
   the stub pushes 0 so that every frame has the same layout (struct trap_frame). */
.macro isr_stub vec
isr_stub_\vec:
  .if \vec == 8 || (\vec >= 10 && \vec <= 14) || \vec == 17
  .else
        pushl $0
  .endif
        pushl $\vec
        jmp isr_common
.endm
.macro isr_pointer vec
        .long isr_stub_\vec
.endm

        .altmacro
        .set vector, 0
        .rept 256
        isr_stub %vector
        .set vector, vector + 1
        .endr

isr_common:
        pushal
        pushl %ds
        pushl %es
        pushl %fs
        pushl %gs
        movl $0x10, %eax
        movl %eax, %ds
        movl %eax, %es
        pushl %esp
        call conformance_isr
        addl $4, %esp
        popl %gs
        popl %fs
        popl %es
        popl %ds
        popal
        addl $8, %esp
        iret

        .section .rodata
        .align 4
        .globl conformance_isr_stubs
conformance_isr_stubs:
        .set vector, 0
        .rept 256
        isr_pointer %vector
        .set vector, vector + 1
        .endr
        .noaltmacro

        .section .note.GNU-stack, "", @progbits
