/* SPDX-License-Identifier: MIT */
/*
 * Call slots and event rings of register map 1.1: each thread claims its
 * own slot on a channel (SLOT_ALLOC) on first use, calls through it
 * without a lock and posts events to its ring without an exit. Slots are
 * released (SLOT_FREE) when the thread exits or the channel closes.
 */
#include "guest-lib.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct BackdoorSlotNode {
    qemu_backdoor_slot slot;
    struct BackdoorSlotNode *thread_next;   /* the thread's slots */
    struct BackdoorSlotNode *channel_next;  /* the channel's slots */
    unsigned gen;                           /* slots_gen when claimed */
    qemu_backdoor_seed *seed;   /* its thread's seed registers, if this */
} BackdoorSlotNode;

__thread qemu_backdoor_slot *backdoor_last_slot
    __attribute__((tls_model("initial-exec")));
__thread qemu_backdoor_seed qemu_backdoor_seed_regs
    __attribute__((tls_model("initial-exec")));
static __thread BackdoorSlotNode *thread_slots;

/* Claiming and releasing (rare) take this; calls and posts do not. */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
/* A forked child's slots are its parent's: it must claim its own. */
static unsigned slots_gen;

static void slot_release(BackdoorSlotNode *n)
{
    qemu_backdoor_channel *ch = n->slot.channel;
    BackdoorSlotNode **p;

    if (!ch) {
        return;
    }
    /* A slot of an older generation is the parent process's, not ours */
    if (n->slot.index >= 0 && n->gen == slots_gen) {
        ch->transport->slot_op(ch, BACKDOOR_REG_SLOT_FREE, n->slot.index);
    }
    if (n->seed) {
        /* The owner's next qemu_backdoor() goes out of line */
        n->seed->call_reg = NULL;
        n->seed = NULL;
    }
    for (p = &ch->slot_list; *p; p = &(*p)->channel_next) {
        if (*p == n) {
            *p = n->channel_next;
            break;
        }
    }
    n->slot.channel = NULL;
    n->slot.call_reg = NULL;
    n->slot.tail = NULL;
    n->slot.head = &n->slot.no_ring;
    n->slot.limit = 0;
}

/* Thread exit: give back every slot the thread holds. */
static void slot_thread_exit(void *unused)
{
    BackdoorSlotNode *n, *next;

    (void)unused;
    pthread_mutex_lock(&slot_lock);
    for (n = thread_slots; n; n = next) {
        next = n->thread_next;
        if (n->gen == slots_gen) {
            slot_release(n);
        }
        free(n);
    }
    thread_slots = NULL;
    backdoor_last_slot = NULL;
    qemu_backdoor_seed_regs.call_reg = NULL;
    pthread_mutex_unlock(&slot_lock);
}

static void slot_fork_child(void)
{
    slots_gen++;
    backdoor_last_slot = NULL;
    qemu_backdoor_seed_regs.call_reg = NULL;
    pthread_mutex_init(&slot_lock, NULL);
}

static void slot_init_once(void)
{
    pthread_key_create(&slot_key, slot_thread_exit);
    pthread_atfork(NULL, NULL, slot_fork_child);
}

void backdoor_slots_layout(qemu_backdoor_channel *ch, uint32_t n,
                           uint32_t entries, uint64_t base, uint64_t stride)
{
    /* A layout that does not fit: use the 1.0 call word instead */
    if (!n || stride < BACKDOOR_SLOTBLK_RING ||
        (entries & (entries - 1)) ||
        stride < BACKDOOR_SLOTBLK_RING +
                 (uint64_t)entries * BACKDOOR_EVENT_SIZE ||
        base + n * stride > ch->data_size - BACKDOOR_CALL_WORD_SIZE) {
        return;
    }
    ch->nslots = n;
    ch->ring_entries = entries;
    ch->slot_base = base;
    ch->slot_stride = stride;
}

