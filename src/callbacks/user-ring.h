/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event rings in user mode, shared by the in-process helper and the
 * supervisor: one ring per guest thread in the data channel, laid out as
 * the device's slots (ring.h), claimed, rung and released through the
 * backend's way of calling (docs/specs/backdoor.rst, "User mode: event
 * rings"), drained to the library's batch callback at every call of the
 * owning thread, on its doorbell, when it releases the ring or exits, and
 * at the process's exit.
 *
 * Who owns which ring lives in memory shared with forked copies of the
 * process (a guest fork() is a fork of QEMU, whose helper claims rings in
 * the same data channel), so claims never collide across processes.
 */
#ifndef BACKDOOR_USER_RING_H
#define BACKDOOR_USER_RING_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "ring.h"

typedef struct BackdoorUserRings BackdoorUserRings;

/* What happened, over the run (and in every forked copy). */
typedef struct BackdoorUserRingStats {
    uint64_t events;            /* handed to the library */
    uint64_t doorbells;
    uint64_t full;              /* doorbells of producers that were full */
    uint64_t guest_errors;      /* wrong ring numbers, HEAD overruns */
} BackdoorUserRingStats;

/*
 * Lay the rings out in the data channel of @regs (its data_size set):
 * QEMU_BACKDOOR_RINGS rings (default 32) of QEMU_BACKDOOR_RING_ENTRIES
 * events (default 4096, 0: none), fitted as the device fits its slots,
 * into regs->slots, ring_entries, slot_base and slot_stride, which the
 * register model then serves (FEATURES bit RING and the layout registers;
 * no rings: slots 0). False with @errp set for a bad setting.
 */
bool backdoor_user_rings_layout(BackdoorRegs *regs, GError **errp);

/*
 * The rings of @regs (laid out, its data channel mapped), in the guest's
 * byte order @big_endian; @evict when they are drained in another process
 * than the guest's (backdoor_ring_drain()). NULL with @errp set when out
 * of memory.
 */
BackdoorUserRings *backdoor_user_rings_new(const BackdoorRegs *regs,
                                           bool big_endian, bool evict,
                                           GError **errp);

/*
 * The operation of register @reg (BACKDOOR_REG_SLOT_ALLOC, _SLOT_FREE,
 * _DOORBELL) with the value @value written, for guest thread @tid of
 * process @pid (0: not known), whose batches name @vcpu_index: a claim
 * returns the ring's number (0xffffffff when none is free), the others 0;
 * a wrong one (another register, a ring that is not claimed) counts as a
 * guest error and returns all ones.
 */
uint64_t backdoor_user_rings_op(BackdoorUserRings *r, BackdoorCallbacks *cb,
                                unsigned reg, uint64_t value, int pid,
                                int tid, int vcpu_index);

/* Before a call of thread @tid: deliver what its rings hold. */
void backdoor_user_rings_drain_thread(BackdoorUserRings *r,
                                      BackdoorCallbacks *cb, int tid,
                                      int vcpu_index);

/*
 * After a kick (BACKDOOR_FEATURE_RING_KICK): deliver every ring that holds
 * @min events or more (at least 1) and that no other thread drains now; a
 * batch names index_of(the ring's thread).
 * Returns: the number of events delivered.
 */
uint64_t backdoor_user_rings_drain_pending(BackdoorUserRings *r,
                                           BackdoorCallbacks *cb,
                                           uint32_t min,
                                           int (*index_of)(int tid));

/* Thread @tid has gone: deliver its rings and release them. */
void backdoor_user_rings_release_thread(BackdoorUserRings *r,
                                        BackdoorCallbacks *cb, int pid,
                                        int tid);

/*
 * The end of process @pid (0: of every process): deliver its rings, with
 * vcpu_index -1, and release them.
 */
void backdoor_user_rings_release_process(BackdoorUserRings *r,
                                         BackdoorCallbacks *cb, int pid);

/*
 * Deliver the rings of process @pid (0: of every process), with
 * vcpu_index -1, and keep them claimed: before a hot reload's swap.
 */
void backdoor_user_rings_drain_process(BackdoorUserRings *r,
                                       BackdoorCallbacks *cb, int pid);

/* Release (after delivering) the rings whose thread no longer runs. */
void backdoor_user_rings_reap(BackdoorUserRings *r, BackdoorCallbacks *cb);

/* True while any ring is claimed: the calls' fast check. */
bool backdoor_user_rings_active(const BackdoorUserRings *r);

BackdoorUserRingStats backdoor_user_rings_stats(const BackdoorUserRings *r);

#endif /* BACKDOOR_USER_RING_H */
