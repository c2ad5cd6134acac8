/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event rings under the helper (src/callbacks/user-ring.c does the
 * work): a guest thread claims, rings and releases its ring with a
 * pread() of 8 bytes at the offset of SLOT_ALLOC, DOORBELL or SLOT_FREE on
 * a descriptor of BASE.ctrl, as the fast path calls at CALL. Each guest
 * thread runs on a host thread of its own: "the calling thread" is the
 * host thread. Everything that hands events to the library is called
 * with it (@cb) from inside the hot reload gate.
 */
#ifndef BACKDOOR_EVENTS_H
#define BACKDOOR_EVENTS_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "regs.h"

/*
 * The rings of the channel @regs (laid out by backdoor_user_rings_layout(),
 * its data channel mapped). @thread_gone runs when a host thread that
 * claimed a ring ends (QEMU ends a guest thread's host thread with
 * pthread_exit()); it calls backdoor_events_thread_gone() inside the gate.
 */
bool backdoor_events_init(const BackdoorRegs *regs, void (*thread_gone)(void),
                          GError **errp);

/* Is an 8-byte pread() of BASE.ctrl at @offset a ring operation? */
bool backdoor_events_is_op(uint64_t offset);

/* The ring operation at @offset with @value written: the value read. */
uint64_t backdoor_events_op(BackdoorCallbacks *cb, uint64_t offset,
                            uint64_t value, int vcpu_index);

/* Before a call of the calling thread: deliver what its rings hold. */
void backdoor_events_before_call(BackdoorCallbacks *cb, int vcpu_index);

/* The calling thread ends: deliver and release its rings. */
void backdoor_events_thread_gone(BackdoorCallbacks *cb);

/* Before a hot reload's swap: the process's rings to the old library. */
void backdoor_events_before_swap(BackdoorCallbacks *cb);

/* The process ends: deliver and release its rings. */
void backdoor_events_at_exit(BackdoorCallbacks *cb);

#endif /* BACKDOOR_EVENTS_H */
