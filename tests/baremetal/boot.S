/* SPDX-License-Identifier: MIT */
/*
 * Start-up of the bare-metal test guest: a multiboot image that QEMU loads
 * with -kernel. From 32-bit protected mode it builds identity page tables
 * (the first 8 GiB, user-accessible, so that ring 3 reaches the BARs), enters
 * long mode, sets up a GDT, TSS and IDT, and runs guest_main() in ring 3
 * with IOPL 3: the code that is measured runs in user mode, as a guest
 * program would (and as a nested hypervisor such as kvm_pvm runs natively).
 * Where IOPL 3 is not honoured (kvm_pvm), port I/O traps to ring 0 and is
 * emulated there (baremetal.c, exception()).
 */
#define MB_MAGIC    0x1badb002
#define MB_FLAGS    0x00010000      /* the address fields below are valid */

#define SEL_KCODE   0x08
#define SEL_KDATA   0x10
#define SEL_UCODE   0x1b
#define SEL_UDATA   0x23
#define SEL_TSS     0x28

#define PD_PAGES    8               /* 8 x 1 GiB of 2 MiB pages */

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header                 /* header_addr */
    .long _start_load               /* load_addr */
    .long _load_end                 /* load_end_addr */
    .long _bss_end                  /* bss_end_addr */
    .long entry32                   /* entry_addr */

    .text
    .code32
    .globl entry32
entry32:
    cli
    mov $kstack_top, %esp
    mov %ebx, mb_info               /* the multiboot information */

    /* PML4[0] -> PDPT, PDPT[i] -> PD i, PD entries: 2 MiB pages */
    mov $pdpt, %eax
    or $0x7, %eax                   /* present, writable, user */
    mov %eax, pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $pd, %eax
    or $0x7, %eax
    mov %eax, pdpt(, %ecx, 8)
    inc %ecx
    cmp $PD_PAGES, %ecx
    jb 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x87, %eax                  /* present, writable, user, 2 MiB */
    mov %eax, pd(, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, pd + 4(, %ecx, 8)
    inc %ecx
    cmp $(PD_PAGES * 512), %ecx
    jb 2b

    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx           /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax            /* PG, PE */
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $SEL_KCODE, $entry64

    .code64
entry64:
    mov $SEL_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $kstack_top, %rsp
    call kernel_setup               /* TSS descriptor, IDT */
    mov $SEL_TSS, %ax
    ltr %ax

    /* iretq to ring 3, interrupts off, IOPL 3 for port I/O */
    push $SEL_UDATA
    push $ustack_top
    push $0x3002
    push $SEL_UCODE
    push $user_entry
    iretq

user_entry:
    mov mb_info, %edi
    call guest_main
    ud2                             /* guest_main does not return */

/* Exceptions: vector (and error code) on the kernel stack, then C. */
    .macro vector n, has_error
    .globl vector_\n
vector_\n:
    .if !\has_error
    push $0
    .endif
    push $\n
    jmp exception_common
    .endm

    vector 0, 0
    vector 1, 0
    vector 2, 0
    vector 3, 0
    vector 4, 0
    vector 5, 0
    vector 6, 0
    vector 7, 0
    vector 8, 1
    vector 9, 0
    vector 10, 1
    vector 11, 1
    vector 12, 1
    vector 13, 1
    vector 14, 1
    vector 15, 0
    vector 16, 0
    vector 17, 1
    vector 18, 0
    vector 19, 0

exception_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi                  /* struct Frame */
    mov %cr2, %rsi
    call exception                  /* returns when it emulated the fault */
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   /* vector, error code */
    iretq

    .section .rodata
    .align 8
    .globl vectors
vectors:
    .quad vector_0, vector_1, vector_2, vector_3, vector_4, vector_5
    .quad vector_6, vector_7, vector_8, vector_9, vector_10, vector_11
    .quad vector_12, vector_13, vector_14, vector_15, vector_16, vector_17
    .quad vector_18, vector_19

    .data
    .align 16
    .globl gdt
gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff        /* 0x10 kernel data */
    .quad 0x00affa000000ffff        /* 0x18 user code, 64-bit, DPL 3 */
    .quad 0x00cff2000000ffff        /* 0x20 user data, DPL 3 */
    .quad 0, 0                      /* 0x28 TSS, filled in by C */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

    .bss
    .align 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
pd:
    .skip 4096 * PD_PAGES
    .align 16
    .skip 16384
kstack_top:
    .skip 65536
ustack_top:
    .globl mb_info
mb_info:
    .skip 8
