/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event rings: layout in the data channel and draining (see ring.h).
 */
#include "ring.h"

#include "qemu-backdoor-callbacks.h"

#include <stddef.h>
#include <string.h>

bool backdoor_ring_layout(BackdoorRegs *r, const char *slots_name,
                          const char *entries_name, GError **errp)
{
    uint64_t room = r->data_size / 2;
    uint32_t entries = r->ring_entries;

    if (r->slots > BACKDOOR_SLOTS_MAX) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0, "%s=%u is more than "
                    "%u", slots_name, r->slots, BACKDOOR_SLOTS_MAX);
        return false;
    }
    if (entries && ((entries & (entries - 1)) ||
                    entries < BACKDOOR_RING_MIN ||
                    entries > BACKDOOR_RING_MAX)) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0, "%s=%u is not 0 or a "
                    "power of two from %u to %u", entries_name, entries,
                    BACKDOOR_RING_MIN, BACKDOOR_RING_MAX);
        return false;
    }
    if (!r->slots) {
        r->ring_entries = 0;
        return true;
    }
    for (;;) {
        r->slot_stride = BACKDOOR_SLOTBLK_RING +
                         (uint64_t)r->ring_entries * BACKDOOR_EVENT_SIZE;
        if ((uint64_t)r->slots * r->slot_stride <= room) {
            break;
        }
        if (r->ring_entries > BACKDOOR_RING_MIN) {
            r->ring_entries /= 2;
        } else {
            r->slots = MAX(room / r->slot_stride, 1);
        }
    }
    r->slot_base = r->data_size - 64 - (uint64_t)r->slots * r->slot_stride;
    return true;
}

/* HEAD and TAIL may be written by another thread: whole 64-bit accesses */
static uint64_t ring_ld64(bool be, const uint8_t *p, int order)
{
    uint64_t v = __atomic_load_n((const uint64_t *)p, order);

    return be == qemu_backdoor_host_big_endian() ? v : __builtin_bswap64(v);
}

static void ring_st64(bool be, uint8_t *p, uint64_t v)
{
    if (be != qemu_backdoor_host_big_endian()) {
        v = __builtin_bswap64(v);
    }
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

void backdoor_ring_reset(uint8_t *blk, bool big_endian)
{
    ring_st64(big_endian, blk + BACKDOOR_SLOTBLK_WORD, 0);
    ring_st64(big_endian, blk + BACKDOOR_SLOTBLK_RESULT, 0);
    ring_st64(big_endian, blk + BACKDOOR_SLOTBLK_HEAD, 0);
    ring_st64(big_endian, blk + BACKDOOR_SLOTBLK_TAIL, 0);
}

bool backdoor_ring_pending(const uint8_t *blk)
{
    return __atomic_load_n((const uint64_t *)(blk + BACKDOOR_SLOTBLK_HEAD),
                           __ATOMIC_RELAXED) !=
           __atomic_load_n((const uint64_t *)(blk + BACKDOOR_SLOTBLK_TAIL),
                           __ATOMIC_RELAXED);
}

uint64_t backdoor_ring_queued(const uint8_t *blk, bool big_endian)
{
    return ring_ld64(big_endian, blk + BACKDOOR_SLOTBLK_HEAD,
                     __ATOMIC_RELAXED) -
           ring_ld64(big_endian, blk + BACKDOOR_SLOTBLK_TAIL,
                     __ATOMIC_RELAXED);
}

/* An event in the ring is a qemu_backdoor_event in the guest's order */
G_STATIC_ASSERT(sizeof(qemu_backdoor_event) == BACKDOOR_EVENT_SIZE &&
                offsetof(qemu_backdoor_event, arg) == 8 &&
                BACKDOOR_EVENT_ARGS == 3);

/* Flush the cache lines of events @from to @to (not included) */
static void ring_evict(const uint8_t *ring, uint32_t entries, uint64_t from,
                       uint64_t to)
{
#if defined(__SSE2__)
    /* A 64-byte line holds two events; the ring starts on a line */
    for (uint64_t i = from & ~(uint64_t)1; i < to; i += 2) {
        __builtin_ia32_clflush(ring + (i & (entries - 1)) *
                               BACKDOOR_EVENT_SIZE);
    }
#else
    (void)ring, (void)entries, (void)from, (void)to;
#endif
}

bool backdoor_ring_drain(BackdoorCallbacks *cb, uint8_t *blk,
                         uint32_t entries, const qemu_backdoor_batch *batch,
                         bool evict, uint64_t *events, uint64_t *head,
                         uint64_t *tail)
{
    bool be = batch->guest_big_endian;
    const uint8_t *ring = blk + BACKDOOR_SLOTBLK_RING;
    qemu_backdoor_event ev[BACKDOOR_RING_BATCH_MAX];
    uint64_t h, t;

    if (!entries) {
        return true;
    }
    /* Acquire: the events before HEAD are there when HEAD is */
    h = ring_ld64(be, blk + BACKDOOR_SLOTBLK_HEAD, __ATOMIC_ACQUIRE);
    t = ring_ld64(be, blk + BACKDOOR_SLOTBLK_TAIL, __ATOMIC_RELAXED);
    if (h - t > entries) {
        *head = h;
        *tail = t;
        ring_st64(be, blk + BACKDOOR_SLOTBLK_TAIL, h);
        return false;
    }
    while (t != h) {
        qemu_backdoor_batch b = *batch;

        b.events = ev;
        b.count = 0;
        if (be == qemu_backdoor_host_big_endian()) {
            /* The guest's order: the events as they lie, up to the end */
            uint64_t at = t & (entries - 1);

            b.count = MIN(MIN(h - t, BACKDOOR_RING_BATCH_MAX), entries - at);
            memcpy(ev, ring + at * BACKDOOR_EVENT_SIZE,
                   b.count * BACKDOOR_EVENT_SIZE);
            t += b.count;
        }
        while (t != h && b.count < BACKDOOR_RING_BATCH_MAX) {
            const uint8_t *e = ring + (t & (entries - 1)) *
                               BACKDOOR_EVENT_SIZE;
            qemu_backdoor_event *d = &ev[b.count++];

            d->cmd = qemu_backdoor_ld64(be, e);
            for (int i = 0; i < BACKDOOR_EVENT_ARGS; i++) {
                d->arg[i] = qemu_backdoor_ld64(be, e + 8 + 8 * i);
            }
            t++;
        }
        *events += b.count;
        if (evict) {
            ring_evict(ring, entries, t - b.count, t);
        }
        backdoor_callbacks_batch(cb, &b);
        /* Release: the entries are read, the guest may reuse them */
        ring_st64(be, blk + BACKDOOR_SLOTBLK_TAIL, t);
    }
    return true;
}
