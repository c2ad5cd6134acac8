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
    if (ch->stage_fd >= 0) {
        close(ch->stage_fd);
    }
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

/* What the registers of a user-mode channel say. */
typedef struct UserRegs {
    uint32_t features;
    uint64_t data_size;
    uint32_t slots, entries;    /* event rings (BACKDOOR_FEATURE_RING) */
    uint64_t slot_base, slot_stride;
} UserRegs;

/*
 * A 64-bit register: under the supervisor the file's 8 bytes, whatever
 * this guest's word size; under the helper an emulated 4-byte load, the
 * low half (the values are below 4 GiB), which 32-bit guests can make.
 */
static uint64_t reg64(volatile uint8_t *regs, unsigned off, uint32_t features)
{
    uint64_t v;

    if (features & BACKDOOR_FEATURE_USER_SLOTS) {
        memcpy(&v, (void *)(regs + off), sizeof(v));
        return v;
    }
    return *(volatile uint32_t *)(regs + off);
}

/*
 * The registers, read from a mapping of the register page: the helper
 * emulates these loads (one signal each, at open); the supervisor wrote
 * the values into the file. Unserved, the file's registers read as zeros:
 * DATA_SIZE tells whether someone serves the channel.
 */
static void read_registers(int fd, UserRegs *r)
{
    volatile uint8_t *regs;

    memset(r, 0, sizeof(*r));
    regs = mmap(NULL, BACKDOOR_REG_END_1_1, PROT_READ, MAP_SHARED, fd, 0);
    if (regs == MAP_FAILED) {
        return;
    }
    r->features = *(volatile uint32_t *)(regs + BACKDOOR_REG_FEATURES);
    r->data_size = reg64(regs, BACKDOOR_REG_DATA_SIZE, r->features);
    if (r->features & BACKDOOR_FEATURE_RING) {
        r->slots = *(volatile uint32_t *)(regs + BACKDOOR_REG_SLOT_COUNT);
        r->entries = *(volatile uint32_t *)(regs + BACKDOOR_REG_RING_ENTRIES);
        r->slot_base = reg64(regs, BACKDOOR_REG_SLOT_BASE, r->features);
        r->slot_stride = reg64(regs, BACKDOOR_REG_SLOT_STRIDE, r->features);
    }
    munmap((void *)regs, BACKDOOR_REG_END_1_1);
}

/*
 * The slot area sits after the register page; it is mapped writable. The
 * read-write descriptor stays open for the supervisor's guest memory
 * requests (the stages in BASE.ctrl).
 */
static int map_slots(qemu_backdoor_channel *ch, const char *ctrl_path)
{
    int fd = open(ctrl_path, O_RDWR | O_CLOEXEC);
    void *p;

    if (fd < 0) {
        return backdoor_error(errno, "%s: %s", ctrl_path, strerror(errno));
    }
    p = mmap(NULL, BACKDOOR_USER_SLOTS_SIZE, PROT_READ | PROT_WRITE,
             MAP_SHARED, fd, BACKDOOR_USER_SLOTS_OFFSET);
    if (p == MAP_FAILED) {
        close(fd);
        return backdoor_error(errno, "cannot map the call slots of %s: %s",
                              ctrl_path, strerror(errno));
    }
    ch->slots = p;
    ch->stage_fd = fd;
    return 0;
}

