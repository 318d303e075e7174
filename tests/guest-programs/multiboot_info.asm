; multiboot_info.asm: a Multiboot (version 1) kernel that prints what its boot loader gave
; it on COM1 and ends through QEMU's isa-debug-exit device, for comparing vmm86's Multiboot
; loader with QEMU's -kernel (tests/guest/multiboot_test.py; README.md, "Multiboot kernels").
;
; Two builds from this file:
;   nasm -f bin                 an a.out-kludge image: the header's address fields (flags
;                               bit 16) say where it goes, with a bss after the file
;   nasm -f bin -DMB_ELF        an ELF32 executable made by hand: one PT_LOAD segment whose
;                               p_vaddr is p_paddr + 0xC0000000 and e_entry virtual, so the
;                               loader must move the entry point to the physical copy
; Both load at 1 MiB and ask for page-aligned modules and memory information (bits 0, 1).
;
; Then the ACPI tables as an OS finds them without help (the Multiboot information has no
; pointer to them): the RSDP by its signature and checksum on a 16-byte boundary of
; 0xE0000-0xFFFFF, the RSDT, the FADT's PM registers and SCI, the DSDT's \_S5 package.
; Output, one "key=value" line each (hex numbers), then the exit value 0x2A on port 0xF4
; (exit status 85) when EAX held the Multiboot magic and the bss was zero, 0x01 (status 3)
; otherwise; then cli; hlt.

        cpu     P6
        bits    32

LOAD_ADDR       equ 0x100000
VIRT_OFFSET     equ 0xC0000000
COM1            equ 0x3F8
EXIT_PORT       equ 0xF4
EXIT_PASS       equ 0x2A
EXIT_FAIL       equ 0x01
MAX_STRING      equ 200             ; characters printed of a guest string
MAX_MODULES     equ 8               ; module entries printed
MAX_MMAP        equ 32              ; memory map entries printed
BSS_CHECK_BYTES equ 0x4000

MB_MAGIC        equ 0x1BADB002
%ifdef MB_ELF
MB_FLAGS        equ 0x00000003      ; page-aligned modules, memory information
%else
MB_FLAGS        equ 0x00010003      ; and the a.out kludge
%endif

        org     LOAD_ADDR
file_start:

%ifdef MB_ELF
elf_header:
        db      0x7F, "ELF", 1, 1, 1, 0     ; ELFCLASS32, little endian, version 1, System V
        times 8 db 0
        dw      2                           ; e_type: ET_EXEC
        dw      3                           ; e_machine: EM_386
        dd      1                           ; e_version
        dd      start + VIRT_OFFSET         ; e_entry: the virtual address
        dd      program_header - file_start ; e_phoff
        dd      0                           ; e_shoff
        dd      0                           ; e_flags
        dw      52                          ; e_ehsize
        dw      32                          ; e_phentsize
        dw      1                           ; e_phnum
        dw      0, 0, 0                     ; e_shentsize, e_shnum, e_shstrndx
program_header:
        dd      1                           ; p_type: PT_LOAD
        dd      0                           ; p_offset
        dd      LOAD_ADDR + VIRT_OFFSET     ; p_vaddr
        dd      LOAD_ADDR                   ; p_paddr
        dd      file_end - file_start       ; p_filesz
        dd      bss_end - file_start        ; p_memsz: the bss follows the file's bytes
        dd      7                           ; p_flags: read, write, execute
        dd      0x1000                      ; p_align
%endif

        align   4
multiboot_header:
        dd      MB_MAGIC
        dd      MB_FLAGS
        dd      -(MB_MAGIC + MB_FLAGS)
%ifndef MB_ELF
        dd      multiboot_header            ; header_addr
        dd      LOAD_ADDR                   ; load_addr: the file's first byte
        dd      file_end                    ; load_end_addr
        dd      bss_end                     ; bss_end_addr
        dd      start                       ; entry_addr
%endif

; ---- Entry: EAX = magic, EBX = information structure, flat segments, no stack ----
start:
        mov     [entry_eax], eax
        mov     [entry_ebx], ebx
        mov     esp, stack_top
        pushfd
        pop     dword [entry_eflags]
        mov     eax, cr0
        mov     [entry_cr0], eax
        call    .here
.here:  pop     eax
        sub     eax, .here - start
        mov     [entry_eip], eax
        call    serial_init
        call    print_entry_state
        mov     ebx, [entry_ebx]
        call    print_info
        call    print_acpi
        call    check_bss
        ; The verdict: isa-debug-exit ends the machine here.
        mov     al, EXIT_PASS
        cmp     dword [entry_eax], 0x2BADB002
        jne     .fail
        cmp     byte [bss_dirty], 0
        je      .exit
.fail:  mov     al, EXIT_FAIL
.exit:  out     EXIT_PORT, al
.halt:  cli
        hlt
        jmp     .halt

