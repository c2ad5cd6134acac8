/* SPDX-License-Identifier: MIT */
/*
 * User mode: the channel files of the qemu-<arch> helper
 * (docs/specs/backdoor.rst, "User mode"). Calls take the pread() fast
 * path, which costs no signal.
 */
#define _GNU_SOURCE
#include "guest-lib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define USER_CTRL_MIN_SIZE  BACKDOOR_REG_END

static void user_close(qemu_backdoor_channel *ch)
{
    if (ch->data) {
        munmap(ch->data, ch->data_size);
    }
    if (ch->ctrl_fd >= 0) {
        close(ch->ctrl_fd);
    }
}

/*
 * Without the helper, BASE.ctrl is a plain file whose registers read as
 * zeros. With it, a load from a mapping of it is emulated: DATA_SIZE tells
 * whether someone serves the channel, at the cost of one signal at open.
 */
static uint64_t served_data_size(int fd, size_t ctrl_size)
{
    volatile uint64_t *regs;
    uint64_t size;

    regs = mmap(NULL, ctrl_size, PROT_READ, MAP_SHARED, fd, 0);
    if (regs == MAP_FAILED) {
        return 0;
    }
    size = regs[BACKDOOR_REG_DATA_SIZE / 8];
    munmap((void *)regs, ctrl_size);
    return size;
}

static int user_open(qemu_backdoor_channel *ch, const char *base)
{
    char ctrl_path[PATH_MAX], data_path[PATH_MAX];
    struct stat ctrl_st, data_st;
    uint64_t served;
    uint32_t id;
    int data_fd;

    if (snprintf(ctrl_path, sizeof(ctrl_path), "%s.ctrl", base) >=
        (int)sizeof(ctrl_path)) {
        return backdoor_error(ENAMETOOLONG, "channel path too long: %s",
                              base);
    }
    snprintf(data_path, sizeof(data_path), "%s.data", base);
    ch->ctrl_fd = open(ctrl_path, O_RDONLY | O_CLOEXEC);
    if (ch->ctrl_fd < 0) {
        return backdoor_error(errno == ENOENT ? ENODEV : errno,
                              "no user-mode channel at %s (%s: %s)", base,
                              ctrl_path, strerror(errno));
    }
    if (fstat(ch->ctrl_fd, &ctrl_st) < 0 || !S_ISREG(ctrl_st.st_mode) ||
        ctrl_st.st_size < USER_CTRL_MIN_SIZE ||
        pread(ch->ctrl_fd, &id, sizeof(id), 0) != sizeof(id)) {
        backdoor_error(ENODEV, "%s is not a backdoor control file", ctrl_path);
        goto fail;
    }
    if (backdoor_check_id(id, ctrl_path) < 0) {
        goto fail;
    }
    ch->id = id;
    data_fd = open(data_path, O_RDWR | O_CLOEXEC);
    if (data_fd < 0) {
        backdoor_error(errno == ENOENT ? ENODEV : errno, "%s: %s", data_path,
                       strerror(errno));
        goto fail;
    }
    if (fstat(data_fd, &data_st) < 0 ||
        data_st.st_size < 2 * BACKDOOR_CALL_WORD_SIZE ||
        data_st.st_size % BACKDOOR_CALL_WORD_SIZE) {
        backdoor_error(ENODEV, "%s is not a backdoor data channel (%jd "
                       "bytes)", data_path, (intmax_t)data_st.st_size);
        close(data_fd);
        goto fail;
    }
    served = served_data_size(ch->ctrl_fd, ctrl_st.st_size);
    if (served != (uint64_t)data_st.st_size) {
        if (served == 0) {
            backdoor_error(ENODEV, "no user-mode helper serves %s (its "
                           "DATA_SIZE register reads 0): run the program "
                           "with qemu-backdoor qemu-<arch>", base);
        } else {
            backdoor_error(ENODEV, "%s: DATA_SIZE register says %" PRIu64
                           " bytes, %s has %jd", base, served, data_path,
                           (intmax_t)data_st.st_size);
        }
        close(data_fd);
        goto fail;
    }
    ch->data_size = data_st.st_size;
    ch->data = mmap(NULL, ch->data_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                    data_fd, 0);
    close(data_fd);
    if (ch->data == MAP_FAILED) {
        ch->data = NULL;
        backdoor_error(errno, "cannot map %s: %s", data_path,
                       strerror(errno));
        goto fail;
    }
    ch->name = strdup(base);
    if (!ch->name) {
        backdoor_error(ENOMEM, "out of memory");
        goto fail;
    }
    return 0;

fail:
    user_close(ch);
    return -1;
}

/* The command and the result travel in the caller's own buffer. */
static uint64_t user_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    uint64_t buf = cmd;

    if (pread(ch->ctrl_fd, &buf, sizeof(buf), BACKDOOR_REG_CALL) !=
        sizeof(buf)) {
        backdoor_error(EIO, "call on %s failed", ch->name);
        return UINT64_MAX;
    }
    return buf;
}

const BackdoorTransport backdoor_user_transport = {
    .mode = QEMU_BACKDOOR_GUEST_USER,
    .open = user_open,
    .call = user_call,
    /* The helper runs each thread's pread on its own, result in its buf */
    .call_threadsafe = true,
    .close = user_close,
};
