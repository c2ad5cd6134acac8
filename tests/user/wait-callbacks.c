/* SPDX-License-Identifier: MIT */
/*
 * Callback library for the user-mode tests: command 1 waits (up to 10 s)
 * until command 2 has run, and returns 1 if it has, 0 if it gave up; so a
 * backend that runs calls one at a time is seen to hold the first call.
 */
#include <qemu-backdoor-callbacks.h>

#include <time.h>

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

static int seen;

static uint64_t wait_call(const qemu_backdoor_call *call)
{
    struct timespec ms = { 0, 1000000 };

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

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    (void)info;
    cb->call = wait_call;
    return 0;
}