; ---- What the CPU looked like at the entry ----
print_entry_state:
        mov     esi, s_magic
        mov     eax, [entry_eax]
        call    print_hex_line
        mov     esi, s_info
        mov     eax, [entry_ebx]
        call    print_hex_line
        mov     esi, s_eip
        mov     eax, [entry_eip]
        call    print_hex_line
        mov     esi, s_cr0
        mov     eax, [entry_cr0]
        and     eax, 0x80000001             ; PG and PE
        call    print_hex_line
        mov     esi, s_eflags
        mov     eax, [entry_eflags]
        and     eax, 0x00020200             ; VM and IF
        call    print_hex_line
        mov     esi, s_segments             ; "segments=" cs ds es fs gs ss
        call    puts
        mov     ax, cs
        call    print_selector
        mov     ax, ds
        call    print_selector
        mov     ax, es
        call    print_selector
        mov     ax, fs
        call    print_selector
        mov     ax, gs
        call    print_selector
        mov     ax, ss
        call    print_selector
        jmp     newline

print_selector:                             ; ax, then a space
        movzx   eax, ax
        call    put_hex16
        mov     al, ' '
        jmp     putc

; ---- The information structure at EBX ----
print_info:
        mov     edi, info_head
        call    print_fields
        call    print_modules
        mov     edi, info_mmap
        call    print_fields
        call    print_mmap
        mov     edi, info_tail
        jmp     print_fields

; Prints the fields of the table at edi: (key string, offset in the structure at ebx,
; printer) triples up to a null key.
print_fields:
.next:  mov     esi, [edi]
        test    esi, esi
        jz      .done
        mov     eax, [edi + 4]
        mov     eax, [ebx + eax]
        call    [edi + 8]
        add     edi, 12
        jmp     .next
.done:  ret

; Each module: "modN=start end string", "modN.string=ADDR 'text'", "modN.hash=HASH".
print_modules:
        mov     ecx, [ebx + 20]
        cmp     ecx, MAX_MODULES
        jbe     .count_ok
        mov     ecx, MAX_MODULES
.count_ok:
        mov     edi, [ebx + 24]
        xor     edx, edx                    ; module index
.next:  test    ecx, ecx
        jz      .done
        push    ecx
        push    edx
        mov     esi, s_mod
        call    puts
        mov     eax, edx
        call    put_digit
        mov     al, '='
        call    putc
        mov     eax, [edi + 0]
        call    put_hex32_space
        mov     eax, [edi + 4]
        call    put_hex32_space
        mov     eax, [edi + 8]
        call    put_hex32
        call    newline
        mov     esi, s_mod_string
        call    print_mod_key
        mov     eax, [edi + 8]
        call    print_string_value
        mov     esi, s_mod_hash
        call    print_mod_key
        mov     eax, [edi + 0]
        mov     ecx, [edi + 4]
        call    hash_range
        call    put_hex32
        call    newline
        pop     edx
        pop     ecx
        add     edi, 16
        inc     edx
        dec     ecx
        jmp     .next
.done:  ret

; Each entry: "mmap=base length type" (64-bit base and length as 16 digits), following
; the size field of each entry.
print_mmap:
        mov     edi, [ebx + 48]
        mov     edx, edi
        add     edx, [ebx + 44]             ; end of the map
        mov     ecx, MAX_MMAP
.next:  cmp     edi, edx
        jae     .done
        test    ecx, ecx
        jz      .done
        push    ecx
        mov     esi, s_mmap
        call    puts
        mov     eax, [edi + 8]              ; base, high half first
        call    put_hex32
        mov     eax, [edi + 4]
        call    put_hex32_space
        mov     eax, [edi + 16]             ; length
        call    put_hex32
        mov     eax, [edi + 12]
        call    put_hex32_space
        mov     eax, [edi + 20]             ; type
        call    put_hex32
        call    newline
        pop     ecx
        mov     eax, [edi]                  ; the size field does not count itself
        lea     edi, [edi + eax + 4]
        dec     ecx
        jmp     .next
.done:  ret

print_mod_key:                              ; "mod" edx, then the suffix at esi
        push    esi
        mov     esi, s_mod
        call    puts
        pop     esi
        mov     eax, edx
        call    put_digit
        jmp     puts

; A 32-bit hash (h = h * 31 + byte) of [eax, ecx); result in eax.
hash_range:
        push    esi
        push    edx
        mov     esi, eax
        xor     eax, eax
.next:  cmp     esi, ecx
        jae     .done
        imul    eax, eax, 31
        movzx   edx, byte [esi]
        add     eax, edx
        inc     esi
        jmp     .next
.done:  pop     edx
        pop     esi
        ret

