; A floppy boot sector that draws on the VGA through SeaVGABIOS and directly, for
; tests/guest/vga_test.py: teletype output (int 10h AH=0Eh: CR, LF, a tab), a cursor
; move, coloured cells written straight into B800:0000, then "!\n" on the debug console
; port 0xE9 to say the screen is drawn. Then it echoes the keys typed (int 16h, through
; the BIOS's i8042 keyboard driver) at the cursor until Return, says "#\n" and halts.
%include "boot.inc"
    mov si, message
.print:
    lodsb
    test al, al
    jz .printed
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    jmp .print
.printed:
    ; Cursor to row 20, column 10 (int 10h AH=02h).
    mov ah, 0x02
    xor bh, bh
    mov dx, 0x140A
    int 0x10
    ; Row 22 written straight into text memory: every foreground colour on black, then
    ; white on every background that does not blink (attribute bit 7 is blink by default).
    mov ax, 0xB800
    mov es, ax
    mov di, 22 * 160
    mov cx, 16
    mov ax, 0x0041      ; 'A', black on black
.foregrounds:
    stosw
    add ax, 0x0101      ; next letter, next foreground
    loop .foregrounds
    mov cx, 8
    mov ax, 0x0F61      ; 'a', white on black
.backgrounds:
    stosw
    add ax, 0x1001      ; next letter, next background
    loop .backgrounds
    mov al, '!'
    out 0xE9, al
    mov al, 10          ; a whole line: vmm86's --debugcon file is line-buffered
    out 0xE9, al
.key:
    xor ah, ah
    int 0x16            ; AL = the character typed
    cmp al, 13
    je .typed
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    jmp .key
.typed:
    mov al, '#'
    out 0xE9, al
    mov al, 10
    out 0xE9, al
.halt:
    hlt
    jmp .halt
message:
    db "vmm86 VGA test: teletype output", 13, 10
    db "second line, then a tab", 9, "and more", 13, 10, 0
    times 510 - ($ - $$) db 0
    dw 0xAA55
