/* SPDX-License-Identifier: MIT */
/*
 * User mode: the channel files of qemu-<arch> (docs/specs/backdoor.rst,
 * "User mode"). FEATURES says which way calls go: through a call slot
 * (BACKDOOR_FEATURE_USER_SLOTS, the supervisor backend) or the pread() fast
 * path (the in-process helper). Neither costs a signal.
 */
#define _GNU_SOURCE
#include "guest-lib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void user_close(qemu_backdoor_channel *ch)
{
    if (ch->slots) {
        munmap((void *)ch->slots, BACKDOOR_USER_SLOTS_SIZE);
    }
    if (ch->data) {
        munmap(ch->data, ch->data_size);
    }
    if (ch->ctrl_fd >= 0) {
        close(ch->ctrl_fd);
    }
}

/*
 * The registers, read from a mapping of the register page: the helper
 * emulates these loads (one signal each, at open); the supervisor wrote
 * the values into the file. Unserved, the file's registers read as zeros:
 * DATA_SIZE tells whether someone serves the channel.
 */
static uint64_t served_data_size(int fd, uint32_t *features)
{
    volatile uint8_t *regs;
    uint64_t size;

    regs = mmap(NULL, BACKDOOR_REG_END, PROT_READ, MAP_SHARED, fd, 0);
    if (regs == MAP_FAILED) {
        return 0;
    }
    *features = *(volatile uint32_t *)(regs + BACKDOOR_REG_FEATURES);
    if (*features & BACKDOOR_FEATURE_USER_SLOTS) {
        /* File bytes: the 64-bit value, whatever this guest's word size */
        memcpy(&size, (void *)(regs + BACKDOOR_REG_DATA_SIZE), sizeof(size));
    } else {
        /* Emulated: a 4-byte read is the low half, also for 32-bit guests */
        size = *(volatile uint32_t *)(regs + BACKDOOR_REG_DATA_SIZE);
    }
    munmap((void *)regs, BACKDOOR_REG_END);
    return size;
}

/* The slot area sits after the register page; it is mapped writable. */
static int map_slots(qemu_backdoor_channel *ch, const char *ctrl_path)
{
    int fd = open(ctrl_path, O_RDWR | O_CLOEXEC);
    void *p;

    if (fd < 0) {
        return backdoor_error(errno, "%s: %s", ctrl_path, strerror(errno));
    }
    p = mmap(NULL, BACKDOOR_USER_SLOTS_SIZE, PROT_READ | PROT_WRITE,
             MAP_SHARED, fd, BACKDOOR_USER_SLOTS_OFFSET);
    close(fd);
    if (p == MAP_FAILED) {
        return backdoor_error(errno, "cannot map the call slots of %s: %s",
                              ctrl_path, strerror(errno));
    }
    ch->slots = p;
    return 0;
}

