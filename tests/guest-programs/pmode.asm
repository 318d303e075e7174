; pmode.asm: a protected-mode smoke test for the vmm86 engines (contract in README.md).
;
; Entered in real mode at 0000:8000 with interrupts disabled. Builds a GDT (flat ring-0 and
; ring-3 code/data, a TSS) and an IDT, enters protected mode, turns on paging (4 KiB pages
; plus 4 MiB PSE pages), takes and repairs page faults, drops to ring 3 with iret, comes
; back through an int 0x80 gate (TSS ring-0 stack), checks that privileged instructions in
; ring 3 raise #GP, and runs ALU/string instructions with known answers.
; Reports on port 0xE9: "PASS\n", or "FAIL <step>\n" (100+v: unexpected exception v;
; 99: unexpected interrupt), then cli; hlt.

        cpu     P6
        org     0x8000

; ---- Memory layout: everything below 4 MiB is identity mapped once paging is on ----
LOAD_ADDR       equ 0x8000
RM_STACK        equ 0x7C00
PAGE_DIR        equ 0x20000
PAGE_TABLE0     equ 0x21000
IDT_BASE        equ 0x22000
USTACK_TOP      equ 0x80000         ; ring 3
TSS_ESP0        equ 0x88000         ; ring 0, for traps and int 0x80 from ring 3
KSTACK_TOP      equ 0x90000         ; ring 0, main flow
DEBUG_PORT      equ 0xE9

; Pages the page-fault tests play with (all in the first 4 MiB).
FAULT_READ      equ 0x200000        ; not present; the handler maps it to +1 MiB
FAULT_WRITE     equ 0x201000        ; not present
SUPER_PAGE      equ 0x202000        ; present, supervisor only; the handler opens it to ring 3
FAULT_UWRITE    equ 0x203000        ; not present, written from ring 3
REMAP_OFFSET    equ 0x100000        ; where the handler maps a missing page
PSE_PHYS        equ 0xC00000        ; 4 MiB page frame: linear 4 MiB and 12 MiB both map it

MAGIC1          equ 0x600DF00D
MAGIC2          equ 0x5EC0DE05

PTE_P           equ 1
PTE_RW          equ 2
PTE_US          equ 4
PDE_PS          equ 0x80

SEL_CODE0       equ 0x08
SEL_DATA0       equ 0x10
SEL_CODE3       equ 0x1B
SEL_DATA3       equ 0x23
SEL_TSS         equ 0x28

; int 0x80 services (eax)
SYS_COMPUTE     equ 1               ; eax = ebx * 3 + 7
SYS_EXIT        equ 2               ; leave ring 3 for good, continue the ring-0 flow
SYS_FAIL        equ 3               ; report FAIL ebx (ring 3 may not do I/O)

; Link-time address of a label as a plain number (NASM only shifts scalars).
%define ABS(label) ((label) - $$ + LOAD_ADDR)

; ---- Checks. FAIL_IF cc, step: fail when the condition holds. ----
%macro FAIL_IF 2
        j%-1    %%ok
        mov     ebx, %2
        jmp     fail_report
%%ok:
%endmacro
%macro CHECK 3                      ; CHECK a, b, step: fail unless a == b
        cmp     %1, %2
        FAIL_IF ne, %3
%endmacro
; Ring 3 cannot write to the debug port: it asks the kernel to report.
%macro UFAIL_IF 2
        j%-1    %%ok
        mov     ebx, %2
        mov     eax, SYS_FAIL
        int     0x80
%%ok:
%endmacro
%macro UCHECK 3
        cmp     %1, %2
        UFAIL_IF ne, %3
%endmacro
; EXPECT_PF cr2, error code, step: the next page fault must match (any ring).
%macro EXPECT_PF 3
        mov     dword [pf_expect_cr2], %1
        mov     dword [pf_expect_err], %2
        mov     dword [pf_fail_step], %3
%endmacro
; No page fault is expected: one would report FAIL 114.
%macro NO_PF 0
        mov     dword [pf_expect_cr2], 0xFFFFFFFF
        mov     dword [pf_fail_step], 114
