/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-mode helper's table of guest mappings of the control file
 * (src/user-intercept/mappings.c) on its own, without QEMU: what mmap,
 * munmap, mprotect and mremap of the guest do to it, and lookups at the
 * edges. Addresses are numbers here; nothing is mapped.
 */
#include "mappings.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define K 0x1000ul

static int n, failed;
static char why[200];

/* One TAP line; on failure, the first thing that went wrong. */
static void check(bool ok, const char *name)
{
    printf("%sok %d - /mappings/%s\n", ok ? "" : "not ", ++n, name);
    if (!ok) {
        printf("# %s\n", why);
    }
    failed |= !ok;
    why[0] = 0;
}

static bool fail(const char *fmt, ...)
{
    va_list ap;

    if (!why[0]) {
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
    }
    return false;
}

/* @addr maps file offset @offset with guest protection @prot. */
static bool at(uintptr_t addr, uint64_t offset, int prot)
{
    uint64_t o = ~0ull;
    int p = -1;

    if (!backdoor_mappings_lookup(addr, &o, &p)) {
        return fail("0x%lx: not found, want offset 0x%llx", (unsigned long)addr,
                    (unsigned long long)offset);
    }
    if (o != offset || p != prot) {
        return fail("0x%lx: offset 0x%llx prot %d, want 0x%llx prot %d",
                    (unsigned long)addr, (unsigned long long)o, p,
                    (unsigned long long)offset, prot);
    }
    return true;
}

static bool none(uintptr_t addr)
{
    uint64_t o;
    int p;

    if (backdoor_mappings_lookup(addr, &o, &p)) {
        return fail("0x%lx: found (offset 0x%llx), want none",
                    (unsigned long)addr, (unsigned long long)o);
    }
    return true;
}

/* All of [start, end) maps from @offset with @prot. */
static bool maps(uintptr_t start, uintptr_t end, uint64_t offset, int prot)
{
    bool ok = true;

    for (uintptr_t a = start; a < end; a += K / 2) {
        ok &= at(a, offset + (a - start), prot);
    }
    return ok & at(end - 1, offset + (end - 1 - start), prot);
}

/* The same, and nothing just before or after it. */
static bool exactly(uintptr_t start, uintptr_t end, uint64_t offset, int prot)
{
    return none(start - 1) & maps(start, end, offset, prot) & none(end);
}

static void reset(void)
{
    backdoor_mappings_unmap(0, UINTPTR_MAX);
}

/* The real mprotect, recorded: the gaps between control mappings */
static struct {
    uintptr_t addr[8];
    size_t len[8];
    int prot[8];
    int count;
    int fail_at;            /* this call (1-based) fails */
} gaps;

static int record_gap(void *addr, size_t len, int prot)
{
    int i = gaps.count++;

    if (i < 8) {
        gaps.addr[i] = (uintptr_t)addr;
        gaps.len[i] = len;
        gaps.prot[i] = prot;
    }
    return gaps.count == gaps.fail_at ? -1 : 0;
}

static bool gap(int i, uintptr_t addr, size_t len, int prot)
{
    if (i >= gaps.count || gaps.addr[i] != addr || gaps.len[i] != len ||
        gaps.prot[i] != prot) {
        return fail("gap %d: want 0x%lx+0x%zx prot %d", i,
                    (unsigned long)addr, len, prot);
    }
    return true;
}

static bool protect(uintptr_t start, uintptr_t end, int prot, int want_ret,
                    int want_gaps)
{
    int ret;

    memset(&gaps, 0, sizeof(gaps));
    gaps.fail_at = want_ret ? want_gaps : 0;
    ret = backdoor_mappings_protect(start, end, prot, record_gap);
    if (ret != want_ret || gaps.count != want_gaps) {
        return fail("protect 0x%lx-0x%lx: %d with %d gaps, want %d with %d",
                    (unsigned long)start, (unsigned long)end, ret,
                    gaps.count, want_ret, want_gaps);
    }
    return true;
}

#define RW (PROT_READ | PROT_WRITE)
#define RO PROT_READ

