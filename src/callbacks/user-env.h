/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the two user-mode backends (the in-process helper and the
 * supervisor) read from the environment and make on disk the same way.
 */
#ifndef BACKDOOR_USER_ENV_H
#define BACKDOOR_USER_ENV_H

#include <stdint.h>

/*
 * The data channel size from QEMU_BACKDOOR_DATA_SIZE (default 1M), or 0
 * when it is not a power of two from 4K to 1G.
 */
uint64_t backdoor_user_data_size(void);

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

#endif /* BACKDOOR_USER_ENV_H */