%endmacro
; EXPECT_GP step, instruction (ring 3): the instruction must raise #GP(0); the handler
; resumes after it.
%macro EXPECT_GP 2+
        mov     dword [gp_expect_eip], %%insn
        mov     dword [gp_resume_eip], %%resume
        mov     ebp, [gp_count]
%%insn:
        %2
        mov     ebx, %1                     ; it ran: no #GP
        mov     eax, SYS_FAIL
        int     0x80
%%resume:
        inc     ebp
        UCHECK  [gp_count], ebp, %1
%endmacro

; =====================================================================================
        bits    16
start:
        cli
        cld
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, RM_STACK
        lgdt    [gdtr]
        mov     eax, cr0
        or      al, 1                       ; CR0.PE
        mov     cr0, eax
        jmp     dword SEL_CODE0:pm_entry

; =====================================================================================
        bits    32
pm_entry:
        mov     ax, SEL_DATA0
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     esp, KSTACK_TOP

        ; 1-5: we are in protected mode with the GDT we built
        mov     eax, cr0
        test    al, 1
        FAIL_IF z, 1
        mov     ax, cs
        CHECK   ax, SEL_CODE0, 2
        mov     ax, ss
        CHECK   ax, SEL_DATA0, 2
        sgdt    [scratch]
        CHECK   word [scratch], gdt_end - gdt - 1, 3
        CHECK   dword [scratch + 2], gdt, 3
        smsw    ax
        test    al, 1
        FAIL_IF z, 4

        call    build_idt
        lidt    [idtr]
        mov     ax, SEL_TSS
        ltr     ax
        str     cx
        CHECK   cx, SEL_TSS, 5

        ; 10-12: paging with 4 KiB pages and 4 MiB PSE pages
        call    build_page_tables
        mov     dword [FAULT_READ + REMAP_OFFSET + 0x10], MAGIC1   ; what the remapped page holds
        mov     dword [SUPER_PAGE + 0x10], MAGIC2
        mov     eax, cr4
        or      eax, 0x10                   ; CR4.PSE
        mov     cr4, eax
        mov     eax, PAGE_DIR
        mov     cr3, eax
        mov     eax, cr0
        or      eax, 0x80000000             ; CR0.PG
        mov     cr0, eax
        jmp     .paged                      ; identity mapped: execution just goes on
.paged:
        mov     eax, cr0
        test    eax, eax
        FAIL_IF ns, 10
        mov     dword [0x401234], 0xCAFEBABE            ; linear 4 MiB + x -> phys 12 MiB + x
        CHECK   dword [0xC01234], 0xCAFEBABE, 11
        mov     dword [0xFFFFFC], 0x12345678            ; and the other way, at the very end
        CHECK   dword [0x7FFFFC], 0x12345678, 12

        ; 20-23: page faults in ring 0, repaired by the handler
        EXPECT_PF FAULT_READ + 0x10, 0, 20          ; not present, read, supervisor
        mov     eax, [FAULT_READ + 0x10]
        CHECK   eax, MAGIC1, 20
        CHECK   dword [pf_count], 1, 21
        mov     eax, cr2
        CHECK   eax, FAULT_READ + 0x10, 22
        EXPECT_PF FAULT_WRITE + 0x20, 2, 23         ; not present, write, supervisor
        mov     dword [FAULT_WRITE + 0x20], 0x5A5A1234
        CHECK   dword [FAULT_WRITE + REMAP_OFFSET + 0x20], 0x5A5A1234, 23
        CHECK   dword [pf_count], 2, 23
        NO_PF

        call    alu_tests

        ; 30: drop to ring 3 through iret
        push    dword SEL_DATA3                     ; ss
        push    dword USTACK_TOP                    ; esp
        push    dword 0x00000002                    ; eflags: IF=0, IOPL=0
        push    dword SEL_CODE3                     ; cs
        push    dword user_main                     ; eip
        iretd

; Ring 3 came back through int 0x80 / SYS_EXIT (the handler reset the stack).
back_in_ring0:
        mov     ax, cs
        CHECK   ax, SEL_CODE0, 38
        CHECK   esp, KSTACK_TOP, 38
        CHECK   dword [gp_count], 4, 44
        CHECK   dword [pf_count], 4, 37
        mov     esi, msg_pass
        call    puts
        jmp     halt

