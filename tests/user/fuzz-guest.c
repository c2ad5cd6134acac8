/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz of the user-mode control page against a register model: a static
 * guest program (x86_64, aarch64, s390x) that maps BASE.ctrl and makes
 * random accesses at random offsets with random widths through different
 * instructions, and checks every value read, every call and the registers
 * against the register map of docs/specs/backdoor.rst ("User mode").
 * Results come from tests/callbacks/test-callbacks.c: cmd * 3 + data[0],
 * with ~cmd stored at data[8] and the call count at data[16].
 *
 * Environment: BACKDOOR_FUZZ_ACCESSES (default 200000), BACKDOOR_FUZZ_SEED
 * (default: a new seed, printed; the same two values replay a run),
 * BACKDOOR_FUZZ_ALIGNED=1: only aligned accesses and no pairs (QEMU 10
 * runs an aarch64 guest's unaligned accesses and pairs as other host
 * accesses, an ldp of two words as one 8-byte load: the registers see
 * those).
 *
 * The first half runs single-threaded, where QEMU runs guest atomics as
 * plain loads and stores; the second half with a second thread, where QEMU
 * runs them as host atomic instructions, which the helper runs out of
 * line. The second thread calls all the time with the command that returns
 * its vCPU index (and stores nothing in the data channel) and reads its
 * RESULT and the read-only registers: RESULT stays per thread both ways.
 * The main thread's accesses replay from the seed; how the two threads
 * interleave does not.
 *
 * A read-modify-write instruction is a register read (with its effects: a
 * read of CALL calls) followed by a register write of the new value.
 * Compare-and-swap instructions (x86 cmpxchg, aarch64 cas and stxr, s390x
 * csg) are not aimed at CMD: single-threaded, QEMU writes the old value
 * back when the compare fails, which is a call there. A 16-byte
 * compare-and-swap (cmpxchg16b, caspal, cdsg) is one 16-byte access: a
 * wrong access.
 *
 * Under the supervisor (FEATURES announces call slots) the constant
 * registers below CMD (ID, FEATURES, DATA_SIZE) read as the control file's
 * bytes in any width, and a pread() reads the file: no fast path.
 *
 * Prints TAP.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define REG_ID          0x00
#define REG_FEATURES    0x04
#define REG_DATA_SIZE   0x08
#define REG_CMD         0x10
#define REG_RESULT      0x18
#define REG_RESULT_HI   0x1c
#define REG_CALL_OFFSET 0x20
#define REG_CALL        0x28
#define BACKDOOR_ID     0x42440100u
#define CMD_VCPU        0xf00d0001u
#define CTRL_SIZE       0x10000

static const unsigned regs[] = {
    REG_ID, REG_FEATURES, REG_DATA_SIZE, REG_CMD, REG_RESULT,
    REG_RESULT_HI, REG_CALL_OFFSET, REG_CALL,
};

static volatile uint8_t *ctrl;
static int ctrl_fd;
static bool supervisor;         /* FEATURES bit 1: call slots */
static bool aligned_only;       /* BACKDOOR_FUZZ_ALIGNED */
static uint8_t file_regs[16];   /* the file's ID, FEATURES, DATA_SIZE */
static volatile uint64_t *data;
static uint64_t data_size;

/* ---- the register model ---- */

static struct {
    uint64_t call_offset;
    uint64_t result;
    uint64_t calls;
    uint64_t stored_calls;  /* count at the last call that stored it */
    uint64_t seen_count;    /* the count in the data channel */
    uint64_t last_cmd;      /* of the last call that stored ~cmd */
} m;

