/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event rings under the in-process helper (src/callbacks/user-ring.c does
 * the work): a guest thread claims, rings and releases its ring with a
 * pread() of 8 bytes at the offset of SLOT_ALLOC, DOORBELL or SLOT_FREE
 * on a descriptor of BASE.ctrl, as the fast path calls at CALL. Each
 * guest thread runs on a host thread of its own, so "the calling thread"
 * is the host thread's id.
 */
#define _GNU_SOURCE
#include "backdoor-user.h"
#include "user-reload.h"
#include "user-ring.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static BackdoorUserRings *rings;
static pthread_key_t thread_key;
static __thread int thread_tid;
static __thread bool thread_has_ring;

static int tid(void)
{
    if (!thread_tid) {
        thread_tid = syscall(SYS_gettid);
    }
    return thread_tid;
}

/*
 * A guest thread's exit: QEMU ends its host thread with pthread_exit(),
 * which runs this. The guest library released the ring already, unless
 * the thread left without it (a raw exit system call, a killed thread).
 */
static void thread_exit(void *unused)
{
    BackdoorGate *gate = backdoor_gate_enter();

    (void)unused;
    backdoor_user_rings_release_thread(rings, backdoor_user_callbacks(),
                                       getpid(), tid());
    backdoor_gate_leave(gate);
}

/* A forked child is a new process whose threads have new ids. */
static void forget_tid(void)
{
    thread_tid = 0;
    thread_has_ring = false;
}

bool backdoor_user_rings_init(void *data, uint64_t data_size, GError **errp)
{
    rings = backdoor_user_rings_new(data, data_size, backdoor_user_big_endian,
                                    errp);
    if (!rings) {
        return false;
    }
    pthread_key_create(&thread_key, thread_exit);
    pthread_atfork(NULL, NULL, forget_tid);
    return true;
}

uint32_t backdoor_user_ring_features(void)
{
    return rings ? backdoor_user_rings_features(rings) : 0;
}

bool backdoor_user_ring_reg(uint64_t offset, unsigned size, uint64_t *val)
{
    return rings && backdoor_user_rings_reg(rings, offset, size, val);
}

bool backdoor_user_ring_is_op(uint64_t offset)
{
    return backdoor_user_ring_features() &&
           (offset == BACKDOOR_REG_SLOT_ALLOC ||
            offset == BACKDOOR_REG_SLOT_FREE ||
            offset == BACKDOOR_REG_DOORBELL);
}

uint64_t backdoor_user_ring_op(uint64_t offset, uint64_t value)
{
    BackdoorGate *gate = backdoor_gate_enter();
    BackdoorCallbacks *cb = backdoor_user_callbacks();
    uint64_t r = UINT64_MAX;

    if (cb) {
        r = backdoor_user_rings_op(rings, cb, offset, value, getpid(), tid(),
                                   backdoor_user_vcpu_index());
    }
    if (offset == BACKDOOR_REG_SLOT_ALLOC && r < 0xffffffff &&
        !thread_has_ring) {
        /* Any non-NULL value makes the key's destructor run */
        pthread_setspecific(thread_key, (void *)1);
        thread_has_ring = true;
    }
    backdoor_gate_leave(gate);
    return r;
}

void backdoor_user_rings_before_call(BackdoorCallbacks *cb, int vcpu_index)
{
    if (rings && thread_has_ring) {
        backdoor_user_rings_drain_thread(rings, cb, tid(), vcpu_index);
    }
}

void backdoor_user_rings_before_swap(BackdoorCallbacks *cb)
{
    backdoor_user_rings_drain_process(rings, cb, getpid());
}

void backdoor_user_rings_at_exit(BackdoorCallbacks *cb)
{
    backdoor_user_rings_release_process(rings, cb, getpid());
}
