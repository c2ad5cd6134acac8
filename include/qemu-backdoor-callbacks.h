/* SPDX-License-Identifier: MIT */
/*
 * qemu-backdoor callback ABI: what a host callback library implements.
 *
 * A callback library is a shared object loaded at run time by the backdoor
 * PCI device (system mode, "-device backdoor,callbacks=PATH") and by the
 * user-mode helper (QEMU_BACKDOOR_LIB=PATH). One library works in both.
 *
 * It exports two symbols, like a QEMU TCG plugin:
 *
 *   QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
 *       QEMU_BACKDOOR_CALLBACKS_VERSION;
 *   QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_init(
 *       const qemu_backdoor_info *info, qemu_backdoor_callbacks *cb);
 *
 * The host refuses a library whose version is outside
 * [QEMU_BACKDOOR_CALLBACKS_MIN_VERSION, QEMU_BACKDOOR_CALLBACKS_VERSION] of
 * the host, and stops QEMU at start-up with the reason.
 *
 * Libraries written for the 2011 seed API, which export only
 * qemu_backdoor_init() and qemu_backdoor(), keep working: see
 * <backdoor/qemu/qemu-backdoor.h>.
 *
 * ABI changelog:
 *   1  First version: qemu_backdoor_info, qemu_backdoor_call,
 *      qemu_backdoor_callbacks, guest-endian access helpers.
 *   2  Event rings (register map 1.1): qemu_backdoor_event,
 *      qemu_backdoor_batch and qemu_backdoor_callbacks.batch. A library
 *      without batch gets each event as a call of its command.
 *      Snapshots, migration and hot reload: qemu_backdoor_callbacks.save
 *      and .load. A device whose library sets neither cannot be migrated
 *      or snapshotted. Libraries may be swapped while the guest runs:
 *      the old one's exit runs before the new one's init.
 *      Guest memory: qemu_backdoor_call.guest_read/.guest_write and
 *      qemu_backdoor_guest_read()/qemu_backdoor_guest_write().
 *
 * Compatibility: structs the host fills start with a version field and only
 * grow at the end ("added in version N"); read a field only when
 * version >= N.
 */
#ifndef QEMU_BACKDOOR_CALLBACKS_H
#define QEMU_BACKDOOR_CALLBACKS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QEMU_BACKDOOR_CALLBACKS_VERSION 2
#define QEMU_BACKDOOR_CALLBACKS_MIN_VERSION 1

/*
 * Build callback libraries with -fvisibility=hidden and mark the two entry
 * symbols with this macro.
 */
#define QEMU_BACKDOOR_EXPORT __attribute__((visibility("default")))

/**
 * enum qemu_backdoor_mode - which kind of QEMU runs the callbacks
 * @QEMU_BACKDOOR_MODE_SYSTEM: qemu-system-*, the backdoor PCI device
 * @QEMU_BACKDOOR_MODE_USER: qemu-<arch> (linux-user), the user-mode helper
 */
typedef enum qemu_backdoor_mode {
    QEMU_BACKDOOR_MODE_SYSTEM = 1,
    QEMU_BACKDOOR_MODE_USER = 2,
} qemu_backdoor_mode;

/**
 * struct qemu_backdoor_info - what the host tells a library at init
 * @version: the callback ABI version the host speaks
 * @mode: system or user mode
 * @path: the library path as the user gave it
 * @args: the user's argument string ("callbacks-args" device property or
 *        QEMU_BACKDOOR_ARGS), "" when none was given; never NULL
 * @id: the device's id in system mode ("" when it has none), the channel
 *      base path in user mode
 * @data: host pointer to the data channel; valid from init until exit
 * @data_size: size of the data channel in bytes
 * @guest_big_endian: true when the target starts big-endian; values in the
 *                    data channel are stored in the guest's byte order,
 *                    which ppc and arm guests can change: each call's
 *                    guest_big_endian is the one that counts
 *
 * The struct itself is only valid for the duration of the init call;
 * copy what you need.
 */
typedef struct qemu_backdoor_info {
    uint32_t version;
    qemu_backdoor_mode mode;
    const char *path;
    const char *args;
    const char *id;
    void *data;
    uint64_t data_size;
    bool guest_big_endian;
} qemu_backdoor_info;

/**
 * struct qemu_backdoor_call - one call from the guest
 * @version: the callback ABI version the host speaks
 * @cmd: the command the guest wrote
 * @data: host pointer to the data channel (same as qemu_backdoor_info.data)
 * @data_size: size of the data channel in bytes
 * @guest_big_endian: byte order of the calling vCPU at this call (see the
 *                    access helpers below)
 * @vcpu_index: index of the calling vCPU in system mode; in user mode,
 *              QEMU's cpu_index of the calling guest thread's CPU (0 for
 *              the main thread, stable for the thread's life; numbers of
 *              exited threads may be reused); -1 when the access did not
 *              come from a vCPU (qtest, DMA)
 * @mode: system or user mode
 * @opaque: the library's own pointer, as set by its init
 * @guest_read: added in version 2; use qemu_backdoor_guest_read()
 * @guest_write: added in version 2; use qemu_backdoor_guest_write()
 * @host: added in version 2; the host's own, do not use
 *
 * Only valid for the duration of the call.
 */
