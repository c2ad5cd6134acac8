/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Emulation of a guest access to a control page: the host instruction that
 * faulted (TCG code or QEMU's own C code) is decoded with capstone, the
 * load or store becomes a register access, and the thread continues after
 * the instruction. One signal per access.
 *
 * The host is x86-64: qemu-<arch> runs guest accesses as host mov, movzx,
 * movsx, movsxd or movbe (big-endian guests on hosts with MOVBE).
 */
#define _GNU_SOURCE
#include "fault.h"
#include "channel.h"
#include "libc.h"
#include "mappings.h"
#include "qemu-syms.h"

#include <capstone/capstone.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "the user-mode helper supports x86-64 hosts only"
#endif

typedef struct HostReg {
    x86_reg reg;
    int greg;
    uint8_t size;
    uint8_t shift;
} HostReg;

#define R64(n, g) { X86_REG_##n, REG_##g, 8, 0 }
#define R32(n, g) { X86_REG_##n, REG_##g, 4, 0 }
#define R16(n, g) { X86_REG_##n, REG_##g, 2, 0 }
#define R8(n, g)  { X86_REG_##n, REG_##g, 1, 0 }
#define R8H(n, g) { X86_REG_##n, REG_##g, 1, 8 }

static const HostReg host_regs[] = {
    R64(RAX, RAX), R64(RBX, RBX), R64(RCX, RCX), R64(RDX, RDX),
    R64(RSI, RSI), R64(RDI, RDI), R64(RBP, RBP), R64(RSP, RSP),
    R64(R8, R8), R64(R9, R9), R64(R10, R10), R64(R11, R11),
    R64(R12, R12), R64(R13, R13), R64(R14, R14), R64(R15, R15),
    R64(RIP, RIP),
    R32(EAX, RAX), R32(EBX, RBX), R32(ECX, RCX), R32(EDX, RDX),
    R32(ESI, RSI), R32(EDI, RDI), R32(EBP, RBP), R32(ESP, RSP),
    R32(R8D, R8), R32(R9D, R9), R32(R10D, R10), R32(R11D, R11),
    R32(R12D, R12), R32(R13D, R13), R32(R14D, R14), R32(R15D, R15),
    R16(AX, RAX), R16(BX, RBX), R16(CX, RCX), R16(DX, RDX),
    R16(SI, RSI), R16(DI, RDI), R16(BP, RBP), R16(SP, RSP),
    R16(R8W, R8), R16(R9W, R9), R16(R10W, R10), R16(R11W, R11),
    R16(R12W, R12), R16(R13W, R13), R16(R14W, R14), R16(R15W, R15),
    R8(AL, RAX), R8(BL, RBX), R8(CL, RCX), R8(DL, RDX),
    R8(SIL, RSI), R8(DIL, RDI), R8(BPL, RBP), R8(SPL, RSP),
    R8(R8B, R8), R8(R9B, R9), R8(R10B, R10), R8(R11B, R11),
    R8(R12B, R12), R8(R13B, R13), R8(R14B, R14), R8(R15B, R15),
    R8H(AH, RAX), R8H(BH, RBX), R8H(CH, RCX), R8H(DH, RDX),
};

static const HostReg *host_reg(x86_reg reg)
{
    for (size_t i = 0; i < sizeof(host_regs) / sizeof(host_regs[0]); i++) {
        if (host_regs[i].reg == reg) {
            return &host_regs[i];
        }
    }
    return NULL;
}

static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

static uint64_t get_reg(ucontext_t *uc, const HostReg *r)
{
    return (uc->uc_mcontext.gregs[r->greg] >> r->shift) & size_mask(r->size);
}

/* As the CPU writes: 32-bit zero-extends, 8 and 16-bit merge. */
static void set_reg(ucontext_t *uc, const HostReg *r, uint64_t v)
{
    greg_t *g = &uc->uc_mcontext.gregs[r->greg];
    uint64_t mask = size_mask(r->size) << r->shift;

    if (r->size >= 4) {
        *g = v & size_mask(r->size);
    } else {
        *g = (*g & ~mask) | ((v << r->shift) & mask);
    }
}

static uint64_t bswap_size(uint64_t v, unsigned size)
{
    switch (size) {
    case 2:
        return __builtin_bswap16(v);
    case 4:
        return __builtin_bswap32(v);
    case 8:
        return __builtin_bswap64(v);
    default:
        return v;
    }
}

/* A decoded access, cached per thread by host PC and instruction bytes. */
typedef struct Access {
    uintptr_t pc;
    uint8_t bytes[16];
    uint8_t nbytes;
    uint8_t len;
    bool store;
    bool movbe;
    bool sign_extend;
    bool has_imm;
    uint8_t size;           /* of the memory access */
    x86_reg reg;            /* source or destination */
    uint64_t imm;
    x86_op_mem mem;
} Access;

#define ACCESS_CACHE 8

static __thread csh thread_cs;
static __thread cs_insn *thread_insn;
static __thread Access access_cache[ACCESS_CACHE];
static __thread unsigned access_next;

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

static bool decode(uintptr_t pc, Access *a)
{
    const uint8_t *code;
    size_t size;
    uint64_t addr = pc;
    cs_x86 *x;
    cs_x86_op *mem = NULL, *other = NULL;

    memset(a, 0, sizeof(*a));
    a->pc = pc;
    a->nbytes = read_insn(pc, a->bytes);

    if (!thread_cs) {
        if (cs_open(CS_ARCH_X86, CS_MODE_64, &thread_cs) != CS_ERR_OK) {
            thread_cs = 0;
            return false;
        }
        cs_option(thread_cs, CS_OPT_DETAIL, CS_OPT_ON);
        thread_insn = cs_malloc(thread_cs);
    }
    code = a->bytes;
    size = a->nbytes;
    if (!cs_disasm_iter(thread_cs, &code, &size, &addr, thread_insn)) {
        return false;
    }
    x = &thread_insn->detail->x86;
    if (x->op_count != 2) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        if (x->operands[i].type == X86_OP_MEM) {
            mem = &x->operands[i];
        } else {
            other = &x->operands[i];
        }
    }
    if (!mem || !other) {
        return false;
    }
    switch (thread_insn->id) {
    case X86_INS_MOVBE:
        a->movbe = true;
        /* fall through */
    case X86_INS_MOV:
        a->store = mem == &x->operands[0];
        break;
    case X86_INS_MOVSX:
    case X86_INS_MOVSXD:
        a->sign_extend = true;
        /* fall through */
    case X86_INS_MOVZX:
        if (mem != &x->operands[1]) {
            return false;
        }
        break;
    default:
        return false;
    }
    if (other->type == X86_OP_IMM) {
        if (!a->store) {
            return false;
        }
        a->has_imm = true;
        a->imm = other->imm;
    } else if (other->type != X86_OP_REG || !host_reg(other->reg)) {
        return false;
    } else {
        a->reg = other->reg;
    }
    a->len = thread_insn->size;
    a->size = mem->size;
    a->mem = mem->mem;
    return a->size == 1 || a->size == 2 || a->size == 4 || a->size == 8;
}