; =====================================================================================
; Ring 3
user_main:
        mov     ax, SEL_DATA3
        mov     ds, ax
        mov     es, ax
        mov     ax, cs
        and     eax, 3
        UCHECK  eax, 3, 30
        UCHECK  esp, USTACK_TOP, 30

        ; 31: a call into ring 0 through the int 0x80 gate and back
        mov     ebx, 1000
        mov     eax, SYS_COMPUTE
        mov     [user_esp_at_int], esp
        int     0x80
        UCHECK  eax, 3007, 31
        UCHECK  esp, [user_esp_at_int], 31

        ; 35: a supervisor page read from ring 3: #PF (present, user), opened by the handler
        EXPECT_PF SUPER_PAGE + 0x10, 5, 35          ; present, read, user
        mov     eax, [SUPER_PAGE + 0x10]
        UCHECK  eax, MAGIC2, 35
        UCHECK  dword [pf_count], 3, 35
        ; 36: a write to a missing page from ring 3
        EXPECT_PF FAULT_UWRITE + 0x40, 6, 36        ; not present, write, user
        mov     dword [FAULT_UWRITE + 0x40], 0x0BADCAFE
        UCHECK  dword [FAULT_UWRITE + REMAP_OFFSET + 0x40], 0x0BADCAFE, 36
        UCHECK  dword [pf_count], 4, 36
        NO_PF

        ; 40-43: privileged instructions raise #GP(0) in ring 3
        EXPECT_GP 40, hlt
        EXPECT_GP 41, cli
        EXPECT_GP 42, mov eax, cr0
        mov     dx, DEBUG_PORT
        mov     al, '!'
        EXPECT_GP 43, out dx, al

        ; 70-71: ALU and stack work in ring 3
        call    user_alu_tests

        mov     eax, SYS_EXIT
        int     0x80
        mov     ebx, 37                             ; SYS_EXIT came back
        mov     eax, SYS_FAIL
        int     0x80

; =====================================================================================
; Interrupt and exception handlers (ring 0)

; #PF: checks CR2 and the error code against what the test expects (EXPECT_PF), then
; repairs the mapping (a missing page is mapped to the frame REMAP_OFFSET above; a
; supervisor page is opened to ring 3) and restarts the faulting instruction.
pf_handler:
        push    eax
        push    ebx
        mov     eax, cr2
        cmp     eax, [pf_expect_cr2]
        jne     .unexpected
        mov     ebx, [esp + 8]                      ; error code
        cmp     ebx, [pf_expect_err]
        jne     .unexpected
        shr     eax, 12                             ; page number (first 4 MiB: PT0 index)
        test    ebx, PTE_P
        jnz     .protection
        mov     ebx, eax
        shl     ebx, 12
        add     ebx, REMAP_OFFSET + (PTE_P | PTE_RW | PTE_US)
        mov     [PAGE_TABLE0 + eax * 4], ebx
        jmp     .done
.protection:
        or      dword [PAGE_TABLE0 + eax * 4], PTE_US
.done:
        mov     eax, cr2
        invlpg  [eax]
        inc     dword [pf_count]
        mov     dword [pf_expect_cr2], 0xFFFFFFFF   ; one fault per test: a repeat fails it
        pop     ebx
        pop     eax
        add     esp, 4                              ; error code
        iretd
.unexpected:
        mov     ebx, [pf_fail_step]
        jmp     fail_report

; #GP: expected only in ring 3 at the instruction a test announced; resumes after it.
gp_handler:
        push    eax
        cmp     dword [esp + 4], 0                  ; error code
        jne     .unexpected
        cmp     word [esp + 12], SEL_CODE3          ; saved cs (only 16 bits are defined)
        jne     .unexpected
        mov     eax, [esp + 8]                      ; saved eip
        cmp     eax, [gp_expect_eip]
        jne     .unexpected
        mov     eax, [gp_resume_eip]
        mov     [esp + 8], eax
        inc     dword [gp_count]
        pop     eax
        add     esp, 4
        iretd
.unexpected:
        mov     ebx, 113
        jmp     fail_report

; int 0x80 from ring 3: the CPU switched to the TSS ring-0 stack and pushed ss/esp/eflags/cs/eip.
syscall_handler:
        cmp     esp, TSS_ESP0 - 20
        jne     .bad_stack
        cmp     word [esp + 4], SEL_CODE3
        jne     .bad_frame
        cmp     word [esp + 16], SEL_DATA3
        jne     .bad_frame
        cmp     eax, SYS_COMPUTE
        je      .compute
        cmp     eax, SYS_EXIT
        je      .exit
        cmp     eax, SYS_FAIL
        je      fail_report
        mov     ebx, 39
        jmp     fail_report
.compute:
        mov     eax, [esp + 12]                     ; the ring-3 esp
        cmp     eax, [user_esp_at_int]
        jne     .bad_esp
        lea     eax, [ebx + ebx * 2 + 7]
        iretd
.exit:
        mov     ax, SEL_DATA0
        mov     ds, ax
        mov     es, ax
        mov     esp, KSTACK_TOP
        jmp     back_in_ring0
.bad_stack:
        mov     ebx, 32
        jmp     fail_report
.bad_frame:
        mov     ebx, 33
        jmp     fail_report
.bad_esp:
        mov     ebx, 34
        jmp     fail_report

; Exceptions nobody expects: each stub pushes its vector.
%assign v 0
%rep 32
exc_stub_%[v]:
        push    dword v
        jmp     unexpected_exception
%assign v v+1
%endrep
exc_stubs:
%assign v 0
%rep 32
        dd      exc_stub_%[v]
%assign v v+1
%endrep

unexpected_exception:
        pop     ebx
        add     ebx, 100
        jmp     fail_report
unexpected_interrupt:
        mov     ebx, 99
        jmp     fail_report

; =====================================================================================
; Set-up helpers (ring 0)

; IDT: stubs for exceptions 0-31, unexpected_interrupt for the rest, then the real handlers.
build_idt:
        mov     edi, IDT_BASE
        xor     ecx, ecx
.next:
        mov     eax, unexpected_interrupt
        cmp     ecx, 32
        jae     .set
        mov     eax, [exc_stubs + ecx * 4]
.set:
        mov     dx, 0x8E00                          ; present, DPL 0, 32-bit interrupt gate
        call    set_gate
        add     edi, 8
        inc     ecx
        cmp     ecx, 256
        jb      .next
        mov     edi, IDT_BASE + 13 * 8
        mov     eax, gp_handler
        call    set_gate
        mov     edi, IDT_BASE + 14 * 8
        mov     eax, pf_handler
        call    set_gate
        mov     edi, IDT_BASE + 0x80 * 8
        mov     eax, syscall_handler
        mov     dx, 0xEE00                          ; DPL 3: ring 3 may use int 0x80
        call    set_gate
        ret

; edi = gate, eax = handler, dx = attributes (type in the high byte)
set_gate:
        mov     [edi], ax
        mov     word [edi + 2], SEL_CODE0
        mov     [edi + 4], dx
        shr     eax, 16
        mov     [edi + 6], ax
        ret

; Page table 0 identity maps 0-4 MiB for ring 3 (with holes for the fault tests); the
; directory adds two 4 MiB PSE pages onto the same frame.
build_page_tables:
        mov     edi, PAGE_TABLE0
        mov     eax, PTE_P | PTE_RW | PTE_US
        mov     ecx, 1024
.pte:
        stosd
        add     eax, 0x1000
        loop    .pte
        mov     dword [PAGE_TABLE0 + (FAULT_READ >> 12) * 4], 0
        mov     dword [PAGE_TABLE0 + (FAULT_WRITE >> 12) * 4], 0
        mov     dword [PAGE_TABLE0 + (SUPER_PAGE >> 12) * 4], SUPER_PAGE | PTE_P | PTE_RW
        mov     dword [PAGE_TABLE0 + (FAULT_UWRITE >> 12) * 4], 0
        mov     edi, PAGE_DIR
        xor     eax, eax
        mov     ecx, 1024
        rep     stosd
        mov     dword [PAGE_DIR + 0 * 4], PAGE_TABLE0 | PTE_P | PTE_RW | PTE_US
        mov     dword [PAGE_DIR + 1 * 4], PSE_PHYS | PDE_PS | PTE_P | PTE_RW | PTE_US
        mov     dword [PAGE_DIR + 3 * 4], PSE_PHYS | PDE_PS | PTE_P | PTE_RW | PTE_US
        ret

