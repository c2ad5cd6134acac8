/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host instruction decoder and emulator (src/user-intercept/
 * x86-emulate.c) on real x86-64 byte sequences, without QEMU: loads and
 * stores of every width, immediates, addressing forms, high-byte
 * registers, sign and zero extension, movbe for either guest byte order,
 * xmm moves as 8-byte accesses, the out-of-line description of atomics,
 * and what must be refused.
 * TAP on stdout.
 */
#include "x86-emulate.h"
#include "tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


#define CODE(...) (const uint8_t[]){ __VA_ARGS__ }, \
    sizeof((const uint8_t[]){ __VA_ARGS__ })

static X86Decoder *dec;
#define PC 0x7f0000001000ull

/* The register access the emulator made */
typedef struct Seen {
    int reads, writes;
    unsigned size;
    uint64_t value;         /* written, or to return from a read */
} Seen;

static uint64_t fake_read(void *opaque, unsigned size)
{
    Seen *s = opaque;

    s->reads++;
    s->size = size;
    return s->value;
}

static void fake_write(void *opaque, unsigned size, uint64_t value)
{
    Seen *s = opaque;

    s->writes++;
    s->size = size;
    s->value = value;
}

static X86Regs regs_with(X86Gpr g, uint64_t v)
{
    X86Regs r;

    memset(&r, 0, sizeof(r));
    r.rip = PC;
    r.gpr[X86_RDI] = 0x10000;
    if (g != X86_NO_GPR) {
        r.gpr[g] = v;
    }
    return r;
}

/* A store of @src (in @g) by @code: what the register write saw */
static void store(const char *name, const uint8_t *code, size_t n,
                  X86Gpr g, uint64_t src, bool be, unsigned want_size,
                  uint64_t want)
{
    const X86Access *a = x86_decode_access(dec, PC, code, n);
    X86Regs r = regs_with(g, src);
    Seen s = { 0 };
    uint64_t ea = 0;

    if (!a) {
        ok(0, "%s: decoded", name);
        return;
    }
    x86_emulate_access(a, &r, be, fake_read, fake_write, &s);
    ok(a->store && a->len == n && x86_access_address(a, &r, &ea) &&
       ea == 0x10000 && s.writes == 1 && s.reads == 0 &&
       s.size == want_size && s.value == want && r.rip == PC + n &&
       (g == X86_NO_GPR || r.gpr[g] == src),
       "%s%s: writes %u bytes 0x%" PRIx64 " (want %u 0x%" PRIx64 ")", name,
       be ? " (big-endian guest)" : "", s.size, s.value, want_size, want);
}

/* A load into @g (holding @before) of @value: the register after it */
static void load(const char *name, const uint8_t *code, size_t n, X86Gpr g,
                 uint64_t before, uint64_t value, bool be,
                 unsigned want_size, uint64_t want)
{
    const X86Access *a = x86_decode_access(dec, PC, code, n);
    X86Regs r = regs_with(g, before);
    Seen s = { .value = value };
    uint64_t ea = 0;

    if (!a) {
        ok(0, "%s: decoded", name);
        return;
    }
    x86_emulate_access(a, &r, be, fake_read, fake_write, &s);
    ok(!a->store && a->len == n && x86_access_address(a, &r, &ea) &&
       ea == 0x10000 && s.reads == 1 && s.writes == 0 &&
       s.size == want_size && r.gpr[g] == want && r.rip == PC + n &&
       r.gpr[X86_RDI] == 0x10000,
       "%s%s: register 0x%" PRIx64 " after reading %u bytes (want 0x%"
       PRIx64 ")", name, be ? " (big-endian guest)" : "", r.gpr[g], s.size,
       want);
}

static void refused(const char *name, const uint8_t *code, size_t n)
{
    ok(x86_decode_access(dec, PC, code, n) == NULL,
       "%s: not a plain load or store", name);
}

static void test_stores(void)
{
    store("mov %rsi,(%rdi)", CODE(0x48, 0x89, 0x37), X86_RSI,
          0x1122334455667788ull, false, 8, 0x1122334455667788ull);
    store("mov %rsi,(%rdi)", CODE(0x48, 0x89, 0x37), X86_RSI,
          0x1122334455667788ull, true, 8, 0x8877665544332211ull);
    store("mov %esi,(%rdi)", CODE(0x89, 0x37), X86_RSI,
          0x1122334455667788ull, false, 4, 0x55667788);
    store("mov %si,(%rdi)", CODE(0x66, 0x89, 0x37), X86_RSI,
          0x1122334455667788ull, false, 2, 0x7788);
    store("mov %sil,(%rdi)", CODE(0x40, 0x88, 0x37), X86_RSI,
          0x1122334455667788ull, false, 1, 0x88);
    store("mov %ah,(%rdi)", CODE(0x88, 0x27), X86_RAX, 0xaabbccddeeff1234ull,
          false, 1, 0x12);
    store("mov %bh,(%rdi)", CODE(0x88, 0x3f), X86_RBX, 0x5678, false, 1,
          0x56);
    store("movbe %rsi,(%rdi)", CODE(0x48, 0x0f, 0x38, 0xf1, 0x37), X86_RSI,
          0x1122334455667788ull, true, 8, 0x1122334455667788ull);
    store("movbe %rsi,(%rdi)", CODE(0x48, 0x0f, 0x38, 0xf1, 0x37), X86_RSI,
          0x1122334455667788ull, false, 8, 0x8877665544332211ull);
    store("movbe %si,(%rdi)", CODE(0x66, 0x0f, 0x38, 0xf1, 0x37), X86_RSI,
          0xbeef, true, 2, 0xbeef);
    store("movq $0x12345678,(%rdi)",
          CODE(0x48, 0xc7, 0x07, 0x78, 0x56, 0x34, 0x12), X86_NO_GPR, 0,
          false, 8, 0x12345678);
    store("movq $-1,(%rdi) (sign-extended immediate)",
          CODE(0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff), X86_NO_GPR, 0,
          false, 8, UINT64_MAX);
    store("movl $0x80000001,(%rdi)",
          CODE(0xc7, 0x07, 0x01, 0x00, 0x00, 0x80), X86_NO_GPR, 0, false, 4,
          0x80000001);
    store("movl $0x80000001,(%rdi)",
          CODE(0xc7, 0x07, 0x01, 0x00, 0x00, 0x80), X86_NO_GPR, 0, true, 4,
          0x01000080);
    store("movw $0x1234,(%rdi)", CODE(0x66, 0xc7, 0x07, 0x34, 0x12),
          X86_NO_GPR, 0, false, 2, 0x1234);
    store("movb $0xab,(%rdi)", CODE(0xc6, 0x07, 0xab), X86_NO_GPR, 0, false,
          1, 0xab);
}

static void test_loads(void)
{
    load("mov (%rdi),%rax", CODE(0x48, 0x8b, 0x07), X86_RAX, 0,
         0x0102030405060708ull, false, 8, 0x0102030405060708ull);
    load("mov (%rdi),%rax", CODE(0x48, 0x8b, 0x07), X86_RAX, 0,
         0x0102030405060708ull, true, 8, 0x0807060504030201ull);
    load("mov (%rdi),%eax zero-extends", CODE(0x8b, 0x07), X86_RAX,
         UINT64_MAX, 0x80000001, false, 4, 0x80000001);
    load("mov (%rdi),%ax merges", CODE(0x66, 0x8b, 0x07), X86_RAX,
         UINT64_MAX, 0x1234, false, 2, 0xffffffffffff1234ull);
    load("mov (%rdi),%ah", CODE(0x8a, 0x27), X86_RAX, UINT64_MAX, 0x12,
         false, 1, 0xffffffffffff12ffull);
    load("movzbl (%rdi),%eax", CODE(0x0f, 0xb6, 0x07), X86_RAX, UINT64_MAX,
         0x80, false, 1, 0x80);
    load("movzbl (%rdi),%r10d", CODE(0x44, 0x0f, 0xb6, 0x17), X86_R10,
         UINT64_MAX, 0xfe, false, 1, 0xfe);
    load("movzwq (%rdi),%rax", CODE(0x48, 0x0f, 0xb7, 0x07), X86_RAX,
         UINT64_MAX, 0x8001, false, 2, 0x8001);
    load("movsbq (%rdi),%rax", CODE(0x48, 0x0f, 0xbe, 0x07), X86_RAX, 0,
         0x80, false, 1, 0xffffffffffffff80ull);
    load("movswl (%rdi),%eax: sign to 32 bits, zero above",
         CODE(0x0f, 0xbf, 0x07), X86_RAX, UINT64_MAX, 0x8000, false, 2,
         0xffff8000ull);
    load("movslq (%rdi),%rax (movsxd)", CODE(0x48, 0x63, 0x07), X86_RAX, 0,
         0x80000000, false, 4, 0xffffffff80000000ull);
    load("movbe (%rdi),%eax", CODE(0x0f, 0x38, 0xf0, 0x07), X86_RAX,
         UINT64_MAX, 0x11223344, true, 4, 0x11223344);
    load("movbe (%rdi),%eax", CODE(0x0f, 0x38, 0xf0, 0x07), X86_RAX,
         UINT64_MAX, 0x11223344, false, 4, 0x44332211);
}