static const Access *lookup_access(uintptr_t pc)
{
    uint8_t bytes[16];
    size_t n = read_insn(pc, bytes);
    Access *a;

    for (int i = 0; i < ACCESS_CACHE; i++) {
        a = &access_cache[i];
        if (a->pc == pc && a->len && a->nbytes == n &&
            !memcmp(a->bytes, bytes, n)) {
            return a;
        }
    }
    a = &access_cache[access_next++ % ACCESS_CACHE];
    if (!decode(pc, a)) {
        a->len = 0;
        return NULL;
    }
    return a;
}

/* The address the instruction accessed, when it has no segment base. */
static bool address_matches(ucontext_t *uc, const Access *a, uintptr_t addr)
{
    const HostReg *base = host_reg(a->mem.base);
    const HostReg *index = host_reg(a->mem.index);
    uintptr_t ea = a->mem.disp;

    if (a->mem.segment != X86_REG_INVALID) {
        return true;
    }
    if (a->mem.base == X86_REG_RIP) {
        ea += a->pc + a->len;
    } else if (base) {
        ea += get_reg(uc, base);
    }
    if (index) {
        ea += get_reg(uc, index) * a->mem.scale;
    }
    return ea == addr;
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

static x86_reg parent64(x86_reg reg)
{
    const HostReg *r = host_reg(reg);

    for (size_t i = 0; r && i < sizeof(host_regs) / sizeof(host_regs[0]);
         i++) {
        if (host_regs[i].greg == r->greg && host_regs[i].size == 8) {
            return host_regs[i].reg;
        }
    }
    return X86_REG_INVALID;
}

static bool uses_reg(const cs_insn *insn, x86_reg reg)
{
    const cs_detail *d = insn->detail;
    const cs_x86 *x = &d->x86;

    for (int i = 0; i < d->regs_read_count; i++) {
        if (parent64(d->regs_read[i]) == reg) {
            return true;
        }
    }
    for (int i = 0; i < d->regs_write_count; i++) {
        if (parent64(d->regs_write[i]) == reg) {
            return true;
        }
    }
    for (int i = 0; i < x->op_count; i++) {
        if (x->operands[i].type == X86_OP_REG &&
            parent64(x->operands[i].reg) == reg) {
            return true;
        }
    }
    return false;
}

static bool out_of_line(ucontext_t *uc, uintptr_t pc, uintptr_t addr,
                        uint64_t offset, int prot)
{
    uint8_t bytes[16];
    const uint8_t *code = bytes;
    size_t n = read_insn(pc, bytes);
    uint64_t ip = pc;
    const cs_x86_op *mem = NULL;
    const HostReg *r;
    uint8_t *scratch;
    unsigned scale = 1;
    int access;

    if (!thread_cs || ool.busy ||
        !cs_disasm_iter(thread_cs, &code, &n, &ip, thread_insn)) {
        return false;
    }
    for (int i = 0; i < thread_insn->detail->x86.op_count; i++) {
        const cs_x86_op *op = &thread_insn->detail->x86.operands[i];

        if (op->type == X86_OP_MEM) {
            if (mem) {
                return false;
            }
            mem = op;
        }
    }
    if (!mem || mem->size == 0 || mem->size > 64 ||
        (offset & 4095) + mem->size > 4096 ||
        !(mem->access & (CS_AC_READ | CS_AC_WRITE)) ||
        cs_insn_group(thread_cs, thread_insn, CS_GRP_JUMP) ||
        cs_insn_group(thread_cs, thread_insn, CS_GRP_CALL) ||
        cs_insn_group(thread_cs, thread_insn, CS_GRP_RET) ||
        cs_insn_group(thread_cs, thread_insn, CS_GRP_INT) ||
        mem->mem.base == X86_REG_RIP) {
        return false;
    }
    access = mem->access;
    switch (thread_insn->id) {
    case X86_INS_CMPXCHG:
    case X86_INS_CMPXCHG8B:
    case X86_INS_CMPXCHG16B:
        /* capstone 4 says read only; it writes when the compare succeeds */
        access |= CS_AC_READ | CS_AC_WRITE;
        ool.write_if_changed = true;
        break;
    default:
        ool.write_if_changed = false;
    }
    if (((access & CS_AC_READ) && !(prot & PROT_READ)) ||
        ((access & CS_AC_WRITE) && !(prot & PROT_WRITE))) {
        return false;
    }
    r = host_reg(mem->mem.base);
    if (!r || r->size != 8 || r->greg == REG_RSP) {
        r = host_reg(mem->mem.index);
        scale = mem->mem.scale;
        if (!r || r->size != 8 || r->greg == REG_RSP || scale == 0) {
            return false;
        }
    }
    if (uses_reg(thread_insn, r->reg)) {
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
    if (access & CS_AC_READ) {
        if (mem->size == 4 || mem->size == 8) {
            uint64_t v = backdoor_user_reg_read(offset, mem->size);

            if (mem->size == 4) {
                qemu_backdoor_st32(backdoor_user_big_endian, scratch, v);
            } else {
                qemu_backdoor_st64(backdoor_user_big_endian, scratch, v);
            }
        } else {
            backdoor_user_reg_read(offset, mem->size);
            memset(scratch, 0xff, mem->size);
        }
    } else {
        memset(scratch, 0, mem->size);
    }

    memcpy(ool.before, scratch, mem->size);

    /* The instruction, then jmp *guard: a fault that brings us back */
    memcpy(ool.page, bytes, thread_insn->size);
    ool.page[thread_insn->size] = 0xff;
    ool.page[thread_insn->size + 1] = 0x25;
    {
        int32_t disp = 4096 - (thread_insn->size + 6);

        memcpy(ool.page + thread_insn->size + 2, &disp, 4);
    }
    ool.busy = true;
    ool.pc = pc;
    ool.len = thread_insn->size;
    ool.offset = offset;
    ool.size = mem->size;
    ool.write = access & CS_AC_WRITE;
    ool.greg = r->greg;
    ool.delta = ((uintptr_t)scratch - addr) / scale;
    uc->uc_mcontext.gregs[r->greg] += ool.delta;
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

static bool emulate(siginfo_t *info, void *ctx, uint64_t offset, int prot)
{
    ucontext_t *uc = ctx;
    uintptr_t pc = uc->uc_mcontext.gregs[REG_RIP];
    const Access *a = lookup_access(pc);
    bool swap;
    uint64_t v;

    if (!a || !address_matches(uc, a, (uintptr_t)info->si_addr)) {
        return out_of_line(uc, pc, (uintptr_t)info->si_addr, offset, prot);
    }
    /* What the guest mapping does not allow faults as it would without us */
    if (!(prot & (a->store ? PROT_WRITE : PROT_READ))) {
        return false;
    }
    swap = a->movbe != backdoor_user_big_endian;
    if (a->store) {
        v = a->has_imm ? a->imm : get_reg(uc, host_reg(a->reg));
        v &= size_mask(a->size);
        backdoor_user_reg_write(offset, a->size,
                                swap ? bswap_size(v, a->size) : v);
    } else {
        v = backdoor_user_reg_read(offset, a->size);
        if (swap) {
            v = bswap_size(v, a->size);
        }
        if (a->sign_extend && a->size < 8) {
            unsigned shift = 64 - a->size * 8;

            v = (uint64_t)((int64_t)(v << shift) >> shift);
        }
        set_reg(uc, host_reg(a->reg), v);
    }
    uc->uc_mcontext.gregs[REG_RIP] = pc + a->len;
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