static uint64_t mask_of(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

/*
 * The data word at @off as it will be when the access runs: the words the
 * callback stores (8 and 16) change with the calls the model made before.
 */
static uint64_t m_data(uint64_t off)
{
    /* (no call word at 16 while the second thread calls: see main) */
    return off == 8 ? ~m.last_cmd : off == 16 ? m.stored_calls
                                              : data[off / 8];
}

static uint64_t m_call(uint64_t cmd)
{
    m.calls++;
    if (cmd == CMD_VCPU) {
        m.result = 0;               /* the main thread is vCPU 0 */
    } else {
        m.result = cmd * 3 + data[0];
        m.last_cmd = cmd;
        m.stored_calls = m.calls;
    }
    return m.result;
}

/* A wrong access reads all ones (and is ignored when a write). */
static uint64_t m_read(unsigned off, unsigned size)
{
    uint64_t mask = mask_of(size), v;

    if (supervisor && off < REG_CMD) {
        uint64_t le = 0, be = 0;

        if (off + size > REG_CMD) {
            return mask;
        }
        /* The bytes as a load of this guest's byte order reads them */
        for (unsigned i = 0; i < size; i++) {
            le |= (uint64_t)file_regs[off + i] << (8 * i);
            be = be << 8 | file_regs[off + i];
        }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        return be;
#else
        return le;
#endif
    }
    if (size != 4 && size != 8) {
        return mask;
    }
    switch (off) {
    case REG_ID:
        v = size == 4 ? BACKDOOR_ID : UINT64_MAX;
        break;
    case REG_FEATURES:
        v = size == 4 ? 1 : UINT64_MAX;
        break;
    case REG_DATA_SIZE:
        v = data_size;
        break;
    case REG_RESULT:
        v = m.result;
        break;
    case REG_RESULT_HI:
        v = size == 4 ? m.result >> 32 : UINT64_MAX;
        break;
    case REG_CALL_OFFSET:
        v = m.call_offset;
        break;
    case REG_CALL:
        v = m_call(m_data(m.call_offset));
        break;
    default:
        v = UINT64_MAX;
    }
    return v & mask;
}

static void m_write(unsigned off, unsigned size, uint64_t v)
{
    if (size != 4 && size != 8) {
        return;
    }
    v &= mask_of(size);
    if (off == REG_CMD) {
        m_call(v);
    } else if (off == REG_CALL_OFFSET && v % 8 == 0 && v <= data_size - 8) {
        m.call_offset = v;
    }
}

/* ---- random numbers (xorshift64*) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned below(unsigned n)
{
    return rnd() % n;
}

/* ---- the accesses ---- */

typedef uint16_t u16u __attribute__((aligned(1), may_alias));
typedef uint32_t u32u __attribute__((aligned(1), may_alias));
typedef uint64_t u64u __attribute__((aligned(1), may_alias));

static uint64_t plain_load(volatile void *p, unsigned size)
{
    switch (size) {
    case 1:
        return *(volatile uint8_t *)p;
    case 2:
        return *(volatile u16u *)p;
    case 4:
        return *(volatile u32u *)p;
    default:
        return *(volatile u64u *)p;
    }
}

static void plain_store(volatile void *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        *(volatile uint8_t *)p = v;
        break;
    case 2:
        *(volatile u16u *)p = v;
        break;
    case 4:
        *(volatile u32u *)p = v;
        break;
    default:
        *(volatile u64u *)p = v;
    }
}

/*
 * One instruction class: what it does to the control page, in register
 * terms, is one of these shapes.
 */
enum Shape {
    LOAD,       /* one read of size */
    STORE,      /* one write of size */
    LOAD_PAIR,  /* reads at off and off + size */
    STORE_PAIR, /* writes at off and off + size */
    SWAP,       /* read, then write of val; returns the read value */
    FETCH_ADD,  /* read, then write of read + val; returns the read value */
    ADD,        /* the same, returning nothing */
    CAS,        /* read; write of val when the read equals cmp */
    LDXR_STXR,  /* read; CAS of val against that read; returns the status */
    WIDE,       /* a 16-byte compare-and-swap: a wrong access, no effect */
    PREAD,      /* pread() of the control file: the fast path or the file */
};

typedef struct Insn {
    const char *name;
    enum Shape shape;
    unsigned sizes;     /* the sizes allowed, or'ed */
    bool aligned;       /* the CPU faults on an unaligned one */
    /* out[0..1]: values read (or returned) */
    void (*run)(volatile void *p, unsigned size, uint64_t val, uint64_t cmp,
                uint64_t out[2]);
} Insn;

static unsigned long insn_count[16];

/*
 * The fast path: an 8-byte pread() at CALL's offset calls with the command
 * in the buffer and returns the result there; any other reads the file,
 * whose first 4 bytes hold the ID.
 */
static void run_pread(volatile void *p, unsigned size, uint64_t val,
                      uint64_t cmp, uint64_t out[2])
{
    uint64_t buf = val;
    uint32_t head;

    (void)cmp;
    out[1] = pread(ctrl_fd, &buf, size, (volatile uint8_t *)p - ctrl);
    memcpy(&head, &buf, 4);         /* the bytes a 4-byte pread fills */
    out[0] = size == 4 ? head : buf;
}

static void run_load(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    (void)val, (void)cmp;
    out[0] = plain_load(p, size);
}

static void run_store(volatile void *p, unsigned size, uint64_t val,
                      uint64_t cmp, uint64_t out[2])
{
    (void)cmp, (void)out;
    plain_store(p, size, val);
}