static int user_open(qemu_backdoor_channel *ch, const char *base)
{
    char ctrl_path[PATH_MAX], data_path[PATH_MAX];
    struct stat ctrl_st, data_st;
    UserRegs regs;
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
    read_registers(ch->ctrl_fd, &regs);
    if (regs.data_size != (uint64_t)data_st.st_size) {
        if (regs.data_size == 0) {
            backdoor_error(ENODEV, "no user-mode helper serves %s (its "
                           "DATA_SIZE register reads 0): run the program "
                           "with qemu-backdoor qemu-<arch>", base);
        } else {
            backdoor_error(ENODEV, "%s: DATA_SIZE register says %" PRIu64
                           " bytes, %s has %jd", base, regs.data_size,
                           data_path,
                           (intmax_t)data_st.st_size);
        }
        close(data_fd);
        goto fail;
    }
    if (regs.features & BACKDOOR_FEATURE_USER_SLOTS) {
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
        ch->user_mem = regs.features & BACKDOOR_FEATURE_USER_MEM;
        ch->ring_kick = regs.features & BACKDOOR_FEATURE_RING_KICK;
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
    if (regs.features & BACKDOOR_FEATURE_RING) {
        backdoor_slots_layout(ch, regs.slots, regs.entries, regs.slot_base,
                              regs.slot_stride);
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

/* Wake a server thread: change DOORBELL, then FUTEX_WAKE it */
static void ring_server(qemu_backdoor_channel *ch)
{
    volatile uint32_t *bell = slot32(ch->slots, BACKDOOR_SLOTS_DOORBELL);

    __atomic_add_fetch(bell, 1, __ATOMIC_SEQ_CST);
    futex(bell, FUTEX_WAKE, 1);
}

/* After publishing a request or a kick: wake the server if none polls */
static void wake_sleeping_server(qemu_backdoor_channel *ch)
{
    if (__atomic_load_n(slot32(ch->slots, BACKDOOR_SLOTS_SLEEPING),
                        __ATOMIC_SEQ_CST)) {
        ring_server(ch);
    }
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

/*
 * A guest memory request of the supervisor, posted in our slot while we
 * wait for our call (docs/specs/backdoor.rst, "Guest memory"): copy with
 * a system call of our own, which QEMU checks as any other: guest range
 * to the stage (pwrite), stage to the guest range (pread), or only check
 * that the range can be written (a pread past the end of the file).
 */
static void serve_memory(qemu_backdoor_channel *ch, volatile uint8_t *slot)
{
    volatile uint32_t *ctl = slot32(slot, BACKDOOR_SLOT_MEM_CTL);
    uint32_t c = __atomic_load_n(ctl, __ATOMIC_ACQUIRE);
    uint32_t req = BACKDOOR_MEM_OP(c);
    uint64_t addr = *(volatile uint64_t *)(slot + BACKDOOR_SLOT_MEM_ADDR);
    uint32_t len = *slot32(slot, BACKDOOR_SLOT_MEM_LEN);
    off_t stage = BACKDOOR_USER_STAGE_OFFSET +
                  (off_t)BACKDOOR_MEM_STAGE(c) * BACKDOOR_USER_STAGE_SIZE;
    void *p = (void *)(uintptr_t)addr;
    ssize_t n = -1;
    int32_t r;

    errno = EFAULT;
    if (addr > UINTPTR_MAX || addr + len - 1 > UINTPTR_MAX) {
        /* not an address of this (32-bit) guest */
    } else if (req == BACKDOOR_MEM_READ) {
        n = pwrite(ch->stage_fd, p, len, stage);
    } else if (req == BACKDOOR_MEM_WRITE) {
        n = pread(ch->stage_fd, p, len, stage);
    } else if (req == BACKDOOR_MEM_CHECK_WRITE) {
        /* At the end of the file: QEMU checks the range, writes nothing */
        n = pread(ch->stage_fd, p, len, BACKDOOR_USER_CTRL_FILE_SIZE) == 0 ?
            (ssize_t)len : -1;
    } else {
        errno = EINVAL;
    }
    r = n == (ssize_t)len ? 0 : n >= 0 ? -EFAULT : -errno;
    *slot32(slot, BACKDOOR_SLOT_MEM_RESULT) = (uint32_t)r;
    __atomic_store_n(ctl, 0, __ATOMIC_SEQ_CST);
    futex(ctl, FUTEX_WAKE, 1);
}

/* A request @op (BACKDOOR_SLOT_OP_*) with @cmd in a claimed slot */
static uint64_t slot_request(qemu_backdoor_channel *ch, uint32_t op,
                             uint64_t cmd)
{
    volatile uint8_t *slot;
    volatile uint32_t *done, *mem, *waiting, *wake;
    uint32_t mem_op = ch->user_mem ? BACKDOOR_SLOT_OP_MEM : 0;
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
    mem = slot32(slot, BACKDOOR_SLOT_MEM_CTL);
    waiting = slot32(slot, BACKDOOR_SLOT_WAITING);
    wake = slot32(slot, BACKDOOR_SLOT_WAKE);
    *(volatile uint64_t *)(slot + BACKDOOR_SLOT_CMD) = cmd;
    *slot32(slot, BACKDOOR_SLOT_TID) = slot_tid;
    *slot32(slot, BACKDOOR_SLOT_OP) = op | mem_op;
    seq = *slot32(slot, BACKDOOR_SLOT_REQ) + 1;
    /* Publish REQ, then look for a sleeping server: pairs with its sleep */
    __atomic_store_n(slot32(slot, BACKDOOR_SLOT_REQ), seq, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    wake_sleeping_server(ch);
    for (unsigned i = 0; i < SLOT_SPIN &&
         __atomic_load_n(done, __ATOMIC_ACQUIRE) != seq; i++) {
        if (mem_op && __atomic_load_n(mem, __ATOMIC_ACQUIRE)) {
            serve_memory(ch, slot);
        }
    }
    if (__atomic_load_n(done, __ATOMIC_ACQUIRE) != seq) {
        /* Not answered yet: the server may be in another call, wake one */
        ring_server(ch);
    }
    while (__atomic_load_n(done, __ATOMIC_ACQUIRE) != seq) {
        /*
         * Pairs with the server's "store DONE (or MEM_CTL), then read
         * WAITING". Serving memory requests, sleep on WAKE, read before
         * DONE and MEM_CTL: a request comes without DONE changing, and
         * the server changes WAKE after either. Otherwise on DONE, as
         * older servers wake.
         */
        uint32_t w = __atomic_load_n(wake, __ATOMIC_ACQUIRE);

        __atomic_store_n(waiting, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(done, __ATOMIC_SEQ_CST) != seq &&
            !(mem_op && __atomic_load_n(mem, __ATOMIC_SEQ_CST))) {
            if (mem_op) {
                futex(wake, FUTEX_WAIT, w);
            } else {
                futex(done, FUTEX_WAIT, seq - 1);
            }
        }
        __atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
        if (mem_op && __atomic_load_n(mem, __ATOMIC_ACQUIRE)) {
            serve_memory(ch, slot);
        }
    }
    result = *(volatile uint64_t *)(slot + BACKDOOR_SLOT_RESULT);
    /* A guest that does not store OP makes calls: leave it as such */
    *slot32(slot, BACKDOOR_SLOT_OP) = BACKDOOR_SLOT_OP_CALL;
    __atomic_store_n(slot32(slot, BACKDOOR_SLOT_OWNER), 0, __ATOMIC_RELEASE);
    slot_hint = n;
    return result;
}

static uint64_t user_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    return ch->slots ? slot_request(ch, BACKDOOR_SLOT_OP_CALL, cmd) :
                       pread_call(ch, cmd);
}

/*
 * The event rings' operations: the helper's pread() at the register's
 * offset, the supervisor's slot request.
 */
static uint64_t user_slot_op(qemu_backdoor_channel *ch, unsigned reg,
                             uint64_t value)
{
    uint64_t buf = value;

    if (ch->slots) {
        return slot_request(ch, reg == BACKDOOR_REG_SLOT_ALLOC ?
                                BACKDOOR_SLOT_OP_ALLOC :
                            reg == BACKDOOR_REG_SLOT_FREE ?
                                BACKDOOR_SLOT_OP_FREE :
                                BACKDOOR_SLOT_OP_DOORBELL, value);
    }
    if (pread(ch->ctrl_fd, &buf, sizeof(buf), reg) != sizeof(buf)) {
        return UINT64_MAX;
    }
    return buf;
}

/*
 * A ring passed its threshold: count a kick, and wake the server as a
 * call does if none polls. The server drains the rings meanwhile.
 */
static void user_slot_kick(qemu_backdoor_channel *ch)
{
    __atomic_add_fetch(slot32(ch->slots, BACKDOOR_SLOTS_KICKS), 1,
                       __ATOMIC_SEQ_CST);
    wake_sleeping_server(ch);
}

const BackdoorTransport backdoor_user_transport = {
    .mode = QEMU_BACKDOOR_GUEST_USER,
    .open = user_open,
    .call = user_call,
    /*
     * Calls from several threads need no lock: the helper runs each
     * thread's pread on its own (the result in its buffer), the supervisor
     * serves a slot claimed per call
     */
    .call_threadsafe = true,
    .close = user_close,
    .slot_op = user_slot_op,
    .slot_kick = user_slot_kick,
};
