/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lets the loader build of the device be given to "-plugin": QEMU's QOM
 * init list has already run when plugins are installed, so register the
 * type here. Preloaded (LD_PRELOAD), the type_init constructor has done it.
 */
#include "qemu/osdep.h"
#include "qemu/qemu-plugin.h"
#include "qom/object.h"

#include "backdoor.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (argc) {
        fprintf(stderr, "backdoor: the plugin takes no arguments; "
                "give them to -device backdoor,...\n");
        return -1;
    }
    if (!object_class_by_name(TYPE_BACKDOOR)) {
        backdoor_register_types();
    }
    return 0;
}
