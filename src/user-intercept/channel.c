/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper's channel (channel.h): files, library, registers and calls.
 */
#define _GNU_SOURCE
#include "channel.h"
#include "qemu-syms.h"
#include "user-env.h"

#include <pthread.h>
#include <sched.h>
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
} bd;

/* RESULT is per guest thread: each thread reads the result of its call. */
static __thread uint64_t thread_result;

static uint64_t guest_error(void)
{
    __atomic_add_fetch(&bd.guest_errors, 1, __ATOMIC_RELAXED);
    return UINT64_MAX;
}

/*
 * Hot reload (BASE.reload): a swap waits until no guest thread is in a
 * call and keeps new calls out until it is done. Each calling thread has
 * its own in-call flag, so a call writes only its own cache line; the
 * swap sets "swapping" and then waits for every flag to clear.
 */
typedef struct CallSlot {
    int in_call;
    struct CallSlot *next, *prev;
} CallSlot;

static __thread CallSlot *thread_slot;
static CallSlot slots = { .next = &slots, .prev = &slots };
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t slot_key;
static int swapping;
static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t swap_done = PTHREAD_COND_INITIALIZER;

static void slot_free(void *opaque)
{
    CallSlot *slot = opaque;

    pthread_mutex_lock(&slots_lock);
    slot->prev->next = slot->next;
    slot->next->prev = slot->prev;
    pthread_mutex_unlock(&slots_lock);
    g_free(slot);
}

static CallSlot *call_begin(void)
{
    CallSlot *slot = thread_slot;

    if (!slot) {
        slot = thread_slot = g_new0(CallSlot, 1);
        pthread_mutex_lock(&slots_lock);
        slot->next = slots.next;
        slot->prev = &slots;
        slots.next->prev = slot;
        slots.next = slot;
        pthread_mutex_unlock(&slots_lock);
        pthread_setspecific(slot_key, slot);
    }
    for (;;) {
        __atomic_store_n(&slot->in_call, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&swapping, __ATOMIC_SEQ_CST)) {
            return slot;
        }
        __atomic_store_n(&slot->in_call, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&swap_lock);
        while (__atomic_load_n(&swapping, __ATOMIC_SEQ_CST)) {
            pthread_cond_wait(&swap_done, &swap_lock);
        }
        pthread_mutex_unlock(&swap_lock);
    }
}

static void call_end(CallSlot *slot)
{
    __atomic_store_n(&slot->in_call, 0, __ATOMIC_RELEASE);
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
    bd.cb = cb;
    bd.regs = *regs;
    bd.regs.guest_read = user_guest_read;
    bd.regs.guest_write = user_guest_write;
    bd.id = id;
    bd.args = args;
    bd.owner = getpid();
    bd.call_offset = backdoor_regs_call_offset_reset(&bd.regs);
    pthread_key_create(&slot_key, slot_free);
    backdoor_user_active = true;
}

uint64_t backdoor_user_call(uint64_t cmd)
{
    qemu_backdoor_call call = backdoor_regs_call(&bd.regs, cmd,
                                                 backdoor_user_big_endian,
                                                 backdoor_qemu_vcpu_index());
    CallSlot *slot = call_begin();

    /* After the owner's exit ran (an exec that then failed): no library */
    thread_result = __atomic_load_n(&bd.cleaned, __ATOMIC_ACQUIRE) ?
                    guest_error() : backdoor_callbacks_call(bd.cb, &call);
    call_end(slot);
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
    if (!backdoor_user_active ||
        __atomic_exchange_n(&bd.cleaned, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
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

char *backdoor_user_reload(const char *name, const char *args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) restart_err = NULL;
    BackdoorCallbacks *new = backdoor_callbacks_open(name, &err);
    qemu_backdoor_info info;
    char *error = NULL;
    CallSlot *slot;

    if (!new) {
        return g_strdup(err->message);
    }
    __atomic_store_n(&swapping, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&slots_lock);
    for (slot = slots.next; slot != &slots; slot = slot->next) {
        while (__atomic_load_n(&slot->in_call, __ATOMIC_SEQ_CST)) {
            sched_yield();
        }
    }
    pthread_mutex_unlock(&slots_lock);

    if (!__atomic_load_n(&bd.cleaned, __ATOMIC_ACQUIRE)) {
        info = backdoor_regs_info(&bd.regs, args, bd.id,
                                  backdoor_user_big_endian);
        backdoor_callbacks_stop(bd.cb);
        if (backdoor_callbacks_start(new, &info, &err)) {
            backdoor_callbacks_close(bd.cb);
            bd.cb = new;
            g_free(bd.args);
            bd.args = g_strdup(args);
            new = NULL;
        } else {
            error = g_strdup_printf("%s; kept callbacks '%s'", err->message,
                                    backdoor_callbacks_name(bd.cb));
            info.args = bd.args;
            if (!backdoor_callbacks_start(bd.cb, &info, &restart_err)) {
                /* Calls get guest errors from now on, as after an exec */
                fprintf(stderr, PROG ": %s: no callbacks now\n",
                        restart_err->message);
                __atomic_store_n(&bd.cleaned, 1, __ATOMIC_RELEASE);
            }
        }
    } else {
        error = g_strdup("the channel is closed");
    }

    pthread_mutex_lock(&swap_lock);
    __atomic_store_n(&swapping, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&swap_done);
    pthread_mutex_unlock(&swap_lock);
    backdoor_callbacks_close(new);
    return error;
}
