/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event rings' layout a user-mode backend announces by default
 * (QEMU_BACKDOOR_RINGS=32, QEMU_BACKDOOR_RING_ENTRIES=4096), as
 * docs/specs/backdoor.rst fits them into a data channel of @size bytes.
 * Literal, not the backends' code: the tests hold them to the spec.
 */
#ifndef TESTS_USER_RING_LAYOUT_H
#define TESTS_USER_RING_LAYOUT_H

#include <stdint.h>

#define REG_SLOT_COUNT      0x30
#define REG_RING_ENTRIES    0x34
#define REG_SLOT_BASE       0x38
#define REG_SLOT_STRIDE     0x40
#define REG_SLOT_ALLOC      0x48
#define REG_SLOT_FREE       0x4c
#define REG_DOORBELL        0x50
#define FEATURE_RING        0x8u

typedef struct RingLayout {
    uint32_t slots, entries;
    uint64_t base, stride;
} RingLayout;

static inline RingLayout ring_layout(uint64_t size)
{
    RingLayout l = { 32, 4096, 0, 0 };

    for (;;) {
        l.stride = 64 + l.entries * 32;
        if (l.slots * l.stride <= size / 2) {
            break;
        }
        if (l.entries > 8) {
            l.entries /= 2;
        } else {
            l.slots = size / 2 / l.stride ? size / 2 / l.stride : 1;
        }
    }
    l.base = size - 64 - l.slots * l.stride;
    return l;
}

#endif
