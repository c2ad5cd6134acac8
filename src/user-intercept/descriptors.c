/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which descriptors are on the control file (descriptors.h), and the
 * interposers that keep the cache right.
 */
#define _GNU_SOURCE
#include "descriptors.h"
#include "libc.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

#define FD_CACHE 4096

static struct {
    bool known;
    dev_t dev;
    ino_t ino;
} ctrl;

static unsigned long ctrl_fds[FD_CACHE / (8 * sizeof(long))];

#define FD_WORD(fd) (ctrl_fds[(fd) / (8 * sizeof(long))])
#define FD_BIT(fd) (1ul << ((fd) % (8 * sizeof(long))))

void backdoor_descriptors_set_ctrl_file(dev_t dev, ino_t ino)
{
    ctrl.dev = dev;
    ctrl.ino = ino;
    __atomic_store_n(&ctrl.known, true, __ATOMIC_RELEASE);
}

bool backdoor_descriptors_on_ctrl_file(int fd)
{
    struct stat st;

    return __atomic_load_n(&ctrl.known, __ATOMIC_ACQUIRE) &&
           fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_dev == ctrl.dev && st.st_ino == ctrl.ino;
}

bool backdoor_descriptors_on_ctrl_file_cached(int fd)
{
    if (fd >= 0 && fd < FD_CACHE &&
        (__atomic_load_n(&FD_WORD(fd), __ATOMIC_RELAXED) & FD_BIT(fd))) {
        return true;
    }
    if (!backdoor_descriptors_on_ctrl_file(fd)) {
        return false;
    }
    if (fd >= 0 && fd < FD_CACHE) {
        __atomic_fetch_or(&FD_WORD(fd), FD_BIT(fd), __ATOMIC_RELAXED);
    }
    return true;
}

void backdoor_descriptors_forget(long first, long last)
{
    if (first < 0) {
        return;
    }
    for (long fd = first; fd <= last && fd < FD_CACHE; fd++) {
        __atomic_fetch_and(&FD_WORD(fd), ~FD_BIT(fd), __ATOMIC_RELAXED);
    }
}

EXPORT int close(int fd)
{
    backdoor_descriptors_forget(fd, fd);
    return backdoor_libc()->close(fd);
}

EXPORT int dup2(int old, int new)
{
    backdoor_descriptors_forget(new, new);
    return backdoor_libc()->dup2(old, new);
}

EXPORT int dup3(int old, int new, int flags)
{
    backdoor_descriptors_forget(new, new);
    return backdoor_libc()->dup3(old, new, flags);
}
