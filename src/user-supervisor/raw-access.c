/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One guest access to the register page, emulated from the tracer
 * (trace.c): the faulting thread's host instruction, its registers read
 * and written through ptrace, becomes accesses of the user-mode register
 * model, whose calls the supervisor runs (supervisor_call).
 *
 * Plain moves are emulated (x86-emulate.c); 16-byte xmm moves, which QEMU
 * 10 makes of an aarch64 ldp or stp, are two 8-byte accesses in address
 * order; other instructions with one memory operand (atomics in QEMU's
 * helpers) run for real, here, on a copy of the register's bytes.
 */
#define _GNU_SOURCE
#include "raw-access.h"
#include "x86-emulate.h"
#include "regs.h"

#include <cpuid.h>
#include <elf.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

#define PAGE 4096ull

static TraceChannel ch;
static X86Decoder *dec;

bool raw_access_init(const TraceChannel *channel)
{
    ch = *channel;
    dec = x86_decoder_new();
    return dec != NULL;
}

/* The register model of user mode, per process and thread */

typedef struct Access {
    const RawThread *t;
    uint64_t offset;
} Access;

/* The constant registers (ID, FEATURES, DATA_SIZE): the file's bytes */
#define FILE_REGS_END BACKDOOR_REG_CMD

/* A value of @size bytes (1, 2, 4 or 8) in the guest's byte order */
static uint64_t ld_guest(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1:
        return p[0];
    case 2:
        return qemu_backdoor_ld16(ch.big_endian, p);
    case 4:
        return qemu_backdoor_ld32(ch.big_endian, p);
    default:
        return qemu_backdoor_ld64(ch.big_endian, p);
    }
}

static void st_guest(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        p[0] = v;
        break;
    case 2:
        qemu_backdoor_st16(ch.big_endian, p, v);
        break;
    case 4:
        qemu_backdoor_st32(ch.big_endian, p, v);
        break;
    default:
        qemu_backdoor_st64(ch.big_endian, p, v);
    }
}

static uint64_t call(const RawThread *t, uint64_t cmd)
{
    *t->result = supervisor_call(t->tid, cmd);
    return *t->result;
}

/*
 * The register model (regs.h) of the calling thread and process; the
 * constant registers below CMD (ID, FEATURES, DATA_SIZE) read as the
 * file's bytes, in any width, as a mapping of the file would without the
 * tracer.
 */
static uint64_t reg_read(const RawThread *t, uint64_t offset, unsigned size)
{
    uint64_t v, mask = size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
    BackdoorReg reg;

    if (offset < FILE_REGS_END) {
        return offset + size <= FILE_REGS_END && size <= 8 ?
               ld_guest(ch.reg_page + offset, size) : mask;
    }
    if (backdoor_regs_check(ch.regs, offset, size, false, &reg, NULL) !=
        BACKDOOR_ACCESS_OK) {
        return mask;            /* a wrong access reads all ones */
    }
    switch (reg) {
    case BACKDOOR_R_RESULT:
        v = *t->result;
        break;
    case BACKDOOR_R_RESULT_HI:
        v = *t->result >> 32;
        break;
    case BACKDOOR_R_CALL_OFFSET:
        v = *t->call_offset;
        break;
    case BACKDOOR_R_CALL:
        v = call(t, backdoor_regs_call_word(ch.regs, *t->call_offset,
                                            ch.big_endian));
        break;
    default:
        v = UINT64_MAX;
    }
    return v & mask;
}

static void reg_write(const RawThread *t, uint64_t offset, unsigned size,
                      uint64_t value)
{
    BackdoorReg reg;

    if (backdoor_regs_check(ch.regs, offset, size, true, &reg, NULL) !=
        BACKDOOR_ACCESS_OK) {
        return;                 /* a wrong access is ignored */
    }
    if (size == 4) {
        value = (uint32_t)value;
    }
    if (reg == BACKDOOR_R_CMD) {
        call(t, value);
    } else if (reg == BACKDOOR_R_CALL_OFFSET &&
               backdoor_regs_call_offset_ok(ch.regs, value)) {
        *t->call_offset = value;
    }
}

static uint64_t access_read(void *opaque, unsigned size)
{
    Access *a = opaque;

    return reg_read(a->t, a->offset, size);
}

static void access_write(void *opaque, unsigned size, uint64_t value)
{
    Access *a = opaque;

    reg_write(a->t, a->offset, size, value);
}

