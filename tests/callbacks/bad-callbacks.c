/* SPDX-License-Identifier: MIT */
/*
 * Broken callback libraries, one per -D flag, for the error-path tests:
 * BAD_VERSION (built for a newer ABI), NO_VERSION, NO_INIT, NO_CALL, and
 * inits that CRASH, ABORT, EXIT (with status 0) or HANG.
 */
#include <qemu-backdoor-callbacks.h>

#include <stdlib.h>
#include <unistd.h>

#if defined(BAD_VERSION)
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version = 99;
#elif !defined(NO_VERSION)
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;
#endif

#if defined(CRASH)
int *volatile bad_callbacks_nowhere;
#endif

#if !defined(NO_INIT)
QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    (void)info;
    (void)cb;
#if defined(CRASH)
    *bad_callbacks_nowhere = 1;
#elif defined(ABORT)
    abort();
#elif defined(EXIT)
    exit(0);
#elif defined(HANG)
    for (;;) {
        pause();
    }
#endif
    return 0;   /* and no call function: NO_CALL */
}
#endif
