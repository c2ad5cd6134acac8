/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lets the loader build of the device be given to "-plugin": QEMU's QOM
 * init list has already run when plugins are installed, so register the
 * type here. Preloaded (LD_PRELOAD), the type_init constructor has done it.
 */
#include "qemu/osdep.h"
#include <dlfcn.h>
#include "qemu/qemu-plugin.h"
#include "qapi/qapi-commands-control.h"
#include "qemu-version.h"             /* QEMU_PKGVERSION */
#include "qom/object.h"

#include "backdoor.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/*
 * The loader reaches into QEMU's internals, which any other build may lay
 * out differently: it serves only the QEMU build it was compiled for (its
 * version and package version, the --version line). The launcher checks
 * the same before it starts QEMU; this catches -plugin and a preload that
 * bypass it, and leaves QEMU without the device instead of crashing it.
 */
bool backdoor_loader_matches_qemu(void)
{
    static int matches = -1;
    VersionInfo *v;
    Dl_info self;

    if (matches >= 0) {
        return matches;
    }
    v = qmp_query_version(NULL);
    matches = v->qemu->major == QEMU_VERSION_MAJOR &&
              v->qemu->minor == QEMU_VERSION_MINOR &&
              v->qemu->micro == QEMU_VERSION_MICRO &&
              g_strcmp0(v->package, QEMU_PKGVERSION) == 0;
    if (!matches) {
        /* (Preloaded, this runs before error_report() can.) */
        fprintf(stderr, "backdoor: %s was built for QEMU %s (%s), not for "
                "this QEMU %" PRId64 ".%" PRId64 ".%" PRId64 " (%s): no "
                "backdoor device (rebuild it for this QEMU: "
                "qemu-backdoor --help)\n",
                dladdr((void *)backdoor_loader_matches_qemu, &self) &&
                self.dli_fname ? self.dli_fname : "the loader",
                QEMU_VERSION, QEMU_PKGVERSION, v->qemu->major,
                v->qemu->minor, v->qemu->micro, v->package);
    }
    qapi_free_VersionInfo(v);
    return matches;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (argc) {
        fprintf(stderr, "backdoor: the plugin takes no arguments; "
                "give them to -device backdoor,...\n");
        return -1;
    }
    if (!backdoor_loader_matches_qemu()) {
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
