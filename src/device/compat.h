/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one place where the QEMU versions the device builds against differ.
 * backdoor.c is written against the current API (QEMU 10.0); for older
 * versions this header supplies the headers that have moved since and
 * backports the few functions that did not exist yet.
 *
 * Known versions: the ones tested, Debian 12's 7.2 and Debian 13's 10.0.
 * meson.build compiles this header at setup time and stops there, in one
 * line, for any other version. To add one, give it a branch here (QEMU's
 * own changelog says what moved) and list it in docs/building.rst.
 *
 * Include after hw/pci/pci.h and hw/qdev-properties.h.
 */
#ifndef HW_MISC_BACKDOOR_COMPAT_H
#define HW_MISC_BACKDOOR_COMPAT_H

#if QEMU_VERSION_MAJOR == 10 && QEMU_VERSION_MINOR == 0

#include "system/system.h"          /* was sysemu/sysemu.h */
#include "hw/pci/pci_device.h"      /* PCIDevice left hw/pci/pci.h */
#include "exec/tswap.h"             /* target_words_bigendian() */
#include "system/cpus.h"            /* was sysemu/cpus.h */
#include "system/runstate.h"        /* was sysemu/runstate.h */

#elif QEMU_VERSION_MAJOR == 7 && QEMU_VERSION_MINOR == 2

#include "sysemu/sysemu.h"
#include "sysemu/cpus.h"
#include "sysemu/runstate.h"
#include "migration/blocker.h"
#include "migration/misc.h"

/*
 * Migration blockers are passed as Error ** since 8.2, which frees the
 * reason on failure and clears it on removal.
 */
static inline int backdoor_compat_add_blocker(Error **reasonp, Error **errp)
{
    if ((migrate_add_blocker)(*reasonp, errp) < 0) {
        error_free(*reasonp);
        *reasonp = NULL;
        return -1;
    }
    return 0;
}
#define migrate_add_blocker backdoor_compat_add_blocker

static inline void backdoor_compat_del_blocker(Error **reasonp)
{
    if (*reasonp) {
        (migrate_del_blocker)(*reasonp);
        error_free(*reasonp);
        *reasonp = NULL;
    }
}
#define migrate_del_blocker backdoor_compat_del_blocker

/* migration_is_idle() became !migration_is_running() in 9.2 */
static inline bool migration_is_running(void)
{
    return !migration_is_idle();
}

/* DeviceClass.reset was renamed legacy_reset in 9.1, with this setter. */
static inline void device_class_set_legacy_reset(DeviceClass *dc,
                                                 DeviceReset fn)
{
    dc->reset = fn;
}

/*
 * Since 10.0 a property array is const and its size is known; 7.2 takes a
 * mutable array ending in an empty entry. Copy the array once per class
 * (classes live as long as QEMU) and add the end.
 */
static inline void backdoor_compat_set_props(DeviceClass *dc,
                                             const Property *props, size_t n)
{
    Property *copy = g_new0(Property, n + 1);

    memcpy(copy, props, n * sizeof(*props));
    device_class_set_props(dc, copy);
}
#define device_class_set_props(dc, props) \
    backdoor_compat_set_props(dc, props, ARRAY_SIZE(props))

#else
#error "QEMU version not known to src/device/compat.h"
#endif

#endif
