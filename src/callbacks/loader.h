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
 * Load the library @name, check its ABI version and run its init with
 * @info (whose version field is filled in here). A @name without '/' is
 * looked up in the current directory, then in the packaged callbacks
 * directory (backdoor_callbacks_dir()). The file is checked before it is
 * opened (exists, is a regular readable file, an ELF shared library for
 * this host). On failure return NULL and set @errp to one line that names
 * the library, the reason and what to do.
 *
 * While the library loads and its init runs, a crash (SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT), a stop (SIGINT, SIGTERM, SIGHUP) or an exit()
 * prints one line naming the library on stderr and ends the process as it
 * would have ended without the loader (an exit(0) ends it with status 1);
 * an init that has not returned after a few seconds gets one line saying
 * that QEMU is still waiting for it.
 */
BackdoorCallbacks *backdoor_callbacks_load(const char *name,
                                           qemu_backdoor_info *info,
                                           GError **errp);

/*
 * Make the loader call @fn just before a library's load or init ends the
 * process (see above), e.g. to remove files made for it. @fn may run in a
 * signal handler: it must be async-signal-safe.
 */
void backdoor_callbacks_set_fatal_cleanup(void (*fn)(void));

/*
 * Where libraries given by a bare name are looked up after the current
 * directory: $QEMU_BACKDOOR_CALLBACKS_DIR, or <libdir>/qemu-backdoor/callbacks
 * of the installation.
 */
const char *backdoor_callbacks_dir(void);

/* Fill in the library's opaque pointer and version, run the call. */
uint64_t backdoor_callbacks_call(BackdoorCallbacks *cb,
                                 qemu_backdoor_call *call);

/*
 * Hand a batch of ring events to the library's batch callback, or, for a
 * library without one (ABI 1, seed API), run each event's command as a
 * call.
 */
void backdoor_callbacks_batch(BackdoorCallbacks *cb,
                              qemu_backdoor_batch *batch);

/* Run the library's exit and close it. NULL is fine. */
void backdoor_callbacks_unload(BackdoorCallbacks *cb);

/*
 * Hot reload: backdoor_callbacks_load() in two steps, so that a swap can
 * find, check and open the new library (its constructors run, its init
 * does not) while the old one still serves calls, and give up with the
 * old one untouched when that fails.
 *
 * backdoor_callbacks_open() returns an opened, not yet started library;
 * backdoor_callbacks_start() runs its init (the same guard as above);
 * backdoor_callbacks_stop() runs its exit and keeps it open, so that it
 * can be started again; backdoor_callbacks_close() stops and closes it.
 */
BackdoorCallbacks *backdoor_callbacks_open(const char *name, GError **errp);
gboolean backdoor_callbacks_start(BackdoorCallbacks *cb,
                                  qemu_backdoor_info *info, GError **errp);
void backdoor_callbacks_stop(BackdoorCallbacks *cb);
void backdoor_callbacks_close(BackdoorCallbacks *cb);

/* The library's name as the user gave it. */
const char *backdoor_callbacks_name(const BackdoorCallbacks *cb);

/*
 * Snapshots and migration (callback ABI 2): a library that sets both save
 * and load hooks can be migrated. The saved state is malloc()ed by the
 * library; the caller free()s it.
 */
bool backdoor_callbacks_can_migrate(const BackdoorCallbacks *cb);
gboolean backdoor_callbacks_save(BackdoorCallbacks *cb, void **state,
                                 uint64_t *size, GError **errp);
gboolean backdoor_callbacks_load_state(BackdoorCallbacks *cb,
                                       const void *state, uint64_t size,
                                       GError **errp);

#define BACKDOOR_CALLBACKS_ERROR backdoor_callbacks_error_quark()
GQuark backdoor_callbacks_error_quark(void);

#endif /* BACKDOOR_CALLBACKS_LOADER_H */
