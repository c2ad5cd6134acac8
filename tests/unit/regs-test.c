/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The register model (src/callbacks/regs.c) against the register map of
 * docs/specs/backdoor.rst, written out here again from the spec: every
 * offset, width and direction in each kind of backend, what the fixed
 * registers read, the DATA_SIZE and CALL_OFFSET rules and the call a
 * command makes. No QEMU.
 */
#include "regs.h"
#include "user-env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n, failed;

/* One TAP line: the test's name, and on failure what went wrong. */
static void check(bool ok, const char *name, const char *why)
{
    printf("%sok %d - %s\n", ok ? "" : "not ", ++n, name);
    if (!ok && why && *why) {
        printf("# %s\n", why);
    }
    failed |= !ok;
}

/*
 * The spec's table: offset (RO/WO/RW, widths) : name; 1.1 with slots; the
 * rings' layout, which user mode with rings has too
 */
typedef struct SpecReg {
    uint64_t offset;
    const char *name;
    bool read, write;
    bool wide;                  /* 4 or 8 bytes; else 4 only */
    bool v1_1;
    bool layout;
} SpecReg;

static const SpecReg spec[] = {
    { 0x00, "ID",           true,  false, false, false, false },
    { 0x04, "FEATURES",     true,  false, false, false, false },
    { 0x08, "DATA_SIZE",    true,  false, true,  false, false },
    { 0x10, "CMD",          false, true,  true,  false, false },
    { 0x18, "RESULT",       true,  false, true,  false, false },
    { 0x1c, "RESULT_HI",    true,  false, false, false, false },
    { 0x20, "CALL_OFFSET",  true,  true,  true,  false, false },
    { 0x28, "CALL",         true,  false, true,  false, false },
    { 0x30, "SLOT_COUNT",   true,  false, false, true,  true },
    { 0x34, "RING_ENTRIES", true,  false, false, true,  true },
    { 0x38, "SLOT_BASE",    true,  false, true,  true,  true },
    { 0x40, "SLOT_STRIDE",  true,  false, true,  true,  true },
    { 0x48, "SLOT_ALLOC",   true,  false, false, true,  false },
    { 0x4c, "SLOT_FREE",    false, true,  false, true,  false },
    { 0x50, "DOORBELL",     false, true,  false, true,  false },
};

static const unsigned sizes[] = { 1, 2, 3, 4, 5, 8, 16, 32, 64 };

typedef struct Config {
    const char *name;
    BackdoorRegs regs;
    uint32_t id, features;
} Config;

/* What the spec says of an access; @slot is set for SLOT_CALL(n). */
static BackdoorAccess spec_access(const Config *c, uint64_t offset,
                                  unsigned size, bool write,
                                  const char **name, int *slot)
{
    const SpecReg *r = NULL;
    bool user = c->regs.mode == QEMU_BACKDOOR_MODE_USER;
    bool wide;

    *slot = -1;
    for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
        if (spec[i].offset == offset &&
            (!spec[i].v1_1 ||
             (c->regs.slots && (!user ||
                                (spec[i].layout && c->regs.ring_entries))))) {
            r = &spec[i];
        }
    }
    if (r) {
        *name = r->name;
        if (!(write ? r->write : r->read)) {
            return BACKDOOR_ACCESS_DIRECTION;
        }
        wide = r->wide;
    } else if (!user && c->regs.slots && offset >= 0x100 &&
               offset % 8 == 0 && (offset - 0x100) / 8 < c->regs.slots) {
        *name = "SLOT_CALL";
        *slot = (offset - 0x100) / 8;
        if (write) {
            return BACKDOOR_ACCESS_DIRECTION;
        }
        wide = true;
    } else {
        return BACKDOOR_ACCESS_RESERVED;
    }
    return size == 4 || (size == 8 && wide) ? BACKDOOR_ACCESS_OK :
           BACKDOOR_ACCESS_WIDTH;
}

/*
 * The calls' fast path: an 8-byte read of CALL or SLOT_CALL(n), and only
 * those, as the spec (@want, @name, @want_slot) says of that read.
 */
static bool check_call_read(const Config *c, uint64_t off, unsigned size,
                            BackdoorAccess want, const char *name,
                            int want_slot, char *why, size_t len)
{
    bool call = want == BACKDOOR_ACCESS_OK && size == 8 &&
                (!strcmp(name, "CALL") || !strcmp(name, "SLOT_CALL"));
    int slot = -2;
    bool got = backdoor_regs_call_read(&c->regs, off, size, &slot);

    if (got == call && (!got || slot == want_slot)) {
        return true;
    }
    snprintf(why, len, "%u-byte read at 0x%llx: call fast path %d slot %d, "
             "not %d slot %d", size, (unsigned long long)off, got, slot,
             call, want_slot);
    return false;
}