static void test_addresses(void)
{
    const X86Access *a;
    X86Regs r = regs_with(X86_R12, 3);
    uint64_t ea = 0;

    a = x86_decode_access(dec, PC, CODE(0x48, 0x8b, 0x05, 0x10, 0x00,
                                        0x00, 0x00));
    ok(a && a->mem.rip_relative && x86_access_address(a, &r, &ea) &&
       ea == PC + 7 + 0x10, "mov 0x10(%%rip),%%rax: address 0x%" PRIx64, ea);

    a = x86_decode_access(dec, PC, CODE(0x4a, 0x89, 0x44, 0xa7, 0x08));
    ok(a && a->store && a->size == 8 && a->reg.gpr == X86_RAX &&
       x86_access_address(a, &r, &ea) && ea == 0x10000 + 3 * 4 + 8,
       "mov %%rax,0x8(%%rdi,%%r12,4): address 0x%" PRIx64, ea);

    r = regs_with(X86_RBX, 0x20000);
    r.gpr[X86_RDX] = 5;
    a = x86_decode_access(dec, PC, CODE(0x66, 0x44, 0x89, 0x4c, 0x53,
                                        0xf0));
    ok(a && a->store && a->size == 2 && a->reg.gpr == X86_R9 &&
       x86_access_address(a, &r, &ea) && ea == 0x20000 + 10 - 0x10,
       "mov %%r9w,-0x10(%%rbx,%%rdx,2): address 0x%" PRIx64, ea);

    /* TCG's store to guest memory, as seen under QEMU 10 */
    r = regs_with(X86_R12, 0x30000);
    r.gpr[X86_RAX] = 0xdeadbeef;
    a = x86_decode_access(dec, PC, CODE(0x41, 0x89, 0x04, 0x24));
    ok(a && a->store && a->size == 4 && x86_access_address(a, &r, &ea) &&
       ea == 0x30000, "mov %%eax,(%%r12): address 0x%" PRIx64, ea);

    a = x86_decode_access(dec, PC, CODE(0x65, 0x48, 0x8b, 0x04, 0x25, 0x28,
                                        0x00, 0x00, 0x00));
    ok(a && !a->store && a->mem.segment && !x86_access_address(a, &r, &ea),
       "mov %%gs:0x28,%%rax: decoded, address unknown without gs base");
}

static void test_refused(void)
{
    refused("lock xadd %rax,(%rdi)", CODE(0xf0, 0x48, 0x0f, 0xc1, 0x07));
    refused("xchg %rax,(%rdi)", CODE(0x48, 0x87, 0x07));
    refused("add %rax,(%rdi)", CODE(0x48, 0x01, 0x07));
    refused("movups %xmm0,(%rdi)", CODE(0x0f, 0x11, 0x07));
    refused("vmovdqu %xmm0,(%rdi)", CODE(0xc5, 0xfa, 0x7f, 0x07));
    refused("jmp *(%rdi)", CODE(0xff, 0x27));
    refused("push (%rdi)", CODE(0xff, 0x37));
    refused("rep movsb", CODE(0xf3, 0xa4));
    refused("lea (%rdi),%rax", CODE(0x48, 0x8d, 0x07));
    refused("mov %rax,%rdi (no memory)", CODE(0x48, 0x89, 0xc7));
    refused("mov %rsi,(%rdi) cut short", CODE(0x48, 0x89));
    refused("ud2", CODE(0x0f, 0x0b));
}

