/* SPDX-License-Identifier: MIT */
/*
 * File transfer callbacks: the guest puts files into and gets files from
 * one host directory (see file-transfer.h).
 *
 * callbacks-args: dir=PATH (required).
 */
#define _GNU_SOURCE
#include <qemu-backdoor-callbacks.h>

#include "file-transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct Transfer {
    int dir_fd;
    int fd;                     /* the open file, -1 when none */
    int error;                  /* first write error of a put */
    pthread_mutex_t lock;
} Transfer;

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

static uint64_t neg(int err)
{
    return (uint64_t)-(int64_t)err;
}

/* The NUL-terminated file name at the start of the data channel. */
static const char *file_name(const qemu_backdoor_call *call)
{
    const char *name = call->data;
    size_t len = strnlen(name, call->data_size);

    if (len == 0 || len == call->data_size || len > NAME_MAX ||
        name[0] == '.' || strchr(name, '/')) {
        return NULL;
    }
    return name;
}

static uint64_t transfer(Transfer *t, const qemu_backdoor_call *call)
{
    uint64_t max = call->data_size - FT_HEADER - 8;
    char *bytes = (char *)call->data + FT_HEADER;
    const char *name;
    uint64_t n;
    ssize_t done;
    struct stat st;

    switch (call->cmd) {
    case FT_PUT_OPEN:
    case FT_GET_OPEN:
        if (t->fd >= 0) {
            return neg(EBUSY);
        }
        name = file_name(call);
        if (!name) {
            return neg(EINVAL);
        }
        t->fd = call->cmd == FT_PUT_OPEN ?
            openat(t->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644) :
            openat(t->dir_fd, name, O_RDONLY | O_CLOEXEC);
        t->error = 0;
        if (t->fd < 0) {
            return neg(errno);
        }
        if (call->cmd == FT_PUT_OPEN) {
            return 0;
        }
        if (fstat(t->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(t->fd);
            t->fd = -1;
            return neg(EINVAL);
        }
        return st.st_size;
    case FT_PUT_DATA:
        n = qemu_backdoor_data_ld64(call, 0);
        if (t->fd < 0 || n > max) {
            return neg(t->fd < 0 ? EBADF : EINVAL);
        }
        for (uint64_t off = 0; off < n; off += done) {
            done = write(t->fd, bytes + off, n - off);
            if (done < 0) {
                t->error = t->error ?: errno;
                return neg(errno);
            }
        }
        return n;
    case FT_GET_DATA:
        n = qemu_backdoor_data_ld64(call, 0);
        if (t->fd < 0) {
            return neg(EBADF);
        }
        done = read(t->fd, bytes, n < max ? n : max);
        return done < 0 ? neg(errno) : (uint64_t)done;
    case FT_CLOSE:
        if (t->fd < 0) {
            return neg(EBADF);
        }
        if (close(t->fd) < 0 && !t->error) {
            t->error = errno;
        }
        t->fd = -1;
        return t->error ? neg(t->error) : 0;
    default:
        return neg(ENOSYS);
    }
}

static uint64_t transfer_call(const qemu_backdoor_call *call)
{
    Transfer *t = call->opaque;
    uint64_t result;

    pthread_mutex_lock(&t->lock);
    result = transfer(t, call);
    pthread_mutex_unlock(&t->lock);
    return result;
}

static void transfer_exit(void *opaque)
{
    Transfer *t = opaque;

    if (t->fd >= 0) {
        close(t->fd);
    }
    close(t->dir_fd);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    Transfer *t;
    int dir_fd;

    if (strncmp(info->args, "dir=", 4)) {
        cb->error = "file-transfer: callbacks-args must be dir=PATH";
        return -1;
    }
    if (info->data_size < 4096) {
        cb->error = "file-transfer: needs a data channel of 4K or more";
        return -1;
    }
    dir_fd = open(info->args + 4, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        cb->error = "file-transfer: cannot open the directory of dir=";
        return -1;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        close(dir_fd);
        cb->error = "file-transfer: out of memory";
        return -1;
    }
    t->dir_fd = dir_fd;
    t->fd = -1;
    pthread_mutex_init(&t->lock, NULL);
    cb->call = transfer_call;
    cb->exit = transfer_exit;
    cb->opaque = t;
    return 0;
}
