/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hot reload in user mode, shared by the in-process helper and the
 * supervisor (docs/user-mode.md, "Hot reload"): the BASE.reload socket,
 * the swap of the library, and the gate that keeps calls out of a swap.
 */
#ifndef BACKDOOR_USER_RELOAD_H
#define BACKDOOR_USER_RELOAD_H

#include <glib.h>

#include "loader.h"

/*
 * Every call (and anything else that runs the library: ring drains) is
 * made between backdoor_gate_enter() and backdoor_gate_leave() on the
 * thread that runs it. A swap waits until no thread is inside and keeps
 * new ones out until it is done. Each thread has its own flag, so a call
 * writes only its own cache line.
 */
typedef struct BackdoorGate BackdoorGate;
BackdoorGate *backdoor_gate_enter(void);
void backdoor_gate_leave(BackdoorGate *gate);

/* The library a backend serves calls with, as a swap changes it. */
typedef struct BackdoorUserLib {
    BackdoorCallbacks **cb;     /* the backend's pointer to the library */
    char **args;                /* the arguments its init got (g_malloc) */
    int *closed;                /* set: no library serves calls */
    qemu_backdoor_info info;    /* the rest of what an init is told */
    /* optional: run before the old library's exit, inside the gate */
    void (*before_stop)(BackdoorCallbacks *cb);
} BackdoorUserLib;

/*
 * Swap the library for @name with @args, as the device does on qom-set
 * (docs/callbacks.rst, "Hot reload"): the new one is opened first (an
 * error leaves the old one untouched); then, with the gate closed, the
 * old one's exit runs and the new one's init. A failing init gets the old
 * library started again with its own arguments; if that fails too, *closed
 * is set. Returns NULL, or the error (g_free it).
 */
char *backdoor_user_lib_swap(BackdoorUserLib *lib, const char *name,
                             const char *args);

/*
 * Serve BASE.reload, a unix socket (mode 0600) for @lib, on a thread of
 * its own that takes no signal: one request per connection, "PATH\n" or
 * "PATH\tARGS\n", answered "ok\n" or "error: MESSAGE\n" (the error also
 * goes to stderr). Returns the socket's path; NULL when @base is too long
 * for a socket path (said on stderr: no hot reload), or with @errp set
 * when the socket cannot be made.
 */
char *backdoor_user_reload_listen(BackdoorUserLib *lib, const char *base,
                                  GError **errp);

/*
 * Keep swaps out for good: the process is ending. Waits for a swap in
 * progress to finish.
 */
void backdoor_user_reload_stop(void);

#endif /* BACKDOOR_USER_RELOAD_H */