typedef struct qemu_backdoor_call {
    uint32_t version;
    uint64_t cmd;
    void *data;
    uint64_t data_size;
    bool guest_big_endian;
    int vcpu_index;
    qemu_backdoor_mode mode;
    void *opaque;
    /* added in version 2: guest memory */
    int (*guest_read)(const struct qemu_backdoor_call *call, uint64_t addr,
                      void *buf, uint64_t len);
    int (*guest_write)(const struct qemu_backdoor_call *call, uint64_t addr,
                       const void *buf, uint64_t len);
    void *host;
} qemu_backdoor_call;

/**
 * struct qemu_backdoor_event - one event a guest posted to a ring
 * @cmd: the event's command word
 * @arg: its payload
 * Added in version 2. Host byte order (the host converted it).
 */
typedef struct qemu_backdoor_event {
    uint64_t cmd;
    uint64_t arg[3];
} qemu_backdoor_event;

/**
 * struct qemu_backdoor_batch - events drained from one guest ring
 * @version: the callback ABI version the host speaks
 * @events: the events, oldest first
 * @count: how many (at least 1)
 * @producer: the ring's slot number (system mode) or the posting guest
 *            thread's ring number (user mode); events of one producer
 *            arrive in the order posted, across batches too
 * @vcpu_index: the vCPU (user mode: the guest thread) whose access drained
 *              the ring (a call, a doorbell; after a user-mode kick, the
 *              ring's thread), or -1 when the host drained it (pause, hot
 *              reload, a thread or process gone, exit)
 * @mode: system or user mode
 * @opaque: the library's own pointer, as set by its init
 * @data: host pointer to the data channel
 * @data_size: size of the data channel
 * @guest_big_endian: the byte order the events were read in
 * Added in version 2. Only valid for the duration of the callback.
 */
typedef struct qemu_backdoor_batch {
    uint32_t version;
    const qemu_backdoor_event *events;
    size_t count;
    int producer;
    int vcpu_index;
    qemu_backdoor_mode mode;
    void *opaque;
    void *data;
    uint64_t data_size;
    bool guest_big_endian;
} qemu_backdoor_batch;

/**
 * struct qemu_backdoor_callbacks - what a library gives back from init
 * @call: run a guest call and return the 64-bit result handed to the guest
 * @exit: optional; called once when the device or process goes away
 * @opaque: handed back in every qemu_backdoor_call and to @exit
 * @error: set by a failing init to a message saying why (static storage
 *         or storage that lives until the library is unloaded)
 * @save: optional, added in version 2; with @load, makes the device
 *        migratable (savevm, migrate). Called with the VM stopped, no call
 *        running. Set *@state to a malloc()ed buffer of *@size bytes
 *        holding the library's state (the host free()s it), or leave it
 *        NULL for no state. Return 0, or non-zero to fail the save.
 * @load: optional, added in version 2; restore the state a @save wrote
 *        (loadvm, incoming migration), with the VM stopped, no call
 *        running. @state is only valid during the call; it may come from
 *        another host or an older build of the library: check it. Return
 *        0, or non-zero to fail the load.
 *
 * The host zeroes the struct before init. The data channel migrates with
 * the VM whether or not a library has hooks; only the library's own state
 * needs them.
 *
 * Threading: @call may run concurrently on several threads. In system mode
 * QEMU serializes calls to one device (they run under QEMU's global lock),
 * but two devices using the same library may be called at once from
 * different vCPUs; in user mode every guest thread calls on its own host
 * thread, concurrently. Keep per-vCPU state indexed by vcpu_index or lock.
 * @call runs on the vCPU's thread and stalls that vCPU until it returns.
 * @batch: optional (version 2); receives events the guest posted to its
 *         rings without an exit, in batches, in order per producer; runs
 *         where @call runs (same locking: in user mode batches of
 *         different producers may run concurrently, as calls do, one
 *         producer's never), and also when the VM pauses, before a hot
 *         reload's swap and at exit. Without it each event becomes a
 *         @call of its command (its arguments are then not seen).
 */
typedef struct qemu_backdoor_callbacks {
    uint64_t (*call)(const qemu_backdoor_call *call);
    void (*exit)(void *opaque);
    void *opaque;
    const char *error;
    /* added in version 2: snapshots and migration */
    int (*save)(void *opaque, void **state, uint64_t *size);
    int (*load)(void *opaque, const void *state, uint64_t size);
    /* added in version 2: event rings */
    void (*batch)(const qemu_backdoor_batch *batch);
} qemu_backdoor_callbacks;

