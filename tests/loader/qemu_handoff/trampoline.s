# A Multiboot (v1) kernel that hands a guest built by vmm86's Linux loader to the real
# kernel, inside QEMU: it copies each module to its guest-physical address and enters the
# kernel with the loader's registers, GDT and boot_params. This tests the loader's output
# against a real CPU model, independent of vmm86's own engines.
#
# Modules, in order: plan.bin, then the pieces of guest RAM. plan.bin holds 32-bit words:
#   eip, esi, esp, cs, ds, gdtr.limit, gdtr.base, then one destination per further module.
# Modules are copied last to first: the first piece is low memory, which overwrites the
# area where QEMU keeps the multiboot information this code reads.
# Assemble: as --32 -o trampoline.o trampoline.s; ld -m elf_i386 -Ttext=0x200000 ...
        .text
        .code32
        .align 4
multiboot_header:
        .long 0x1BADB002                # magic
        .long 0                         # flags: nothing needed from the loader
        .long -0x1BADB002               # checksum

        .globl _start
_start:
        cli
        mov $0x80000, %esp              # a stack in low RAM the guest pieces do not cover
        mov 20(%ebx), %ecx              # mods_count
        mov 24(%ebx), %ebp              # mods_addr: {start, end, string, reserved} each
        mov (%ebp), %edx                # plan.bin
        mov %edx, plan

next_module:
        dec %ecx
        jz enter_kernel                 # module 0 is the plan itself
        mov %ecx, %eax
        shl $4, %eax
        mov (%ebp,%eax), %esi           # source
        mov 4(%ebp,%eax), %ebx
        sub %esi, %ebx                  # length
        mov plan, %edx
        mov 24(%edx,%ecx,4), %edi       # destination: plan word 7 + (index - 1)
        push %ecx
        mov %ebx, %ecx
        cmp %esi, %edi
        jbe 1f
        lea -1(%esi,%ecx), %esi         # destination above source: copy backwards
        lea -1(%edi,%ecx), %edi
        std
1:      rep movsb
        cld
        pop %ecx
        jmp next_module

enter_kernel:
        mov plan, %edx
        mov 20(%edx), %eax              # gdtr.limit
        mov %ax, gdtr
        mov 24(%edx), %eax              # gdtr.base
        mov %eax, gdtr+2
        lgdt gdtr
        mov (%edx), %eax                # eip
        mov %eax, far_target
        mov 12(%edx), %eax              # cs
        mov %ax, far_target+4
        mov 16(%edx), %eax              # ds
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %fs
        mov %ax, %gs
        mov %ax, %ss
        mov 8(%edx), %esp
        mov 4(%edx), %esi
        xor %eax, %eax
        xor %ebx, %ebx
        xor %ecx, %ecx
        xor %ebp, %ebp
        xor %edi, %edi
        ljmp *far_target                # to cs:eip, through the new GDT

        .data
        .align 4
plan:   .long 0
gdtr:   .word 0
        .long 0
        .align 4
far_target:
        .long 0
        .word 0
