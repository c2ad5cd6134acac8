/* SPDX-License-Identifier: MIT */
/*
 * Broken callback libraries, one per -D flag, for the error-path tests:
 * BAD_VERSION (built for a newer ABI), NO_VERSION, NO_INIT, NO_CALL, and
 * inits that CRASH, ABORT, EXIT (with status 0) or HANG, and one that
 * NEEDS_ABSENT, a library missing at run time (ABSENT_STUB at link time).
 */
#include <qemu-backdoor-callbacks.h>

#include <stdlib.h>
#include <unistd.h>

#if defined(ABSENT_STUB)
QEMU_BACKDOOR_EXPORT int bad_callbacks_absent(void)
{
    return 0;
}
#else

#if defined(BAD_VERSION)
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version = 99;
#elif !defined(NO_VERSION)
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;
#endif

#if defined(CRASH)
int *volatile bad_callbacks_nowhere;
#elif defined(NEEDS_ABSENT)
int bad_callbacks_absent(void);
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
#elif defined(NEEDS_ABSENT)
    return bad_callbacks_absent();
#endif
    return 0;   /* and no call function: NO_CALL */
}
#endif
#endif /* !ABSENT_STUB */