/* The decode cache must not answer for other bytes at the same address */
static void test_cache(void)
{
    const X86Access *a;

    a = x86_decode_access(dec, PC, CODE(0x48, 0x89, 0x37));
    ok(a && a->store && a->size == 8, "cache: a store at PC");
    a = x86_decode_access(dec, PC, CODE(0x8b, 0x07));
    ok(a && !a->store && a->size == 4, "cache: other code at the same PC");
    a = x86_decode_access(dec, PC, CODE(0x48, 0x87, 0x07));
    ok(!a, "cache: refused code at the same PC");
    a = x86_decode_access(dec, PC, CODE(0x48, 0x89, 0x37));
    ok(a && a->store && a->size == 8, "cache: the store again");
}

static void test_out_of_line(void)
{
    X86OutOfLine o;

    ok(x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xc1, 0x07),
                              &o) &&
       o.len == 5 && o.size == 8 && o.read && o.write &&
       !o.write_if_changed && o.reloc == X86_RDI && o.scale == 1 &&
       o.gprs_only && !o.uses_rsp,
       "out of line: lock xadd %%rax,(%%rdi) reads and writes 8 bytes, "
       "moves rdi");
    ok(x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xb1, 0x37),
                              &o) &&
       o.size == 8 && o.read && o.write && o.write_if_changed &&
       o.reloc == X86_RDI && o.gprs_only,
       "out of line: lock cmpxchg writes only if the compare holds");
    ok(x86_decode_out_of_line(dec, PC, CODE(0x48, 0x87, 0x07), &o) &&
       o.read && o.write && o.reloc == X86_RDI && o.gprs_only,
       "out of line: xchg %%rax,(%%rdi)");
    ok(x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x0f, 0xc1, 0x04, 0x8d,
                                            0x08, 0x00, 0x00, 0x00), &o) &&
       o.size == 4 && o.reloc == X86_RCX && o.scale == 4,
       "out of line: lock xadd %%eax,0x8(,%%rcx,4) moves the index");
    ok(x86_decode_out_of_line(dec, PC, CODE(0x0f, 0x11, 0x07), &o) &&
       o.size == 16 && !o.gprs_only,
       "out of line: movups %%xmm0,(%%rdi) involves an xmm register");
    ok(x86_decode_out_of_line(dec, PC, CODE(0xff, 0x37), &o) && o.uses_rsp,
       "out of line: push (%%rdi) uses the stack");
    ok(x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xc1, 0x04,
                                            0xcc), &o) &&
       o.reloc == X86_RCX && o.scale == 8 && o.uses_rsp,
       "out of line: lock xadd %%rax,(%%rsp,%%rcx,8) addresses the stack");
    ok(x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xab, 0x07),
                              &o) && o.beyond,
       "out of line: lock bts %%rax,(%%rdi) may reach past its operand");
    ok(x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xba, 0x2f,
                                            0x03), &o) && !o.beyond,
       "out of line: lock bts $3,(%%rdi) stays in its operand");
    ok(!x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xc1, 0x3f),
                               &o),
       "out of line refused: lock xadd %%rdi,(%%rdi) uses its base");
    ok(!x86_decode_out_of_line(dec, PC, CODE(0xf0, 0x48, 0x0f, 0xc1, 0x05,
                                             0x10, 0x00, 0x00, 0x00), &o),
       "out of line refused: RIP-relative");
    ok(!x86_decode_out_of_line(dec, PC, CODE(0xff, 0x27), &o),
       "out of line refused: jmp *(%%rdi)");
    ok(!x86_decode_out_of_line(dec, PC, CODE(0xf3, 0xa4), &o),
       "out of line refused: rep movsb (two memory operands)");
    ok(!x86_decode_out_of_line(dec, PC, CODE(0x48, 0x89, 0xc7), &o),
       "out of line refused: no memory operand");
}

/* The register accesses of an xmm move, and the register after it */
typedef struct VecSeen {
    unsigned n;
    unsigned at[4], size[4];
    uint64_t value[4];
} VecSeen;

static uint64_t vec_read(void *opaque, unsigned at, unsigned size)
{
    VecSeen *s = opaque;

    s->at[s->n] = at;
    s->size[s->n] = size;
    return s->value[s->n++];
}

static void vec_write(void *opaque, unsigned at, unsigned size,
                      uint64_t value)
{
    VecSeen *s = opaque;

    s->at[s->n] = at;
    s->size[s->n] = size;
    s->value[s->n++] = value;
}

