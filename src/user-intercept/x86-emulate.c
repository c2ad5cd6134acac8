/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Decoding (capstone) and emulation of a host x86-64 load or store on an
 * abstract register file; see x86-emulate.h.
 */
#include "x86-emulate.h"

#include <capstone/capstone.h>
#include <stdlib.h>
#include <string.h>

typedef struct HostReg {
    x86_reg reg;
    X86RegOperand op;
} HostReg;

#define R64(n, g) { X86_REG_##n, { X86_##g, 8, 0 } }
#define R32(n, g) { X86_REG_##n, { X86_##g, 4, 0 } }
#define R16(n, g) { X86_REG_##n, { X86_##g, 2, 0 } }
#define R8(n, g)  { X86_REG_##n, { X86_##g, 1, 0 } }
#define R8H(n, g) { X86_REG_##n, { X86_##g, 1, 8 } }

static const HostReg host_regs[] = {
    R64(RAX, RAX), R64(RBX, RBX), R64(RCX, RCX), R64(RDX, RDX),
    R64(RSI, RSI), R64(RDI, RDI), R64(RBP, RBP), R64(RSP, RSP),
    R64(R8, R8), R64(R9, R9), R64(R10, R10), R64(R11, R11),
    R64(R12, R12), R64(R13, R13), R64(R14, R14), R64(R15, R15),
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

static const X86RegOperand *host_reg(x86_reg reg)
{
    for (size_t i = 0; i < sizeof(host_regs) / sizeof(host_regs[0]); i++) {
        if (host_regs[i].reg == reg) {
            return &host_regs[i].op;
        }
    }
    return NULL;
}

static X86Gpr gpr_of(x86_reg reg)
{
    const X86RegOperand *r = host_reg(reg);

    return r ? r->gpr : X86_NO_GPR;
}

static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

uint64_t x86_reg_get(const X86Regs *regs, X86RegOperand r)
{
    return (regs->gpr[r.gpr] >> r.shift) & size_mask(r.size);
}

/* As the CPU writes: 32-bit zero-extends, 8 and 16-bit merge. */
static void reg_set(X86Regs *regs, X86RegOperand r, uint64_t v)
{
    uint64_t *g = &regs->gpr[r.gpr];
    uint64_t mask = size_mask(r.size) << r.shift;

    if (r.size >= 4) {
        *g = v & size_mask(r.size);
    } else {
        *g = (*g & ~mask) | ((v << r.shift) & mask);
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

#define ACCESS_CACHE 8
#define CODE_MAX 16

typedef struct CachedAccess {
    uint64_t pc;
    uint8_t bytes[CODE_MAX];
    uint8_t nbytes;
    bool valid;
    X86Access a;
} CachedAccess;

struct X86Decoder {
    csh cs;
    cs_insn *insn;
    CachedAccess cache[ACCESS_CACHE];
    unsigned next;
};

X86Decoder *x86_decoder_new(void)
{
    X86Decoder *d = calloc(1, sizeof(*d));

    if (!d) {
        return NULL;
    }
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &d->cs) != CS_ERR_OK) {
        free(d);
        return NULL;
    }
    cs_option(d->cs, CS_OPT_DETAIL, CS_OPT_ON);
    d->insn = cs_malloc(d->cs);
    if (!d->insn) {
        cs_close(&d->cs);
        free(d);
        return NULL;
    }
    return d;
}

void x86_decoder_free(X86Decoder *d)
{
    if (d) {
        cs_free(d->insn, 1);
        cs_close(&d->cs);
        free(d);
    }
}

static bool disasm(X86Decoder *d, uint64_t pc, const uint8_t *code,
                   size_t n)
{
    uint64_t addr = pc;

    return cs_disasm_iter(d->cs, &code, &n, &addr, d->insn);
}

static X86MemOperand mem_operand(const cs_x86_op *op)
{
    X86MemOperand m = {
        .base = gpr_of(op->mem.base),
        .index = gpr_of(op->mem.index),
        .rip_relative = op->mem.base == X86_REG_RIP,
        .segment = op->mem.segment != X86_REG_INVALID,
        .scale = op->mem.scale,
        .disp = op->mem.disp,
    };

    return m;
}

/*
 * The decoded instruction's two operands, a memory one and another; false
 * when it has not exactly those.
 */
static bool mem_and_other(X86Decoder *d, cs_x86_op **mem, cs_x86_op **other)
{
    cs_x86 *x = &d->insn->detail->x86;

    *mem = *other = NULL;
    if (x->op_count != 2) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        if (x->operands[i].type == X86_OP_MEM) {
            *mem = &x->operands[i];
        } else {
            *other = &x->operands[i];
        }
    }
    return *mem && *other;
}

static bool decode_access(X86Decoder *d, uint64_t pc, const uint8_t *code,
                          size_t n, X86Access *a)
{
    cs_x86 *x;
    cs_x86_op *mem, *other;
    const X86RegOperand *r;

    memset(a, 0, sizeof(*a));
    if (!disasm(d, pc, code, n) || !mem_and_other(d, &mem, &other)) {
        return false;
    }
    x = &d->insn->detail->x86;
    switch (d->insn->id) {
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
    } else if (other->type != X86_OP_REG || !(r = host_reg(other->reg))) {
        return false;
    } else {
        a->reg = *r;
    }
    a->len = d->insn->size;
    a->size = mem->size;
    a->mem = mem_operand(mem);
    return a->size == 1 || a->size == 2 || a->size == 4 || a->size == 8;
}

const X86Access *x86_decode_access(X86Decoder *d, uint64_t pc,
                                   const uint8_t *code, size_t n)
{
    CachedAccess *c;

    if (n > CODE_MAX) {
        n = CODE_MAX;
    }
    for (int i = 0; i < ACCESS_CACHE; i++) {
        c = &d->cache[i];
        if (c->valid && c->pc == pc && c->nbytes == n &&
            !memcmp(c->bytes, code, n)) {
            return &c->a;
        }
    }
    c = &d->cache[d->next++ % ACCESS_CACHE];
    c->pc = pc;
    c->nbytes = n;
    memcpy(c->bytes, code, n);
    c->valid = decode_access(d, pc, code, n, &c->a);
    return c->valid ? &c->a : NULL;
}

bool x86_mem_address(const X86MemOperand *mem, uint8_t len,
                     const X86Regs *regs, uint64_t *addr)
{
    uint64_t ea = mem->disp;

    if (mem->segment) {
        return false;
    }
    if (mem->rip_relative) {
        ea += regs->rip + len;
    } else if (mem->base != X86_NO_GPR) {
        ea += regs->gpr[mem->base];
    }
    if (mem->index != X86_NO_GPR) {
        ea += regs->gpr[mem->index] * mem->scale;
    }
    *addr = ea;
    return true;
}

bool x86_access_address(const X86Access *a, const X86Regs *regs,
                        uint64_t *addr)
{
    return x86_mem_address(&a->mem, a->len, regs, addr);
}

void x86_emulate_access(const X86Access *a, X86Regs *regs, bool big_endian,
                        uint64_t (*read)(void *opaque, unsigned size),
                        void (*write)(void *opaque, unsigned size,
                                      uint64_t value),
                        void *opaque)
{
    bool swap = a->movbe != big_endian;
    uint64_t v;

    if (a->store) {
        v = a->has_imm ? a->imm : x86_reg_get(regs, a->reg);
        v &= size_mask(a->size);
        write(opaque, a->size, swap ? bswap_size(v, a->size) : v);
    } else {
        v = read(opaque, a->size) & size_mask(a->size);
        if (swap) {
            v = bswap_size(v, a->size);
        }
        if (a->sign_extend && a->size < 8) {
            unsigned shift = 64 - a->size * 8;

            v = (uint64_t)((int64_t)(v << shift) >> shift);
        }
        reg_set(regs, a->reg, v);
    }
    regs->rip += a->len;
}

bool x86_decode_vector_access(X86Decoder *d, uint64_t pc,
                              const uint8_t *code, size_t n,
                              X86VecAccess *v)
{
    cs_x86 *x;
    cs_x86_op *mem, *reg;

    memset(v, 0, sizeof(*v));
    if (!disasm(d, pc, code, n)) {
        return false;
    }
    switch (d->insn->id) {
    case X86_INS_VMOVDQU:
    case X86_INS_VMOVDQA:
    case X86_INS_VMOVUPS:
    case X86_INS_VMOVAPS:
    case X86_INS_VMOVUPD:
    case X86_INS_VMOVAPD:
    case X86_INS_VMOVQ:
    case X86_INS_VMOVD:
        v->vex = true;
        break;
    case X86_INS_MOVDQU:
    case X86_INS_MOVDQA:
    case X86_INS_MOVUPS:
    case X86_INS_MOVAPS:
    case X86_INS_MOVUPD:
    case X86_INS_MOVAPD:
    case X86_INS_MOVQ:
    case X86_INS_MOVD:
        break;
    default:
        return false;
    }
    if (!mem_and_other(d, &mem, &reg)) {
        return false;
    }
    x = &d->insn->detail->x86;
    if (reg->type != X86_OP_REG || reg->reg < X86_REG_XMM0 ||
        reg->reg > X86_REG_XMM15 ||
        (mem->size != 4 && mem->size != 8 && mem->size != 16)) {
        return false;
    }
    v->len = d->insn->size;
    v->size = mem->size;
    v->store = mem == &x->operands[0];
    v->xmm = reg->reg - X86_REG_XMM0;
    v->mem = mem_operand(mem);
    return true;
}

static uint64_t ld_order(const uint8_t *p, unsigned size, bool big_endian)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)p[i] << (8 * (big_endian ? size - 1 - i : i));
    }
    return v;
}

static void st_order(uint8_t *p, unsigned size, uint64_t v, bool big_endian)
{
    for (unsigned i = 0; i < size; i++) {
        p[i] = v >> (8 * (big_endian ? size - 1 - i : i));
    }
}

void x86_emulate_vector(const X86VecAccess *v, uint8_t xmm[16],
                        bool big_endian,
                        uint64_t (*read)(void *opaque, unsigned at,
                                         unsigned size),
                        void (*write)(void *opaque, unsigned at,
                                      unsigned size, uint64_t value),
                        void *opaque)
{
    unsigned piece = v->size < 8 ? v->size : 8;

    for (unsigned at = 0; at < v->size; at += piece) {
        if (v->store) {
            write(opaque, at, piece, ld_order(xmm + at, piece, big_endian));
        } else {
            st_order(xmm + at, piece, read(opaque, at, piece), big_endian);
        }
    }
    if (!v->store) {
        memset(xmm + v->size, 0, 16 - v->size);
    }
}

static bool is_gpr_or_flags(x86_reg reg)
{
    return reg == X86_REG_EFLAGS || host_reg(reg);
}

/*
 * Whether @insn reads or writes @gpr in any width, explicitly or not;
 * with @others, whether it involves any register but GPRs and flags.
 */
static bool uses_gpr(const cs_insn *insn, X86Gpr gpr, bool *others)
{
    const cs_detail *det = insn->detail;
    const cs_x86 *x = &det->x86;
    bool used = false;

    *others = false;
    for (int i = 0; i < det->regs_read_count; i++) {
        used |= gpr_of(det->regs_read[i]) == gpr;
        *others |= !is_gpr_or_flags(det->regs_read[i]);
    }
    for (int i = 0; i < det->regs_write_count; i++) {
        used |= gpr_of(det->regs_write[i]) == gpr;
        *others |= !is_gpr_or_flags(det->regs_write[i]);
    }
    for (int i = 0; i < x->op_count; i++) {
        if (x->operands[i].type == X86_OP_REG) {
            used |= gpr_of(x->operands[i].reg) == gpr;
            *others |= !host_reg(x->operands[i].reg);
        }
    }
    return used;
}

bool x86_decode_out_of_line(X86Decoder *d, uint64_t pc, const uint8_t *code,
                            size_t n, X86OutOfLine *o)
{
    const cs_x86_op *mem = NULL;
    const cs_insn *insn = d->insn;
    X86MemOperand m;
    int access;
    bool others;

    memset(o, 0, sizeof(*o));
    if (!disasm(d, pc, code, n)) {
        return false;
    }
    for (int i = 0; i < insn->detail->x86.op_count; i++) {
        const cs_x86_op *op = &insn->detail->x86.operands[i];

        if (op->type == X86_OP_MEM) {
            if (mem) {
                return false;
            }
            mem = op;
        }
    }
    if (!mem || mem->size == 0 || mem->size > 64 ||
        !(mem->access & (CS_AC_READ | CS_AC_WRITE)) ||
        cs_insn_group(d->cs, insn, CS_GRP_JUMP) ||
        cs_insn_group(d->cs, insn, CS_GRP_CALL) ||
        cs_insn_group(d->cs, insn, CS_GRP_RET) ||
        cs_insn_group(d->cs, insn, CS_GRP_INT) ||
        mem->mem.base == X86_REG_RIP) {
        return false;
    }
    access = mem->access;
    switch (insn->id) {
    case X86_INS_CMPXCHG:
    case X86_INS_CMPXCHG8B:
    case X86_INS_CMPXCHG16B:
        /* capstone 4 says read only; it writes when the compare succeeds */
        access |= CS_AC_READ | CS_AC_WRITE;
        o->write_if_changed = true;
        break;
    default:
        break;
    }
    m = mem_operand(mem);
    o->mem = m;
    /* The base moves the access; else the index, by its scale */
    o->reloc = m.base;
    o->scale = 1;
    if (o->reloc == X86_NO_GPR || host_reg(mem->mem.base)->size != 8 ||
        o->reloc == X86_RSP) {
        o->reloc = m.index;
        o->scale = m.scale;
        if (o->reloc == X86_NO_GPR || host_reg(mem->mem.index)->size != 8 ||
            o->reloc == X86_RSP || o->scale == 0) {
            return false;
        }
    }
    /* Nothing else may use it */
    if (uses_gpr(insn, o->reloc, &others)) {
        return false;
    }
    o->uses_rsp = uses_gpr(insn, X86_RSP, &others) || m.base == X86_RSP ||
                  m.index == X86_RSP;
    uses_gpr(insn, o->reloc, &others);
    /* bt, bts, btr, btc with a register bit offset address a bit string */
    switch (insn->id) {
    case X86_INS_BT:
    case X86_INS_BTS:
    case X86_INS_BTR:
    case X86_INS_BTC:
        for (int i = 0; i < insn->detail->x86.op_count; i++) {
            o->beyond |= insn->detail->x86.operands[i].type == X86_OP_REG;
        }
        break;
    default:
        break;
    }
    o->len = insn->size;
    o->size = mem->size;
    o->read = access & CS_AC_READ;
    o->write = access & CS_AC_WRITE;
    o->gprs_only = !others;
    return true;
}