static void test_empty(void)
{
    reset();
    check(none(0) && none(0x10000) && none(UINTPTR_MAX) &&
          !backdoor_mappings_overlap(0, UINTPTR_MAX), "empty");
}

static void test_insert(void)
{
    reset();
    backdoor_mappings_map(0x10000, 0x20000, 0, RW);
    backdoor_mappings_map(0x30000, 0x31000, 0x10000, RO);
    check(exactly(0x10000, 0x20000, 0, RW) &&
          exactly(0x30000, 0x31000, 0x10000, RO) && none(0x20fff),
          "insert/lookup-at-edges");
    check(backdoor_mappings_overlap(0xf000, 0x10001) &&
          backdoor_mappings_overlap(0x1ffff, 0x30000) &&
          backdoor_mappings_overlap(0x11000, 0x12000) &&
          !backdoor_mappings_overlap(0xf000, 0x10000) &&
          !backdoor_mappings_overlap(0x20000, 0x30000) &&
          !backdoor_mappings_overlap(0x31000, 0x40000),
          "insert/overlap-at-edges");
}

static void test_unmap(void)
{
    reset();
    backdoor_mappings_map(0x10000, 0x20000, 0x4000, RW);
    backdoor_mappings_unmap(0x14000, 0x18000);
    check(exactly(0x10000, 0x14000, 0x4000, RW) &&
          exactly(0x18000, 0x20000, 0xc000, RW), "munmap/middle-splits");

    backdoor_mappings_unmap(0xf000, 0x11000);
    backdoor_mappings_unmap(0x1f000, 0x30000);
    check(exactly(0x11000, 0x14000, 0x5000, RW) &&
          exactly(0x18000, 0x1f000, 0xc000, RW), "munmap/edges-trim");

    backdoor_mappings_unmap(0x12000, 0x1a000);
    check(exactly(0x11000, 0x12000, 0x5000, RW) &&
          exactly(0x1a000, 0x1f000, 0xe000, RW), "munmap/across-two");

    backdoor_mappings_unmap(0x11000, 0x1f000);
    check(none(0x11000) && none(0x1a000) && none(0x1efff) &&
          !backdoor_mappings_overlap(0, UINTPTR_MAX), "munmap/all");
}

static void test_overlapping_maps(void)
{
    reset();
    backdoor_mappings_map(0x10000, 0x20000, 0, RW);
    /* A new mapping over the second half and beyond replaces it there */
    backdoor_mappings_map(0x18000, 0x28000, 0x100000, RO);
    check(none(0xffff) && maps(0x10000, 0x18000, 0, RW) &&
          maps(0x18000, 0x28000, 0x100000, RO) && none(0x28000),
          "map/over-part");

    /* One inside another: three pieces */
    backdoor_mappings_map(0x12000, 0x13000, 0x50000, PROT_NONE);
    check(maps(0x10000, 0x12000, 0, RW) &&
          maps(0x12000, 0x13000, 0x50000, PROT_NONE) &&
          maps(0x13000, 0x18000, 0x3000, RW), "map/inside");

    /* Exactly over: replaced */
    backdoor_mappings_map(0x18000, 0x28000, 0x200000, RW);
    check(maps(0x18000, 0x28000, 0x200000, RW) && none(0x28000),
          "map/same-range");

    /* Over all of them */
    backdoor_mappings_map(0x8000, 0x30000, 0x7000, RO);
    check(exactly(0x8000, 0x30000, 0x7000, RO), "map/over-all");
}