void backdoor_slots_open(qemu_backdoor_channel *ch)
{
    uint32_t features = backdoor_ctrl_read32(ch, BACKDOOR_REG_FEATURES);
    uint32_t n;

    if (!(features & BACKDOOR_FEATURE_SLOTS) ||
        ch->ctrl_size < BACKDOOR_REG_SLOT_CALL(1)) {
        return;
    }
    n = backdoor_ctrl_read32(ch, BACKDOOR_REG_SLOT_COUNT);
    if (n > (ch->ctrl_size - BACKDOOR_REG_SLOT_CALL(0)) / 8) {
        n = (ch->ctrl_size - BACKDOOR_REG_SLOT_CALL(0)) / 8;
    }
    backdoor_slots_layout(ch, n, features & BACKDOOR_FEATURE_RING ?
                          backdoor_ctrl_read32(ch, BACKDOOR_REG_RING_ENTRIES) :
                          0,
                          backdoor_ctrl_read32(ch, BACKDOOR_REG_SLOT_BASE),
                          backdoor_ctrl_read32(ch, BACKDOOR_REG_SLOT_STRIDE));
    ch->slot_calls = ch->nslots != 0;
}

void backdoor_slots_close(qemu_backdoor_channel *ch)
{
    pthread_mutex_lock(&slot_lock);
    while (ch->slot_list) {
        slot_release(ch->slot_list);
    }
    pthread_mutex_unlock(&slot_lock);
}

/* Claim a slot for the calling thread; index -1 when none is left. */
static BackdoorSlotNode *slot_claim(qemu_backdoor_channel *ch)
{
    BackdoorSlotNode *n = calloc(1, sizeof(*n));
    qemu_backdoor_slot *s;
    uint32_t idx;
    volatile char *blk;

    if (!n) {
        backdoor_error(ENOMEM, "out of memory");
        return NULL;
    }
    s = &n->slot;
    s->channel = ch;
    s->index = -1;
    s->head = &s->no_ring;          /* limit 0: every post is slow */
    idx = ch->nslots ? (uint32_t)ch->transport->slot_op(
                           ch, BACKDOOR_REG_SLOT_ALLOC, 0) : UINT32_MAX;
    if (idx < ch->nslots) {
        blk = (volatile char *)ch->data + ch->slot_base + idx *
              ch->slot_stride;
        s->index = idx;
        if (ch->slot_calls) {
            s->call_word = (volatile uint64_t *)(blk + BACKDOOR_SLOTBLK_WORD);
            s->call_reg = (volatile uint64_t *)((volatile char *)ch->ctrl +
                                                BACKDOOR_REG_SLOT_CALL(idx));
        }
        if (ch->ring_entries) {
            s->head = (uint64_t *)(blk + BACKDOOR_SLOTBLK_HEAD);
            s->tail = (volatile uint64_t *)(blk + BACKDOOR_SLOTBLK_TAIL);
            s->entries = ch->ring_entries;
            s->mask = ch->ring_entries - 1;
            /* Flush at 3/4 so that a producer rarely finds it full */
            s->threshold = ch->ring_entries - ch->ring_entries / 4;
            s->limit = *s->tail + s->threshold;
        }
    }
    n->gen = slots_gen;
    n->thread_next = thread_slots;
    thread_slots = n;
    n->channel_next = ch->slot_list;
    ch->slot_list = n;
    return n;
}

qemu_backdoor_slot *qemu_backdoor_channel_slot(qemu_backdoor_channel *ch)
{
    BackdoorSlotNode *n;

    pthread_once(&slot_once, slot_init_once);
    pthread_mutex_lock(&slot_lock);
    for (n = thread_slots; n; n = n->thread_next) {
        if (n->slot.channel == ch && n->gen == slots_gen) {
            break;
        }
    }
    if (!n) {
        n = slot_claim(ch);
        /* Any non-NULL value makes the key's destructor run */
        pthread_setspecific(slot_key, (void *)1);
    }
    pthread_mutex_unlock(&slot_lock);
    if (!n) {
        return NULL;
    }
    backdoor_last_slot = &n->slot;
    return &n->slot;
}

void backdoor_seed_use(qemu_backdoor_slot *slot)
{
    BackdoorSlotNode *n = (BackdoorSlotNode *)slot;

    pthread_mutex_lock(&slot_lock);
    qemu_backdoor_seed_regs.call_word = slot->call_word;
    qemu_backdoor_seed_regs.call_reg = slot->call_reg;
    n->seed = &qemu_backdoor_seed_regs;
    pthread_mutex_unlock(&slot_lock);
}