/* Faults */

static void regs_from_user(X86Regs *x, const struct user_regs_struct *r)
{
    x->gpr[X86_RAX] = r->rax;
    x->gpr[X86_RCX] = r->rcx;
    x->gpr[X86_RDX] = r->rdx;
    x->gpr[X86_RBX] = r->rbx;
    x->gpr[X86_RSP] = r->rsp;
    x->gpr[X86_RBP] = r->rbp;
    x->gpr[X86_RSI] = r->rsi;
    x->gpr[X86_RDI] = r->rdi;
    x->gpr[X86_R8] = r->r8;
    x->gpr[X86_R9] = r->r9;
    x->gpr[X86_R10] = r->r10;
    x->gpr[X86_R11] = r->r11;
    x->gpr[X86_R12] = r->r12;
    x->gpr[X86_R13] = r->r13;
    x->gpr[X86_R14] = r->r14;
    x->gpr[X86_R15] = r->r15;
    x->rip = r->rip;
}

static void regs_to_user(struct user_regs_struct *r, const X86Regs *x)
{
    r->rax = x->gpr[X86_RAX];
    r->rcx = x->gpr[X86_RCX];
    r->rdx = x->gpr[X86_RDX];
    r->rbx = x->gpr[X86_RBX];
    r->rsp = x->gpr[X86_RSP];
    r->rbp = x->gpr[X86_RBP];
    r->rsi = x->gpr[X86_RSI];
    r->rdi = x->gpr[X86_RDI];
    r->r8 = x->gpr[X86_R8];
    r->r9 = x->gpr[X86_R9];
    r->r10 = x->gpr[X86_R10];
    r->r11 = x->gpr[X86_R11];
    r->r12 = x->gpr[X86_R12];
    r->r13 = x->gpr[X86_R13];
    r->r14 = x->gpr[X86_R14];
    r->r15 = x->gpr[X86_R15];
    r->rip = x->rip;
}

/* The instruction bytes at @pc, stopping at an unmapped page. */
static size_t read_code(pid_t tid, uint64_t pc, uint8_t *buf)
{
    uint64_t split = (pc | (PAGE - 1)) + 1;
    struct iovec local[2] = {
        { buf, MIN(15, split - pc) },
        { buf + MIN(15, split - pc), 15 - MIN(15, split - pc) },
    };
    struct iovec remote[2] = {
        { (void *)(uintptr_t)pc, local[0].iov_len },
        { (void *)(uintptr_t)split, local[1].iov_len },
    };
    ssize_t n = process_vm_readv(tid, local, local[1].iov_len ? 2 : 1,
                                 remote, local[1].iov_len ? 2 : 1, 0);

    return n < 0 ? 0 : (size_t)n;
}

static uint64_t vector_read(void *opaque, unsigned at, unsigned size)
{
    Access *a = opaque;

    return reg_read(a->t, a->offset + at, size);
}

static void vector_write(void *opaque, unsigned at, unsigned size,
                         uint64_t value)
{
    Access *a = opaque;

    reg_write(a->t, a->offset + at, size, value);
}

/* Where XSAVE keeps component @n (AVX: 2, ZMM_Hi256: 6), 0 if it does not */
static unsigned xsave_offset(unsigned n, unsigned *size)
{
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;

    if (!__get_cpuid_count(0xd, n, &eax, &ebx, &ecx, &edx)) {
        return 0;
    }
    *size = eax;
    return ebx;
}

/*
 * A load or store between the register page and an xmm register: the
 * thread's SSE state is read (and, for a load, written) through ptrace,
 * with XSAVE's layout where the kernel offers it.
 */