static int user_open(qemu_backdoor_channel *ch, const char *base)
{
    char ctrl_path[PATH_MAX], data_path[PATH_MAX];
    struct stat ctrl_st, data_st;
    uint64_t served;
    uint32_t id, features = 0;
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
        ctrl_st.st_size < BACKDOOR_REG_END ||
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
    served = served_data_size(ch->ctrl_fd, &features);
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
    if (features & BACKDOOR_FEATURE_USER_SLOTS) {
        if (ctrl_st.st_size < BACKDOOR_USER_SLOTS_OFFSET +
                              BACKDOOR_USER_SLOTS_SIZE) {
            backdoor_error(ENODEV, "%s announces call slots but has none",
                           ctrl_path);
            close(data_fd);
            goto fail;
        }
        if (map_slots(ch, ctrl_path) < 0) {
            close(data_fd);
            goto fail;
        }
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
static uint64_t pread_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    uint64_t buf = cmd;

    if (pread(ch->ctrl_fd, &buf, sizeof(buf), BACKDOOR_REG_CALL) !=
        sizeof(buf)) {
        backdoor_error(EIO, "call on %s failed", ch->name);
        return UINT64_MAX;
    }
    return buf;
}

/*
 * Call slots: claim a free slot, post the command with the next request
 * sequence number, ring the doorbell if the server sleeps (a futex wake),
 * then wait until the slot's DONE reaches that number: spinning
 * briefly, then ringing the doorbell (the server may be in another call)
 * and sleeping on a shared futex on DONE. A wait that a signal
 * interrupts only waits again: the request is never posted twice.
 */
#define SLOT_SPIN   20000

static __thread uint32_t slot_tid;
static __thread unsigned slot_hint;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void slot_forget_tid(void)
{
    slot_tid = 0;               /* a forked child is another thread */
}

static void slot_at_fork(void)
{
    pthread_atfork(NULL, NULL, slot_forget_tid);
}

static volatile uint32_t *slot32(volatile uint8_t *p, unsigned off)
{
    return (volatile uint32_t *)(p + off);
}

static void futex(volatile uint32_t *addr, int op, uint32_t val)
{
    /* Not FUTEX_PRIVATE_FLAG: the server waits on the same file page */
    syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static volatile uint8_t *slot_claim(qemu_backdoor_channel *ch, unsigned *n)
{
    volatile uint32_t *used = slot32(ch->slots, BACKDOOR_SLOTS_USED);

    if (!slot_tid) {
        pthread_once(&slot_once, slot_at_fork);
        slot_tid = syscall(SYS_gettid);
        slot_hint = __atomic_fetch_add(slot32(ch->slots, BACKDOOR_SLOTS_NEXT),
                                       1, __ATOMIC_RELAXED);
    }
    for (unsigned k = 0; k < BACKDOOR_USER_SLOTS; k++) {
        unsigned i = (slot_hint + k) % BACKDOOR_USER_SLOTS;
        volatile uint8_t *slot = ch->slots + BACKDOOR_USER_SLOT(i);
        uint32_t u, free_ = 0;

        if (!__atomic_compare_exchange_n(slot32(slot, BACKDOOR_SLOT_OWNER),
                                         &free_, slot_tid, 0,
                                         __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED)) {
            continue;
        }
        /* The server looks at slots below USED only */
        u = __atomic_load_n(used, __ATOMIC_RELAXED);
        while (u <= i && !__atomic_compare_exchange_n(used, &u, i + 1, 1,
                                                      __ATOMIC_SEQ_CST,
                                                      __ATOMIC_RELAXED)) {
        }
        *n = i;
        return slot;
    }
    return NULL;
}

static uint64_t slot_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    volatile uint32_t *bell = slot32(ch->slots, BACKDOOR_SLOTS_DOORBELL);
    volatile uint8_t *slot;
    volatile uint32_t *done;
    uint64_t result;
    uint32_t seq;
    unsigned n;

    slot = slot_claim(ch, &n);
    if (!slot) {
        backdoor_error(EAGAIN, "call on %s failed: all %d call slots are "
                       "busy", ch->name, BACKDOOR_USER_SLOTS);
        return UINT64_MAX;
    }
    done = slot32(slot, BACKDOOR_SLOT_DONE);
    *(volatile uint64_t *)(slot + BACKDOOR_SLOT_CMD) = cmd;
    *slot32(slot, BACKDOOR_SLOT_TID) = slot_tid;
    seq = *slot32(slot, BACKDOOR_SLOT_REQ) + 1;
    /* Publish REQ, then look for a sleeping server: pairs with its sleep */
    __atomic_store_n(slot32(slot, BACKDOOR_SLOT_REQ), seq, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(slot32(ch->slots, BACKDOOR_SLOTS_SLEEPING),
                        __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(bell, 1, __ATOMIC_SEQ_CST);
        futex(bell, FUTEX_WAKE, 1);
    }
    for (unsigned i = 0; i < SLOT_SPIN &&
         __atomic_load_n(done, __ATOMIC_ACQUIRE) != seq; i++) {
    }
    if (__atomic_load_n(done, __ATOMIC_ACQUIRE) != seq) {
        /* Not answered yet: the server may be in another call, wake one */
        __atomic_add_fetch(bell, 1, __ATOMIC_SEQ_CST);
        futex(bell, FUTEX_WAKE, 1);
    }
    while (__atomic_load_n(done, __ATOMIC_ACQUIRE) != seq) {
        /* Pairs with the server's "store DONE, then read WAITING" */
        __atomic_store_n(slot32(slot, BACKDOOR_SLOT_WAITING), 1,
                         __ATOMIC_SEQ_CST);
        if (__atomic_load_n(done, __ATOMIC_SEQ_CST) != seq) {
            futex(done, FUTEX_WAIT, seq - 1);
        }
        __atomic_store_n(slot32(slot, BACKDOOR_SLOT_WAITING), 0,
                         __ATOMIC_RELAXED);
    }
    result = *(volatile uint64_t *)(slot + BACKDOOR_SLOT_RESULT);
    __atomic_store_n(slot32(slot, BACKDOOR_SLOT_OWNER), 0, __ATOMIC_RELEASE);
    slot_hint = n;
    return result;
}

static uint64_t user_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    return ch->slots ? slot_call(ch, cmd) : pread_call(ch, cmd);
}

const BackdoorTransport backdoor_user_transport = {
    .mode = QEMU_BACKDOOR_GUEST_USER,
    .open = user_open,
    .call = user_call,
    .close = user_close,
};
