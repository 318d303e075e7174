; A floppy boot sector that sets a graphics mode through SeaVGABIOS and draws, for
; tests/guest/vga_test.py graphics (assembled four times, MODE = 13h, 12h, VBE or 50):
;   13h: 320x200x256, chain-4: every byte (offset low ^ offset high), DAC entry 255 set
;        through 0x3C8/0x3C9;
;   12h: 640x480x16 planar: horizontal bars through write mode 2 (the colour as data),
;        then a diagonal through int 10h AH=0Ch (the BIOS's own planar pixel writes);
;   VBE: mode 101h (640x480x256) through int 10h AX=4F02h, two 64K banks of the window
;        (the second through AX=4F05h) written with the 13h pattern;
;   50:  80x50 text: mode 3, then the 8x8 font (AX=1112h: 50 rows), and 50 numbered lines
;        printed through int 10h AH=0Eh (the last scrolls the screen).
; Then "!\n" on port 0xE9 and a halt loop.
%include "boot.inc"
    mov ax, 0xA000
    mov es, ax
%if MODE == 0x13
    mov ax, 0x0013
    int 0x10
    xor di, di
    mov cx, 64000
.pixels:
    mov ax, di
    xor al, ah
    stosb
    loop .pixels
    mov dx, 0x3C8
    mov al, 255
    out dx, al
    inc dx
    mov al, 0x3F        ; bright orange
    out dx, al
    mov al, 0x20
    out dx, al
    xor al, al
    out dx, al
%elif MODE == 0x12
    mov ax, 0x0012
    int 0x10
    mov dx, 0x3CE
    mov ax, 0x0205      ; graphics mode register: write mode 2
    out dx, ax
    mov ax, 0xFF08      ; bit mask: all eight pixels
    out dx, ax
    xor di, di
    xor bx, bx          ; line
.line:
    mov ax, bx
    mov cl, 30
    div cl              ; AL = line / 30: one colour per 30 lines
    mov cx, 80
    rep stosb
    inc bx
    cmp bx, 480
    jb .line
    mov ax, 0x0005      ; write mode 0 again, as the BIOS expects it
    out dx, ax
    xor cx, cx          ; the diagonal: x = y = 0..199, colour 15
.diagonal:
    mov dx, cx
    mov ax, 0x0C0F
    xor bh, bh
    int 0x10
    inc cx
    cmp cx, 200
    jb .diagonal
%elif MODE == 50
    mov ax, 0x0003
    int 0x10
    mov ax, 0x1112
    xor bl, bl
    int 0x10
    mov cx, 51          ; lines 1..51: the 51st scrolls the first away
    mov dl, '0'
.text_line:
    mov si, line
.text_char:
    lodsb
    test al, al
    jz .text_number
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    jmp .text_char
.text_number:
    inc dl
    cmp dl, '9' + 1
    jb .digit
    mov dl, '0'
.digit:
    mov al, dl
    mov ah, 0x0E
    int 0x10
    mov al, 13
    int 0x10
    mov al, 10
    int 0x10
    loop .text_line
%else
    mov ax, 0x4F02
    mov bx, 0x0101
    int 0x10
    xor dx, dx          ; bank 0, then 1
.bank:
    push dx
    mov ax, 0x4F05
    xor bx, bx
    int 0x10
    pop dx
    xor di, di
    mov cx, 0x8000
.vbe_pixels:
    mov ax, di
    xor al, ah
    add al, dl
    stosw
    loop .vbe_pixels
    inc dx
    cmp dx, 2
    jb .bank
%endif
    mov al, '!'
    out 0xE9, al
    mov al, 10
    out 0xE9, al
.halt:
    hlt
    jmp .halt
%if MODE == 50
line:
    db "80x50 text mode, 8x8 font from plane 2, line digit ", 0
%endif
    times 510 - ($ - $$) db 0
    dw 0xAA55
