; qemu_boot.asm: a boot sector that lets QEMU + SeaBIOS run a guest program under the
; contract of README.md: it reads the sectors that follow it on the boot disk to 0000:8000
; and jumps there in real mode with interrupts disabled. Used by run_qemu.py only.

        cpu     P6
        org     0x7C00
        bits    16

PROGRAM_SECTORS equ 64                      ; 32 KiB: run_qemu.py refuses larger programs

start:
        cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7C00
        sti                                 ; the BIOS disk service may need interrupts
        mov     si, dap
        mov     ah, 0x42                    ; extended read (LBA); dl = boot drive
        int     0x13
        jc      .error
        cli
        jmp     0x0000:0x8000
.error:
        mov     si, msg_error
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

dap:    db      16, 0                       ; size, reserved
        dw      PROGRAM_SECTORS
        dw      0x8000, 0x0000              ; buffer offset, segment
        dq      1                           ; first LBA: the sector after this one
msg_error:
        db      "BOOT FAIL", 10, 0

        times 510 - ($ - $$) db 0
        dw      0xAA55