/*
 * Every offset of the 4 KiB control BAR and a few beyond, every size and
 * direction: the model answers as the spec, and so does the calls' fast
 * path. Returns the first mismatch.
 */
static bool check_map(const Config *c, char *why, size_t len)
{
    static const uint64_t far[] = {
        0x1000, 0x10000, 0xfffffffcull, 0x100000100ull, UINT64_MAX - 7,
    };

    for (uint64_t i = 0; i < 0x1000 + 5; i++) {
        uint64_t off = i < 0x1000 ? i : far[i - 0x1000];

        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            for (int write = 0; write < 2; write++) {
                const char *name = NULL;
                int want_slot;
                BackdoorAccess want = spec_access(c, off, sizes[s], write,
                                                  &name, &want_slot);
                BackdoorReg reg = BACKDOOR_R_COUNT;
                unsigned slot = ~0u;
                BackdoorAccess got = backdoor_regs_check(&c->regs, off,
                                                         sizes[s], write,
                                                         &reg, &slot);
                bool ok = got == want;

                if (ok && got == BACKDOOR_ACCESS_OK) {
                    ok = reg < BACKDOOR_R_COUNT &&
                         !strcmp(backdoor_reg_info[reg].name, name) &&
                         (want_slot < 0 || slot == (unsigned)want_slot);
                }
                if (!ok) {
                    snprintf(why, len, "%u-byte %s at 0x%llx: %d, not %d",
                             sizes[s], write ? "write" : "read",
                             (unsigned long long)off, got, want);
                    return false;
                }
                if (!write && !check_call_read(c, off, sizes[s], want, name,
                                               want_slot, why, len)) {
                    return false;
                }
            }
        }
    }
    return true;
}

static bool check_fixed(const Config *c, char *why, size_t len)
{
    struct {
        BackdoorReg reg;
        uint64_t want;
    } fixed[] = {
        { BACKDOOR_R_ID, c->id },
        { BACKDOOR_R_FEATURES, c->features },
        { BACKDOOR_R_DATA_SIZE, c->regs.data_size },
        { BACKDOOR_R_SLOT_COUNT, c->regs.slots },
        { BACKDOOR_R_RING_ENTRIES, c->regs.ring_entries },
        { BACKDOOR_R_SLOT_BASE, c->regs.slot_base },
        { BACKDOOR_R_SLOT_STRIDE, c->regs.slot_stride },
    };
    static const BackdoorReg moving[] = {
        BACKDOOR_R_CMD, BACKDOOR_R_RESULT, BACKDOOR_R_RESULT_HI,
        BACKDOOR_R_CALL_OFFSET, BACKDOOR_R_CALL, BACKDOOR_R_SLOT_ALLOC,
        BACKDOOR_R_SLOT_FREE, BACKDOOR_R_DOORBELL, BACKDOOR_R_SLOT_CALL,
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        v = ~0ull;
        if (!backdoor_regs_fixed(&c->regs, fixed[i].reg, &v) ||
            v != fixed[i].want) {
            snprintf(why, len, "%s reads 0x%llx, not 0x%llx",
                     backdoor_reg_info[fixed[i].reg].name,
                     (unsigned long long)v,
                     (unsigned long long)fixed[i].want);
            return false;
        }
    }
    for (size_t i = 0; i < sizeof(moving) / sizeof(moving[0]); i++) {
        if (backdoor_regs_fixed(&c->regs, moving[i], &v)) {
            snprintf(why, len, "%s is not fixed",
                     backdoor_reg_info[moving[i]].name);
            return false;
        }
    }
    return true;
}

static void test_config(const Config *c)
{
    char why[160] = "", name[80];
    bool ok;

    ok = check_map(c, why, sizeof(why));
    snprintf(name, sizeof(name), "/regs/%s/map", c->name);
    check(ok, name, why);
    why[0] = 0;
    ok = check_fixed(c, why, sizeof(why));
    snprintf(name, sizeof(name), "/regs/%s/fixed", c->name);
    check(ok, name, why);
}

/* A page as the supervisor writes it: what guest loads from it read. */
static void test_store_fixed(void)
{
    BackdoorRegs r = {
        .mode = QEMU_BACKDOOR_MODE_USER, .user_slots = true,
        .data_size = 0x12345678000ull,
    };
    static const uint8_t be[16] = {
        0x42, 0x44, 0x01, 0x01, 0, 0, 0, 0x13,
        0, 0, 0x01, 0x23, 0x45, 0x67, 0x80, 0,
    };
    static const uint8_t le[16] = {
        0x01, 0x01, 0x44, 0x42, 0x13, 0, 0, 0,
        0, 0x80, 0x67, 0x45, 0x23, 0x01, 0, 0,
    };
    uint8_t page[16];

    for (int big = 0; big < 2; big++) {
        memset(page, 0, sizeof(page));
        backdoor_regs_store_fixed(&r, BACKDOOR_R_ID, big, page);
        backdoor_regs_store_fixed(&r, BACKDOOR_R_FEATURES, big, page);
        backdoor_regs_store_fixed(&r, BACKDOOR_R_DATA_SIZE, big, page);
        check(!memcmp(page, big ? be : le, sizeof(page)),
              big ? "/regs/store-fixed/big-endian" :
              "/regs/store-fixed/little-endian", NULL);
    }
}

