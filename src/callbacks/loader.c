/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loader of host callback libraries (see qemu-backdoor-callbacks.h),
 * modelled on QEMU's plugins/loader.c.
 */
#include "loader.h"

#include <gmodule.h>

typedef void (*SeedInitFn)(uint64_t data_size);
typedef void (*SeedCallFn)(uint64_t cmd, void *data);
typedef int (*InitFn)(const qemu_backdoor_info *info,
                      qemu_backdoor_callbacks *cb);

struct BackdoorCallbacks {
    GModule *module;
    qemu_backdoor_callbacks cb;
    SeedCallFn seed_call;       /* non-NULL for a seed-API library */
    int *seed_big_endian;       /* its ldq_p() byte order, if it has one */
};

G_DEFINE_QUARK(backdoor-callbacks-error, backdoor_callbacks_error)

static gboolean lookup(GModule *module, const char *name, gpointer *sym)
{
    return g_module_symbol(module, name, sym) && *sym;
}

/* A seed-API library: qemu_backdoor_init() and qemu_backdoor() only. */
static gboolean load_seed(BackdoorCallbacks *bc, const char *path,
                          const qemu_backdoor_info *info, GError **errp)
{
    gpointer init, call, big_endian;

    if (!lookup(bc->module, "qemu_backdoor", &call) ||
        !lookup(bc->module, "qemu_backdoor_init", &init)) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' export neither "
                    "qemu_backdoor_callbacks_init nor the seed API "
                    "(qemu_backdoor_init and qemu_backdoor)", path);
        return FALSE;
    }
    if (lookup(bc->module, "qemu_backdoor_compat_guest_big_endian",
               &big_endian)) {
        bc->seed_big_endian = big_endian;
        *bc->seed_big_endian = info->guest_big_endian;
    }
    bc->seed_call = (SeedCallFn)call;
    ((SeedInitFn)init)(info->data_size);
    return TRUE;
}

static gboolean load_current(BackdoorCallbacks *bc, const char *path,
                             gpointer init, const qemu_backdoor_info *info,
                             GError **errp)
{
    gpointer sym;
    int version;

    if (!lookup(bc->module, "qemu_backdoor_callbacks_version", &sym)) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' do not declare their ABI version "
                    "(qemu_backdoor_callbacks_version)", path);
        return FALSE;
    }
    version = *(int *)sym;
    if (version < QEMU_BACKDOOR_CALLBACKS_MIN_VERSION ||
        version > QEMU_BACKDOOR_CALLBACKS_VERSION) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' need ABI version %d, but this backdoor "
                    "supports versions %d to %d", path, version,
                    QEMU_BACKDOOR_CALLBACKS_MIN_VERSION,
                    QEMU_BACKDOOR_CALLBACKS_VERSION);
        return FALSE;
    }
    if (((InitFn)init)(info, &bc->cb) != 0) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' failed to initialize: %s", path,
                    bc->cb.error ? bc->cb.error : "no reason given");
        return FALSE;
    }
    if (!bc->cb.call) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' set no call function in their init",
                    path);
        return FALSE;
    }
    return TRUE;
}

BackdoorCallbacks *backdoor_callbacks_load(const char *path,
                                           qemu_backdoor_info *info,
                                           GError **errp)
{
    BackdoorCallbacks *bc;
    gpointer init;
    gboolean ok;

    if (!path || !*path) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "no callback library given");
        return NULL;
    }

    bc = g_new0(BackdoorCallbacks, 1);
    bc->module = g_module_open(path, G_MODULE_BIND_LOCAL);
    if (!bc->module) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "cannot load callbacks '%s': %s", path,
                    g_module_error());
        g_free(bc);
        return NULL;
    }

    info->version = QEMU_BACKDOOR_CALLBACKS_VERSION;
    if (!info->args) {
        info->args = "";
    }
    if (!info->id) {
        info->id = "";
    }
    info->path = path;

    if (lookup(bc->module, "qemu_backdoor_callbacks_init", &init)) {
        ok = load_current(bc, path, init, info, errp);
    } else {
        ok = load_seed(bc, path, info, errp);
    }
    if (!ok) {
        g_module_close(bc->module);
        g_free(bc);
        return NULL;
    }
    return bc;
}

uint64_t backdoor_callbacks_call(BackdoorCallbacks *bc,
                                 qemu_backdoor_call *call)
{
    if (bc->seed_call) {
        /* A ppc64 or arm guest can change its byte order after init */
        if (bc->seed_big_endian) {
            *bc->seed_big_endian = call->guest_big_endian;
        }
        bc->seed_call(call->cmd, call->data);
        return 0;
    }
    call->version = QEMU_BACKDOOR_CALLBACKS_VERSION;
    call->opaque = bc->cb.opaque;
    return bc->cb.call(call);
}

void backdoor_callbacks_unload(BackdoorCallbacks *bc)
{
    if (!bc) {
        return;
    }
    if (bc->cb.exit) {
        bc->cb.exit(bc->cb.opaque);
    }
    g_module_close(bc->module);
    g_free(bc);
}
