/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest memory for callbacks under the supervisor (callback ABI 2).
 *
 * The guest's memory is QEMU's: guest address + guest_base in the QEMU
 * process. From outside, process_vm_readv() could copy it, but nothing
 * outside QEMU tells the guest's mappings from QEMU's own: for a 64-bit
 * guest QEMU reserves no address range, its heap, thread stacks and
 * translation buffer lie among the guest's anonymous mappings in
 * /proc/PID/maps, and guest_base is often 0. A guest address could then
 * reach QEMU's memory. So the copy is made by the caller itself, inside
 * QEMU: while it waits for its call, the guest library serves memory
 * requests the supervisor posts in its call slot, with a system call of
 * its own on its descriptor of BASE.ctrl (pwrite from the guest range to
 * the server thread's stage, pread from the stage to the guest range).
 * QEMU checks the guest range as for any system call: against its record
 * of the guest's mappings, all or nothing, write-protected pages of
 * translated code unprotected (and their code invalidated) as for a guest
 * store. A caller that does not serve requests (an older guest library,
 * the raw protocol) gets -ENOSYS.
 */
#define _GNU_SOURCE
#include "supervisor.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How often a wait for the caller checks that it is still there */
#define MEM_WAIT_NS     (100 * 1000 * 1000)
#define MEM_SPIN        20000
/* One check request covers at most this much (MEM_LEN is 32 bits) */
#define MEM_CHECK_MAX   (1u << 30)

__thread unsigned sv_server_index;
static uint8_t *ctrl_map;
static const int *stopping;

long sv_futex(void *addr, int op, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts = {
        .tv_sec = timeout_ns / 1000000000,
        .tv_nsec = timeout_ns % 1000000000,
    };

    return syscall(SYS_futex, addr, op, val, timeout_ns ? &ts : NULL, NULL,
                   0);
}

void sv_guest_memory_init(uint8_t *ctrl, const int *stop)
{
    ctrl_map = ctrl;
    stopping = stop;
}

/*
 * WAKE changes whatever the caller saw, so its wait returns at once if it
 * read WAKE before: no ordering of its own stores and loads is needed
 * (TCG need not give a guest's store-then-load the host's full order).
 * Any change does: the word is compared, not read as a number.
 */
void sv_wake_caller(uint8_t *slot)
{
    uint32_t *wake = (uint32_t *)(slot + BACKDOOR_SLOT_WAKE);

    __atomic_add_fetch(wake, 1, __ATOMIC_SEQ_CST);
    if (ld32(slot + BACKDOOR_SLOT_WAITING)) {
        sv_futex(wake, FUTEX_WAKE, INT_MAX, 0);
    }
}

static unsigned stage_index(void)
{
    return sv_server_index % BACKDOOR_USER_STAGES;
}

static uint32_t stage_offset(void)
{
    return BACKDOOR_USER_STAGE_OFFSET +
           stage_index() * BACKDOOR_USER_STAGE_SIZE;
}

static bool caller_alive(uint32_t tid)
{
    return kill(tid, 0) == 0 || errno == EPERM;
}

/*
 * Post request @op for [@addr, @addr + @len) and wait for the caller to
 * answer it: 0 or -errno. The caller, waiting for its call, spins, then
 * sleeps on its slot's WAKE: it is woken there.
 */
static int mem_request(SvMemCall *c, uint32_t op, uint64_t addr,
                       uint32_t len)
{
    uint8_t *slot = c->slot;
    uint32_t *ctl_word = (uint32_t *)(slot + BACKDOOR_SLOT_MEM_CTL);

    st64(slot + BACKDOOR_SLOT_MEM_ADDR, addr);
    st32(slot + BACKDOOR_SLOT_MEM_LEN, len);
    st32(slot + BACKDOOR_SLOT_MEM_RESULT, 0);
    /* Publish, then wake: pairs with the caller's wait */
    st32(ctl_word, op | stage_index() << 8);
    sv_wake_caller(slot);
    for (unsigned i = 0; i < MEM_SPIN && ld32(ctl_word); i++) {
        /* a caller that spins answers at once */
    }
    while (ld32(ctl_word)) {
        uint32_t raw = __atomic_load_n(ctl_word, __ATOMIC_ACQUIRE);

        if (raw && sv_futex(ctl_word, FUTEX_WAIT, raw, MEM_WAIT_NS) < 0 &&
            errno == ETIMEDOUT &&
            (__atomic_load_n(stopping, __ATOMIC_ACQUIRE) ||
             !caller_alive(c->tid))) {
            /* Gone: nobody will answer; take the request back */
            __atomic_compare_exchange_n(ctl_word, &raw, 0, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
            return -EFAULT;
        }
    }
    return (int32_t)ld32(slot + BACKDOOR_SLOT_MEM_RESULT);
}

static int sv_guest_read(const qemu_backdoor_call *call, uint64_t addr,
                         void *buf, uint64_t len)
{
    SvMemCall *c = call->host;
    g_autofree uint8_t *copy = NULL;
    const uint8_t *stage = ctrl_map + stage_offset();

    if (!c->able) {
        return -ENOSYS;
    }
    if (addr + len < addr) {
        return -EFAULT;
    }
    if (len <= BACKDOOR_USER_STAGE_SIZE) {
        int r = len ? mem_request(c, BACKDOOR_MEM_READ, addr, len) : 0;

        if (r == 0) {
            memcpy(buf, stage, len);
        }
        return r < 0 ? r : 0;
    }
    /* In pieces, into a copy: all or nothing reaches @buf */
    copy = g_try_malloc(len);
    if (!copy) {
        return -ENOMEM;
    }
    for (uint64_t done = 0; done < len; done += BACKDOOR_USER_STAGE_SIZE) {
        uint32_t n = MIN(len - done, BACKDOOR_USER_STAGE_SIZE);
        int r = mem_request(c, BACKDOOR_MEM_READ, addr + done, n);

        if (r < 0) {
            return r;
        }
        memcpy(copy + done, stage, n);
    }
    memcpy(buf, copy, len);
    return 0;
}

static int sv_guest_write(const qemu_backdoor_call *call, uint64_t addr,
                          const void *buf, uint64_t len)
{
    SvMemCall *c = call->host;
    uint8_t *stage = ctrl_map + stage_offset();

    if (!c->able) {
        return -ENOSYS;
    }
    if (addr + len < addr) {
        return -EFAULT;
    }
    if (len > BACKDOOR_USER_STAGE_SIZE) {
        /* In pieces: first check that every piece can be written */
        for (uint64_t done = 0; done < len; done += MEM_CHECK_MAX) {
            int r = mem_request(c, BACKDOOR_MEM_CHECK_WRITE, addr + done,
                                MIN(len - done, MEM_CHECK_MAX));

            if (r < 0) {
                return r;
            }
        }
    }
    for (uint64_t done = 0; done < len; done += BACKDOOR_USER_STAGE_SIZE) {
        uint32_t n = MIN(len - done, BACKDOOR_USER_STAGE_SIZE);
        int r;

        memcpy(stage, (const uint8_t *)buf + done, n);
        r = mem_request(c, BACKDOOR_MEM_WRITE, addr + done, n);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

void sv_guest_memory_setup(qemu_backdoor_call *call, SvMemCall *ctx,
                           uint8_t *slot, uint32_t tid, uint32_t op)
{
    *ctx = (SvMemCall) {
        .slot = slot,
        .tid = tid,
        .able = op & BACKDOOR_SLOT_OP_MEM,
    };
    call->guest_read = sv_guest_read;
    call->guest_write = sv_guest_write;
    call->host = ctx;
}
