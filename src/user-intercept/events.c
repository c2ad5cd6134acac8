/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event rings under the helper (events.h).
 */
#define _GNU_SOURCE
#include "events.h"
#include "qemu-syms.h"
#include "user-ring.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static BackdoorUserRings *rings;
static bool have_rings;             /* FEATURES bit RING */
static pthread_key_t thread_key;
static void (*on_thread_gone)(void);
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
 * A guest thread's end: QEMU ends its host thread with pthread_exit(),
 * which runs this. The guest library released the ring already, unless
 * the thread left without it (a raw exit system call, a killed thread).
 */
static void thread_exit(void *unused)
{
    (void)unused;
    on_thread_gone();
}

/* A forked child is a new process whose threads have new ids. */
static void forget_tid(void)
{
    thread_tid = 0;
    thread_has_ring = false;
}

bool backdoor_events_init(const BackdoorRegs *regs, void (*thread_gone)(void),
                          GError **errp)
{
    rings = backdoor_user_rings_new(regs, backdoor_user_big_endian, false,
                                    errp);
    if (!rings) {
        return false;
    }
    have_rings = regs->slots != 0;
    on_thread_gone = thread_gone;
    pthread_key_create(&thread_key, thread_exit);
    pthread_atfork(NULL, NULL, forget_tid);
    return true;
}

bool backdoor_events_is_op(uint64_t offset)
{
    return have_rings && (offset == BACKDOOR_REG_SLOT_ALLOC ||
                          offset == BACKDOOR_REG_SLOT_FREE ||
                          offset == BACKDOOR_REG_DOORBELL);
}

uint64_t backdoor_events_op(BackdoorCallbacks *cb, uint64_t offset,
                            uint64_t value, int vcpu_index)
{
    uint64_t r = backdoor_user_rings_op(rings, cb, offset, value, getpid(),
                                        tid(), vcpu_index);

    if (offset == BACKDOOR_REG_SLOT_ALLOC && r < 0xffffffff &&
        !thread_has_ring) {
        /* Any non-NULL value makes the key's destructor run */
        pthread_setspecific(thread_key, (void *)1);
        thread_has_ring = true;
    }
    return r;
}

void backdoor_events_before_call(BackdoorCallbacks *cb, int vcpu_index)
{
    if (thread_has_ring) {
        backdoor_user_rings_drain_thread(rings, cb, tid(), vcpu_index);
    }
}

void backdoor_events_thread_gone(BackdoorCallbacks *cb)
{
    backdoor_user_rings_release_thread(rings, cb, getpid(), tid());
}

void backdoor_events_before_swap(BackdoorCallbacks *cb)
{
    backdoor_user_rings_drain_process(rings, cb, getpid());
}

void backdoor_events_at_exit(BackdoorCallbacks *cb)
{
    backdoor_user_rings_release_process(rings, cb, getpid());
}