static void test_vector(void)
{
    X86VecAccess v;
    X86Regs r = regs_with(X86_R9, 0x20000);
    uint8_t xmm[16], want[16];
    VecSeen s = { 0 };
    uint64_t ea = 0;

    /* QEMU 10's aarch64 ldp of two 64-bit registers */
    ok(x86_decode_vector_access(dec, PC, CODE(0xc4, 0xc1, 0x7a, 0x6f, 0x01),
                                &v) &&
       v.len == 5 && v.size == 16 && !v.store && v.vex && v.xmm == 0 &&
       x86_mem_address(&v.mem, v.len, &r, &ea) && ea == 0x20000,
       "vmovdqu (%%r9),%%xmm0: a 16-byte VEX load");
    memset(xmm, 0xaa, sizeof(xmm));
    s = (VecSeen){ .value = { 0x0102030405060708ull, 0x1112131415161718ull } };
    x86_emulate_vector(&v, xmm, false, vec_read, vec_write, &s);
    memcpy(want, "\x08\x07\x06\x05\x04\x03\x02\x01"
                 "\x18\x17\x16\x15\x14\x13\x12\x11", 16);
    ok(s.n == 2 && s.at[0] == 0 && s.size[0] == 8 && s.at[1] == 8 &&
       s.size[1] == 8 && !memcmp(xmm, want, 16),
       "vmovdqu load: two 8-byte reads in address order, little-endian");
    s = (VecSeen){ .value = { 0x0102030405060708ull, 0x1112131415161718ull } };
    x86_emulate_vector(&v, xmm, true, vec_read, vec_write, &s);
    ok(xmm[0] == 0x01 && xmm[7] == 0x08 && xmm[8] == 0x11 && xmm[15] == 0x18,
       "vmovdqu load: big-endian guest values in memory order");

    ok(x86_decode_vector_access(dec, PC, CODE(0xf3, 0x44, 0x0f, 0x7f, 0x67,
                                              0x10), &v) &&
       v.size == 16 && v.store && !v.vex && v.xmm == 12 &&
       v.mem.disp == 0x10, "movdqu %%xmm12,0x10(%%rdi): a 16-byte store");
    memcpy(xmm, want, 16);
    s = (VecSeen){ 0 };
    x86_emulate_vector(&v, xmm, false, vec_read, vec_write, &s);
    ok(s.n == 2 && s.at[0] == 0 && s.value[0] == 0x0102030405060708ull &&
       s.at[1] == 8 && s.value[1] == 0x1112131415161718ull,
       "movdqu store: two 8-byte writes in address order");

    ok(x86_decode_vector_access(dec, PC, CODE(0xf3, 0x0f, 0x7e, 0x2f), &v) &&
       v.size == 8 && !v.store && v.xmm == 5, "movq (%%rdi),%%xmm5");
    memset(xmm, 0xaa, sizeof(xmm));
    s = (VecSeen){ .value = { 0x55 } };
    x86_emulate_vector(&v, xmm, false, vec_read, vec_write, &s);
    ok(s.n == 1 && s.size[0] == 8 && xmm[0] == 0x55 && xmm[8] == 0 &&
       xmm[15] == 0, "movq load: one 8-byte read, the rest zeroed");
    ok(x86_decode_vector_access(dec, PC, CODE(0x66, 0x0f, 0x6e, 0x3f), &v) &&
       v.size == 4 && !v.store && v.xmm == 7, "movd (%%rdi),%%xmm7");

    ok(!x86_decode_vector_access(dec, PC, CODE(0xc5, 0xfe, 0x6f, 0x07), &v),
       "refused: vmovdqu (%%rdi),%%ymm0 (32 bytes)");
    ok(!x86_decode_vector_access(dec, PC, CODE(0x0f, 0x6f, 0x07), &v),
       "refused: movq (%%rdi),%%mm0 (an MMX register)");
    ok(!x86_decode_vector_access(dec, PC, CODE(0x66, 0x48, 0x0f, 0x3a, 0x22,
                                               0x07, 0x01), &v),
       "refused: pinsrq (merges into the register)");
    ok(!x86_decode_vector_access(dec, PC, CODE(0x48, 0x89, 0x37), &v),
       "refused: a GPR store");
}

int main(void)
{
    dec = x86_decoder_new();
    if (!dec) {
        printf("Bail out! capstone cannot open an x86-64 decoder\n");
        return 1;
    }
    test_stores();
    test_loads();
    test_addresses();
    test_refused();
    test_cache();
    test_out_of_line();
    test_vector();
    x86_decoder_free(dec);
    return tap_done();
}
