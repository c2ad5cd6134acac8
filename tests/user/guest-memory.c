/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest memory for callbacks in user mode (callback ABI 2), against
 * tests/callbacks/state-callbacks.c: cmd 2 reads data[8] bytes at guest
 * address data[0] into data offset 64, cmd 3 writes them back. One line
 * per check: "@@ ok NAME", "@@ not ok NAME: why" or "@@ skip NAME: why".
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* More than the supervisor copies at once (its 64 KiB stage) */
#define LARGE (200 * 1024)

static int failed;
static uint64_t delay_ms;       /* the callback waits this long first */

static void check(int ok, const char *name, int64_t r)
{
    printf("@@ %sok %s", ok ? "" : "not ", name);
    if (!ok) {
        printf(": result %" PRId64, r);
    }
    printf("\n");
    failed |= !ok;
}

static int64_t rw(qemu_backdoor_channel *ch, uint64_t cmd,
                  const volatile void *addr, uint64_t len)
{
    volatile uint64_t *d = qemu_backdoor_channel_data(ch);

    d[0] = (uintptr_t)addr;
    d[1] = len;
    d[2] = delay_ms;
    return (int64_t)qemu_backdoor_channel_call(ch, cmd);
}

/* In pieces under the supervisor: all or nothing still */
static void large(qemu_backdoor_channel *ch, char *data)
{
    size_t size = LARGE + 4096;
    char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int64_t r;
    int same = 1;

    for (size_t i = 0; i < LARGE; i++) {
        buf[i] = (char)(i * 13 + i / 4096);
    }
    r = rw(ch, 2, buf, LARGE);
    check(r == 0 && memcmp(data + 64, buf, LARGE) == 0, "read-large", r);
    for (size_t i = 0; i < LARGE; i++) {
        data[64 + i] = (char)(i * 5 + 3);
    }
    memset(buf, 0, size);
    r = rw(ch, 3, buf, LARGE);
    for (size_t i = 0; i < LARGE; i++) {
        same &= buf[i] == (char)(i * 5 + 3);
    }
    check(r == 0 && same, "write-large", r);
    /* The last page read-only: refused, and nothing written before it */
    memset(buf, 0x11, size);
    mprotect(buf + LARGE, 4096, PROT_READ);
    r = rw(ch, 3, buf + 4096, LARGE);
    same = 1;
    for (size_t i = 0; i < size; i++) {
        same &= buf[i] == 0x11;
    }
    check(r == -EFAULT && same, "write-partly-read-only-writes-nothing", r);
    munmap(buf, size);
}

/* Does the guest's own view of its mappings hold @addr? */
static int guest_has(unsigned long addr)
{
    unsigned long start, end;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    int found = 0;

    while (f && !found && fgets(line, sizeof(line), f)) {
        found = sscanf(line, "%lx-%lx", &start, &end) == 2 &&
                addr >= start && addr < end;
    }
    if (f) {
        fclose(f);
    }
    return found;
}

/*
 * QEMU's own memory is no guest memory. The guest sees QEMU's host
 * mappings in the maps file of a thread (QEMU shows it its own view in
 * /proc/self/maps only): take a mapping of QEMU's binary (a file named
 * qemu-<arch>) that the guest has not mapped at that address. A callback
 * must not reach it.
 */
static void qemu_memory(qemu_backdoor_channel *ch)
{
    char path[64], line[512];
    unsigned long start, end, host = 0;
    FILE *f;
    int64_t r;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", getpid(),
             getpid());
    f = fopen(path, "r");
    while (f && !host && fgets(line, sizeof(line), f)) {
        char *name = strrchr(line, '/');

        if (sscanf(line, "%lx-%lx", &start, &end) == 2 && name &&
            !strncmp(name, "/qemu-", 6) && !strchr(name, '.') &&
            !guest_has(start)) {
            host = start;
        }
    }
    if (f) {
        fclose(f);
    }
    if (!host) {
        printf("@@ skip read-qemu-memory: no mapping of QEMU's binary that "
               "is not the guest's in %s\n", path);
        return;
    }
    r = rw(ch, 2, (void *)host, 8);
    check(r == -EFAULT, "read-qemu-memory", r);
    r = rw(ch, 3, (void *)host, 8);
    check(r == -EFAULT, "write-qemu-memory", r);
}

int main(void)
{
    static const char rodata[64] = "read-only";
    char src[100], dst[100];
    qemu_backdoor_channel *ch = qemu_backdoor_open(NULL);
    char *data, *unmapped;
    int64_t r;

    if (!ch) {
        printf("@@ not ok open: %s\n", qemu_backdoor_error());
        return 1;
    }
    data = qemu_backdoor_channel_data(ch);
    for (int i = 0; i < 100; i++) {
        src[i] = (char)(i * 7 + 1);
        dst[i] = 0;
    }
    r = rw(ch, 2, src, sizeof(src));
    check(r == 0 && memcmp(data + 64, src, sizeof(src)) == 0, "read", r);
    memset(data + 64, 0x5a, sizeof(dst));
    r = rw(ch, 3, dst, sizeof(dst));
    check(r == 0 && dst[0] == 0x5a && dst[99] == 0x5a, "write", r);

    unmapped = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped + 4096, 4096);
    r = rw(ch, 2, unmapped + 4000, 200);
    check(r == -EFAULT, "read-across-unmapped", r);
    r = rw(ch, 2, (void *)16, 8);
    check(r == -EFAULT, "read-page-zero", r);
    r = rw(ch, 3, rodata, 8);
    check(r == -EFAULT && rodata[0] == 'r', "write-read-only", r);
    r = rw(ch, 2, (void *)(UINTPTR_MAX - 4), 8);
    check(r == -EFAULT, "read-wrapping", r);
    mprotect(unmapped, 4096, PROT_NONE);
    r = rw(ch, 2, unmapped, 8);
    check(r == -EFAULT, "read-no-access", r);
    large(ch, data);
    qemu_memory(ch);
    /* The caller has gone to sleep when the request comes: it wakes */
    delay_ms = 200;
    r = rw(ch, 2, src, sizeof(src));
    check(r == 0 && memcmp(data + 64, src, sizeof(src)) == 0,
          "read-after-the-caller-sleeps", r);
    return failed;
}
