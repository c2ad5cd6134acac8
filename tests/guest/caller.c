/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Calls the host without end, for the snapshot and hot reload tests
 * (tests/guest/snapshot-test.py), against tests/callbacks/state-callbacks.c:
 * every result is tag << 32 | n, n counting the answering library's calls
 * from 1. So a call lost or run twice shows as a gap or a repeat, and a
 * library swapped in shows as a new tag whose count starts at 1.
 *
 *   caller SPEC EVERY   call forever; a progress line every EVERY calls
 *
 * Lines: "@@ caller at TAG:N", "@@ caller switch TAG:N TAG2:N2" (a new
 * library answered), "@@ caller error TAG:N TAG2:N2" (it did not follow).
 */
#include <qemu-backdoor.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    qemu_backdoor_channel *ch;
    uint64_t every, prev, r;

    if (argc != 3) {
        fprintf(stderr, "usage: caller SPEC EVERY\n");
        return 2;
    }
    ch = qemu_backdoor_open(argv[1]);
    if (!ch) {
        printf("@@ caller error open: %s\n", qemu_backdoor_error());
        return 1;
    }
    every = strtoull(argv[2], NULL, 0);
    prev = qemu_backdoor_channel_call(ch, 1);
    printf("@@ caller start %" PRIu64 ":%" PRIu64 "\n", prev >> 32,
           prev & 0xffffffff);
    fflush(stdout);
    for (;;) {
        r = qemu_backdoor_channel_call(ch, 1);
        if (r >> 32 == prev >> 32 && r == prev + 1) {
            /* the same library, its next call */
        } else if (r >> 32 != prev >> 32 && (r & 0xffffffff) == 1) {
            printf("@@ caller switch %" PRIu64 ":%" PRIu64 " %" PRIu64
                   ":%" PRIu64 "\n", prev >> 32, prev & 0xffffffff,
                   r >> 32, r & 0xffffffff);
            fflush(stdout);
        } else {
            printf("@@ caller error %" PRIu64 ":%" PRIu64 " %" PRIu64
                   ":%" PRIu64 "\n", prev >> 32, prev & 0xffffffff,
                   r >> 32, r & 0xffffffff);
            fflush(stdout);
        }
        if ((r & 0xffffffff) % every == 0) {
            printf("@@ caller at %" PRIu64 ":%" PRIu64 "\n", r >> 32,
                   r & 0xffffffff);
            fflush(stdout);
        }
        prev = r;
    }
}
