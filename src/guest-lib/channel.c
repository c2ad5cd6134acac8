/* SPDX-License-Identifier: MIT */
/*
 * qemu-backdoor guest library: channels, errors and the seed's API.
 */
#define _GNU_SOURCE
#include "guest-lib.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static __thread char error_msg[1024];

static qemu_backdoor_channel *default_channel;

int backdoor_error(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(error_msg, sizeof(error_msg), fmt, ap);
    va_end(ap);
    errno = err;
    return -1;
}

int backdoor_check_id(uint32_t id, const char *what)
{
    if (BACKDOOR_ID_GET_MAGIC(id) != BACKDOOR_ID_MAGIC) {
        return backdoor_error(ENODEV, "%s: identification register reads "
                              "0x%08x, not 0x4244MMmm: not a backdoor",
                              what, id);
    }
    if (BACKDOOR_ID_GET_MAJOR(id) != QEMU_BACKDOOR_REGS_MAJOR) {
        return backdoor_error(EPROTO, "%s: register map version %u.%u, but "
                              "this library (%s) speaks %u.x",
                              what, BACKDOOR_ID_GET_MAJOR(id),
                              BACKDOOR_ID_GET_MINOR(id),
                              qemu_backdoor_version(),
                              QEMU_BACKDOOR_REGS_MAJOR);
    }
    return 0;
}

const char *qemu_backdoor_error(void)
{
    return error_msg;
}

const char *qemu_backdoor_version(void)
{
    return STR(QEMU_BACKDOOR_GUEST_VERSION_MAJOR) "."
           STR(QEMU_BACKDOOR_GUEST_VERSION_MINOR) "."
           STR(QEMU_BACKDOOR_GUEST_VERSION_MICRO);
}

__thread char backdoor_lock_self __attribute__((tls_model("initial-exec")));

static void futex(uint32_t *addr, int op, uint32_t val)
{
    syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

/* The contended half of backdoor_lock(): @c is the state it found. */
void backdoor_lock_wait(BackdoorLock *l, uint32_t c)
{
    if (c != 2) {
        c = __atomic_exchange_n(&l->state, 2, __ATOMIC_ACQUIRE);
    }
    while (c != 0) {
        futex(&l->state, FUTEX_WAIT_PRIVATE, 2);
        c = __atomic_exchange_n(&l->state, 2, __ATOMIC_ACQUIRE);
    }
}

void backdoor_lock_wake(BackdoorLock *l)
{
    futex(&l->state, FUTEX_WAKE_PRIVATE, 1);
}

static qemu_backdoor_channel *channel_open(const BackdoorTransport *t,
                                           const char *where)
{
    qemu_backdoor_channel *ch = calloc(1, sizeof(*ch));

    if (!ch) {
        backdoor_error(ENOMEM, "out of memory");
        return NULL;
    }
    ch->transport = t;
    ch->ctrl_fd = -1;
    if (t->open(ch, where) < 0) {
        free(ch);
        return NULL;
    }
    return ch;
}

/*
 * Try each place in turn; on failure, the message lists every reason and
 * errno is that of the most telling one: a place that exists but is
 * unusable (no helper, not root, wrong version) beats one that is absent.
 */
typedef struct Attempt {
    const BackdoorTransport *transport;
    const char *where;
    const char *label;          /* prefix of its message, or NULL */
} Attempt;

static qemu_backdoor_channel *open_first(const Attempt *a, int n)
{
    char msg[sizeof(error_msg)] = "";
    int err = ENODEV;
    size_t len = 0;

    for (int i = 0; i < n; i++) {
        qemu_backdoor_channel *ch = channel_open(a[i].transport, a[i].where);

        if (ch) {
            return ch;
        }
        if (err == ENODEV || err == ENOENT) {
            err = errno;
        }
        len += snprintf(msg + len, len < sizeof(msg) ? sizeof(msg) - len : 0,
                        "%s%s%s%s", i ? "; " : "", a[i].label ?: "",
                        a[i].label ? ": " : "", error_msg);
        if (len >= sizeof(msg)) {
            len = sizeof(msg) - 1;
        }
    }
    backdoor_error(err, "%s", msg);
    return NULL;
}

/* @base: the seed's base path, tried first; NULL for none. */
static qemu_backdoor_channel *open_auto(const char *base)
{
    const char *env = getenv(QEMU_BACKDOOR_PATH_ENV);
    Attempt a[3];
    int n = 0;

    if (base && *base) {
        a[n++] = (Attempt){ &backdoor_user_transport, base, NULL };
    }
    if (env && *env && !(base && !strcmp(env, base))) {
        a[n++] = (Attempt){ &backdoor_user_transport, env,
                            QEMU_BACKDOOR_PATH_ENV };
    }
    a[n++] = (Attempt){ &backdoor_pci_transport, NULL, NULL };
    return open_first(a, n);
}

qemu_backdoor_channel *qemu_backdoor_open(const char *spec)
{
    if (!spec || !*spec) {
        return open_auto(NULL);
    }
    if (!strcmp(spec, "pci")) {
        return channel_open(&backdoor_pci_transport, NULL);
    }
    if (!strncmp(spec, "pci:", 4)) {
        return channel_open(&backdoor_pci_transport, spec + 4);
    }
    if (!strncmp(spec, "path:", 5)) {
        return channel_open(&backdoor_user_transport, spec + 5);
    }
    if (strchr(spec, '/')) {
        return channel_open(&backdoor_user_transport, spec);
    }
    if (strchr(spec, ':')) {
        return channel_open(&backdoor_pci_transport, spec);
    }
    backdoor_error(EINVAL, "unknown channel '%s': give pci, pci:BDF, a PCI "
                   "address or path:BASE", spec);
    return NULL;
}

void qemu_backdoor_close(qemu_backdoor_channel *ch)
{
    if (!ch) {
        return;
    }
    backdoor_slots_close(ch);
    ch->transport->close(ch);
    free(ch->name);
    free(ch);
}

/*
 * Inline into both entry points, with the PCI call inline too: under TCG
 * each guest call and return costs a TB lookup, as much as the lock.
 */
static inline uint64_t channel_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    if (ch->nslots) {
        /* Register map 1.1: the thread's own slot, no lock */
        qemu_backdoor_slot *slot = backdoor_thread_slot(ch);

        if (slot && slot->call_reg) {
            return qemu_backdoor_slot_call(slot, cmd);
        }
    }
    if (ch->transport->call_threadsafe) {
        return ch->transport->call(ch, cmd);
    }
    return backdoor_channel_call_locked(ch, cmd);
}

