/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event rings of register map 1.1 (docs/specs/backdoor.rst, "Call slots
 * and event rings"): their layout in the data channel and the draining of
 * one ring to the library's batch callback. Shared by the device and the
 * two user-mode backends; QEMU-free.
 */
#ifndef BACKDOOR_CALLBACKS_RING_H
#define BACKDOOR_CALLBACKS_RING_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "regs.h"

#define BACKDOOR_RING_MIN           8
#define BACKDOOR_RING_MAX           65536
#define BACKDOOR_RING_DEFAULT       128
/*
 * User mode: a ring per posting thread of 128 KiB (docs/benchmark.md,
 * "Where the time of a post goes"): the flushes are rarer, and under the
 * supervisor, which drains on another CPU while the thread posts, the
 * thread does not store into lines that CPU has just read.
 */
#define BACKDOOR_USER_RING_DEFAULT  4096
#define BACKDOOR_RING_SLOTS_DEFAULT 32
#define BACKDOOR_RING_BATCH_MAX     64      /* events per batch callback */

/*
 * Lay the slots asked for in @r (slots, ring_entries: what the user set)
 * out at the end of its data channel of data_size bytes, below the 64
 * bytes that hold the 1.0 call word: slot_base and slot_stride. They may
 * take half of it: fewer entries, then fewer slots, until they fit (slots
 * and ring_entries then say what they got). @slots_name and @entries_name
 * name the settings in the error ("slots", "ring-entries" for the device;
 * environment variables in user mode). Returns false with @errp set for
 * a value out of range.
 */
bool backdoor_ring_layout(BackdoorRegs *r, const char *slots_name,
                          const char *entries_name, GError **errp);

/* Slot @n's block in the data channel of @r. */
static inline uint8_t *backdoor_ring_slot(const BackdoorRegs *r, uint32_t n)
{
    return (uint8_t *)r->data + r->slot_base + (uint64_t)n * r->slot_stride;
}

/* A newly claimed slot: call word, result, HEAD and TAIL zeroed. */
void backdoor_ring_reset(uint8_t *blk, bool big_endian);

/*
 * Hand the events of the ring of slot block @blk (@entries entries) to
 * @cb, oldest first, in batches of at most BACKDOOR_RING_BATCH_MAX: each
 * batch is a copy of @batch (producer, vcpu_index, mode, data, data_size,
 * guest_big_endian filled in by the caller) with its events. TAIL is
 * stored after each batch, so the guest may reuse those entries.
 *
 * The guest posts without a lock: it stores an event, then HEAD (release).
 * So one producer and one drainer need none either; two drainers of one
 * ring must be serialized by the caller.
 *
 * With @evict (a drainer on another CPU than the producer, the user-mode
 * supervisor), the entries read are flushed from this CPU's caches before
 * TAIL hands them back: the producer's next stores there then take them
 * from memory rather than from this CPU's cache (x86 only; elsewhere
 * @evict does nothing).
 *
 * Adds the events delivered to *@events. Returns false when HEAD is more
 * than @entries ahead of TAIL (a guest error): the ring's contents are
 * skipped (TAIL = HEAD), and *@head and *@tail say what was found.
 */
bool backdoor_ring_drain(BackdoorCallbacks *cb, uint8_t *blk,
                         uint32_t entries, const qemu_backdoor_batch *batch,
                         bool evict, uint64_t *events, uint64_t *head,
                         uint64_t *tail);

/* True when the ring of @blk holds events (HEAD != TAIL). */
bool backdoor_ring_pending(const uint8_t *blk);

/* How many events the ring of @blk holds (HEAD - TAIL, as the guest wrote
 * them: a wrong HEAD gives a large number, which the drain then skips). */
uint64_t backdoor_ring_queued(const uint8_t *blk, bool big_endian);

#endif /* BACKDOOR_CALLBACKS_RING_H */