;; ---- ACPI ----
ACPI_SCAN_START equ 0xE0000
ACPI_SCAN_END   equ 0x100000
RSDP_SIZE       equ 20              ; revision 0; the checksum covers these bytes
HEADER_SIZE     equ 36              ; of every table but the FACS

%macro print_field 3                ; key string, offset from esi, 1, 2 or 4 bytes
        push    esi
        mov     esi, %1
        call    puts
        pop     esi
%if %3 == 1
        movzx   eax, byte [esi + %2]
%elif %3 == 2
        movzx   eax, word [esi + %2]
%else
        mov     eax, [esi + %2]
%endif
        call    put_hex32
        call    newline
%endmacro

print_acpi:
        mov     esi, ACPI_SCAN_START
.scan:  cmp     esi, ACPI_SCAN_END
        jae     .none
        cmp     dword [esi], 'RSD '
        jne     .step
        cmp     dword [esi + 4], 'PTR '
        jne     .step
        mov     ecx, RSDP_SIZE
        call    byte_sum
        test    al, al
        jz      .rsdp
.step:  add     esi, 16
        jmp     .scan
.none:  mov     esi, s_acpi_none
        jmp     puts_line
.rsdp:  print_field s_rsdp_revision, 15, 1
        mov     esi, [esi + 16]             ; the RSDT
        mov     eax, 'RSDT'
        call    check_table
        jnz     .bad
        lea     edx, [esi + HEADER_SIZE]
        mov     edi, esi
        add     edi, [esi + 4]              ; the RSDT's end
.entry: cmp     edx, edi
        jae     .bad
        mov     esi, [edx]
        add     edx, 4
        mov     eax, 'FACP'
        call    check_table
        jnz     .entry
        print_field s_sci_int, 46, 2
        print_field s_smi_cmd, 48, 4
        print_field s_pm1a_evt, 56, 4
        print_field s_pm1a_cnt, 64, 4
        print_field s_pm_tmr, 76, 4
        print_field s_gpe0, 80, 4
        push    esi
        mov     esi, [esi + 36]             ; FIRMWARE_CTRL: the FACS (no checksum)
        cmp     dword [esi], 'FACS'
        pop     esi
        jne     .bad
        mov     esi, [esi + 40]             ; the DSDT
        mov     eax, 'DSDT'
        call    check_table
        jnz     .bad
        ; \_S5: the name segment, then its Package (opcode, length, count, elements).
        mov     edi, esi
        add     edi, [esi + 4]
        add     esi, HEADER_SIZE
.s5:    cmp     esi, edi
        jae     .bad
        cmp     dword [esi], '_S5_'
        je      .s5_found
        inc     esi
        jmp     .s5
.s5_found:
        push    esi
        mov     esi, s_s5
        call    puts
        pop     esi
        mov     ecx, 7
.s5_byte:
        inc     esi
        mov     al, [esi + 3]
        call    put_hex8_space
        loop    .s5_byte
        jmp     newline
.bad:   mov     esi, s_acpi_bad
        jmp     puts_line

; ZF set when esi points at a table with signature eax whose bytes sum to 0; keeps esi.
check_table:
        cmp     [esi], eax
        jne     .done
        mov     ecx, [esi + 4]
        call    byte_sum
        test    al, al
.done:  ret

; al = the sum of the ecx bytes at esi; keeps esi.
byte_sum:
        push    esi
        xor     eax, eax
.next:  add     al, [esi]
        inc     esi
        loop    .next
        pop     esi
        ret

put_hex8_space:                             ; al, then a space
        push    eax
        rol     al, 4
        call    put_digit
        pop     eax
        push    eax
        call    put_digit
        mov     al, ' '
        call    putc
        pop     eax
        ret

; The bss (p_memsz beyond p_filesz, or up to bss_end_addr) must read as zeros.
check_bss:
        mov     esi, check_area
        mov     ecx, BSS_CHECK_BYTES
.next:  cmp     byte [esi], 0
        jne     .dirty
        inc     esi
        loop    .next
        mov     esi, s_bss_zero
        jmp     puts_line
.dirty: mov     byte [bss_dirty], 1
        mov     esi, s_bss_dirty
        jmp     puts_line

; ---- Output on COM1 ----
serial_init:
        mov     dx, COM1 + 1
        xor     al, al
        out     dx, al                      ; no interrupts
        mov     dx, COM1 + 3
        mov     al, 0x80
        out     dx, al                      ; DLAB
        mov     dx, COM1
        mov     al, 1
        out     dx, al                      ; 115200 baud
        mov     dx, COM1 + 1
        xor     al, al
        out     dx, al
        mov     dx, COM1 + 3
        mov     al, 3
        out     dx, al                      ; 8N1
        ret

putc:                                       ; al
        push    edx
        push    eax
        mov     dx, COM1 + 5