uint64_t backdoor_channel_call_locked(qemu_backdoor_channel *ch,
                                      uint64_t cmd)
{
    uint64_t result;

    backdoor_lock(&ch->lock);
    result = ch->transport->call ? ch->transport->call(ch, cmd) :
             backdoor_pci_call(ch, cmd);
    backdoor_unlock(&ch->lock);
    return result;
}

uint64_t qemu_backdoor_channel_call(qemu_backdoor_channel *ch, uint64_t cmd)
{
    return channel_call(ch, cmd);
}

void *qemu_backdoor_channel_data(qemu_backdoor_channel *ch)
{
    return ch->data;
}

uint64_t qemu_backdoor_channel_data_size(qemu_backdoor_channel *ch)
{
    if (ch->nslots) {
        return ch->slot_base;   /* the slots are the library's */
    }
    return ch->data_size - BACKDOOR_CALL_WORD_SIZE;
}

void qemu_backdoor_channel_lock(qemu_backdoor_channel *ch)
{
    backdoor_lock(&ch->lock);
}

void qemu_backdoor_channel_unlock(qemu_backdoor_channel *ch)
{
    backdoor_unlock(&ch->lock);
}

qemu_backdoor_guest_mode
qemu_backdoor_channel_mode(qemu_backdoor_channel *ch)
{
    return ch->transport->mode;
}

const char *qemu_backdoor_channel_name(qemu_backdoor_channel *ch)
{
    return ch->name;
}

uint32_t qemu_backdoor_channel_id(qemu_backdoor_channel *ch)
{
    return ch->id;
}

qemu_backdoor_channel *qemu_backdoor_channel_default(void)
{
    return __atomic_load_n(&default_channel, __ATOMIC_ACQUIRE);
}

int qemu_backdoor_init(const char *base)
{
    qemu_backdoor_channel *ch = open_auto(base);

    if (!ch) {
        return -1;
    }
    qemu_backdoor_close(__atomic_exchange_n(&default_channel, ch,
                                            __ATOMIC_ACQ_REL));
    return 0;
}

void *qemu_backdoor_data(void)
{
    qemu_backdoor_channel *ch = qemu_backdoor_channel_default();

    return ch ? ch->data : NULL;
}

/* The header's inline qemu_backdoor() calls this when it has no slot. */
uint64_t (qemu_backdoor)(uint64_t cmd)
{
    qemu_backdoor_channel *ch = __atomic_load_n(&default_channel,
                                                __ATOMIC_ACQUIRE);
    qemu_backdoor_slot *slot;

    if (!ch) {
        backdoor_error(ENODEV, "qemu_backdoor() before a successful "
                       "qemu_backdoor_init()");
        return UINT64_MAX;
    }
    if (ch->nslots) {
        slot = backdoor_thread_slot(ch);
        if (slot && slot->call_reg) {
            /* The thread's next calls go straight to it, inline */
            backdoor_seed_use(slot);
            return qemu_backdoor_slot_call(slot, cmd);
        }
    }
    return channel_call(ch, cmd);
}
