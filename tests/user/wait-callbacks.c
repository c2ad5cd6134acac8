/* SPDX-License-Identifier: MIT */
/*
 * Callback library for the user-mode tests: command 1 waits (up to 10 s)
 * until command 2 has run, and returns 1 if it has, 0 if it gave up; so a
 * backend that runs calls one at a time is seen to hold the first call.
 *
 * Events: a batch that holds a KICK_PROBE event waits (up to 10 s) until
 * the second 64-bit word of the data channel is non-zero, which the
 * posting thread stores after its post that crossed the ring's threshold;
 * command 3 says what the batch saw: 1 the store (the thread went on
 * posting while its ring was drained: a kick), 0 none (the thread waited
 * for the drain: a doorbell), 2 no such batch yet.
 */
#include <qemu-backdoor-callbacks.h>

#include <stdbool.h>
#include <time.h>

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

#define KICK_PROBE 0x6b1c0001u

static int seen;
static int kick_seen = 2;

static uint64_t wait_call(const qemu_backdoor_call *call)
{
    struct timespec ms = { 0, 1000000 };

    if (call->cmd == 3) {
        return __atomic_load_n(&kick_seen, __ATOMIC_SEQ_CST);
    }
    if (call->cmd != 1) {
        __atomic_store_n(&seen, 1, __ATOMIC_SEQ_CST);
        return 2;
    }
    for (int i = 0; i < 10000; i++) {
        if (__atomic_load_n(&seen, __ATOMIC_SEQ_CST)) {
            return 1;
        }
        nanosleep(&ms, NULL);
    }
    return 0;
}

static void wait_batch(const qemu_backdoor_batch *b)
{
    struct timespec ms = { 0, 1000000 };
    const volatile uint64_t *flag = (const volatile uint64_t *)b->data + 1;
    bool probe = false;

    for (size_t i = 0; i < b->count; i++) {
        probe |= b->events[i].cmd == KICK_PROBE;
    }
    if (!probe || __atomic_load_n(&kick_seen, __ATOMIC_SEQ_CST) != 2) {
        return;
    }
    for (int i = 0; i < 10000 && !*flag; i++) {
        nanosleep(&ms, NULL);
    }
    __atomic_store_n(&kick_seen, *flag != 0, __ATOMIC_SEQ_CST);
}

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    (void)info;
    cb->call = wait_call;
    cb->batch = wait_batch;
    return 0;
}