.wait:  in      al, dx
        test    al, 0x20                    ; transmitter holding register empty
        jz      .wait
        pop     eax
        mov     dx, COM1
        out     dx, al
        pop     edx
        ret

puts:                                       ; esi: NUL-terminated; keeps eax
        push    esi
        push    eax
.next:  mov     al, [esi]
        test    al, al
        jz      .done
        call    putc
        inc     esi
        jmp     .next
.done:  pop     eax
        pop     esi
        ret

puts_line:
        call    puts
newline:
        mov     al, 10
        jmp     putc

put_hex32:                                  ; eax
        push    ecx
        push    eax
        mov     ecx, 8
.next:  rol     eax, 4
        push    eax
        call    put_digit
        pop     eax
        loop    .next
        pop     eax
        pop     ecx
        ret

put_hex16:                                  ; ax
        push    ecx
        push    eax
        shl     eax, 16
        mov     ecx, 4
        jmp     put_hex32.next

put_hex32_space:                            ; eax, then a space; keeps eax
        call    put_hex32
        push    eax
        mov     al, ' '
        call    putc
        pop     eax
        ret

put_digit:                                  ; low nibble of al
        and     al, 0x0F
        add     al, '0'
        cmp     al, '9'
        jbe     .out
        add     al, 'a' - '9' - 1
.out:   jmp     putc

print_hex_line:                             ; esi: "key=", eax: value
        call    puts
        call    put_hex32
        jmp     newline

; "key=ADDR 'text'" for the guest string at eax (at most MAX_STRING characters; others
; than printable ASCII shown as '?').
print_string_line:
        call    puts
print_string_value:                         ; "ADDR 'text'" only
        call    put_hex32_space
        push    esi
        push    ecx
        mov     esi, eax
        mov     al, "'"
        call    putc
        mov     ecx, MAX_STRING
.next:  mov     al, [esi]
        test    al, al
        jz      .done
        cmp     al, 0x20
        jb      .odd
        cmp     al, 0x7E
        jbe     .put
.odd:   mov     al, '?'
.put:   call    putc
        inc     esi
        loop    .next
.done:  mov     al, "'"
        call    putc
        pop     ecx
        pop     esi
        jmp     newline

; ---- Data ----
s_magic         db "magic=", 0
s_info          db "info=", 0
s_eip           db "eip=", 0
s_cr0           db "cr0.pg_pe=", 0
s_eflags        db "eflags.vm_if=", 0
s_segments      db "segments=", 0
s_flags         db "flags=", 0
s_mem_lower     db "mem_lower=", 0
s_mem_upper     db "mem_upper=", 0
s_boot_device   db "boot_device=", 0
s_cmdline       db "cmdline=", 0
s_mods_count    db "mods_count=", 0
s_mods_addr     db "mods_addr=", 0
s_mod           db "mod", 0
s_mod_string    db ".string=", 0
s_mod_hash      db ".hash=", 0
s_mmap_length   db "mmap_length=", 0
s_mmap_addr     db "mmap_addr=", 0
s_mmap          db "mmap=", 0
s_loader        db "boot_loader_name=", 0
s_bss_zero      db "bss=zero", 0
s_acpi_none     db "acpi=no RSDP", 0
s_acpi_bad      db "acpi=a table is missing or its checksum is wrong", 0
s_rsdp_revision db "acpi.rsdp_revision=", 0
s_sci_int       db "acpi.fadt.sci_int=", 0
s_smi_cmd       db "acpi.fadt.smi_cmd=", 0
s_pm1a_evt      db "acpi.fadt.pm1a_evt=", 0
s_pm1a_cnt      db "acpi.fadt.pm1a_cnt=", 0
s_pm_tmr        db "acpi.fadt.pm_tmr=", 0
s_gpe0          db "acpi.fadt.gpe0=", 0
s_s5            db "acpi.dsdt._S5=", 0
s_bss_dirty     db "bss=NOT ZERO", 0

        align   4
info_head       dd s_flags, 0, print_hex_line
                dd s_mem_lower, 4, print_hex_line
                dd s_mem_upper, 8, print_hex_line
                dd s_boot_device, 12, print_hex_line
                dd s_cmdline, 16, print_string_line
                dd s_mods_count, 20, print_hex_line
                dd s_mods_addr, 24, print_hex_line
                dd 0
info_mmap       dd s_mmap_length, 44, print_hex_line
                dd s_mmap_addr, 48, print_hex_line
                dd 0
info_tail       dd s_loader, 64, print_string_line
                dd 0

        align   4
entry_eax       dd 0
entry_ebx       dd 0
entry_eip       dd 0
entry_cr0       dd 0
entry_eflags    dd 0
bss_dirty       db 0
        align   16
file_end:

; ---- The bss: zeroed by the loader, never in the file ----
absolute file_end
check_area:     resb BSS_CHECK_BYTES
                resb 0x1000
stack_top:
bss_end:
