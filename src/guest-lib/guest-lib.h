/* SPDX-License-Identifier: MIT */
/*
 * qemu-backdoor guest library internals: a channel and its transports.
 */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include "qemu-backdoor.h"
#include "qemu-backdoor-regs.h"

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct BackdoorTransport BackdoorTransport;

/*
 * A recursive lock, inline on the call path. Under TCG every return and
 * indirect jump of the guest costs a TB lookup, so glibc's recursive mutex
 * (two out-of-line calls) costs more than the MMIO exit it protects. This
 * one is a compare-and-swap and an exchange when uncontended, and sleeps
 * on a futex (out of line) when contended.
 */
typedef struct BackdoorLock {
    uint32_t state;             /* 0 free, 1 held, 2 held with waiters */
    void *owner;                /* the holder's &backdoor_lock_self */
    unsigned depth;
} BackdoorLock;

/* Its address identifies the calling thread. */
extern __thread char backdoor_lock_self
    __attribute__((tls_model("initial-exec")));

void backdoor_lock_wait(BackdoorLock *l, uint32_t c);
void backdoor_lock_wake(BackdoorLock *l);

static inline void backdoor_lock(BackdoorLock *l)
{
    void *self = &backdoor_lock_self;
    uint32_t c = 0;

    if (__atomic_load_n(&l->owner, __ATOMIC_RELAXED) == self) {
        l->depth++;
        return;
    }
    if (!__atomic_compare_exchange_n(&l->state, &c, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
        backdoor_lock_wait(l, c);
    }
    __atomic_store_n(&l->owner, self, __ATOMIC_RELAXED);
    l->depth = 1;
}

static inline void backdoor_unlock(BackdoorLock *l)
{
    if (__atomic_load_n(&l->owner, __ATOMIC_RELAXED) !=
        (void *)&backdoor_lock_self) {
        return;                 /* not held by this thread */
    }
    if (--l->depth) {
        return;
    }
    __atomic_store_n(&l->owner, NULL, __ATOMIC_RELAXED);
    if (__atomic_exchange_n(&l->state, 0, __ATOMIC_RELEASE) == 2) {
        backdoor_lock_wake(l);
    }
}


struct qemu_backdoor_channel {
    const BackdoorTransport *transport;
    BackdoorLock lock;
    char *name;                 /* PCI address or base path */
    uint32_t id;
    void *data;
    uint64_t data_size;         /* the whole data channel, call word too */
    /* system mode */
    volatile void *ctrl;
    size_t ctrl_size;
    volatile uint64_t *call_word;
    /* user mode */
    int ctrl_fd;
    int stage_fd;               /* read-write, for guest memory requests */
    bool user_mem;              /* serve them (BACKDOOR_FEATURE_USER_MEM) */
    volatile uint8_t *slots;    /* call slot area, or NULL: pread path */
    /* call slots and rings (register map 1.1), slots.c */
    bool slot_calls;            /* SLOT_CALL registers (system mode) */
    uint32_t nslots;            /* 0: the device has none */
    uint32_t ring_entries;      /* 0: no rings */
    bool ring_kick;             /* kick at the threshold, no wait (bit 5) */
    uint64_t slot_base;
    uint64_t slot_stride;
    struct BackdoorSlotNode *slot_list; /* claimed slots, under slot lock */
};

/*
 * One per way of reaching the host. open fills @ch (name, id, data,
 * data_size and its own fields) or sets the error and returns -1, undoing
 * what it did; call runs under ch->lock, and is NULL for the PCI
 * transport, whose call (backdoor_pci_call) is inline in the call path.
 * slot_op is the operation of register @reg (SLOT_ALLOC, SLOT_FREE,
 * DOORBELL) with @value written: the value read (SLOT_ALLOC), else 0.
 */
struct BackdoorTransport {
    qemu_backdoor_guest_mode mode;
    int (*open)(qemu_backdoor_channel *ch, const char *where);
    uint64_t (*call)(qemu_backdoor_channel *ch, uint64_t cmd);
    void (*close)(qemu_backdoor_channel *ch);
    uint64_t (*slot_op)(qemu_backdoor_channel *ch, unsigned reg,
                        uint64_t value);
    /* With ring_kick: ask the host to drain the rings soon, no wait */
    void (*slot_kick)(qemu_backdoor_channel *ch);
    /* call may run in several threads at once: no lock around it */
    bool call_threadsafe;
};

extern const BackdoorTransport backdoor_pci_transport;
extern const BackdoorTransport backdoor_user_transport;

/* Set errno to @err and the thread's message; returns -1. */
int backdoor_error(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Check an identification value; sets the error and returns -1 if bad. */
int backdoor_check_id(uint32_t id, const char *what);

static inline uint32_t backdoor_ctrl_read32(qemu_backdoor_channel *ch,
                                            unsigned offset)
{
    return le32toh(*(volatile uint32_t *)((volatile char *)ch->ctrl +
                                          offset));
}

static inline void backdoor_ctrl_write32(qemu_backdoor_channel *ch,
                                         unsigned offset, uint32_t v)
{
    *(volatile uint32_t *)((volatile char *)ch->ctrl + offset) = htole32(v);
}

/* The 1.0 call: the shared call word under the channel's lock. */
uint64_t backdoor_channel_call_locked(qemu_backdoor_channel *ch,
                                      uint64_t cmd);

/*
 * slots.c: read the slot layout of a PCI device at open; use a layout
 * (both modes; one that does not fit leaves the channel without slots);
 * release the slots at close.
 */
void backdoor_slots_open(qemu_backdoor_channel *ch);
void backdoor_slots_layout(qemu_backdoor_channel *ch, uint32_t n,
                           uint32_t entries, uint64_t base, uint64_t stride);
void backdoor_slots_close(qemu_backdoor_channel *ch);

/*
 * The inline qemu_backdoor() of the calling thread calls through @slot,
 * one of its own, from now on (until the slot is released).
 */
void backdoor_seed_use(qemu_backdoor_slot *slot);

/* The calling thread's slot, NULL when there is none (slots.c). */
extern __thread qemu_backdoor_slot *backdoor_last_slot
    __attribute__((tls_model("initial-exec")));

static inline qemu_backdoor_slot *backdoor_thread_slot(
    qemu_backdoor_channel *ch)
{
    qemu_backdoor_slot *s = backdoor_last_slot;

    if (s && s->channel == ch) {
        return s;
    }
    return qemu_backdoor_channel_slot(ch);
}

/*
 * The system-mode call: store the call word, read CALL: one exit. Guests
 * without 8-byte accesses read the high half from RESULT_HI: two.
 */
static inline uint64_t backdoor_pci_call(qemu_backdoor_channel *ch,
                                         uint64_t cmd)
{
    uint64_t result;

    *ch->call_word = cmd;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (sizeof(void *) >= 8) {
        result = le64toh(*(volatile uint64_t *)((volatile char *)ch->ctrl +
                                                BACKDOOR_REG_CALL));
    } else {
        result = backdoor_ctrl_read32(ch, BACKDOOR_REG_CALL);
        result |= (uint64_t)backdoor_ctrl_read32(ch, BACKDOOR_REG_RESULT_HI)
                  << 32;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return result;
}

#endif /* GUEST_LIB_H */