#if defined(__x86_64__)
/* @insn with the width suffix of @size on a value v (in: val, out: out[0]) */
#define X86_SIZED(insn, size, ...)                                       \
    switch (size) {                                                      \
    case 1: {                                                            \
        uint8_t v = val;                                                 \
        asm volatile(insn "b " __VA_ARGS__);                             \
        out[0] = v;                                                      \
        break;                                                           \
    }                                                                    \
    case 2: {                                                            \
        uint16_t v = val;                                                \
        asm volatile(insn "w " __VA_ARGS__);                             \
        out[0] = v;                                                      \
        break;                                                           \
    }                                                                    \
    case 4: {                                                            \
        uint32_t v = val;                                                \
        asm volatile(insn "l " __VA_ARGS__);                             \
        out[0] = v;                                                      \
        break;                                                           \
    }                                                                    \
    default: {                                                           \
        uint64_t v = val;                                                \
        asm volatile(insn "q " __VA_ARGS__);                             \
        out[0] = v;                                                      \
    }                                                                    \
    }

static void run_xchg(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    (void)cmp;
    X86_SIZED("xchg", size, "%0, (%1)" : "+r"(v) : "r"(p) : "memory")
}

static void run_xadd(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    (void)cmp;
    X86_SIZED("lock xadd", size, "%0, (%1)" : "+r"(v) : "r"(p) : "memory")
}

static void run_lock_add(volatile void *p, unsigned size, uint64_t val,
                         uint64_t cmp, uint64_t out[2])
{
    (void)cmp;
    X86_SIZED("lock add", size, "%0, (%1)" : : "r"(v), "r"(p) : "memory")
}

static void run_cmpxchg(volatile void *p, unsigned size, uint64_t val,
                        uint64_t cmp, uint64_t out[2])
{
    uint64_t old = cmp;

    switch (size) {
    case 4: {
        uint32_t o = old;
        asm volatile("lock cmpxchgl %2, (%1)" : "+a"(o) : "r"(p),
                     "r"((uint32_t)val) : "memory");
        old = o;
        break;
    }
    default:
        asm volatile("lock cmpxchgq %2, (%1)" : "+a"(old) : "r"(p),
                     "r"(val) : "memory");
    }
    out[0] = old;
}

/* movs from the page into memory, or from memory into the page */
static void run_movs_load(volatile void *p, unsigned size, uint64_t val,
                          uint64_t cmp, uint64_t out[2])
{
    uint64_t buf = 0;
    void *src = (void *)p, *dst = &buf;

    (void)val, (void)cmp;
    switch (size) {
    case 1:
        asm volatile("movsb" : "+S"(src), "+D"(dst) : : "memory");
        break;
    case 2:
        asm volatile("movsw" : "+S"(src), "+D"(dst) : : "memory");
        break;
    case 4:
        asm volatile("movsl" : "+S"(src), "+D"(dst) : : "memory");
        break;
    default:
        asm volatile("movsq" : "+S"(src), "+D"(dst) : : "memory");
    }
    out[0] = buf;
}

static void run_movs_store(volatile void *p, unsigned size, uint64_t val,
                           uint64_t cmp, uint64_t out[2])
{
    uint64_t buf = val;
    void *src = &buf, *dst = (void *)p;

    (void)cmp, (void)out;
    switch (size) {
    case 1:
        asm volatile("movsb" : "+S"(src), "+D"(dst) : : "memory");
        break;
    case 2:
        asm volatile("movsw" : "+S"(src), "+D"(dst) : : "memory");
        break;
    case 4:
        asm volatile("movsl" : "+S"(src), "+D"(dst) : : "memory");
        break;
    default:
        asm volatile("movsq" : "+S"(src), "+D"(dst) : : "memory");
    }
}

/* cmp is both halves of the expected value, val of the new one */
static void run_cmpxchg16b(volatile void *p, unsigned size, uint64_t val,
                           uint64_t cmp, uint64_t out[2])
{
    uint64_t lo = cmp, hi = cmp;

    (void)size;
    asm volatile("lock cmpxchg16b (%2)" : "+a"(lo), "+d"(hi) : "r"(p),
                 "b"(val), "c"(val) : "memory", "cc");
    out[0] = lo, out[1] = hi;
}

static Insn insns[] = {
    { "mov load", LOAD, 0xf, false, run_load },
    { "mov store", STORE, 0xf, false, run_store },
    { "xchg", SWAP, 0xf, false, run_xchg },
    { "lock xadd", FETCH_ADD, 0xf, false, run_xadd },
    { "lock add", ADD, 0xf, false, run_lock_add },
    { "lock cmpxchg", CAS, 0xc, false, run_cmpxchg },
    { "movs load", LOAD, 0xf, false, run_movs_load },
    { "movs store", STORE, 0xf, false, run_movs_store },
    { "cmpxchg16b", WIDE, 0x10, true, run_cmpxchg16b },
    { "pread", PREAD, 0xc, false, run_pread },
};

#elif defined(__aarch64__)

static void run_ldp(volatile void *p, unsigned size, uint64_t val,
                    uint64_t cmp, uint64_t out[2])
{
    (void)val, (void)cmp;
    if (size == 4) {
        uint32_t a, b;

        asm volatile("ldp %w0, %w1, [%2]" : "=&r"(a), "=&r"(b) : "r"(p)
                     : "memory");
        out[0] = a, out[1] = b;
    } else {
        asm volatile("ldp %0, %1, [%2]" : "=&r"(out[0]), "=&r"(out[1])
                     : "r"(p) : "memory");
    }
}

/* The second register stores cmp */
static void run_stp(volatile void *p, unsigned size, uint64_t val,
                    uint64_t cmp, uint64_t out[2])
{
    (void)out;
    if (size == 4) {
        asm volatile("stp %w0, %w1, [%2]" : : "r"(val), "r"(cmp), "r"(p)
                     : "memory");
    } else {
        asm volatile("stp %0, %1, [%2]" : : "r"(val), "r"(cmp), "r"(p)
                     : "memory");
    }
}

static void run_ldar(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    (void)val, (void)cmp;
    if (size == 4) {
        uint32_t v;

        asm volatile("ldar %w0, [%1]" : "=r"(v) : "r"(p) : "memory");
        out[0] = v;
    } else {
        asm volatile("ldar %0, [%1]" : "=r"(out[0]) : "r"(p) : "memory");
    }
}

static void run_stlr(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    (void)cmp, (void)out;
    if (size == 4) {
        asm volatile("stlr %w0, [%1]" : : "r"(val), "r"(p) : "memory");
    } else {
        asm volatile("stlr %0, [%1]" : : "r"(val), "r"(p) : "memory");
    }
}

/*
 * ldxr, then stxr of val: the store is a compare-and-swap against what
 * ldxr read. out[0]: what ldxr read, out[1]: the stxr status.
 */
static void run_ldxr_stxr(volatile void *p, unsigned size, uint64_t val,
                          uint64_t cmp, uint64_t out[2])
{
    uint32_t status;

    (void)cmp;
    if (size == 4) {
        uint32_t v;

        asm volatile("ldxr %w0, [%2]\n\tstxr %w1, %w3, [%2]"
                     : "=&r"(v), "=&r"(status) : "r"(p), "r"(val)
                     : "memory");
        out[0] = v;
    } else {
        asm volatile("ldxr %0, [%2]\n\tstxr %w1, %3, [%2]"
                     : "=&r"(out[0]), "=&r"(status) : "r"(p), "r"(val)
                     : "memory");
    }
    out[1] = status;
}

static void run_ldadd(volatile void *p, unsigned size, uint64_t val,
                      uint64_t cmp, uint64_t out[2])
{
    (void)cmp;
    if (size == 4) {
        uint32_t v;

        asm volatile("ldaddal %w1, %w0, [%2]" : "=r"(v) : "r"(val), "r"(p)
                     : "memory");
        out[0] = v;
    } else {
        asm volatile("ldaddal %1, %0, [%2]" : "=r"(out[0]) : "r"(val),
                     "r"(p) : "memory");
    }
}

static void run_swp(volatile void *p, unsigned size, uint64_t val,
                    uint64_t cmp, uint64_t out[2])
{
    (void)cmp;
    if (size == 4) {
        uint32_t v;

        asm volatile("swpal %w1, %w0, [%2]" : "=r"(v) : "r"(val), "r"(p)
                     : "memory");
        out[0] = v;
    } else {
        asm volatile("swpal %1, %0, [%2]" : "=r"(out[0]) : "r"(val), "r"(p)
                     : "memory");
    }
}

static void run_cas(volatile void *p, unsigned size, uint64_t val,
                    uint64_t cmp, uint64_t out[2])
{
    if (size == 4) {
        uint32_t v = cmp;

        asm volatile("casal %w0, %w1, [%2]" : "+r"(v) : "r"(val), "r"(p)
                     : "memory");
        out[0] = v;
    } else {
        uint64_t v = cmp;

        asm volatile("casal %0, %1, [%2]" : "+r"(v) : "r"(val), "r"(p)
                     : "memory");
        out[0] = v;
    }
}

static void run_casp(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    register uint64_t x0 asm("x0") = cmp, x1 asm("x1") = cmp;
    register uint64_t x2 asm("x2") = val, x3 asm("x3") = val;

    (void)size;
    asm volatile("caspal x0, x1, x2, x3, [%2]" : "+r"(x0), "+r"(x1)
                 : "r"(p), "r"(x2), "r"(x3) : "memory");
    out[0] = x0, out[1] = x1;
}

static Insn insns[] = {
    { "ldr", LOAD, 0xf, false, run_load },
    { "str", STORE, 0xf, false, run_store },
    { "ldp", LOAD_PAIR, 0xc, false, run_ldp },
    { "stp", STORE_PAIR, 0xc, false, run_stp },
    { "ldar", LOAD, 0xc, true, run_ldar },
    { "stlr", STORE, 0xc, true, run_stlr },
    { "ldxr/stxr", LDXR_STXR, 0xc, true, run_ldxr_stxr },
    { "ldaddal", FETCH_ADD, 0xc, true, run_ldadd },
    { "swpal", SWAP, 0xc, true, run_swp },
    { "casal", CAS, 0xc, true, run_cas },
    { "caspal", WIDE, 0x10, true, run_casp },
    { "pread", PREAD, 0xc, false, run_pread },
};

#elif defined(__s390x__)

static void run_lmg(volatile void *p, unsigned size, uint64_t val,
                    uint64_t cmp, uint64_t out[2])
{
    (void)val, (void)cmp;
    if (size == 4) {
        asm volatile("lm %%r4, %%r5, 0(%2)\n\tllgfr %0, %%r4\n\t"
                     "llgfr %1, %%r5" : "=&r"(out[0]), "=&r"(out[1])
                     : "a"(p) : "r4", "r5", "memory");
    } else {
        asm volatile("lmg %%r4, %%r5, 0(%2)\n\tlgr %0, %%r4\n\tlgr %1, %%r5"
                     : "=&r"(out[0]), "=&r"(out[1]) : "a"(p)
                     : "r4", "r5", "memory");
    }
}

static void run_stmg(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    (void)out;
    if (size == 4) {
        asm volatile("lgr %%r4, %0\n\tlgr %%r5, %1\n\tstm %%r4, %%r5, 0(%2)"
                     : : "r"(val), "r"(cmp), "a"(p) : "r4", "r5", "memory");
    } else {
        asm volatile("lgr %%r4, %0\n\tlgr %%r5, %1\n\tstmg %%r4, %%r5, 0(%2)"
                     : : "r"(val), "r"(cmp), "a"(p) : "r4", "r5", "memory");
    }
}

static void run_cs(volatile void *p, unsigned size, uint64_t val,
                   uint64_t cmp, uint64_t out[2])
{
    if (size == 4) {
        uint32_t old = cmp;

        asm volatile("cs %0, %1, 0(%2)" : "+d"(old) : "d"((uint32_t)val),
                     "a"(p) : "cc", "memory");
        out[0] = old;
    } else {
        uint64_t old = cmp;

        asm volatile("csg %0, %1, 0(%2)" : "+d"(old) : "d"(val), "a"(p)
                     : "cc", "memory");
        out[0] = old;
    }
}

static void run_cdsg(volatile void *p, unsigned size, uint64_t val,
                     uint64_t cmp, uint64_t out[2])
{
    register uint64_t r2 asm("r2") = cmp, r3 asm("r3") = cmp;
    register uint64_t r4 asm("r4") = val, r5 asm("r5") = val;

    (void)size;
    asm volatile("cdsg %%r2, %%r4, 0(%2)" : "+d"(r2), "+d"(r3)
                 : "a"(p), "d"(r4), "d"(r5) : "cc", "memory");
    out[0] = r2, out[1] = r3;
}

static Insn insns[] = {
    { "load", LOAD, 0xf, false, run_load },
    { "store", STORE, 0xf, false, run_store },
    { "lm/lmg", LOAD_PAIR, 0xc, false, run_lmg },
    { "stm/stmg", STORE_PAIR, 0xc, false, run_stmg },
    { "cs/csg", CAS, 0xc, true, run_cs },
    { "cdsg", WIDE, 0x10, true, run_cdsg },
    { "pread", PREAD, 0xc, false, run_pread },
};

#else
#error "fuzz-guest: x86_64, aarch64 or s390x"
#endif

#define N_INSNS (sizeof(insns) / sizeof(insns[0]))

/* ---- one random access, modelled and checked ---- */

static unsigned long failures;

#define FAIL(...)                                                        \
    do {                                                                 \
        if (failures++ < 10) {                                           \
            printf("# access %lu, %s of %u bytes at 0x%x: ", n, in->name, \
                   size, off);                                           \
            printf(__VA_ARGS__);                                         \
            putchar('\n');                                               \
        }                                                                \
    } while (0)

/* An offset for an access of @span bytes: mostly at or near a register */
static unsigned pick_offset(unsigned span)
{
    static const int nudge[] = { 0, 0, 0, 0, 1, 4, -4, 8 };
    int off;

    if (below(10) < 7) {
        off = regs[below(sizeof(regs) / sizeof(regs[0]))] +
              nudge[below(sizeof(nudge) / sizeof(nudge[0]))];
    } else if (below(10) < 9) {
        off = below(0x100);
    } else {
        off = below(CTRL_SIZE);
    }
    if (off < 0) {
        off = 0;
    }
    if ((unsigned)off + span > CTRL_SIZE) {
        off = CTRL_SIZE - span;
    }
    return off;
}

static uint64_t pick_value(unsigned off)
{
    switch (below(4)) {
    case 0:
        return rnd();
    case 1:
        return below(0x1000);
    case 2:
        return off == REG_CALL_OFFSET || below(2) ? below(data_size / 8) * 8
                                                   : rnd() >> 32;
    default:
        return m.call_offset + ((int64_t)below(3) - 1) * 8;
    }
}

/* The second thread's calls, started and finished */
static unsigned long other_started, other_done;
static bool parallel;

static void fuzz_one(unsigned long n)
{
    Insn *in;
    unsigned size, off, span;
    uint64_t val, cmp, want[2] = { 0, 0 }, got[2] = { 0, 0 };
    uint64_t mask, stored_before, lo, hi;
    unsigned long done_before;
    bool pair;

    if (parallel && m.call_offset == 16) {
        /* the call count as call word is not known exactly (see m_data) */
        *(volatile uint64_t *)(ctrl + REG_CALL_OFFSET) = data_size - 8;
        m.call_offset = data_size - 8;
    }
    do {
        in = &insns[below(N_INSNS)];
        pair = in->shape == LOAD_PAIR || in->shape == STORE_PAIR;
    } while (pair && aligned_only);
    do {
        size = 1u << below(5);
    } while (!(in->sizes & size));
    mask = mask_of(size);
    span = pair ? 2 * size : size;
    do {
        off = pick_offset(span);
        if (in->aligned || aligned_only) {
            off &= ~(size - 1);
        }
        /* no compare-and-swap at CMD: see the comment at the top */
    } while ((in->shape == CAS || in->shape == LDXR_STXR) &&
             off + size > REG_CMD && off < REG_CMD + 8);
    val = pick_value(off) & mask;
    cmp = pick_value(off) & mask;
    done_before = __atomic_load_n(&other_done, __ATOMIC_SEQ_CST);
    stored_before = m.stored_calls;

    /* The arguments and the call word change now and then */
    if (below(8) == 0) {
        data[0] = rnd() >> below(64);
    }
    if (below(8) == 0 && m.call_offset != 8 && m.call_offset != 16) {
        /* (the callback's own words at 8 and 16 are left to it) */
        data[m.call_offset / 8] = below(2) ? rnd() : CMD_VCPU;
    }

    /* What the model says, then what happens */
    switch (in->shape) {
    case LOAD:
        want[0] = m_read(off, size);
        break;
    case STORE:
        m_write(off, size, val);
        break;
    case LOAD_PAIR:
        want[0] = m_read(off, size);
        want[1] = m_read(off + size, size);
        break;
    case STORE_PAIR:
        m_write(off, size, val);
        m_write(off + size, size, cmp);
        break;
    case SWAP:
        want[0] = m_read(off, size);
        m_write(off, size, val);
        break;
    case FETCH_ADD:
    case ADD:
        want[0] = m_read(off, size);
        m_write(off, size, (want[0] + val) & mask);
        break;
    case CAS:
        want[0] = m_read(off, size);
        if (want[0] == cmp) {
            m_write(off, size, val);
        }
        break;
    case PREAD:
        want[1] = size;
        if (off == REG_CALL && size == 8 && !supervisor) {
            want[0] = m_call(val);
        } else {
            /* the file: the ID, zeros; what pread does not fill stays */
            uint8_t file[16] = { 0 }, buf[8];
            uint32_t id = BACKDOOR_ID, head;

            memcpy(file, &id, 4);
            if (supervisor) {
                memcpy(file, file_regs, 16);
            }
            memcpy(buf, &val, 8);
            for (unsigned i = 0; i < size; i++) {
                buf[i] = off + i < 16 ? file[off + i] : 0;
            }
            memcpy(&head, buf, 4);
            memcpy(&want[0], buf, 8);
            want[0] = size == 4 ? head : want[0];
        }
        break;
    case WIDE:
        /* 16 bytes: a wrong access, whether the compare succeeds or not */
        want[0] = want[1] = UINT64_MAX;
        break;
    case LDXR_STXR: {
        /* the store compares against what ldxr read */
        uint64_t again;

        want[0] = m_read(off, size);
        again = m_read(off, size);
        want[1] = again != want[0];
        if (!want[1]) {
            m_write(off, size, val);
        }
    }
    }
    in->run(ctrl + off, size, val, cmp, got);
    insn_count[in - insns]++;

    if (in->shape != STORE && in->shape != STORE_PAIR && in->shape != ADD &&
        got[0] != want[0]) {
        FAIL("read 0x%" PRIx64 ", model 0x%" PRIx64, got[0], want[0]);
    }
    if ((in->shape == LOAD_PAIR || in->shape == LDXR_STXR ||
         in->shape == WIDE || in->shape == PREAD) && got[1] != want[1]) {
        FAIL("second value 0x%" PRIx64 ", model 0x%" PRIx64, got[1],
             want[1]);
    }
    /*
     * The callback stores its count of all calls, the second thread's
     * included: as many of those as had finished before, at most as many
     * as had started after.
     */
    lo = m.stored_calls + done_before;
    hi = m.stored_calls +
         __atomic_load_n(&other_started, __ATOMIC_SEQ_CST);
    if (m.stored_calls == stored_before) {
        lo = hi = m.seen_count;
    }
    if (data[2] < lo || data[2] > hi) {
        FAIL("call count %" PRIu64 ", model %" PRIu64 " to %" PRIu64,
             data[2], lo, hi);
    }
    m.seen_count = data[2];
    if (data[1] != ~m.last_cmd) {
        FAIL("callback saw 0x%" PRIx64 ", model 0x%" PRIx64, ~data[1],
             m.last_cmd);
        m.last_cmd = ~data[1];
    }
}

/* Every register as the model has it, through plain 8-byte loads. */
static void check_state(const char *when)
{
    uint64_t r = *(volatile uint64_t *)(ctrl + REG_RESULT);
    uint64_t o = *(volatile uint64_t *)(ctrl + REG_CALL_OFFSET);

    if (r != m.result || o != m.call_offset) {
        printf("# %s: RESULT 0x%" PRIx64 " CALL_OFFSET 0x%" PRIx64
               ", model 0x%" PRIx64 " 0x%" PRIx64 "\n", when, r, o, m.result,
               m.call_offset);
        failures++;
    }
}

static bool stop;
static unsigned long other_wrong;

/*
 * The second thread: calls for its vCPU index and reads its own RESULT;
 * reads registers no one writes. QEMU runs guest atomics as host atomics
 * once this thread exists.
 */
static void *second_thread(void *opaque)
{
    uint64_t state = (uintptr_t)opaque, vcpu = UINT64_MAX, r;
    unsigned long wrong = 0;

    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        switch (state >> 62) {
        case 0:
        case 1:
            __atomic_add_fetch(&other_started, 1, __ATOMIC_SEQ_CST);
            if (state & (1ull << 40)) {
                *(volatile uint64_t *)(ctrl + REG_CMD) = CMD_VCPU;
            } else {
                *(volatile uint32_t *)(ctrl + REG_CMD) = CMD_VCPU;
            }
            __atomic_add_fetch(&other_done, 1, __ATOMIC_SEQ_CST);
            r = *(volatile uint64_t *)(ctrl + REG_RESULT);
            if (vcpu == UINT64_MAX) {
                vcpu = r;
            }
            wrong += r != vcpu || r == 0 ||
                     *(volatile uint32_t *)(ctrl + REG_RESULT) !=
                     (uint32_t)r ||
                     *(volatile uint32_t *)(ctrl + REG_RESULT_HI) != r >> 32;
            break;
        case 2:
            wrong += *(volatile uint32_t *)(ctrl + REG_ID) != BACKDOOR_ID ||
                     *(volatile uint64_t *)(ctrl + REG_DATA_SIZE) !=
                     data_size;
            break;
        default:
            /* wrong accesses: all ones */
            wrong += *(volatile uint64_t *)(ctrl + 0x30 +
                                            ((state >> 32) & 0xff) * 8) !=
                     UINT64_MAX ||
                     *(volatile uint16_t *)(ctrl + REG_RESULT) != 0xffff;
        }
    }
    other_wrong = wrong;
    return NULL;
}