; =====================================================================================
; 50-69: ALU and string instructions with known answers (ring 0)
alu_tests:
        ; 50: 64-bit add through the carry; the high half overflows (signed)
        mov     eax, 0xFFFFFFFF
        mov     edx, 1
        add     eax, 1
        adc     edx, 0x7FFFFFFF
        FAIL_IF no, 50
        CHECK   eax, 0, 50
        CHECK   edx, 0x80000001, 50
        ; 51: 64-bit subtract through the borrow
        xor     eax, eax
        mov     edx, 1
        sub     eax, 1
        sbb     edx, 0
        FAIL_IF c, 51
        CHECK   eax, 0xFFFFFFFF, 51
        CHECK   edx, 0, 51
        ; 52: unsigned multiply
        mov     eax, 0x12345678
        mov     ecx, 0x9ABCDEF0
        mul     ecx
        FAIL_IF nc, 52
        CHECK   edx, 0x0B00EA4E, 52
        CHECK   eax, 0x242D2080, 52
        ; 53: unsigned divide
        mov     edx, 0x0000000B
        mov     eax, 0x2F8A3F14
        mov     ecx, 0x12345
        div     ecx
        CHECK   eax, 0x0009D4CC, 53
        CHECK   edx, 0x18, 53
        ; 54: signed multiply
        mov     ebx, -123456
        imul    eax, ebx, 789
        FAIL_IF o, 54
        CHECK   eax, -97406784, 54
        ; 55: signed divide truncates toward zero
        mov     eax, -1000003
        cdq
        mov     ecx, 7
        idiv    ecx
        CHECK   eax, -142857, 55
        CHECK   edx, -4, 55
        ; 56: shifts and rotates
        mov     eax, 0x80000001
        rol     eax, 1
        FAIL_IF nc, 56
        CHECK   eax, 3, 56
        mov     eax, 0xF0000000
        sar     eax, 4
        CHECK   eax, 0xFF000000, 56
        mov     eax, 0x12345678
        mov     edx, 0x9ABCDEF0
        shld    eax, edx, 8
        CHECK   eax, 0x3456789A, 56
        shrd    eax, edx, 12
        CHECK   eax, 0xEF034567, 56
        stc
        mov     al, 0x81
        rcl     al, 1
        FAIL_IF nc, 56
        CHECK   al, 0x03, 56
        ; 57: bit scan, bit test, byte swap
        mov     eax, 0x00801000
        bsf     ecx, eax
        bsr     edx, eax
        CHECK   ecx, 12, 57
        CHECK   edx, 23, 57
        mov     eax, 0x12345678
        bswap   eax
        CHECK   eax, 0x78563412, 57
        xor     eax, eax
        bts     eax, 31
        FAIL_IF c, 57
        bt      eax, 31
        FAIL_IF nc, 57
        CHECK   eax, 0x80000000, 57
        ; 58: the status flags of 0x7F + 1: OF, SF and AF; not ZF, PF, CF
        mov     al, 0x7F
        add     al, 1
        pushfd
        pop     eax
        and     eax, 0x8D5
        CHECK   eax, 0x890, 58
        ; 59: decimal adjust
        mov     al, 0x19
        add     al, 0x28
        daa
        CHECK   al, 0x47, 59
        mov     al, 77
        aam
        CHECK   ax, 0x0707, 59
        ; 60: rep movsb copies, repe cmpsb agrees
        mov     esi, test_string
        mov     edi, buffer
        mov     ecx, TEST_STRING_LEN
        rep     movsb
        CHECK   ecx, 0, 60
        mov     esi, test_string
        mov     edi, buffer
        mov     ecx, TEST_STRING_LEN
        repe    cmpsb
        FAIL_IF ne, 60
        CHECK   ecx, 0, 60
        ; 61: repe cmpsb stops just after the first difference
        mov     byte [buffer + 10], '#'
        mov     esi, test_string
        mov     edi, buffer
        mov     ecx, TEST_STRING_LEN
        repe    cmpsb
        FAIL_IF e, 61
        CHECK   ecx, TEST_STRING_LEN - 11, 61
        CHECK   esi, test_string + 11, 61
        ; 62: strlen with repne scasb
        mov     edi, test_string
        mov     ecx, -1
        xor     al, al
        repne   scasb
        not     ecx
        dec     ecx
        CHECK   ecx, TEST_STRING_LEN, 62
        ; 63: rep stosd fills, lodsd/loop sums
        mov     edi, buffer
        mov     eax, 0x01010101
        mov     ecx, 64
        rep     stosd
        mov     esi, buffer
        mov     ecx, 64
        xor     edx, edx
