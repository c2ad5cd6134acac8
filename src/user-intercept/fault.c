/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Emulation of a guest access to a control page: the host instruction that
 * faulted (TCG code or QEMU's own C code) is decoded and emulated on the
 * thread's registers (x86-emulate.c), the load or store becomes a register
 * access, and the thread continues after the instruction. One signal per
 * access.
 */
#define _GNU_SOURCE
#include "fault.h"
#include "channel.h"
#include "libc.h"
#include "mappings.h"
#include "qemu-syms.h"
#include "x86-emulate.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "the user-mode helper supports x86-64 hosts only"
#endif

/* The ucontext_t register of each GPR */
static const int gregs_of[X86_NR_GPRS] = {
    [X86_RAX] = REG_RAX, [X86_RCX] = REG_RCX, [X86_RDX] = REG_RDX,
    [X86_RBX] = REG_RBX, [X86_RSP] = REG_RSP, [X86_RBP] = REG_RBP,
    [X86_RSI] = REG_RSI, [X86_RDI] = REG_RDI, [X86_R8] = REG_R8,
    [X86_R9] = REG_R9, [X86_R10] = REG_R10, [X86_R11] = REG_R11,
    [X86_R12] = REG_R12, [X86_R13] = REG_R13, [X86_R14] = REG_R14,
    [X86_R15] = REG_R15,
};

static void regs_from_ucontext(X86Regs *r, const ucontext_t *uc)
{
    for (int i = 0; i < X86_NR_GPRS; i++) {
        r->gpr[i] = uc->uc_mcontext.gregs[gregs_of[i]];
    }
    r->rip = uc->uc_mcontext.gregs[REG_RIP];
}

static void regs_to_ucontext(ucontext_t *uc, const X86Regs *r)
{
    for (int i = 0; i < X86_NR_GPRS; i++) {
        uc->uc_mcontext.gregs[gregs_of[i]] = r->gpr[i];
    }
    uc->uc_mcontext.gregs[REG_RIP] = r->rip;
}

/* Per thread: capstone is not thread-safe, and the cache is the thread's */
static __thread X86Decoder *thread_decoder;

static X86Decoder *decoder(void)
{
    if (!thread_decoder) {
        thread_decoder = x86_decoder_new();
    }
    return thread_decoder;
}

/*
 * Copy the instruction bytes at @pc, stopping at an unmapped page.
 * malloc and capstone are safe here: the fault is synchronous to a guest
 * access, never inside an allocator.
 */
static size_t read_insn(uintptr_t pc, uint8_t *buf)
{
    uintptr_t page = pc & ~(uintptr_t)4095;
    size_t n = 15;
    unsigned char vec;

    if (pc + n > page + 4096 &&
        mincore((void *)(page + 4096), 4096, &vec) != 0) {
        n = page + 4096 - pc;
    }
    memcpy(buf, (void *)pc, n);
    return n;
}

/*
 * Fallback for any other instruction with one memory operand (atomics in
 * QEMU's helpers, say): run it out of line on a per-thread scratch page
 * that holds what the register read returns, by moving its base (or
 * index) register by the distance to the scratch page, then jump through
 * a per-thread guard page to fault once more and write the result back.
 * Nothing is shared between threads, so no other thread can see an open
 * control page. Costs two signals.
 */
typedef struct OutOfLine {
    uint8_t *page;          /* trampoline; guard after it; scratch after */
    bool busy;
    uintptr_t pc;
    uint8_t len;
    uint64_t offset;
    unsigned size;
    bool write;
    bool write_if_changed;
    uint8_t before[64];
    int greg;
    uintptr_t delta;
} OutOfLine;

static __thread OutOfLine ool;

#define OOL_GUARD(p) ((p) + 4096)
#define OOL_SCRATCH(p) ((p) + 8192)

static bool out_of_line(ucontext_t *uc, uintptr_t pc, uintptr_t addr,
                        uint64_t offset, int prot)
{
    uint8_t bytes[16];
    size_t n = read_insn(pc, bytes);
    X86OutOfLine o;
    uint8_t *scratch;

    if (!decoder() || ool.busy ||
        !x86_decode_out_of_line(thread_decoder, pc, bytes, n, &o) ||
        (offset & 4095) + o.size > 4096) {
        return false;
    }
    if ((o.read && !(prot & PROT_READ)) || (o.write && !(prot & PROT_WRITE))) {
        return false;
    }
    if (!ool.page) {
        ool.page = backdoor_libc()->mmap64(NULL, 3 * 4096,
                                           PROT_READ | PROT_WRITE | PROT_EXEC,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ool.page == MAP_FAILED) {
            ool.page = NULL;
            return false;
        }
        backdoor_libc()->mprotect(OOL_GUARD(ool.page), 4096, PROT_NONE);
    }
    scratch = OOL_SCRATCH(ool.page) + (addr & 4095);
    if (o.read) {
        if (o.size == 4 || o.size == 8) {
            uint64_t v = backdoor_user_reg_read(offset, o.size);

            if (o.size == 4) {
                qemu_backdoor_st32(backdoor_user_big_endian, scratch, v);
            } else {
                qemu_backdoor_st64(backdoor_user_big_endian, scratch, v);
            }
        } else {
            backdoor_user_reg_read(offset, o.size);
            memset(scratch, 0xff, o.size);
        }
    } else {
        memset(scratch, 0, o.size);
    }

    memcpy(ool.before, scratch, o.size);

    /* The instruction, then jmp *guard: a fault that brings us back */
    memcpy(ool.page, bytes, o.len);
    ool.page[o.len] = 0xff;
    ool.page[o.len + 1] = 0x25;
    {
        int32_t disp = 4096 - (o.len + 6);

        memcpy(ool.page + o.len + 2, &disp, 4);
    }
    ool.busy = true;
    ool.pc = pc;
    ool.len = o.len;
    ool.offset = offset;
    ool.size = o.size;
    ool.write = o.write;
    ool.write_if_changed = o.write_if_changed;
    ool.greg = gregs_of[o.reloc];
    ool.delta = ((uintptr_t)scratch - addr) / o.scale;
    uc->uc_mcontext.gregs[ool.greg] += ool.delta;
    uc->uc_mcontext.gregs[REG_RIP] = (uintptr_t)ool.page;
    return true;
}

/* Back from the out-of-line instruction: write back, continue after it. */
static bool out_of_line_done(siginfo_t *info, void *ctx)
{
    ucontext_t *uc = ctx;
    uint8_t *scratch;

    if (!ool.busy || info->si_code <= 0 || !ool.page ||
        (uint8_t *)info->si_addr != OOL_GUARD(ool.page)) {
        return false;
    }
    uc->uc_mcontext.gregs[ool.greg] -= ool.delta;
    uc->uc_mcontext.gregs[REG_RIP] = ool.pc + ool.len;
    ool.busy = false;
    scratch = OOL_SCRATCH(ool.page) + (ool.offset & 4095);
    if (ool.write &&
        !(ool.write_if_changed && !memcmp(ool.before, scratch, ool.size))) {
        if (ool.size == 4) {
            backdoor_user_reg_write(ool.offset, 4,
                qemu_backdoor_ld32(backdoor_user_big_endian, scratch));
        } else if (ool.size == 8) {
            backdoor_user_reg_write(ool.offset, 8,
                qemu_backdoor_ld64(backdoor_user_big_endian, scratch));
        } else {
            backdoor_user_reg_write(ool.offset, ool.size, 0);
        }
    }
    return true;
}

static uint64_t emulated_read(void *opaque, unsigned size)
{
    return backdoor_user_reg_read(*(uint64_t *)opaque, size);
}

static void emulated_write(void *opaque, unsigned size, uint64_t value)
{
    backdoor_user_reg_write(*(uint64_t *)opaque, size, value);
}

static bool emulate(siginfo_t *info, void *ctx, uint64_t offset, int prot)
{
    ucontext_t *uc = ctx;
    uintptr_t pc = uc->uc_mcontext.gregs[REG_RIP];
    uint8_t bytes[16];
    size_t n = read_insn(pc, bytes);
    const X86Access *a = decoder() ?
        x86_decode_access(thread_decoder, pc, bytes, n) : NULL;
    X86Regs regs;
    uint64_t ea;

    regs_from_ucontext(&regs, uc);
    /* Without a segment base the address must be the faulting one */
    if (!a || (x86_access_address(a, &regs, &ea) &&
               ea != (uintptr_t)info->si_addr)) {
        return out_of_line(uc, pc, (uintptr_t)info->si_addr, offset, prot);
    }
    /* What the guest mapping does not allow faults as it would without us */
    if (!(prot & (a->store ? PROT_WRITE : PROT_READ))) {
        return false;
    }
    x86_emulate_access(a, &regs, backdoor_user_big_endian, emulated_read,
                       emulated_write, &offset);
    regs_to_ucontext(uc, &regs);
    return true;
}

BackdoorFault backdoor_fault(siginfo_t *info, void *uc)
{
    uint64_t offset;
    int prot;

    if (!backdoor_mappings_lookup((uintptr_t)info->si_addr, &offset, &prot)) {
        return out_of_line_done(info, uc) ? BACKDOOR_FAULT_DONE :
               BACKDOOR_FAULT_PASS;
    }
    if (emulate(info, uc, offset, prot)) {
        return BACKDOOR_FAULT_DONE;
    }
    /*
     * An access we cannot run to a page QEMU believes writable: QEMU would
     * take it for a write to a page of translated code and retry forever.
     * Make it an ordinary guest SIGSEGV.
     */
    return prot & PROT_WRITE ? BACKDOOR_FAULT_MAPERR : BACKDOOR_FAULT_PASS;
}
