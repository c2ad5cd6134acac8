/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loader of host callback libraries, shared by the system-mode device and
 * the user-mode helper. Depends on GLib/GModule only, not on QEMU.
 */
#ifndef BACKDOOR_CALLBACKS_LOADER_H
#define BACKDOOR_CALLBACKS_LOADER_H

#include <glib.h>
#include "qemu-backdoor-callbacks.h"

typedef struct BackdoorCallbacks BackdoorCallbacks;

/*
 * Open @path, check its ABI version and run its init with @info (whose
 * version field is filled in here). On failure return NULL and set @errp
 * to one line that names @path and the reason.
 */
BackdoorCallbacks *backdoor_callbacks_load(const char *path,
                                           qemu_backdoor_info *info,
                                           GError **errp);

/* Fill in the library's opaque pointer and version, run the call. */
uint64_t backdoor_callbacks_call(BackdoorCallbacks *cb,
                                 qemu_backdoor_call *call);

/* Run the library's exit and close it. NULL is fine. */
void backdoor_callbacks_unload(BackdoorCallbacks *cb);

#define BACKDOOR_CALLBACKS_ERROR backdoor_callbacks_error_quark()
GQuark backdoor_callbacks_error_quark(void);

#endif /* BACKDOOR_CALLBACKS_LOADER_H */