static int tap_n;

static void tap(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tap(bool ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s %d - ", ok ? "ok" : "not ok", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int open_file(const char *base, const char *suffix)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s.%s", base, suffix);
    fd = open(path, O_RDWR);
    if (fd < 0) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    return fd;
}

static volatile void *map_file(const char *base, const char *suffix,
                               size_t *size)
{
    int fd = open_file(base, suffix);
    void *p;

    if (!*size) {
        *size = lseek(fd, 0, SEEK_END);
    }
    p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf("Bail out! cannot map %s.%s\n", base, suffix);
        exit(1);
    }
    close(fd);
    return p;
}

int main(void)
{
    const char *base = getenv("QEMU_BACKDOOR_PATH");
    const char *env_n = getenv("BACKDOOR_FUZZ_ACCESSES");
    const char *env_seed = getenv("BACKDOOR_FUZZ_SEED");
    const char *env_aligned = getenv("BACKDOOR_FUZZ_ALIGNED");
    unsigned long total = env_n && *env_n ? strtoul(env_n, NULL, 0) : 200000;
    uint64_t seed;
    size_t ctrl_size = CTRL_SIZE, dsize = 0;
    unsigned long n = 0;
    pthread_t thread;

    if (env_seed && *env_seed) {
        seed = strtoull(env_seed, NULL, 0);
    } else {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ getpid()) &
               0xffffffff;
    }
    printf("1..4\n# fuzz: %lu accesses, seed %" PRIu64 " (replay: "
           "BACKDOOR_FUZZ_SEED=%" PRIu64 " BACKDOOR_FUZZ_ACCESSES=%lu)\n",
           total, seed, seed, total);
    rng_state = seed * 2 + 1;
    aligned_only = env_aligned && !strcmp(env_aligned, "1");
    if (aligned_only) {
        printf("# aligned accesses only, no pairs\n");
    }
    if (!base) {
        printf("Bail out! QEMU_BACKDOOR_PATH is not set (run under "
               "qemu-backdoor qemu-<arch>)\n");
        return 1;
    }
    ctrl = map_file(base, "ctrl", &ctrl_size);
    ctrl_fd = open_file(base, "ctrl");
    supervisor = *(volatile uint32_t *)(ctrl + REG_FEATURES) & 2;
    if (pread(ctrl_fd, file_regs, 16, 0) != 16) {
        printf("Bail out! cannot read %s.ctrl\n", base);
        return 1;
    }
    data = map_file(base, "data", &dsize);
    data_size = dsize;
    m.call_offset = *(volatile uint64_t *)(ctrl + REG_CALL_OFFSET);
    m.result = *(volatile uint64_t *)(ctrl + REG_RESULT);
    m.calls = m.stored_calls = m.seen_count = data[2];
    m.last_cmd = ~data[1];
    tap(m.call_offset == data_size - 8 &&
        *(volatile uint32_t *)ctrl == BACKDOOR_ID,
        "/user/fuzz/start: ID, CALL_OFFSET at reset (DATA_SIZE - 8)");

    for (; n < total / 2; n++) {
        fuzz_one(n);
    }
    check_state("single-threaded");
    tap(!failures, "/user/fuzz/single-thread: %lu accesses, %" PRIu64
        " calls as modelled", n, m.calls);

    parallel = true;
    if (pthread_create(&thread, NULL, second_thread,
                       (void *)(uintptr_t)(seed + 1))) {
        printf("Bail out! cannot start a thread\n");
        return 1;
    }
    failures = 0;
    for (; n < total; n++) {
        fuzz_one(n);
    }
    check_state("with two threads");
    __atomic_store_n(&stop, true, __ATOMIC_SEQ_CST);
    pthread_join(thread, NULL);
    tap(!failures, "/user/fuzz/parallel: %lu accesses, %" PRIu64
        " calls as modelled", n - total / 2, m.calls);
    tap(!other_wrong && other_done > 0, "/user/fuzz/per-thread-result: "
        "%lu calls of a second thread, %lu wrong values", other_done,
        other_wrong);
    for (unsigned i = 0; i < N_INSNS; i++) {
        printf("# %-14s %lu\n", insns[i].name, insn_count[i]);
    }
    return 0;
}
