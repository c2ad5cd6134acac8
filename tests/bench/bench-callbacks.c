/* SPDX-License-Identifier: MIT */
/*
 * Callback library of the benchmark: as little work per call as possible,
 * plus a call counter the guest can reset and read, to count lost calls.
 */
#include <qemu-backdoor-callbacks.h>

#include "bench.h"

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

/*
 * One counter per vCPU (each guest thread has its own in user mode), so
 * that counting costs no atomic read-modify-write in the measured path.
 */
#define BENCH_VCPUS 256

static struct {
    uint64_t calls;
    char pad[56];
} counters[BENCH_VCPUS + 1];

/*
 * Batches of one device run one at a time (under QEMU's global lock); in
 * user mode those of different producers may run at once: atomic counts
 */
static struct {
    uint64_t count, lost, reordered;
    uint64_t next[BENCH_PRODUCERS];
} events;

static void bench_batch(const qemu_backdoor_batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        const qemu_backdoor_event *e = &b->events[i];
        uint64_t *next;

        if (e->cmd != BENCH_EVENT || e->arg[1] >= BENCH_PRODUCERS) {
            continue;
        }
        next = &events.next[e->arg[1]];
        /* The expected event costs no atomic operation: it is not ours */
        if (e->arg[0] == *next) {
            ++*next;
        } else if (e->arg[0] < *next) {
            __atomic_add_fetch(&events.reordered, 1, __ATOMIC_RELAXED);
        } else {
            __atomic_add_fetch(&events.lost, e->arg[0] - *next,
                               __ATOMIC_RELAXED);
            *next = e->arg[0] + 1;
        }
    }
    __atomic_add_fetch(&events.count, b->count, __ATOMIC_RELAXED);
}

static uint64_t bench_call(const qemu_backdoor_call *call)
{
    uint64_t sum = 0;

    switch (call->cmd) {
    case BENCH_CMD_RESET:
        memset(&events, 0, sizeof(events));
        for (int i = 0; i <= BENCH_VCPUS; i++) {
            __atomic_store_n(&counters[i].calls, 0, __ATOMIC_RELAXED);
        }
        return 0;
    case BENCH_CMD_EVENTS:
        return __atomic_load_n(&events.count, __ATOMIC_RELAXED);
    case BENCH_CMD_EVBAD:
        return __atomic_load_n(&events.lost, __ATOMIC_RELAXED) << 32 |
               __atomic_load_n(&events.reordered, __ATOMIC_RELAXED);
    case BENCH_CMD_COUNT:
        for (int i = 0; i <= BENCH_VCPUS; i++) {
            sum += __atomic_load_n(&counters[i].calls, __ATOMIC_RELAXED);
        }
        return sum;
    default:
        /* vcpu_index -1 (no vCPU) and any index past the table share one */
        counters[(unsigned)call->vcpu_index < BENCH_VCPUS ?
                 call->vcpu_index : BENCH_VCPUS].calls++;
        return call->cmd + 1;
    }
}

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    (void)info;
    cb->call = bench_call;
    cb->batch = bench_batch;
    return 0;
}
