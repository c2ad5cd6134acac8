/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The supervisor's parts: supervisor.c serves the call slots; ring.c runs
 * what a slot request asks for (a call, a ring operation) and the event
 * rings; guestmem.c gives callbacks the caller's memory.
 */
#ifndef BACKDOOR_SUPERVISOR_H
#define BACKDOOR_SUPERVISOR_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "regs.h"

/* The guest's byte order: fields of the shared pages are in it. */
extern bool sv_big_endian;

/* Guest-order accessors for the shared pages. */
static inline uint32_t ld32(const void *p)
{
    uint32_t v = __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);

    return sv_big_endian ? GUINT32_FROM_BE(v) : GUINT32_FROM_LE(v);
}

static inline void st32(void *p, uint32_t v)
{
    v = sv_big_endian ? GUINT32_TO_BE(v) : GUINT32_TO_LE(v);
    __atomic_store_n((uint32_t *)p, v, __ATOMIC_SEQ_CST);
}

static inline uint64_t ld64(const void *p)
{
    uint64_t v = __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);

    return sv_big_endian ? GUINT64_FROM_BE(v) : GUINT64_FROM_LE(v);
}

static inline void st64(void *p, uint64_t v)
{
    v = sv_big_endian ? GUINT64_TO_BE(v) : GUINT64_TO_LE(v);
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

/* Shared (not private) futexes: the guest's are on the same file page. */
long sv_futex(void *addr, int op, uint32_t val, uint64_t timeout_ns);

/* ---- ring.c ---- */

/*
 * The event rings of the channel @regs (laid out by
 * backdoor_user_rings_layout(), its data channel mapped).
 */
bool sv_rings_init(const BackdoorRegs *regs, GError **errp);

/*
 * Run the request posted in call slot @slot by thread @tid: a call
 * (@call filled in but for guest memory), or a ring operation. Inside the
 * hot reload gate; with no library (*@cb NULL): all ones.
 */
uint64_t sv_request(BackdoorCallbacks *const *cb, const int *closed,
                    uint8_t *slot, qemu_backdoor_call *call, uint32_t tid);

/* A raw register access's call (trace.c) of thread @tid: as sv_request() */
uint64_t sv_raw_call(BackdoorCallbacks *const *cb, const int *closed,
                     qemu_backdoor_call *call, uint32_t tid);

/* The server goes idle: release the rings of threads that have gone. */
void sv_rings_idle(BackdoorCallbacks *const *cb, const int *closed);

/*
 * After a kick (KICKS changed): deliver the rings that hold @min events or
 * more, each batch naming the ring's thread by @index_of; inside the hot
 * reload gate. Returns: the number of events delivered.
 */
uint64_t sv_rings_kicked(BackdoorCallbacks *const *cb, const int *closed,
                         uint32_t min, int (*index_of)(int tid));

/* A hot reload: the old library gets every ring's events before its exit */
void sv_rings_before_swap(BackdoorCallbacks *cb);

/* QEMU has exited: deliver and release every ring. */
void sv_rings_exit(BackdoorCallbacks *cb);

/* ---- guestmem.c ---- */

/*
 * Wake the caller of @slot, for a caller that serves guest memory
 * requests (BACKDOOR_SLOT_OP_MEM): it sleeps on WAKE, which changes, so
 * that a caller about to sleep does not. Call it after what it is woken
 * for is stored.
 */
void sv_wake_caller(uint8_t *slot);

/* The server thread's index, which picks its stage in BASE.ctrl. */
extern __thread unsigned sv_server_index;

/* Where BASE.ctrl is mapped (registers, slots, stages); *stop: exiting. */
void sv_guest_memory_init(uint8_t *ctrl, const int *stop);

/*
 * A call from @slot, thread @tid: guest memory for it when the caller
 * serves memory requests (@op has BACKDOOR_SLOT_OP_MEM). @ctx lives as
 * long as the call.
 */
typedef struct SvMemCall {
    uint8_t *slot;
    uint32_t tid;
    bool able;
} SvMemCall;

void sv_guest_memory_setup(qemu_backdoor_call *call, SvMemCall *ctx,
                           uint8_t *slot, uint32_t tid, uint32_t op);

#endif /* BACKDOOR_SUPERVISOR_H */
