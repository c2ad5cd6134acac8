/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest memory for callbacks in user mode (callback ABI 2), against
 * tests/callbacks/state-callbacks.c: cmd 2 reads data[8] bytes at guest
 * address data[0] into data offset 64, cmd 3 writes them back. One line
 * per check: "@@ ok NAME" or "@@ not ok NAME: why".
 */
#include <qemu-backdoor.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int failed;

static void check(int ok, const char *name, int64_t r)
{
    printf("@@ %sok %s", ok ? "" : "not ", name);
    if (!ok) {
        printf(": result %" PRId64, r);
    }
    printf("\n");
    failed |= !ok;
}

static int64_t rw(qemu_backdoor_channel *ch, uint64_t cmd, const void *addr,
                  uint64_t len)
{
    volatile uint64_t *d = qemu_backdoor_channel_data(ch);

    d[0] = (uintptr_t)addr;
    d[1] = len;
    return (int64_t)qemu_backdoor_channel_call(ch, cmd);
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
    return failed;
}