uint64_t qemu_backdoor_slot_call_slow(qemu_backdoor_slot *slot,
                                      uint64_t cmd)
{
    qemu_backdoor_channel *ch = slot->channel;
    uint64_t r;

    if (!ch) {
        backdoor_error(ENODEV, "call through the slot of a closed channel");
        return UINT64_MAX;
    }
    if (slot->index < 0 || !slot->call_word) {
        /* No slot, or a ring without a call word (user mode) */
        return ch->transport->call_threadsafe ? ch->transport->call(ch, cmd) :
               backdoor_channel_call_locked(ch, cmd);
    }
    /* A 32-bit guest: the low half from SLOT_CALL, the high from RAM */
    *slot->call_word = cmd;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r = backdoor_ctrl_read32(ch, BACKDOOR_REG_SLOT_CALL(slot->index));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return r | (slot->call_word[BACKDOOR_SLOTBLK_RESULT / 8] >> 32 << 32);
}

/* Ring DOORBELL; the host took the events before it returned. */
static uint64_t slot_doorbell(qemu_backdoor_slot *slot, uint32_t flags)
{
    qemu_backdoor_channel *ch = slot->channel;

    ch->transport->slot_op(ch, BACKDOOR_REG_DOORBELL, slot->index | flags);
    return __atomic_load_n(slot->tail, __ATOMIC_ACQUIRE);
}

/*
 * The ring is full at HEAD @h. With kicks the host drains it meanwhile
 * (this thread kicked when the ring passed its threshold): wait a while
 * for TAIL to move. Without (no kicks, or a threshold of a whole ring), or
 * if TAIL does not move, ring DOORBELL, which returns once the host took
 * the events.
 */
#define KICK_WAIT_SPIN  20000

static uint64_t slot_wait_drained(qemu_backdoor_slot *slot, uint64_t h)
{
    uint64_t tail;

    if (slot->channel->ring_kick && slot->threshold < slot->entries) {
        for (unsigned i = 0; i < KICK_WAIT_SPIN; i++) {
            tail = __atomic_load_n(slot->tail, __ATOMIC_ACQUIRE);
            if (h - tail < slot->entries) {
                return tail;
            }
        }
    }
    return slot_doorbell(slot, BACKDOOR_DOORBELL_FULL);
}

/* Where the inline post stops: the threshold, at most a full ring. */
static void slot_set_limit(qemu_backdoor_slot *slot, uint64_t tail)
{
    slot->limit = tail + (slot->threshold < slot->entries ?
                          slot->threshold : slot->entries);
}

int qemu_backdoor_slot_post_slow(qemu_backdoor_slot *slot, uint64_t cmd,
                                 uint64_t a0, uint64_t a1, uint64_t a2)
{
    uint64_t h, tail, *e;

    if (!slot->tail) {
        return backdoor_error(ENOTSUP, "%s has no event rings (register "
                              "map 1.1; see docs/guest.md)",
                              slot->channel ? slot->channel->name :
                              "a closed channel");
    }
    h = *slot->head;
    tail = __atomic_load_n(slot->tail, __ATOMIC_ACQUIRE);
    if (h - tail >= slot->entries) {
        /* Full: the host takes them now; never drop one */
        slot->full++;
        tail = slot_wait_drained(slot, h);
    }
    e = slot->head + 6 + (h & slot->mask) * 4;
    e[0] = cmd;
    e[1] = a0;
    e[2] = a1;
    e[3] = a2;
    __atomic_store_n(slot->head, h + 1, __ATOMIC_RELEASE);
    /* threshold == entries: no early flush, only when full */
    if (slot->threshold < slot->entries && h + 1 - tail >= slot->threshold) {
        qemu_backdoor_channel *ch = slot->channel;

        if (ch->ring_kick) {
            /* The host drains meanwhile: go on until the ring is full */
            ch->transport->slot_kick(ch);
            slot->limit = tail + slot->entries;
            return 0;
        }
        tail = slot_doorbell(slot, 0);
    }
    slot_set_limit(slot, tail);
    return 0;
}

int qemu_backdoor_slot_flush(qemu_backdoor_slot *slot)
{
    if (!slot->tail) {
        return backdoor_error(ENOTSUP, "no event rings on this channel");
    }
    slot_set_limit(slot, slot_doorbell(slot, 0));
    return 0;
}

int qemu_backdoor_post(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2)
{
    qemu_backdoor_channel *ch = qemu_backdoor_channel_default();
    qemu_backdoor_slot *slot;

    if (!ch) {
        return backdoor_error(ENODEV, "qemu_backdoor_post() before a "
                              "successful qemu_backdoor_init()");
    }
    slot = backdoor_thread_slot(ch);
    if (!slot) {
        return -1;
    }
    return qemu_backdoor_slot_post(slot, cmd, a0, a1, a2);
}
