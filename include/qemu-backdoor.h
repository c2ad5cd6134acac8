/* SPDX-License-Identifier: MIT */
/*
 * qemu-backdoor guest library: call host callbacks from a guest program.
 *
 * The 2011 seed's API, unchanged:
 *
 *   if (qemu_backdoor_init("/tmp/backdoor") != 0) { ...errno... }
 *   uint32_t *data = qemu_backdoor_data();
 *   *data = 0xcafe;
 *   uint64_t result = qemu_backdoor(0xbabe);
 *
 * works in a VM (the backdoor PCI device, found through sysfs) and under
 * qemu-<arch> with the user-mode helper (the channel files BASE.ctrl and
 * BASE.data), with the same binary. See docs/guest.md.
 *
 * Beyond the seed, a handle API reaches several channels in one program:
 *
 *   qemu_backdoor_channel *ch = qemu_backdoor_open("pci:0000:00:04.0");
 *   uint64_t r = qemu_backdoor_channel_call(ch, cmd);
 *   qemu_backdoor_close(ch);
 *
 * Errors: functions that can fail return -1 (or NULL) and set errno; the
 * calling thread's qemu_backdoor_error() then says in one line what is
 * missing (no device, not root, no helper, wrong version).
 *
 * Threads: every function may be called from any thread. On a device
 * with call slots (register map 1.1) each thread calls through its own
 * slot, without a lock; on a 1.0 device a call holds the channel's lock
 * while it uses the call word. Either way concurrent calls each get their
 * own result. The data channel is shared by all threads (and by all
 * processes using the same device): a thread that passes data through it
 * holds qemu_backdoor_channel_lock() from writing the data to reading what
 * the host left there. Opening and closing a channel must not race with
 * calls on it; qemu_backdoor_init() replaces the channel that the seed
 * functions use, so call it before starting threads that use them.
 * Separate processes calling one device at once must serialize themselves.
 *
 * Library changelog:
 *   0.1  First version: the seed API, channels, errors, version query.
 *   next Per-thread call slots (register map 1.1): calls take no lock and
 *        qemu_backdoor_slot_call() is inline, so is qemu_backdoor() after
 *        the thread's first call (a macro, see qemu_backdoor_seed_call());
 *        event rings: qemu_backdoor_post(), qemu_backdoor_slot_post(),
 *        qemu_backdoor_slot_flush(), in system mode and in user mode
 *        (FEATURES bit 3, either backend). With a 1.0 device, calls take
 *        the channel's lock as before and posting fails with ENOTSUP.
 *        Under the user-mode supervisor, the library serves the guest
 *        memory requests of the callbacks while it waits for a call.
 */
#ifndef QEMU_BACKDOOR_H
#define QEMU_BACKDOOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QEMU_BACKDOOR_GUEST_VERSION_MAJOR 0
#define QEMU_BACKDOOR_GUEST_VERSION_MINOR 1
#define QEMU_BACKDOOR_GUEST_VERSION_MICRO 0

/* True when this header is at least version major.minor.micro. */
#define QEMU_BACKDOOR_GUEST_CHECK_VERSION(major, minor, micro)              \
    (QEMU_BACKDOOR_GUEST_VERSION_MAJOR > (major) ||                         \
     (QEMU_BACKDOOR_GUEST_VERSION_MAJOR == (major) &&                       \
      QEMU_BACKDOOR_GUEST_VERSION_MINOR > (minor)) ||                       \
     (QEMU_BACKDOOR_GUEST_VERSION_MAJOR == (major) &&                       \
      QEMU_BACKDOOR_GUEST_VERSION_MINOR == (minor) &&                       \
      QEMU_BACKDOOR_GUEST_VERSION_MICRO >= (micro)))

/* The register map version this library speaks (docs/specs/backdoor.rst). */
#define QEMU_BACKDOOR_REGS_MAJOR 1

/* PCI identity of the backdoor device. */
#define QEMU_BACKDOOR_PCI_VENDOR 0x1234
#define QEMU_BACKDOOR_PCI_DEVICE 0xbd01

/* The environment variable naming the user-mode channel's base path. */
#define QEMU_BACKDOOR_PATH_ENV "QEMU_BACKDOOR_PATH"

/* The environment variable that replaces /sys/bus/pci/devices (tests). */
#define QEMU_BACKDOOR_SYSFS_ENV "QEMU_BACKDOOR_SYSFS"

