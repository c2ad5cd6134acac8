/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the two user-mode backends (the in-process helper and the
 * supervisor) read from the environment and make on disk the same way.
 */
#ifndef BACKDOOR_USER_ENV_H
#define BACKDOOR_USER_ENV_H

#include <glib.h>
#include <stdint.h>

#define PROG "qemu-backdoor"

/*
 * The data channel size from QEMU_BACKDOOR_DATA_SIZE (default 16M), or 0
 * when it is not a power of two from 4K to 1G.
 */
uint64_t backdoor_user_data_size(void);

/*
 * The variables the backends read (NULL-terminated), which the guest does
 * not see: backdoor_user_env_hide() takes them out of the environment.
 */
extern const char *const backdoor_user_env_vars[];
void backdoor_user_env_hide(void);

/* The same; a bad value ends the process with one line that names it. */
uint64_t backdoor_user_data_size_or_die(void);

/* QEMU_BACKDOOR_LIB; ends the process with one line when it is not set. */
const char *backdoor_user_lib_or_die(void);

/*
 * The variables the backends read (NULL-terminated), which they take out
 * of the guest's environment.
 */
extern const char *const backdoor_user_env_vars[];

/*
 * Open (creating, mode 0600) a channel file at @path, which may be in a
 * shared directory such as /tmp: follow no symlink and take over no file
 * of another user, whose owner could then read or change what the guest
 * and the callbacks exchange. Returns the descriptor; -1 (with errno) when
 * it cannot be created or opened; -2 when it is not a private regular file
 * of this user.
 */
int backdoor_user_open_channel_file(const char *path);

/*
 * The files and the directory made for the channel, so that an error or
 * the end removes them: backdoor_user_remove_made() removes them (each
 * once) and is async-signal-safe (a library's init may crash).
 */
void backdoor_user_made_file(const char *path);
void backdoor_user_made_dir(const char *path);
void backdoor_user_remove_made(void);

/*
 * Say "qemu-backdoor: MESSAGE" on stderr, remove what was made, flush
 * stdio and end the process with status 1 (_exit(): inside QEMU the
 * helper runs no other exit handler).
 */
void backdoor_user_die(const char *fmt, ...) G_GNUC_PRINTF(1, 2)
    G_GNUC_NORETURN;

/*
 * Make the channel file @path (backdoor_user_open_channel_file()), record
 * it as made and empty it; the descriptor, or one line and an end.
 */
int backdoor_user_make_channel_file(const char *path);

#endif /* BACKDOOR_USER_ENV_H */