static bool vector_access(const RawThread *t, struct user_regs_struct *r,
                          const X86VecAccess *v, uint64_t offset)
{
    static uint8_t xs[16384] __attribute__((aligned(64)));
    struct iovec iov = { xs, sizeof(xs) };
    struct user_fpregs_struct fp;
    Access acc = { t, offset };
    bool xsave;
    uint8_t *area;

    xsave = ptrace(PTRACE_GETREGSET, t->tid, NT_X86_XSTATE, &iov) == 0 &&
            iov.iov_len >= 576;
    if (!xsave && ptrace(PTRACE_GETFPREGS, t->tid, 0, &fp)) {
        return false;
    }
    /* xmm0-15 sit at 160 in the legacy (FXSAVE) area of both layouts */
    area = xsave ? xs : (uint8_t *)&fp;
    x86_emulate_vector(v, area + 160 + 16 * v->xmm, ch.big_endian,
                       vector_read, vector_write, &acc);
    if (!v->store) {
        if (xsave) {
            unsigned at, size = 0;

            *(uint64_t *)(xs + 512) |= 2;   /* XSTATE_BV: SSE state live */
            if (v->vex && (at = xsave_offset(2, &size)) &&
                at + size <= iov.iov_len) {
                memset(xs + at + 16 * v->xmm, 0, 16);   /* ymm above 128 */
            }
            if (v->vex && (at = xsave_offset(6, &size)) &&
                at + size <= iov.iov_len) {
                memset(xs + at + 32 * v->xmm, 0, 32);   /* zmm above 256 */
            }
            if (ptrace(PTRACE_SETREGSET, t->tid, NT_X86_XSTATE, &iov)) {
                return false;
            }
        } else if (ptrace(PTRACE_SETFPREGS, t->tid, 0, &fp)) {
            return false;
        }
    }
    r->rip += v->len;
    return ptrace(PTRACE_SETREGS, t->tid, 0, r) == 0;
}

/*
 * Other instructions with one memory operand (atomics in QEMU's helpers)
 * run here, in the tracer, on a copy: the thread's registers are loaded
 * into ours, the base register moved to point at a scratch copy of the
 * register's bytes, the instruction run, and registers, flags and the
 * written bytes taken back. Only instructions that touch GPRs and flags
 * alone, without the stack or a segment base.
 */
#define OOL_FLAGS 0xcd5ull      /* CF PF AF ZF SF DF OF */

static uint8_t *ool_code;
static uint64_t ool_saved_rsp;
static uint8_t ool_scratch[2 * PAGE] __attribute__((aligned(4096)));
/* Popped in this order: flags, rax, rcx, rdx, rbx, rbp, rsi, rdi, r8-r15 */
static uint64_t ool_ctx[16] __attribute__((aligned(64)));

static const X86Gpr ool_order[15] = {
    X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RBP, X86_RSI, X86_RDI,
    X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
};

static size_t emit(uint8_t *p, const void *bytes, size_t n)
{
    memcpy(p, bytes, n);
    return n;
}

/* push callee-saved; save rsp; rsp = ctx; pop all; INSN; push all; back */
static void ool_build(const uint8_t *insn, size_t len)
{
    static const uint8_t save[] = {
        0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57,
    };
    static const uint8_t pops[] = {
        0x9d, 0x58, 0x59, 0x5a, 0x5b, 0x5d, 0x5e, 0x5f, 0x41, 0x58, 0x41,
        0x59, 0x41, 0x5a, 0x41, 0x5b, 0x41, 0x5c, 0x41, 0x5d, 0x41, 0x5e,
        0x41, 0x5f,
    };
    static const uint8_t pushes[] = {
        0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x41, 0x53, 0x41,
        0x52, 0x41, 0x51, 0x41, 0x50, 0x57, 0x56, 0x55, 0x53, 0x52, 0x51,
        0x50, 0x9c,
    };
    static const uint8_t restore[] = {
        0xfc, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b,
        0xc3,
    };
    uint64_t saved = (uintptr_t)&ool_saved_rsp;
    uint8_t *p = ool_code;

    p += emit(p, save, sizeof(save));
    p += emit(p, (uint8_t[]){ 0x48, 0xb8 }, 2);       /* movabs $saved,%rax */
    p += emit(p, &saved, 8);
    p += emit(p, (uint8_t[]){ 0x48, 0x89, 0x20 }, 3); /* mov %rsp,(%rax) */
    p += emit(p, (uint8_t[]){ 0x48, 0x89, 0xfc }, 3); /* mov %rdi,%rsp */
    p += emit(p, pops, sizeof(pops));
    p += emit(p, insn, len);
    p += emit(p, pushes, sizeof(pushes));
    p += emit(p, (uint8_t[]){ 0x48, 0xb8 }, 2);       /* movabs $saved,%rax */
    p += emit(p, &saved, 8);
    p += emit(p, (uint8_t[]){ 0x48, 0x8b, 0x20 }, 3); /* mov (%rax),%rsp */
    emit(p, restore, sizeof(restore));          /* cld; pop; ret */
}