/**
 * qemu_backdoor_init() - open the channel the seed functions use
 * @base: base path of a user-mode channel (BASE.ctrl, BASE.data), or NULL
 *
 * With @base: the user-mode channel at @base; if there is none, the one
 * named by $QEMU_BACKDOOR_PATH; if there is none either, the first
 * backdoor PCI device. So the seed's qemu_backdoor_init("/tmp/backdoor")
 * works in a VM, where /tmp/backdoor is no channel.
 * With NULL: the channel named by $QEMU_BACKDOOR_PATH when it is one, else
 * the first backdoor PCI device.
 *
 * A second successful init replaces (and closes) the first channel.
 *
 * Returns: 0, or -1 with errno set and qemu_backdoor_error() saying why.
 */
int qemu_backdoor_init(const char *base);

/**
 * qemu_backdoor_data() - the data channel of the qemu_backdoor_init() channel
 *
 * Returns: its start, shared with the host callbacks; NULL before a
 * successful init. See qemu_backdoor_channel_data().
 */
void *qemu_backdoor_data(void);

/**
 * qemu_backdoor() - call the host on the qemu_backdoor_init() channel
 * @cmd: the command handed to the host callback
 *
 * On a device with call slots, an inline function after the thread's
 * first call (see qemu_backdoor_seed_call() below).
 *
 * Returns: the callback's 64-bit result. Without a successful init: all
 * ones, with errno set to ENODEV.
 */
uint64_t qemu_backdoor(uint64_t cmd);

/**
 * qemu_backdoor_error() - what the calling thread's last failure was
 *
 * Returns: a one-line message (no trailing newline) naming what is
 * missing, "" when nothing failed yet. Valid until the thread's next call
 * into the library.
 */
const char *qemu_backdoor_error(void);

/**
 * qemu_backdoor_version() - version of the library the program runs with
 *
 * Returns: "MAJOR.MINOR.MICRO"; compare with the QEMU_BACKDOOR_GUEST_VERSION
 * macros of the header the program was built with.
 */
const char *qemu_backdoor_version(void);

/* An open channel: one backdoor PCI device or one user-mode channel. */
typedef struct qemu_backdoor_channel qemu_backdoor_channel;

/**
 * enum qemu_backdoor_guest_mode - how a channel reaches the host
 * @QEMU_BACKDOOR_GUEST_SYSTEM: the backdoor PCI device (qemu-system-*)
 * @QEMU_BACKDOOR_GUEST_USER: user-mode channel files (qemu-<arch>)
 */
typedef enum qemu_backdoor_guest_mode {
    QEMU_BACKDOOR_GUEST_SYSTEM = 1,
    QEMU_BACKDOOR_GUEST_USER = 2,
} qemu_backdoor_guest_mode;

/**
 * qemu_backdoor_open() - open a channel
 * @spec: which one:
 *        NULL or ""         as qemu_backdoor_init(NULL)
 *        "pci"              the first backdoor PCI device (lowest address)
 *        "pci:BDF", "BDF"   the device at PCI address BDF, as in sysfs
 *                           ("0000:00:04.0"; the domain may be left out)
 *        "path:BASE"        the user-mode channel at BASE
 *        a string with '/'  the user-mode channel at that base path
 *
 * System mode maps the device's sysfs resource0 (control) and resource2
 * (data), which needs root.
 *
 * Returns: the channel, or NULL with errno set and qemu_backdoor_error()
 * saying why.
 */
qemu_backdoor_channel *qemu_backdoor_open(const char *spec);

/**
 * qemu_backdoor_close() - close a channel and unmap its data channel
 * @ch: the channel, or NULL (does nothing)
 */
void qemu_backdoor_close(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_call() - call the host
 * @ch: the channel
 * @cmd: the command handed to the host callback
 *
 * Costs one exit to the host (an MMIO read in system mode, a pread() in
 * user mode). Takes the channel's lock (it may already be held by the
 * calling thread).
 *
 * Returns: the callback's 64-bit result.
 */
uint64_t qemu_backdoor_channel_call(qemu_backdoor_channel *ch, uint64_t cmd);

/**
 * qemu_backdoor_channel_data() - the data channel
 * @ch: the channel
 *
 * Returns: its start, shared with the host callbacks; valid until
 * qemu_backdoor_close(). Values the host interprets are in the guest's
 * byte order.
 */
