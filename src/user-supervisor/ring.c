/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a call slot request asks the supervisor for: a call, or an
 * operation on the caller's event ring (OP: claim, doorbell, release;
 * docs/specs/backdoor.rst, "User mode: event rings"). The rings
 * themselves are src/callbacks/user-ring.c's, as under the helper. A
 * guest thread is known by the thread id in its slot; all run in one
 * process here, the supervisor, whichever QEMU process they came from.
 */
#define _GNU_SOURCE
#include "supervisor.h"
#include "user-reload.h"
#include "user-ring.h"

static BackdoorUserRings *rings;

bool sv_rings_init(const BackdoorRegs *regs, GError **errp)
{
    /* Drained here, in another process: on another CPU than posted */
    rings = backdoor_user_rings_new(regs, sv_big_endian, true, errp);
    return rings != NULL;
}

/* The register whose operation OP names */
static unsigned op_reg(uint32_t op)
{
    switch (op & BACKDOOR_SLOT_OP_MASK) {
    case BACKDOOR_SLOT_OP_ALLOC:
        return BACKDOOR_REG_SLOT_ALLOC;
    case BACKDOOR_SLOT_OP_FREE:
        return BACKDOOR_REG_SLOT_FREE;
    case BACKDOOR_SLOT_OP_DOORBELL:
        return BACKDOOR_REG_DOORBELL;
    }
    return 0;               /* a wrong one */
}

uint64_t sv_request(BackdoorCallbacks *const *cb, const int *closed,
                    uint8_t *slot, qemu_backdoor_call *call, uint32_t tid)
{
    uint32_t op = ld32(slot + BACKDOOR_SLOT_OP);
    BackdoorGate *gate = backdoor_gate_enter();
    SvMemCall mem;
    uint64_t result = UINT64_MAX;

    if (__atomic_load_n(closed, __ATOMIC_ACQUIRE)) {
        /* A hot reload that could not restart any library */
    } else if ((op & BACKDOOR_SLOT_OP_MASK) == BACKDOOR_SLOT_OP_CALL) {
        /* A call sees the events its thread posted before it */
        backdoor_user_rings_drain_thread(rings, *cb, tid, call->vcpu_index);
        sv_guest_memory_setup(call, &mem, slot, tid, op);
        result = backdoor_callbacks_call(*cb, call);
    } else {
        result = backdoor_user_rings_op(rings, *cb, op_reg(op), call->cmd, 0,
                                        tid, call->vcpu_index);
    }
    backdoor_gate_leave(gate);
    return result;
}

uint64_t sv_raw_call(BackdoorCallbacks *const *cb, const int *closed,
                     qemu_backdoor_call *call, uint32_t tid)
{
    BackdoorGate *gate = backdoor_gate_enter();
    uint64_t result = UINT64_MAX;

    if (!__atomic_load_n(closed, __ATOMIC_ACQUIRE) && *cb) {
        backdoor_user_rings_drain_thread(rings, *cb, tid, call->vcpu_index);
        result = backdoor_callbacks_call(*cb, call);
    }
    backdoor_gate_leave(gate);
    return result;
}

void sv_rings_idle(BackdoorCallbacks *const *cb, const int *closed)
{
    BackdoorGate *gate;

    if (!backdoor_user_rings_active(rings)) {
        return;
    }
    gate = backdoor_gate_enter();
    if (!__atomic_load_n(closed, __ATOMIC_ACQUIRE)) {
        backdoor_user_rings_reap(rings, *cb);
    }
    backdoor_gate_leave(gate);
}

uint64_t sv_rings_kicked(BackdoorCallbacks *const *cb, const int *closed,
                         uint32_t min, int (*index_of)(int tid))
{
    BackdoorGate *gate;
    uint64_t events = 0;

    if (!backdoor_user_rings_active(rings)) {
        return 0;
    }
    gate = backdoor_gate_enter();
    if (!__atomic_load_n(closed, __ATOMIC_ACQUIRE) && *cb) {
        events = backdoor_user_rings_drain_pending(rings, *cb, min, index_of);
    }
    backdoor_gate_leave(gate);
    return events;
}

void sv_rings_exit(BackdoorCallbacks *cb)
{
    backdoor_user_rings_release_process(rings, cb, 0);
}

void sv_rings_before_swap(BackdoorCallbacks *cb)
{
    backdoor_user_rings_drain_process(rings, cb, 0);
}
