/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event rings in user mode (user-ring.h).
 */
#define _GNU_SOURCE
#include "user-ring.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Who owns a ring; in shared memory. */
typedef struct RingOwner {
    int32_t claimed;            /* 0 free, 1 claimed */
    int32_t pid;                /* the owner's process, 0 if not known */
    int32_t tid;                /* the owner's thread */
    int32_t lock;               /* 0, or the thread that drains it */
} RingOwner;

typedef struct RingShared {
    int32_t nclaimed;
    BackdoorUserRingStats stats;
    RingOwner owner[];
} RingShared;

struct BackdoorUserRings {
    BackdoorRegs layout;        /* the data channel and the rings in it */
    bool big_endian;
    bool evict;                 /* drained on another CPU than posted */
    RingShared *shared;
};

static bool env_uint(const char *name, uint32_t def, uint32_t *val,
                     GError **errp)
{
    const char *s = getenv(name);
    unsigned long v;
    char *end;

    if (!s || !*s) {
        *val = def;
        return true;
    }
    errno = 0;
    v = strtoul(s, &end, 0);
    if (errno || *end || v > UINT32_MAX || *s == '-') {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0, "%s '%s' is not a "
                    "number", name, s);
        return false;
    }
    *val = v;
    return true;
}

bool backdoor_user_rings_layout(BackdoorRegs *regs, GError **errp)
{
    if (!env_uint("QEMU_BACKDOOR_RINGS", BACKDOOR_RING_SLOTS_DEFAULT,
                  &regs->slots, errp) ||
        !env_uint("QEMU_BACKDOOR_RING_ENTRIES", BACKDOOR_USER_RING_DEFAULT,
                  &regs->ring_entries, errp) ||
        !backdoor_ring_layout(regs, "QEMU_BACKDOOR_RINGS",
                              "QEMU_BACKDOOR_RING_ENTRIES", errp)) {
        return false;
    }
    if (!regs->ring_entries) {
        /* User mode has no slot calls: slots without rings are nothing */
        regs->slots = 0;
    }
    return true;
}

BackdoorUserRings *backdoor_user_rings_new(const BackdoorRegs *regs,
                                           bool big_endian, bool evict,
                                           GError **errp)
{
    BackdoorUserRings *r = g_new0(BackdoorUserRings, 1);
    size_t size = sizeof(RingShared) + regs->slots * sizeof(RingOwner);

    r->layout = *regs;
    r->big_endian = big_endian;
    r->evict = evict;
    r->shared = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->shared == MAP_FAILED) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0, "cannot allocate "
                    "the ring table: %s", g_strerror(errno));
        g_free(r);
        return NULL;
    }
    return r;
}

