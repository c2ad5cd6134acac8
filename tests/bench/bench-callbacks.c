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

static uint64_t bench_call(const qemu_backdoor_call *call)
{
    uint64_t sum = 0;

    switch (call->cmd) {
    case BENCH_CMD_RESET:
        for (int i = 0; i <= BENCH_VCPUS; i++) {
            __atomic_store_n(&counters[i].calls, 0, __ATOMIC_RELAXED);
        }
        return 0;
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
    return 0;
}