void *qemu_backdoor_channel_data(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_data_size() - usable size of the data channel
 * @ch: the channel
 *
 * Returns: the bytes from qemu_backdoor_channel_data() on that the program
 * may use: the device's data size less the 8-byte call word at its end.
 */
uint64_t qemu_backdoor_channel_data_size(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_lock() - keep other threads off the channel
 * @ch: the channel
 *
 * Held from writing data to reading the host's answer, it keeps other
 * threads' calls (which take it too) out of the exchange. Recursive:
 * qemu_backdoor_channel_call() may be called while holding it.
 */
void qemu_backdoor_channel_lock(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_unlock() - release qemu_backdoor_channel_lock()
 * @ch: the channel
 */
void qemu_backdoor_channel_unlock(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_mode() - how the channel reaches the host
 * @ch: the channel
 */
qemu_backdoor_guest_mode
qemu_backdoor_channel_mode(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_name() - the channel's PCI address or base path
 * @ch: the channel
 *
 * Returns: "0000:00:04.0" in system mode, the base path in user mode;
 * valid until qemu_backdoor_close().
 */
const char *qemu_backdoor_channel_name(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_id() - the channel's identification register
 * @ch: the channel
 *
 * Returns: 0x4244MMmm, MM.mm being the register map version of the device
 * or helper (the library accepts major QEMU_BACKDOOR_REGS_MAJOR only).
 */
uint32_t qemu_backdoor_channel_id(qemu_backdoor_channel *ch);

/**
 * qemu_backdoor_channel_default() - the qemu_backdoor_init() channel
 *
 * Returns: the channel the seed functions use, NULL before a successful
 * qemu_backdoor_init(). Do not close it.
 */
qemu_backdoor_channel *qemu_backdoor_channel_default(void);

/*
 * Call slots and event rings (register map 1.1, docs/guest.md). A thread's
 * slot on a channel is claimed on its first use and released when the
 * thread exits or the channel closes. The struct is public so that the
 * call and the post below are inline; its fields are the library's.
 */
typedef struct qemu_backdoor_slot {
    volatile uint64_t *call_word;   /* in the data channel */
    volatile uint64_t *call_reg;    /* SLOT_CALL(n), or NULL: out of line */
    uint64_t *head;                 /* HEAD, then the ring (+0x30) */
    uint64_t limit;                 /* HEAD value that takes the slow path */
    uint64_t mask;                  /* entries - 1 */
    volatile uint64_t *tail;        /* NULL without a ring */
    uint32_t entries;               /* ring size (a power of two) */
    uint32_t threshold;             /* flush at this many queued; may be
                                     * lowered, = entries: only when full;
                                     * takes effect at the next flush */
    uint64_t full;                  /* posts that found the ring full */
    uint64_t no_ring;               /* HEAD stand-in without a ring */
    qemu_backdoor_channel *channel;
    int index;                      /* slot number, -1 for none */
} qemu_backdoor_slot;

/**
 * qemu_backdoor_channel_slot() - the calling thread's slot on a channel
 * @ch: the channel
 * Claims one on first use. Without slots (a 1.0 device, a user-mode
 * channel without rings, all slots taken) the returned slot has index -1
 * and calls through it take the channel's lock as
 * qemu_backdoor_channel_call() does. In user mode a slot is a ring only:
 * calls through it go the user-mode way (no lock either).
 * Returns: the slot, valid in this thread until the channel is closed;
 * NULL with errno set if out of memory.
 */
qemu_backdoor_slot *qemu_backdoor_channel_slot(qemu_backdoor_channel *ch);

/* Out-of-line halves of the inline functions below. */
uint64_t qemu_backdoor_slot_call_slow(qemu_backdoor_slot *slot,
                                      uint64_t cmd);
int qemu_backdoor_slot_post_slow(qemu_backdoor_slot *slot, uint64_t cmd,
                                 uint64_t a0, uint64_t a1, uint64_t a2);

/*
 * The exit of a slot call: store the call word @word, read the call
 * register @reg. Compiler barriers only: the host reads the call word and
 * writes its answers on the calling vCPU's own thread, after the exit, so
 * the CPU's program order is enough (and a fence costs under TCG).
 */
static inline uint64_t qemu_backdoor_slot_exit(volatile uint64_t *word,
                                               volatile uint64_t *reg,
                                               uint64_t cmd)
{
    uint64_t r;

    __asm__ __volatile__("" ::: "memory");
    *word = cmd;
    r = *reg;
    __asm__ __volatile__("" ::: "memory");
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    r = __builtin_bswap64(r);               /* PCI registers: little-endian */
#endif
    return r;
}

/**
 * qemu_backdoor_slot_call() - call the host through a slot
 * @slot: the calling thread's slot (qemu_backdoor_channel_slot())
 * @cmd: the command
 * With a slot: store the call word, read SLOT_CALL: one exit, no lock.
 * Events this thread posted before the call reach the host before it.
 * Returns: the callback's 64-bit result.
 */
static inline uint64_t qemu_backdoor_slot_call(qemu_backdoor_slot *slot,
                                               uint64_t cmd)
{
    /* The slot's own fields, read once (TCG pays for each access) */
    volatile uint64_t *word = slot->call_word;
    volatile uint64_t *reg = slot->call_reg;

    if (sizeof(void *) < 8 || !reg) {
        return qemu_backdoor_slot_call_slow(slot, cmd);
    }
    return qemu_backdoor_slot_exit(word, reg, cmd);
}

/**
 * qemu_backdoor_slot_post() - post an event without an exit
 * @slot: the calling thread's slot
 * @cmd: the event's command
 * @a0, @a1, @a2: its payload
 * Stores the event in the slot's ring. The host takes the ring's events in
 * order at the next call on the channel (in user mode: of this thread), at
 * a flush, when the VM pauses and at exit (user mode: also when the thread
 * ends); the thread flushes (one exit) when the ring holds
 * @slot->threshold events, and when it is full (counted in @slot->full):
 * no event is dropped. Under the user-mode supervisor (FEATURES bit 5) it
 * kicks instead at the threshold, without waiting: the host drains the
 * ring meanwhile; when the ring is full the thread waits for the host a
 * moment, then flushes (counted in @slot->full either way).
 * Returns: 0, or -1 with errno ENOTSUP when the channel has no rings.
 */
static inline int qemu_backdoor_slot_post(qemu_backdoor_slot *slot,
                                          uint64_t cmd, uint64_t a0,
                                          uint64_t a1, uint64_t a2)
{
    /*
     * As few memory accesses as can be (TCG pays for each): the thread is
     * HEAD's only writer, so it reads HEAD back rather than keep a copy,
     * and the ring follows HEAD.
     */
    uint64_t *hp = slot->head;
    uint64_t h = *hp;
    uint64_t *e;

    if (h >= slot->limit) {
        return qemu_backdoor_slot_post_slow(slot, cmd, a0, a1, a2);
    }
    e = hp + 6 + (h & slot->mask) * 4;
    e[0] = cmd;
    e[1] = a0;
    e[2] = a1;
    e[3] = a2;
    __atomic_store_n(hp, h + 1, __ATOMIC_RELEASE);
    return 0;
}

/**
 * qemu_backdoor_slot_flush() - hand the slot's queued events to the host
 * @slot: the calling thread's slot
 * One exit (DOORBELL); returns when the host has taken them.
 * Returns: 0, or -1 with errno ENOTSUP when the channel has no rings.
 */
int qemu_backdoor_slot_flush(qemu_backdoor_slot *slot);

/*
 * The calling thread's slot on the qemu_backdoor_init() channel, once a
 * qemu_backdoor() call has claimed it: its call word and call register,
 * here rather than behind a pointer to the slot (under TCG each load of a
 * chain costs). The library's, read by the inline qemu_backdoor() below;
 * call_reg is NULL until then and after the channel closed, which sends
 * the call out of line.
 */
typedef struct qemu_backdoor_seed {
    volatile uint64_t *call_word;
    volatile uint64_t *call_reg;
} qemu_backdoor_seed;

extern __thread qemu_backdoor_seed qemu_backdoor_seed_regs
    __attribute__((tls_model("initial-exec")));

/**
 * qemu_backdoor_seed_call() - qemu_backdoor(), inline
 * @cmd: the command handed to the host callback
 * qemu_backdoor(cmd) is this function unless QEMU_BACKDOOR_NO_INLINE is
 * defined: the thread's slot, no function call (under TCG a call and its
 * return cost a quarter of the exit). The first call of each thread,
 * calls without a slot (a 1.0 device, user mode, 32-bit guests) and calls
 * after qemu_backdoor_init() replaced the channel go to the library's
 * qemu_backdoor(), which &qemu_backdoor and (qemu_backdoor)(cmd) also
 * name.
 * Returns: as qemu_backdoor().
 */
static inline uint64_t qemu_backdoor_seed_call(uint64_t cmd)
{
    volatile uint64_t *word = qemu_backdoor_seed_regs.call_word;
    volatile uint64_t *reg = qemu_backdoor_seed_regs.call_reg;

    if (sizeof(void *) < 8 || !reg) {
        return (qemu_backdoor)(cmd);
    }
    return qemu_backdoor_slot_exit(word, reg, cmd);
}

#ifndef QEMU_BACKDOOR_NO_INLINE
#define qemu_backdoor(cmd) qemu_backdoor_seed_call(cmd)
#endif

/**
 * qemu_backdoor_post() - post an event on the qemu_backdoor_init() channel
 * @cmd: the event's command
 * @a0, @a1, @a2: its payload
 * qemu_backdoor_slot_post() on the calling thread's slot.
 * Returns: 0, or -1 with errno set (ENODEV before init, ENOTSUP without
 * rings).
 */
int qemu_backdoor_post(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2);

#ifdef __cplusplus
}
#endif

#endif /* QEMU_BACKDOOR_H */