static void count(uint64_t *counter, uint64_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* Does thread @tid (of process @pid, if known) still run? */
static bool thread_alive(int pid, int tid)
{
    int ret = pid > 0 ? syscall(SYS_tgkill, pid, tid, 0) : kill(tid, 0);

    return ret == 0 || errno == EPERM;
}

/*
 * Two drainers of one ring (the owner at a call, another thread at the
 * process's exit, the reaper) take turns. A holder that died (a forked
 * process killed while it drained) is taken over. False when the calling
 * thread holds it already (a library that ends the process from its batch
 * callback): that ring is left alone.
 */
static bool ring_lock(RingOwner *o)
{
    int32_t self = syscall(SYS_gettid), holder;

    for (unsigned spins = 1; ; spins++) {
        holder = 0;
        if (__atomic_compare_exchange_n(&o->lock, &holder, self, false,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return true;
        }
        if (holder == self) {
            return false;
        }
        if (spins % 1024 == 0 && !thread_alive(0, holder)) {
            __atomic_compare_exchange_n(&o->lock, &holder, 0, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
        sched_yield();
    }
}

/* The ring's lock if nobody holds it: false if somebody does */
static bool ring_trylock(RingOwner *o)
{
    int32_t free_ = 0;

    return __atomic_compare_exchange_n(&o->lock, &free_,
                                       (int32_t)syscall(SYS_gettid), false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static void ring_unlock(RingOwner *o)
{
    __atomic_store_n(&o->lock, 0, __ATOMIC_RELEASE);
}

static uint8_t *ring_block(BackdoorUserRings *r, uint32_t n)
{
    return backdoor_ring_slot(&r->layout, n);
}

/* With the ring's lock held; the number of events delivered */
static uint64_t drain(BackdoorUserRings *r, BackdoorCallbacks *cb,
                      uint32_t n, int vcpu_index)
{
    qemu_backdoor_batch batch = {
        .producer = n,
        .vcpu_index = vcpu_index,
        .mode = QEMU_BACKDOOR_MODE_USER,
        .data = r->layout.data,
        .data_size = r->layout.data_size,
        .guest_big_endian = r->big_endian,
    };
    uint64_t events = 0, head, tail;

    if (!cb) {
        return 0;       /* no library any more (after the owner's exit) */
    }
    if (!backdoor_ring_drain(cb, ring_block(r, n), r->layout.ring_entries,
                             &batch, r->evict, &events, &head, &tail)) {
        count(&r->shared->stats.guest_errors, 1);
    }
    count(&r->shared->stats.events, events);
    return events;
}

/* With the ring's lock held */
static void release(BackdoorUserRings *r, RingOwner *o)
{
    o->tid = 0;
    o->pid = 0;
    __atomic_store_n(&o->claimed, 0, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&r->shared->nclaimed, 1, __ATOMIC_RELAXED);
}

typedef bool (*OwnerMatch)(const RingOwner *o, int pid, int tid);

/* Deliver, then release if @release, each claimed ring @match picks. */
static void deliver_matching(BackdoorUserRings *r, BackdoorCallbacks *cb,
                             OwnerMatch match, int pid, int tid,
                             bool release_it)
{
    for (uint32_t n = 0; n < r->layout.slots; n++) {
        RingOwner *o = &r->shared->owner[n];

        if (!__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE) ||
            !match(o, pid, tid)) {
            continue;
        }
        if (!ring_lock(o)) {
            continue;
        }
        if (__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE) &&
            match(o, pid, tid)) {
            drain(r, cb, n, -1);
            if (release_it) {
                release(r, o);
            }
        }
        ring_unlock(o);
    }
}

static bool owner_is_thread(const RingOwner *o, int pid, int tid)
{
    return o->tid == tid && (!pid || o->pid == pid);
}

static bool owner_is_process(const RingOwner *o, int pid, int tid)
{
    (void)tid;
    return !pid || o->pid == pid;
}

static bool owner_is_gone(const RingOwner *o, int pid, int tid)
{
    (void)pid, (void)tid;
    return !thread_alive(o->pid, o->tid);
}

static uint32_t claim(BackdoorUserRings *r, BackdoorCallbacks *cb, int pid,
                      int tid)
{
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t n = 0; n < r->layout.slots; n++) {
            RingOwner *o = &r->shared->owner[n];
            int32_t free_ = 0;

            if (__atomic_compare_exchange_n(&o->claimed, &free_, 1, false,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                o->pid = pid;
                o->tid = tid;
                backdoor_ring_reset(ring_block(r, n), r->big_endian);
                __atomic_add_fetch(&r->shared->nclaimed, 1,
                                   __ATOMIC_SEQ_CST);
                return n;
            }
        }
        /* All taken: take back those of threads that are gone */
        deliver_matching(r, cb, owner_is_gone, 0, 0, true);
    }
    return 0xffffffff;
}

uint64_t backdoor_user_rings_op(BackdoorUserRings *r, BackdoorCallbacks *cb,
                                unsigned reg, uint64_t value, int pid,
                                int tid, int vcpu_index)
{
    uint64_t n = value;
    RingOwner *o;

    if (reg == BACKDOOR_REG_SLOT_ALLOC && r->layout.slots) {
        return claim(r, cb, pid, tid);
    }
    if (reg == BACKDOOR_REG_DOORBELL) {
        n &= ~(uint64_t)BACKDOOR_DOORBELL_FULL;
    }
    if ((reg != BACKDOOR_REG_SLOT_FREE && reg != BACKDOOR_REG_DOORBELL) ||
        n >= r->layout.slots) {
        goto wrong;
    }
    o = &r->shared->owner[n];
    if (!ring_lock(o)) {
        goto wrong;
    }
    if (!__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE)) {
        ring_unlock(o);
        goto wrong;
    }
    drain(r, cb, n, vcpu_index);
    if (reg == BACKDOOR_REG_SLOT_FREE) {
        release(r, o);
    } else {
        count(&r->shared->stats.doorbells, 1);
        if (value & BACKDOOR_DOORBELL_FULL) {
            count(&r->shared->stats.full, 1);
        }
    }
    ring_unlock(o);
    return 0;

wrong:
    count(&r->shared->stats.guest_errors, 1);
    return UINT64_MAX;
}

bool backdoor_user_rings_active(const BackdoorUserRings *r)
{
    return r && __atomic_load_n(&r->shared->nclaimed, __ATOMIC_RELAXED);
}

void backdoor_user_rings_drain_thread(BackdoorUserRings *r,
                                      BackdoorCallbacks *cb, int tid,
                                      int vcpu_index)
{
    if (!backdoor_user_rings_active(r)) {
        return;
    }
    for (uint32_t n = 0; n < r->layout.slots; n++) {
        RingOwner *o = &r->shared->owner[n];

        /* The thread posts to its ring itself: nobody else adds to it */
        if (__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE) &&
            o->tid == tid && backdoor_ring_pending(ring_block(r, n)) &&
            ring_lock(o)) {
            if (__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE) &&
                o->tid == tid) {
                drain(r, cb, n, vcpu_index);
            }
            ring_unlock(o);
        }
    }
}

