/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lets the loader build of the device be given to "-plugin": QEMU's QOM
 * init list has already run when plugins are installed, so register the
 * type here. Preloaded (LD_PRELOAD), the type_init constructor has done it.
 */
#include "qemu/osdep.h"
#include <dlfcn.h>
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

/*
 * Preloaded, take this file out of LD_PRELOAD: QEMU's children (the shell
 * of migrate "exec:", tap scripts) are no QEMU and cannot load it.
 */
static void __attribute__((constructor)) backdoor_loader_unpreload(void)
{
    const char *preload = getenv("LD_PRELOAD");
    g_auto(GStrv) words = NULL;
    g_autoptr(GPtrArray) keep = NULL;
    g_autofree char *rest = NULL;
    Dl_info self;

    if (!preload || !dladdr((void *)backdoor_loader_unpreload, &self) ||
        !self.dli_fname) {
        return;
    }
    words = g_strsplit_set(preload, ": ", -1);
    keep = g_ptr_array_new();
    for (char **w = words; *w; w++) {
        if (**w && strcmp(*w, self.dli_fname) != 0) {
            g_ptr_array_add(keep, *w);
        }
    }
    g_ptr_array_add(keep, NULL);
    rest = g_strjoinv(":", (char **)keep->pdata);
    if (*rest) {
        setenv("LD_PRELOAD", rest, 1);
    } else {
        unsetenv("LD_PRELOAD");
    }
}