static void test_data_size(void)
{
    static const uint64_t good[] = {
        4096, 8192, 1ull << 20, 1ull << 29, 1ull << 30,
    };
    static const uint64_t bad[] = {
        0, 1, 2048, 4095, 4097, 6144, 3ull << 20, (1ull << 30) + 4096,
        1ull << 31, 1ull << 63, UINT64_MAX,
    };
    bool ok = BACKDOOR_DATA_SIZE_DEFAULT == 1ull << 20 &&
              BACKDOOR_DATA_SIZE_MIN == 4096 &&
              BACKDOOR_DATA_SIZE_MAX == 1ull << 30;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ok &= backdoor_data_size_ok(good[i]);
    }
    check(ok, "/regs/data-size/powers-of-two-4K-to-1G", NULL);
    ok = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok &= !backdoor_data_size_ok(bad[i]);
    }
    check(ok, "/regs/data-size/others-refused", NULL);
}

/* QEMU_BACKDOOR_DATA_SIZE as both user-mode backends read it */
static void test_user_data_size(void)
{
    static const struct {
        const char *env;
        uint64_t want;
    } cases[] = {
        { NULL, 16 << 20 }, { "", 16 << 20 }, { "4K", 4096 },
        { "4k", 4096 }, { "64K", 65536 }, { "1M", 1 << 20 },
        { "1G", 1 << 30 }, { "1g", 1 << 30 }, { "0x2000", 8192 },
        { "4096", 4096 }, { "2K", 0 }, { "2G", 0 }, { "3M", 0 },
        { "1T", 0 }, { "1MB", 0 }, { "M", 0 }, { "-4K", 0 },
        { "99999999999999999999", 0 },
    };
    char why[160] = "";

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got;

        if (cases[i].env) {
            setenv("QEMU_BACKDOOR_DATA_SIZE", cases[i].env, 1);
        } else {
            unsetenv("QEMU_BACKDOOR_DATA_SIZE");
        }
        got = backdoor_user_data_size();
        if (got != cases[i].want && !why[0]) {
            snprintf(why, sizeof(why), "'%s' gave %llu",
                     cases[i].env ? cases[i].env : "(unset)",
                     (unsigned long long)got);
        }
    }
    unsetenv("QEMU_BACKDOOR_DATA_SIZE");
    check(!why[0], "/regs/data-size/environment", why);
}

static void test_call_offset(void)
{
    static const uint64_t sizes_[] = { 4096, 1 << 20, 1ull << 30 };
    bool reset = true, good = true, bad = true;

    for (size_t i = 0; i < 3; i++) {
        BackdoorRegs r = { .data_size = sizes_[i] };
        uint64_t size = sizes_[i];

        reset &= backdoor_regs_call_offset_reset(&r) == size - 8;
        good &= backdoor_regs_call_offset_ok(&r, 0) &&
                backdoor_regs_call_offset_ok(&r, 8) &&
                backdoor_regs_call_offset_ok(&r, size / 2) &&
                backdoor_regs_call_offset_ok(&r, size - 16) &&
                backdoor_regs_call_offset_ok(&r, size - 8);
        bad &= !backdoor_regs_call_offset_ok(&r, 1) &&
               !backdoor_regs_call_offset_ok(&r, 4) &&
               !backdoor_regs_call_offset_ok(&r, size - 12) &&
               !backdoor_regs_call_offset_ok(&r, size - 4) &&
               !backdoor_regs_call_offset_ok(&r, size) &&
               !backdoor_regs_call_offset_ok(&r, size + 8) &&
               !backdoor_regs_call_offset_ok(&r, 1ull << 40) &&
               !backdoor_regs_call_offset_ok(&r, UINT64_MAX - 7);
    }
    check(reset, "/regs/call-offset/reset-is-last-8-bytes", NULL);
    check(good, "/regs/call-offset/8-aligned-inside-accepted", NULL);
    check(bad, "/regs/call-offset/others-refused", NULL);
}

static int fake_read(const qemu_backdoor_call *call, uint64_t addr,
                     void *buf, uint64_t len)
{
    (void)call, (void)addr, (void)buf, (void)len;
    return 0;
}

