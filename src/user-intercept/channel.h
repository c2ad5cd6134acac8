/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper's channel: the callback library, the registers of
 * docs/specs/backdoor.rst ("User mode") and the calls, and the files made
 * for it (user-env.h), removed at the end. The start-up sets it up; the
 * interposers, the fault emulation, the hot reload socket and the exec
 * hook use it.
 */
#ifndef BACKDOOR_CHANNEL_H
#define BACKDOOR_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "regs.h"

/* True once the helper serves the guest of this qemu-<arch> process. */
extern bool backdoor_user_active;

/*
 * Serve the guest from now on: calls go to @cb, whose init ran with @args
 * (taken over: a g_malloc()ed string the library may keep) and the
 * channel @id, on the data channel of @regs. This process is the owner.
 */
void backdoor_user_serve(BackdoorCallbacks *cb, const BackdoorRegs *regs,
                         const char *id, char *args);

/* Register accesses; @size is the access width, values are guest values. */
uint64_t backdoor_user_reg_read(uint64_t offset, unsigned size);
void backdoor_user_reg_write(uint64_t offset, unsigned size, uint64_t value);

/* Run one call for the calling thread; the result is its RESULT. */
uint64_t backdoor_user_call(uint64_t cmd);

/*
 * Swap the library for @name with @args, as the device does on qom-set
 * (docs/callbacks.rst, "Hot reload"). Returns NULL or the error.
 */
char *backdoor_user_reload(const char *name, const char *args);

/*
 * In the owner (the process that ran the library's init): run the
 * library's exit and remove the files, once. In a forked child: flush.
 */
void backdoor_user_cleanup(void);
bool backdoor_user_is_owner(void);

#endif /* BACKDOOR_CHANNEL_H */
