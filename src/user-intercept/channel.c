/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper's channel (channel.h): files, library, registers and calls.
 */
#define _GNU_SOURCE
#include "channel.h"
#include "events.h"
#include "qemu-syms.h"
#include "user-env.h"
#include "user-reload.h"

#include <stdio.h>
#include <unistd.h>

bool backdoor_user_active;

static struct {
    BackdoorCallbacks *cb;
    BackdoorRegs regs;          /* the data channel, what registers read */
    const char *id;             /* the channel's base path */
    char *args;                 /* kept for the library */
    pid_t owner;                /* the process that ran the library's init */
    uint64_t call_offset;
    uint64_t guest_errors;
    int cleaned;
    BackdoorUserLib reload;     /* what a hot reload swaps */
} bd;

/* RESULT is per guest thread: each thread reads the result of its call. */
static __thread uint64_t thread_result;

static uint64_t guest_error(void)
{
    __atomic_add_fetch(&bd.guest_errors, 1, __ATOMIC_RELAXED);
    return UINT64_MAX;
}

/* The library while the channel is open; NULL once it is closed. */
static BackdoorCallbacks *channel_callbacks(void)
{
    return __atomic_load_n(&bd.cleaned, __ATOMIC_ACQUIRE) ? NULL : bd.cb;
}

/* A thread that claimed a ring ends (events.h) */
static void channel_thread_gone(void)
{
    BackdoorGate *gate = backdoor_gate_enter();
    BackdoorCallbacks *cb = channel_callbacks();

    if (cb) {
        backdoor_events_thread_gone(cb);
    }
    backdoor_gate_leave(gate);
}

/* Guest memory for callbacks (ABI 2): the process's virtual addresses */
static int user_guest_read(const qemu_backdoor_call *call, uint64_t addr,
                           void *buf, uint64_t len)
{
    (void)call;
    return backdoor_qemu_guest_rw(addr, buf, len, false);
}

static int user_guest_write(const qemu_backdoor_call *call, uint64_t addr,
                            const void *buf, uint64_t len)
{
    (void)call;
    return backdoor_qemu_guest_rw(addr, (void *)buf, len, true);
}

void backdoor_user_serve(BackdoorCallbacks *cb, const BackdoorRegs *regs,
                         const char *id, char *args)
{
    g_autoptr(GError) err = NULL;

    bd.cb = cb;
    bd.regs = *regs;
    bd.regs.guest_read = user_guest_read;
    bd.regs.guest_write = user_guest_write;
    bd.id = id;
    bd.args = args;
    bd.owner = getpid();
    bd.call_offset = backdoor_regs_call_offset_reset(&bd.regs);
    if (!backdoor_events_init(&bd.regs, channel_thread_gone, &err)) {
        backdoor_user_die("%s", err->message);
    }
    backdoor_user_active = true;
}

char *backdoor_user_reload_start(void)
{
    g_autoptr(GError) err = NULL;

    bd.reload = (BackdoorUserLib) {
        .cb = &bd.cb,
        .args = &bd.args,
        .closed = &bd.cleaned,
        .info = backdoor_regs_info(&bd.regs, NULL, bd.id,
                                   backdoor_user_big_endian),
        .before_stop = backdoor_events_before_swap,
    };
    backdoor_user_reload_listen(&bd.reload, bd.id, &err);
    return err ? g_strdup(err->message) : NULL;
}

uint64_t backdoor_user_ring_op(uint64_t offset, uint64_t value)
{
    BackdoorGate *gate = backdoor_gate_enter();
    BackdoorCallbacks *cb = channel_callbacks();
    uint64_t r = cb ? backdoor_events_op(cb, offset, value,
                                         backdoor_qemu_vcpu_index()) :
                      guest_error();

    backdoor_gate_leave(gate);
    return r;
}

uint64_t backdoor_user_call(uint64_t cmd)
{
    qemu_backdoor_call call = backdoor_regs_call(&bd.regs, cmd,
                                                 backdoor_user_big_endian,
                                                 backdoor_qemu_vcpu_index());
    BackdoorGate *gate = backdoor_gate_enter();
    BackdoorCallbacks *cb = channel_callbacks();

    /* After the owner's exit ran (an exec that then failed): no library */
    if (!cb) {
        thread_result = guest_error();
    } else {
        /* A call sees the events its thread posted before it */
        backdoor_events_before_call(cb, call.vcpu_index);
        thread_result = backdoor_callbacks_call(cb, &call);
    }
    backdoor_gate_leave(gate);
    return thread_result;
}
uint64_t backdoor_user_reg_read(uint64_t offset, unsigned size)
{
    /* The out-of-line path reads up to 64 bytes: all ones beyond 8 */
    uint64_t v, mask = size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
    BackdoorReg reg;

    if (backdoor_regs_check(&bd.regs, offset, size, false, &reg, NULL) !=
        BACKDOOR_ACCESS_OK) {
        return guest_error() & mask;
    }
    switch (reg) {
    case BACKDOOR_R_RESULT:
        v = thread_result;
        break;
    case BACKDOOR_R_RESULT_HI:
        v = thread_result >> 32;
        break;
    case BACKDOOR_R_CALL_OFFSET:
        v = __atomic_load_n(&bd.call_offset, __ATOMIC_RELAXED);
        break;
    case BACKDOOR_R_CALL:
        v = backdoor_user_call(backdoor_regs_call_word(&bd.regs,
                __atomic_load_n(&bd.call_offset, __ATOMIC_RELAXED),
                backdoor_user_big_endian));
        break;
    default:
        /* ID, FEATURES, DATA_SIZE */
        if (!backdoor_regs_fixed(&bd.regs, reg, &v)) {
            v = guest_error();
        }
    }
    return v & mask;
}

void backdoor_user_reg_write(uint64_t offset, unsigned size, uint64_t value)
{
    BackdoorReg reg;

    if (backdoor_regs_check(&bd.regs, offset, size, true, &reg, NULL) !=
        BACKDOOR_ACCESS_OK) {
        guest_error();
        return;
    }
    if (size == 4) {
        value = (uint32_t)value;
    }
    switch (reg) {
    case BACKDOOR_R_CMD:
        backdoor_user_call(value);
        break;
    case BACKDOOR_R_CALL_OFFSET:
        if (!backdoor_regs_call_offset_ok(&bd.regs, value)) {
            guest_error();
            break;
        }
        __atomic_store_n(&bd.call_offset, value, __ATOMIC_RELAXED);
        break;
    default:
        guest_error();
    }
}

/*
 * Only the owner, the process that ran the library's init, runs its exit
 * and removes the files. A forked child (a guest fork is a fork of QEMU)
 * shares the channel and has a copy of the library, but leaves both to
 * its parent: a subshell must not close the channel of the shell.
 */
bool backdoor_user_is_owner(void)
{
    return backdoor_user_active && getpid() == bd.owner;
}

void backdoor_user_cleanup(void)
{
    if (!backdoor_user_active) {
        return;
    }
    backdoor_user_reload_stop();    /* a swap in progress ends first */
    if (__atomic_exchange_n(&bd.cleaned, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    /* The process's own rings go to its own copy of the library */
    backdoor_events_at_exit(bd.cb);
    if (getpid() != bd.owner) {
        /* What the child's calls printed; the parent's went before fork */
        fflush(NULL);
        return;
    }
    backdoor_user_remove_made();
    backdoor_callbacks_unload(bd.cb);
    /* QEMU leaves with exit_group(): flush what the callbacks printed */
    fflush(NULL);
}