static int fake_write(const qemu_backdoor_call *call, uint64_t addr,
                      const void *buf, uint64_t len)
{
    (void)call, (void)addr, (void)buf, (void)len;
    return 0;
}

static void test_call(void)
{
    uint8_t data[4096] = { 0 };
    int host;
    BackdoorRegs r = {
        .mode = QEMU_BACKDOOR_MODE_SYSTEM, .data = data,
        .data_size = sizeof(data), .guest_read = fake_read,
        .guest_write = fake_write, .host = &host,
    };
    static const uint8_t word[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    qemu_backdoor_call call;
    qemu_backdoor_info info;

    memcpy(data + sizeof(data) - 8, word, 8);
    memcpy(data + 16, word, 8);
    check(backdoor_regs_call_word(&r, sizeof(data) - 8, true) ==
          0x0102030405060708ull &&
          backdoor_regs_call_word(&r, sizeof(data) - 8, false) ==
          0x0807060504030201ull &&
          backdoor_regs_call_word(&r, 16, true) == 0x0102030405060708ull,
          "/regs/call/word-in-guest-byte-order", NULL);

    call = backdoor_regs_call(&r, 0xbabe, true, 3);
    check(call.cmd == 0xbabe && call.data == data &&
          call.data_size == sizeof(data) && call.guest_big_endian &&
          call.vcpu_index == 3 && call.mode == QEMU_BACKDOOR_MODE_SYSTEM &&
          call.guest_read == fake_read && call.guest_write == fake_write &&
          call.host == &host && call.opaque == NULL && call.version == 0,
          "/regs/call/system", NULL);
    r = (BackdoorRegs) {
        .mode = QEMU_BACKDOOR_MODE_USER, .data = data,
        .data_size = sizeof(data),
    };
    call = backdoor_regs_call(&r, 7, false, -1);
    check(call.cmd == 7 && !call.guest_big_endian && call.vcpu_index == -1 &&
          call.mode == QEMU_BACKDOOR_MODE_USER && !call.guest_read &&
          !call.guest_write && !call.host,
          "/regs/call/user-without-guest-memory", NULL);

    info = backdoor_regs_info(&r, "args", "id0", true);
    check(info.mode == QEMU_BACKDOOR_MODE_USER && !strcmp(info.args, "args")
          && !strcmp(info.id, "id0") && info.data == data &&
          info.data_size == sizeof(data) && info.guest_big_endian,
          "/regs/call/init-info", NULL);
}

int main(void)
{
    const Config configs[] = {
        { "user-helper", {
            .mode = QEMU_BACKDOOR_MODE_USER, .data_size = 1 << 20 },
          0x42440101, 0x1 },
        { "user-supervisor", {
            .mode = QEMU_BACKDOOR_MODE_USER, .user_slots = true,
            .data_size = 4096 },
          0x42440101, 0x13 },
        { "user-helper-rings", {
            .mode = QEMU_BACKDOOR_MODE_USER, .data_size = 1 << 20,
            .slots = 32, .ring_entries = 128, .slot_base = 0xdf7c0,
            .slot_stride = 0x1040 },
          0x42440101, 0x9 },
        { "user-supervisor-rings", {
            .mode = QEMU_BACKDOOR_MODE_USER, .user_slots = true,
            .data_size = 4096, .slots = 6, .ring_entries = 8,
            .slot_base = 0x880, .slot_stride = 0x140 },
          0x42440101, 0x3b },
        { "system-no-slots", {
            .mode = QEMU_BACKDOOR_MODE_SYSTEM, .data_size = 1 << 20 },
          0x42440101, 0x1 },
        { "system-one-slot-no-ring", {
            .mode = QEMU_BACKDOOR_MODE_SYSTEM, .data_size = 4096,
            .slots = 1, .slot_base = 4096 - 64 - 64, .slot_stride = 64 },
          0x42440101, 0x5 },
        { "system-32-slots", {
            .mode = QEMU_BACKDOOR_MODE_SYSTEM, .data_size = 1 << 20,
            .slots = 32, .ring_entries = 128, .slot_base = 0x7dfc0,
            .slot_stride = 0x1040 },
          0x42440101, 0xd },
        { "system-256-slots", {
            .mode = QEMU_BACKDOOR_MODE_SYSTEM, .data_size = 1 << 30,
            .slots = 256, .ring_entries = 65536, .slot_base = 0x1234,
            .slot_stride = 0x200040 },
          0x42440101, 0xd },
    };
    size_t nconfigs = sizeof(configs) / sizeof(configs[0]);

    printf("1..%zu\n", nconfigs * 2 + 2 + 3 + 3 + 4);
    for (size_t i = 0; i < nconfigs; i++) {
        test_config(&configs[i]);
    }
    test_store_fixed();
    test_data_size();
    test_user_data_size();
    test_call_offset();
    test_call();
    return failed;
}