/**
 * qemu_backdoor_callbacks_version - the ABI version a library was built for
 *
 * Define it in the library as
 * QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
 *     QEMU_BACKDOOR_CALLBACKS_VERSION;
 */
extern QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version;

/**
 * qemu_backdoor_callbacks_init() - the library's entry point
 * @info: what the host tells the library
 * @cb: zeroed struct to fill; @cb->call is required
 *
 * Called once per device (system mode) or once per process (user mode),
 * before the guest can make any call, and again for each hot reload (a
 * library swapped in while the guest runs; the old one's exit has run).
 * Return 0 on success; any other value stops QEMU at start-up with
 * @cb->error as the reason (in a hot reload: fails it, see
 * docs/callbacks.rst).
 */
QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb);

/*
 * Guest-endian access helpers: load and store 8/16/32/64-bit values in the
 * data channel in the guest's byte order. @ptr need not be aligned.
 */
#define QEMU_BACKDOOR_DEFINE_ACCESS(bits, swap)                              \
    static inline uint##bits##_t                                             \
    qemu_backdoor_ld##bits(bool guest_big_endian, const void *ptr)           \
    {                                                                        \
        uint##bits##_t v;                                                    \
        memcpy(&v, ptr, sizeof(v));                                          \
        return guest_big_endian != qemu_backdoor_host_big_endian() ?         \
               swap(v) : v;                                                  \
    }                                                                        \
    static inline void                                                       \
    qemu_backdoor_st##bits(bool guest_big_endian, void *ptr,                 \
                           uint##bits##_t v)                                 \
    {                                                                        \
        if (guest_big_endian != qemu_backdoor_host_big_endian()) {           \
            v = swap(v);                                                     \
        }                                                                    \
        memcpy(ptr, &v, sizeof(v));                                          \
    }

static inline bool qemu_backdoor_host_big_endian(void)
{
    return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
}

#define QEMU_BACKDOOR_NOSWAP(v) (v)
QEMU_BACKDOOR_DEFINE_ACCESS(8, QEMU_BACKDOOR_NOSWAP)
QEMU_BACKDOOR_DEFINE_ACCESS(16, __builtin_bswap16)
QEMU_BACKDOOR_DEFINE_ACCESS(32, __builtin_bswap32)
QEMU_BACKDOOR_DEFINE_ACCESS(64, __builtin_bswap64)

/*
 * Shorthands for use inside a call: load/store at byte @offset of the data
 * channel, in the guest's byte order. No bounds check: the caller keeps
 * offset + size within call->data_size.
 */
static inline uint64_t
qemu_backdoor_data_ld64(const qemu_backdoor_call *call, uint64_t offset)
{
    return qemu_backdoor_ld64(call->guest_big_endian,
                              (const char *)call->data + offset);
}

static inline void
qemu_backdoor_data_st64(const qemu_backdoor_call *call, uint64_t offset,
                        uint64_t value)
{
    qemu_backdoor_st64(call->guest_big_endian, (char *)call->data + offset,
                       value);
}

/**
 * qemu_backdoor_guest_read() - copy guest memory into @buf
 * @call: the call being run (only valid during it)
 * @addr: guest address: physical in system mode (as the device would
 *        DMA it: through the IOMMU if the machine has one), the calling
 *        process's virtual address in user mode
 * @buf: host buffer of @len bytes
 * @len: bytes to copy
 *
 * All or nothing is checked first: every byte must be guest RAM (system
 * mode) or mapped readable by the guest (user mode). No guest address can
 * reach host memory outside the guest. Values are in the guest's byte
 * order (see the access helpers below).
 *
 * Returns: 0, -EFAULT when a byte is outside the guest's memory (or the
 * IOMMU refuses it), -ENOSYS when the host cannot (see docs/callbacks.rst),
 * -ENOMEM when the user-mode supervisor has no memory for its copy of a
 * read of more than 64 KiB.
 */
static inline int qemu_backdoor_guest_read(const qemu_backdoor_call *call,
                                           uint64_t addr, void *buf,
                                           uint64_t len)
{
    if (call->version < 2 || !call->guest_read) {
        return -ENOSYS;
    }
    return call->guest_read(call, addr, buf, len);
}

/**
 * qemu_backdoor_guest_write() - copy @buf into guest memory
 * @call, @addr, @len: as qemu_backdoor_guest_read()
 * @buf: host buffer of @len bytes
 *
 * Returns: as qemu_backdoor_guest_read(); writable memory is needed.
 */
static inline int qemu_backdoor_guest_write(const qemu_backdoor_call *call,
                                            uint64_t addr, const void *buf,
                                            uint64_t len)
{
    if (call->version < 2 || !call->guest_write) {
        return -ENOSYS;
    }
    return call->guest_write(call, addr, buf, len);
}

#ifdef __cplusplus
}
#endif

#endif /* QEMU_BACKDOOR_CALLBACKS_H */
