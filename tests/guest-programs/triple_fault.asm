; triple_fault.asm: enters protected mode, loads an IDT with limit 0 and executes int3.
; Vector 3 lies beyond the IDT limit (#GP), so does vector 13 (#DF), so does vector 8:
; the CPU shuts down (triple fault). Same entry contract as pmode.asm (README.md).
; Prints nothing; if execution ever goes on past int3 it reports "FAIL 1\n" on port 0xE9.

        cpu     P6
        org     0x8000

SEL_CODE0       equ 0x08
SEL_DATA0       equ 0x10

        bits    16
start:
        cli
        xor     ax, ax
        mov     ds, ax
        mov     ss, ax
        mov     sp, 0x7C00
        lgdt    [gdtr]
        mov     eax, cr0
        or      al, 1
        mov     cr0, eax
        jmp     dword SEL_CODE0:pm_entry

        bits    32
pm_entry:
        mov     ax, SEL_DATA0
        mov     ds, ax
        mov     ss, ax
        mov     esp, 0x7C00
        lidt    [idtr_empty]
        int3
        mov     esi, msg_fail
        mov     dx, 0xE9
.print:
        lodsb
        test    al, al
        jz      .halt
        out     dx, al
        jmp     .print
.halt:
        cli
        hlt
        jmp     .halt

msg_fail:       db "FAIL 1", 10, 0

        align   8
gdt:
        dq      0
        dq      0x00CF9A000000FFFF          ; 0x08 ring-0 code: flat, 32-bit
        dq      0x00CF92000000FFFF          ; 0x10 ring-0 data: flat
gdt_end:
gdtr:
        dw      gdt_end - gdt - 1
        dd      gdt
idtr_empty:
        dw      0                           ; limit 0: not even vector 0 fits
        dd      0