.sum:
        lodsd
        add     edx, eax
        loop    .sum
        CHECK   edx, 0x40404040, 63
        ; 64: overlapping backward copy (memmove) with DF=1
        mov     dword [buffer], 'ABCD'
        mov     dword [buffer + 4], 'EFGH'
        std
        mov     esi, buffer + 5
        mov     edi, buffer + 7
        mov     ecx, 6
        rep     movsb
        cld
        CHECK   dword [buffer], 'ABAB', 64
        CHECK   dword [buffer + 4], 'CDEF', 64
        ; 65: cmpxchg / xadd
        mov     dword [scratch], 5
        mov     eax, 5
        mov     ecx, 9
        lock cmpxchg [scratch], ecx
        FAIL_IF ne, 65
        CHECK   dword [scratch], 9, 65
        mov     eax, 1
        cmpxchg [scratch], ecx
        FAIL_IF e, 65
        CHECK   eax, 9, 65
        mov     eax, 3
        lock xadd [scratch], eax
        CHECK   eax, 9, 65
        CHECK   dword [scratch], 12, 65
        ; 66: setcc / cmovcc
        mov     eax, 5
        cmp     eax, 7
        setl    bl
        setb    bh
        seta    cl
        mov     edx, 100
        mov     esi, 200
        cmovl   edx, esi
        CHECK   bl, 1, 66
        CHECK   bh, 1, 66
        CHECK   cl, 0, 66
        CHECK   edx, 200, 66
        ; 67: sign and zero extension
        mov     bl, 0x80
        movsx   eax, bl
        movzx   ecx, bl
        CHECK   eax, 0xFFFFFF80, 67
        CHECK   ecx, 0x80, 67
        mov     bx, 0x8001
        movsx   edx, bx
        CHECK   edx, 0xFFFF8001, 67
        ; 68: loop
        xor     eax, eax
        mov     ecx, 100
.gauss:
        add     eax, ecx
        loop    .gauss
        CHECK   eax, 5050, 68
        ; 69: lea with SIB; 16-bit arithmetic keeps the high half
        mov     ebx, 0x1000
        mov     ecx, 3
        lea     eax, [ebx + ecx * 8 + 0x10]
        CHECK   eax, 0x1028, 69
        mov     eax, 0x1234FFFF
        add     ax, 1
        FAIL_IF nc, 69
        CHECK   eax, 0x12340000, 69
        ; 69: pushad/popad and enter/leave give everything back
        mov     eax, 1
        mov     ecx, 2
        mov     edx, 3
        mov     ebx, 4
        mov     ebp, 6
        mov     esi, 7
        mov     edi, 8
        mov     [scratch], esp
        pushad
        xor     eax, eax
        xor     ecx, ecx
        xor     edx, edx
        xor     ebx, ebx
        xor     ebp, ebp
        xor     esi, esi
        xor     edi, edi
        popad
        CHECK   eax, 1, 69
        CHECK   ecx, 2, 69
        CHECK   edx, 3, 69
        CHECK   ebx, 4, 69
        CHECK   ebp, 6, 69
        CHECK   esi, 7, 69
        CHECK   edi, 8, 69
        CHECK   esp, [scratch], 69
        enter   16, 0
        mov     eax, [scratch]
        sub     eax, 4
        CHECK   ebp, eax, 69
        sub     eax, 16
        CHECK   esp, eax, 69
        leave
        CHECK   esp, [scratch], 69
        CHECK   ebp, 6, 69
        ret