uint64_t backdoor_user_rings_drain_pending(BackdoorUserRings *r,
                                           BackdoorCallbacks *cb,
                                           uint32_t min,
                                           int (*index_of)(int tid))
{
    uint64_t events = 0;

    if (!backdoor_user_rings_active(r)) {
        return 0;
    }
    for (uint32_t n = 0; n < r->layout.slots; n++) {
        RingOwner *o = &r->shared->owner[n];

        /* A ring that somebody drains already is left to them */
        if (__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE) &&
            backdoor_ring_queued(ring_block(r, n), r->big_endian) >= min &&
            ring_trylock(o)) {
            if (__atomic_load_n(&o->claimed, __ATOMIC_ACQUIRE)) {
                events += drain(r, cb, n, index_of(o->tid));
            }
            ring_unlock(o);
        }
    }
    return events;
}

void backdoor_user_rings_release_thread(BackdoorUserRings *r,
                                        BackdoorCallbacks *cb, int pid,
                                        int tid)
{
    if (backdoor_user_rings_active(r)) {
        deliver_matching(r, cb, owner_is_thread, pid, tid, true);
    }
}

void backdoor_user_rings_release_process(BackdoorUserRings *r,
                                         BackdoorCallbacks *cb, int pid)
{
    if (backdoor_user_rings_active(r)) {
        deliver_matching(r, cb, owner_is_process, pid, 0, true);
    }
}

void backdoor_user_rings_drain_process(BackdoorUserRings *r,
                                       BackdoorCallbacks *cb, int pid)
{
    if (backdoor_user_rings_active(r)) {
        deliver_matching(r, cb, owner_is_process, pid, 0, false);
    }
}

void backdoor_user_rings_reap(BackdoorUserRings *r, BackdoorCallbacks *cb)
{
    if (backdoor_user_rings_active(r)) {
        deliver_matching(r, cb, owner_is_gone, 0, 0, true);
    }
}

BackdoorUserRingStats backdoor_user_rings_stats(const BackdoorUserRings *r)
{
    BackdoorUserRingStats s = { 0 };

    if (r) {
        s.events = __atomic_load_n(&r->shared->stats.events,
                                   __ATOMIC_RELAXED);
        s.doorbells = __atomic_load_n(&r->shared->stats.doorbells,
                                      __ATOMIC_RELAXED);
        s.full = __atomic_load_n(&r->shared->stats.full, __ATOMIC_RELAXED);
        s.guest_errors = __atomic_load_n(&r->shared->stats.guest_errors,
                                         __ATOMIC_RELAXED);
    }
    return s;
}