static void test_protect(void)
{
    bool ok;

    reset();
    backdoor_mappings_map(0x10000, 0x20000, 0, RW);
    ok = protect(0x10000, 0x20000, RO, 0, 0);
    check(ok && exactly(0x10000, 0x20000, 0, RO), "mprotect/whole");

    ok = protect(0x14000, 0x18000, PROT_NONE, 0, 0);
    check(ok && maps(0x10000, 0x14000, 0, RO) &&
          maps(0x14000, 0x18000, 0x4000, PROT_NONE) &&
          maps(0x18000, 0x20000, 0x8000, RO), "mprotect/middle-splits");

    /* Across the end: the part outside goes to the real mprotect */
    ok = protect(0x1c000, 0x24000, RW, 0, 1) &&
         gap(0, 0x20000, 0x4000, RW);
    check(ok && maps(0x18000, 0x1c000, 0x8000, RO) &&
          maps(0x1c000, 0x20000, 0xc000, RW) && none(0x20000),
          "mprotect/across-end");

    /* Two mappings and the gaps around and between them, in order */
    reset();
    backdoor_mappings_map(0x10000, 0x12000, 0, RW);
    backdoor_mappings_map(0x14000, 0x16000, 0x8000, RW);
    ok = protect(0xe000, 0x18000, RO, 0, 3) &&
         gap(0, 0xe000, 0x2000, RO) && gap(1, 0x12000, 0x2000, RO) &&
         gap(2, 0x16000, 0x2000, RO);
    check(ok && exactly(0x10000, 0x12000, 0, RO) &&
          exactly(0x14000, 0x16000, 0x8000, RO), "mprotect/gaps-in-order");

    /* No mapping in the range: one real mprotect for all of it */
    ok = protect(0x20000, 0x30000, RW, 0, 1) && gap(0, 0x20000, 0x10000, RW);
    check(ok, "mprotect/outside-only");

    /* The real mprotect fails on the first gap: nothing after it changes */
    ok = protect(0x12000, 0x16000, PROT_NONE, -1, 1);
    check(ok && exactly(0x14000, 0x16000, 0x8000, RO),
          "mprotect/error-stops");
}

static void test_remap(void)
{
    reset();
    backdoor_mappings_map(0x10000, 0x14000, 0x2000, RO);
    /* Moved and grown */
    backdoor_mappings_remap(0x10000, 0x4000, 0x40000, 0x8000);
    check(none(0x10000) && none(0x13fff) &&
          exactly(0x40000, 0x48000, 0x2000, RO), "mremap/move-grow");

    /* Shrunk in place */
    backdoor_mappings_remap(0x40000, 0x8000, 0x40000, 0x3000);
    check(exactly(0x40000, 0x43000, 0x2000, RO) && none(0x47fff),
          "mremap/shrink-in-place");

    /* Grown in place */
    backdoor_mappings_remap(0x40000, 0x3000, 0x40000, 0x5000);
    check(exactly(0x40000, 0x45000, 0x2000, RO), "mremap/grow-in-place");

    /* Another mapping moved over a control mapping replaces it */
    backdoor_mappings_map(0x60000, 0x62000, 0, RW);
    backdoor_mappings_remap(0x90000, 0x2000, 0x61000, 0x2000);
    check(exactly(0x60000, 0x61000, 0, RW) && none(0x62fff) &&
          exactly(0x40000, 0x45000, 0x2000, RO),
          "mremap/other-over-control");
}

static void test_full(void)
{
    bool ok = true;

    reset();
    for (uintptr_t i = 0; i < BACKDOOR_MAPPINGS_MAX + 1; i++) {
        backdoor_mappings_map(0x100000 + i * 0x2000,
                              0x100000 + i * 0x2000 + K, i * K, RW);
    }
    for (uintptr_t i = 0; i < BACKDOOR_MAPPINGS_MAX; i++) {
        ok &= at(0x100000 + i * 0x2000, i * K, RW);
    }
    /* One more than fits stays an ordinary mapping */
    ok &= none(0x100000 + BACKDOOR_MAPPINGS_MAX * 0x2000);
    check(ok, "full/one-more-left-out");

    /* A freed slot is used again */
    backdoor_mappings_unmap(0x100000, 0x100000 + K);
    backdoor_mappings_map(0x900000, 0x900000 + K, 0x77000, RO);
    check(none(0x100000) && exactly(0x900000, 0x900000 + K, 0x77000, RO) &&
          at(0x100000 + 0x2000, K, RW), "full/slot-reused");
}

int main(void)
{
    printf("1..23\n");
    test_empty();
    test_insert();
    test_unmap();
    test_overlapping_maps();
    test_protect();
    test_remap();
    test_full();
    return failed;
}
