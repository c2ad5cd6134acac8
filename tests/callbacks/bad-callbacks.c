/* SPDX-License-Identifier: MIT */
/* Broken callback libraries, one per -D flag, for the error-path tests. */
#include <qemu-backdoor-callbacks.h>

#if defined(BAD_VERSION)
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version = 99;
#elif !defined(NO_VERSION)
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;
#endif

#if !defined(NO_INIT)
QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    (void)info;
    (void)cb;
    return 0;   /* and no call function: NO_CALL */
}
#endif
