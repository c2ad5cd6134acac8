/* SPDX-License-Identifier: MIT */
/*
 * The 2011 seed's host callbacks, as its documentation wrote them. Only
 * the includes changed: the seed took ldq_p() from QEMU's "cpu.h", the
 * compat header provides it without QEMU internals.
 */
#include "backdoor/qemu/qemu-backdoor.h"

#include <stdio.h>
#include <inttypes.h>

void qemu_backdoor_init(uint64_t data_size)
{
    printf("+ %" PRIu64 "\n", data_size);
}

void qemu_backdoor(uint64_t cmd, void *data)
{
    /* Perform any endianess-wise loads to interpret the data */
    uint64_t d = ldq_p(data);
    printf("-> %" PRIx64 " :: %" PRIx64 "\n", cmd, d);
}