static RawOutcome out_of_line(const RawThread *t,
                              struct user_regs_struct *r,
                              const uint8_t *code, size_t n, uint64_t addr,
                              uint64_t offset, int prot)
{
    uint8_t before[64], *scratch = ool_scratch + (addr & (PAGE - 1));
    X86OutOfLine o;
    X86Regs x;
    uint64_t delta;
    sigset_t all, old;

    if (!x86_decode_out_of_line(dec, r->rip, code, n, &o) ||
        !o.gprs_only || o.uses_rsp || o.mem.segment || o.beyond ||
        (offset & (PAGE - 1)) + o.size > PAGE) {
        return RAW_FAILED;
    }
    if ((o.read && !(prot & PROT_READ)) || (o.write && !(prot & PROT_WRITE))) {
        return RAW_DENIED;
    }
    if (!ool_code) {
        void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED) {
            return RAW_FAILED;
        }
        ool_code = p;
    }
    /* The register's bytes, as a load of that width would read them */
    if (o.read && o.size <= 8 && !(o.size & (o.size - 1))) {
        st_guest(scratch, o.size, reg_read(t, offset, o.size));
    } else {
        /* Wider than a register: a wrong access, which reads all ones */
        memset(scratch, o.read ? 0xff : 0, o.size);
    }
    memcpy(before, scratch, o.size);

    regs_from_user(&x, r);
    delta = ((uintptr_t)scratch - addr) / o.scale;
    x.gpr[o.reloc] += delta;
    ool_ctx[0] = (r->eflags & OOL_FLAGS) | 0x2;
    for (int i = 0; i < 15; i++) {
        ool_ctx[i + 1] = x.gpr[ool_order[i]];
    }
    ool_build(code, o.len);
    /* A signal handler must never run on the borrowed stack */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    ((void (*)(uint64_t *))ool_code)(ool_ctx);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int i = 0; i < 15; i++) {
        x.gpr[ool_order[i]] = ool_ctx[i + 1];
    }
    x.gpr[o.reloc] -= delta;
    x.rip = r->rip + o.len;
    regs_to_user(r, &x);
    r->eflags = (r->eflags & ~OOL_FLAGS) | (ool_ctx[0] & OOL_FLAGS);

    if (o.write && o.size <= 8 && !(o.size & (o.size - 1)) &&
        !(o.write_if_changed && !memcmp(before, scratch, o.size))) {
        reg_write(t, offset, o.size, ld_guest(scratch, o.size));
    }
    return ptrace(PTRACE_SETREGS, t->tid, 0, r) ? RAW_FAILED : RAW_DONE;
}


/* The guest's access at @addr: see raw-access.h */
RawOutcome raw_access(const RawThread *t, uint64_t addr, uint64_t offset,
                      int prot, char *what, size_t what_size)
{
    struct user_regs_struct r;
    uint8_t code[16] = { 0 };
    const X86Access *a;
    X86VecAccess v;
    X86Regs x;
    uint64_t ea;
    size_t n;

    snprintf(what, what_size, "the host instruction of thread %d", t->tid);
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r)) {
        return RAW_FAILED;
    }
    n = read_code(t->tid, r.rip, code);
    snprintf(what, what_size, "the host instruction at 0x%llx (%02x %02x "
             "%02x %02x ...)", r.rip, code[0], code[1], code[2], code[3]);
    a = n ? x86_decode_access(dec, r.rip, code, n) : NULL;
    regs_from_user(&x, &r);
    if (a && (!x86_access_address(a, &x, &ea) || ea == addr)) {
        Access acc = { t, offset };

        if (!(prot & (a->store ? PROT_WRITE : PROT_READ))) {
            return RAW_DENIED;
        }
        x86_emulate_access(a, &x, ch.big_endian, access_read, access_write,
                           &acc);
        regs_to_user(&r, &x);
        return ptrace(PTRACE_SETREGS, t->tid, 0, &r) ? RAW_FAILED : RAW_DONE;
    }
    if (n && x86_decode_vector_access(dec, r.rip, code, n, &v) &&
        (!x86_mem_address(&v.mem, v.len, &x, &ea) || ea == addr)) {
        if (!(prot & (v.store ? PROT_WRITE : PROT_READ))) {
            return RAW_DENIED;
        }
        return vector_access(t, &r, &v, offset) ? RAW_DONE : RAW_FAILED;
    }
    return n ? out_of_line(t, &r, code, n, addr, offset, prot) : RAW_FAILED;
}