; 70-71 (ring 3)
user_alu_tests:
        ; 70: rep movsd, then a checksum with lodsb
        mov     esi, test_string
        mov     edi, buffer
        mov     ecx, (TEST_STRING_LEN + 3) / 4
        rep     movsd
        mov     esi, buffer
        mov     ecx, TEST_STRING_LEN
        xor     edx, edx
        xor     eax, eax
.sum:
        lodsb
        add     edx, eax
        loop    .sum
        UCHECK  edx, TEST_STRING_SUM, 70
        ; 71: recursion through call/ret: 10! = 3628800
        mov     eax, 10
        call    factorial
        UCHECK  eax, 3628800, 71
        ret

; eax = eax! (recursive on purpose)
factorial:
        cmp     eax, 1
        jbe     .one
        push    eax
        dec     eax
        call    factorial
        pop     ecx
        mul     ecx
        ret
.one:
        mov     eax, 1
        ret

; =====================================================================================
; Reporting (ring 0)

; ebx = step. Never returns.
fail_report:
        mov     ax, SEL_DATA0
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     esp, KSTACK_TOP
        cld
        mov     esi, msg_fail
        call    puts
        mov     eax, ebx
        call    put_dec
        mov     al, 10
        call    putc
halt:
        cli
        hlt
        jmp     halt

puts:                                       ; esi = NUL-terminated string
        lodsb
        test    al, al
        jz      .done
        call    putc
        jmp     puts
.done:
        ret

put_dec:                                    ; eax = unsigned number
        mov     ecx, 10
        xor     edi, edi
.divide:
        xor     edx, edx
        div     ecx
        push    edx
        inc     edi
        test    eax, eax
        jnz     .divide
.emit:
        pop     eax
        add     al, '0'
        call    putc
        dec     edi
        jnz     .emit
        ret

putc:                                       ; al = character
        push    edx
        mov     dx, DEBUG_PORT
        out     dx, al
        pop     edx
        ret

; =====================================================================================
; Data

msg_pass:       db "PASS", 10, 0
msg_fail:       db "FAIL ", 0
test_string:    db "The quick brown fox jumps over the lazy dog", 0
TEST_STRING_LEN equ $ - test_string - 1
TEST_STRING_SUM equ 4057                     ; sum of its bytes

        align   8
gdt:
        dq      0
        dq      0x00CF9A000000FFFF          ; 0x08 ring-0 code: flat, 32-bit
        dq      0x00CF92000000FFFF          ; 0x10 ring-0 data: flat
        dq      0x00CFFA000000FFFF          ; 0x18 ring-3 code
        dq      0x00CFF2000000FFFF          ; 0x20 ring-3 data
        dw      TSS_SIZE - 1                ; 0x28 32-bit TSS, available
        dw      ABS(tss) & 0xFFFF
        db      (ABS(tss) >> 16) & 0xFF
        db      0x89
        db      0
        db      (ABS(tss) >> 24) & 0xFF
gdt_end:

gdtr:
        dw      gdt_end - gdt - 1
        dd      gdt
idtr:
        dw      256 * 8 - 1
        dd      IDT_BASE

        align   4
tss:
        dd      0                           ; back link
        dd      TSS_ESP0                    ; esp0
        dd      SEL_DATA0                   ; ss0
        times 22 dd 0                       ; esp1 .. ldt selector
        dw      0                           ; T bit
        dw      TSS_SIZE                    ; I/O map base past the limit: no bitmap, so IOPL rules
TSS_SIZE        equ $ - tss

        align   4
pf_expect_cr2:  dd 0xFFFFFFFF
pf_expect_err:  dd 0
pf_fail_step:   dd 114
pf_count:       dd 0
gp_expect_eip:  dd 0
gp_resume_eip:  dd 0
gp_count:       dd 0
user_esp_at_int: dd 0
scratch:        times 4 dd 0
buffer:         times 256 db 0
