/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * backdoor: a guest-to-host communication channel as a PCI device.
 *
 * BAR0 is the control channel (MMIO), BAR2 the data channel (RAM). A guest
 * call runs a host callback library loaded at run time (see
 * include/qemu-backdoor-callbacks.h). The register map is the guest ABI:
 * docs/specs/backdoor.rst.
 *
 * Built out of tree against the sources of the installed QEMU, three ways:
 * as a QEMU module (BUILD_DSO), and as a loader that is LD_PRELOADed or
 * given to -plugin (backdoor-plugin.c).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "hw/core/cpu.h"
#include "hw/core/sysemu-cpu-ops.h"
#include "migration/blocker.h"
#include "migration/misc.h"
#include "migration/vmstate.h"
#include "qapi/visitor.h"
#include "qemu/notify.h"
#include "qom/object.h"
#include "qemu/bitmap.h"

#include "backdoor.h"
#include "compat.h"
#include "loader.h"
#include "regs.h"
#include "ring.h"

OBJECT_DECLARE_SIMPLE_TYPE(BackdoorState, BACKDOOR)

#define BACKDOOR_CTRL_SIZE          0x1000

struct BackdoorState {
    PCIDevice parent_obj;

    MemoryRegion ctrl;
    MemoryRegion data;
    /*
     * What the registers read: the data channel, and the call slots of
     * register map 1.1 (properties data-size, slots and ring-entries,
     * then what fits)
     */
    BackdoorRegs regs;
    bool big_endian;            /* the target's default byte order */
    bool cpu_endian;            /* CPUs can switch: ask the calling one */
    BackdoorCallbacks *callbacks;
    Notifier exit_notifier;     /* QEMU does not unrealize devices at exit */

    /* properties */
    char *callbacks_path;
    char *callbacks_args;

    /* registers */
    uint64_t result;
    uint64_t call_offset;

    /* counters, read-only QOM properties */
    uint64_t calls;
    uint64_t guest_errors;

    /* call slots and event rings (register map 1.1) */
    unsigned long *slot_used;   /* claimed by SLOT_ALLOC */
    int32_t vm_slots;           /* slots, as the migration bitmap sizes it */
    VMChangeStateEntry *vmstate_change;
    uint64_t events;            /* counters, read-only QOM properties */
    uint64_t doorbells;
    uint64_t ring_full;
    /* snapshots, migration (callback ABI 2) */
    Error *migration_blocker;   /* set while the library has no hooks */
    uint8_t *lib_state;         /* the library's state, saved or loaded */
    uint32_t lib_state_size;

    /* guest memory for callbacks: set while one reads or writes it */
    bool in_guest_access;

    /* hot reload: callbacks_args may change before the next swap */
    char *loaded_args;          /* the args the loaded library was given */

    /*
     * What a call hands the library, its constant fields filled in at
     * realize: a call sets only its own (calls run one at a time, under
     * the BQL, and a callback cannot call this device).
     */
    qemu_backdoor_call call;
};

static void G_GNUC_PRINTF(2, 3)
backdoor_guest_error(BackdoorState *s, const char *fmt, ...)
{
    va_list ap;

    s->guest_errors++;
    if (qemu_loglevel_mask(LOG_GUEST_ERROR)) {
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        qemu_log("backdoor: %s\n", msg);
    }
}

/*
 * The calling CPU's byte order, as legacy virtio asks it: a ppc64 CPU runs
 * a little-endian Linux, an arm one may run big-endian. Targets whose
 * byte order is fixed keep the cached answer (no call, no state sync).
 */
static bool backdoor_guest_big_endian(BackdoorState *s)
{
    if (s->cpu_endian && current_cpu) {
        return cpu_virtio_is_big_endian(current_cpu);
    }
    return s->big_endian;
}

static void backdoor_drain_all(BackdoorState *s, bool be);
/*
 * Guest memory for callbacks (ABI 2): physical addresses through the
 * device's IOMMU address space, as its DMA would go (bus mastering is not
 * needed: the guest library maps the BARs and enables nothing else). Only
 * guest memory and devices are reachable: the memory API decodes every
 * address. The device's own registers are refused, or a callback could
 * run a call inside a call.
 */
static int backdoor_guest_rw(const qemu_backdoor_call *call, uint64_t addr,
                             void *buf, uint64_t len, bool is_write)
{
    BackdoorState *s = call->host;
    MemTxResult r;

    if (addr + len < addr) {
        return -EFAULT;
    }
    s->in_guest_access = true;
    r = address_space_rw(pci_device_iommu_address_space(PCI_DEVICE(s)),
                         addr, MEMTXATTRS_UNSPECIFIED, buf, len, is_write);
    s->in_guest_access = false;
    return r == MEMTX_OK ? 0 : -EFAULT;
}

static int backdoor_guest_read(const qemu_backdoor_call *call, uint64_t addr,
                               void *buf, uint64_t len)
{
    return backdoor_guest_rw(call, addr, buf, len, false);
}

static int backdoor_guest_write(const qemu_backdoor_call *call,
                                uint64_t addr, const void *buf, uint64_t len)
{
    return backdoor_guest_rw(call, addr, (void *)buf, len, true);
}

/*
 * Whether a claimed slot's ring holds events (HEAD != TAIL, equal in
 * either byte order). It runs before every call, so it makes no call: two
 * loads per claimed slot, where draining every claimed slot cost a tenth
 * of the call.
 */
static inline bool backdoor_rings_pending(BackdoorState *s)
{
    const uint8_t *blk0 = (const uint8_t *)s->regs.data + s->regs.slot_base;

    if (!s->slot_used || !s->regs.ring_entries) {
        return false;
    }
    for (unsigned w = 0; w < BITS_TO_LONGS(s->regs.slots); w++) {
        for (unsigned long bits = s->slot_used[w]; bits; bits &= bits - 1) {
            const uint8_t *blk = blk0 + (w * BITS_PER_LONG + ctzl(bits)) *
                                        s->regs.slot_stride;

            if (ldq_he_p(blk + BACKDOOR_SLOTBLK_HEAD) !=
                ldq_he_p(blk + BACKDOOR_SLOTBLK_TAIL)) {
                return true;
            }
        }
    }
    return false;
}

static inline uint64_t backdoor_call(BackdoorState *s, uint64_t cmd, bool be)
{
    if (backdoor_rings_pending(s)) {
        backdoor_drain_all(s, be);
    }
    s->calls++;
    if (!s->callbacks) {
        /* A hot reload failed and the old library could not restart */
        backdoor_guest_error(s, "call 0x%" PRIx64 " with no callback "
                             "library loaded", cmd);
        s->result = ~0ULL;
        return s->result;
    }
    s->call.cmd = cmd;
    s->call.guest_big_endian = be;
    s->call.vcpu_index = current_cpu ? current_cpu->cpu_index : -1;
    s->result = backdoor_callbacks_call(s->callbacks, &s->call);
    return s->result;
}

static uint8_t *backdoor_slot(BackdoorState *s, unsigned n)
{
    return backdoor_ring_slot(&s->regs, n);
}

static uint64_t backdoor_ld64(bool be, const void *p)
{
    return be ? ldq_be_p(p) : ldq_le_p(p);
}

static void backdoor_st64(bool be, void *p, uint64_t v)
{
    if (be) {
        stq_be_p(p, v);
    } else {
        stq_le_p(p, v);
    }
}

/*
 * Hand the events of slot @n's ring to the library (ring.c). The guest
 * thread that owns the slot may be posting at the same time on another
 * vCPU; the ring needs no lock for that. All drains run under the BQL.
 */
static void backdoor_drain(BackdoorState *s, unsigned n, bool be)
{
    qemu_backdoor_batch batch = {
        .producer = n,
        .vcpu_index = current_cpu ? current_cpu->cpu_index : -1,
        .mode = QEMU_BACKDOOR_MODE_SYSTEM,
        .data = s->regs.data,
        .data_size = s->regs.data_size,
        .guest_big_endian = be,
    };
    uint64_t head, tail;

    if (!s->callbacks) {
        return;     /* a failed hot reload: the events wait for a library */
    }
    if (!backdoor_ring_drain(s->callbacks, backdoor_slot(s, n),
                             s->regs.ring_entries, &batch, false, &s->events,
                             &head, &tail)) {
        backdoor_guest_error(s, "slot %u: ring HEAD 0x%" PRIx64 " is more "
                             "than %u events past TAIL 0x%" PRIx64 "; "
                             "dropping the ring's contents", n, head,
                             s->regs.ring_entries, tail);
    }
}

/* Every synchronous call first delivers what every ring holds. */
static void backdoor_drain_all(BackdoorState *s, bool be)
{
    uint32_t slots = s->regs.slots;

    if (!s->slot_used || !s->regs.ring_entries) {
        return;
    }
    for (unsigned n = find_first_bit(s->slot_used, slots);
         n < slots; n = find_next_bit(s->slot_used, slots, n + 1)) {
        backdoor_drain(s, n, be);
    }
}

static bool backdoor_slot_claimed(BackdoorState *s, uint64_t n)
{
    return n < s->regs.slots && test_bit(n, s->slot_used);
}

/*
 * The register model (regs.h) checks offsets and widths, rather than
 * MemoryRegionOps.valid, so that every wrong access is counted in
 * guest-errors, not just dropped by the memory core.
 */
static bool backdoor_access_ok(BackdoorState *s, hwaddr addr, unsigned size,
                               bool write, BackdoorReg *reg, unsigned *slot)
{
    const char *dir = write ? "write" : "read";

    switch (backdoor_regs_check(&s->regs, addr, size, write, reg, slot)) {
    case BACKDOOR_ACCESS_OK:
        return true;
    case BACKDOOR_ACCESS_RESERVED:
        backdoor_guest_error(s, "%s of reserved control offset 0x%"
                             HWADDR_PRIx, dir, addr);
        break;
    case BACKDOOR_ACCESS_DIRECTION:
        backdoor_guest_error(s, "%s of %s control offset 0x%" HWADDR_PRIx,
                             dir, write ? "read-only" : "write-only", addr);
        break;
    case BACKDOOR_ACCESS_WIDTH:
        backdoor_guest_error(s, "%u-byte %s at control offset 0x%"
                             HWADDR_PRIx " (see docs/specs/backdoor.rst)",
                             size, dir, addr);
        break;
    }
    return false;
}

/* SLOT_ALLOC: the lowest free slot, with its ring emptied; ~0 if none. */
static uint64_t backdoor_slot_alloc(BackdoorState *s)
{
    unsigned n = find_first_zero_bit(s->slot_used, s->regs.slots);

    if (n >= s->regs.slots) {
        return 0xffffffffu;
    }
    set_bit(n, s->slot_used);
    backdoor_ring_reset(backdoor_slot(s, n), backdoor_guest_big_endian(s));
    return n;
}

/* SLOT_CALL(n): the call word of slot n, its result into the slot too. */
static uint64_t backdoor_slot_call(BackdoorState *s, unsigned n)
{
    bool be = backdoor_guest_big_endian(s);
    uint8_t *blk = backdoor_slot(s, n);
    uint64_t result;

    if (!test_bit(n, s->slot_used)) {
        backdoor_guest_error(s, "call through slot %u, which is not "
                             "claimed (read SLOT_ALLOC first)", n);
        return ~0ULL;
    }
    result = backdoor_call(s, backdoor_ld64(be, blk + BACKDOOR_SLOTBLK_WORD),
                           be);
    backdoor_st64(be, blk + BACKDOOR_SLOTBLK_RESULT, result);
    return result;
}

/* SLOT_FREE and DOORBELL: both name a claimed slot and drain its ring. */
static void backdoor_slot_write(BackdoorState *s, bool doorbell,
                                uint64_t val)
{
    uint64_t n = doorbell ? val & ~(uint64_t)BACKDOOR_DOORBELL_FULL : val;

    if (!backdoor_slot_claimed(s, n)) {
        backdoor_guest_error(s, "%s of slot 0x%" PRIx64 ", which is not "
                             "claimed", doorbell ? "DOORBELL" : "SLOT_FREE",
                             n);
        return;
    }
    backdoor_drain(s, n, backdoor_guest_big_endian(s));
    if (!doorbell) {
        clear_bit(n, s->slot_used);
        return;
    }
    s->doorbells++;
    if (val & BACKDOOR_DOORBELL_FULL) {
        s->ring_full++;
    }
}

static uint64_t backdoor_ctrl_read(void *opaque, hwaddr addr, unsigned size)
{
    BackdoorState *s = opaque;
    BackdoorReg reg;
    unsigned slot;
    uint64_t val;
    int call;
    bool be;

    if (s->in_guest_access) {
        backdoor_guest_error(s, "a callback's guest memory read reached "
                             "the device's registers");
        return ~0ULL;
    }
    /* The calls without the register model's lookup: guests do little else */
    if (backdoor_regs_call_read(&s->regs, addr, size, &call)) {
        reg = call < 0 ? BACKDOOR_R_CALL : BACKDOOR_R_SLOT_CALL;
        slot = call;
    } else if (!backdoor_access_ok(s, addr, size, false, &reg, &slot)) {
        return ~0ULL;
    }
    switch (reg) {
    case BACKDOOR_R_RESULT:
        return s->result;
    case BACKDOOR_R_RESULT_HI:
        return s->result >> 32;
    case BACKDOOR_R_CALL_OFFSET:
        return s->call_offset;
    case BACKDOOR_R_CALL:
        be = backdoor_guest_big_endian(s);
        return backdoor_call(s, backdoor_regs_call_word(&s->regs,
                                                        s->call_offset, be),
                             be);
    case BACKDOOR_R_SLOT_ALLOC:
        return backdoor_slot_alloc(s);
    case BACKDOOR_R_SLOT_CALL:
        return backdoor_slot_call(s, slot);
    default:
        /* ID, FEATURES, DATA_SIZE and the slot layout */
        if (!backdoor_regs_fixed(&s->regs, reg, &val)) {
            g_assert_not_reached();
        }
        return val;
    }
}

static void backdoor_ctrl_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    BackdoorState *s = opaque;
    BackdoorReg reg;

    if (s->in_guest_access) {
        backdoor_guest_error(s, "a callback's guest memory write reached "
                             "the device's registers");
        return;
    }
    if (!backdoor_access_ok(s, addr, size, true, &reg, NULL)) {
        return;
    }
    switch (reg) {
    case BACKDOOR_R_CMD:
        backdoor_call(s, val, backdoor_guest_big_endian(s));
        break;
    case BACKDOOR_R_CALL_OFFSET:
        if (!backdoor_regs_call_offset_ok(&s->regs, val)) {
            backdoor_guest_error(s, "CALL_OFFSET 0x%" PRIx64 " is not an "
                                 "8-aligned offset inside the data BAR", val);
            break;
        }
        s->call_offset = val;
        break;
    case BACKDOOR_R_SLOT_FREE:
    case BACKDOOR_R_DOORBELL:
        backdoor_slot_write(s, reg == BACKDOOR_R_DOORBELL, val);
        break;
    default:
        g_assert_not_reached();
    }
}

static const MemoryRegionOps backdoor_ctrl_ops = {
    .read = backdoor_ctrl_read,
    .write = backdoor_ctrl_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

static void backdoor_unload(BackdoorState *s)
{
    backdoor_callbacks_unload(s->callbacks);
    s->callbacks = NULL;
}

/* What the library's init is told; valid while @s and its strings live. */
static qemu_backdoor_info *backdoor_init_info(BackdoorState *s,
                                              const char *args,
                                              qemu_backdoor_info *info)
{
    *info = backdoor_regs_info(&s->regs, args, DEVICE(s)->id, s->big_endian);
    return info;
}

/* ---- snapshots and migration (callback ABI 2) ---- */

/*
 * The data channel is guest RAM and migrates with it; the library's state
 * migrates only through its save/load hooks. Without them the device
 * blocks migration and snapshots, naming the library.
 */
static bool backdoor_update_blocker(BackdoorState *s, Error **errp)
{
    const char *id = DEVICE(s)->id;

    migrate_del_blocker(&s->migration_blocker);
    if (s->callbacks && backdoor_callbacks_can_migrate(s->callbacks)) {
        return true;
    }
    if (s->callbacks) {
        error_setg(&s->migration_blocker, "backdoor%s%s: callbacks '%s' "
                   "have no save/load hooks (callback ABI 2, see "
                   "docs/callbacks.rst): the VM cannot be migrated or "
                   "snapshotted", id ? " " : "", id ? id : "",
                   backdoor_callbacks_name(s->callbacks));
    } else {
        error_setg(&s->migration_blocker, "backdoor%s%s: no callback "
                   "library loaded", id ? " " : "", id ? id : "");
    }
    return migrate_add_blocker(&s->migration_blocker, errp) == 0;
}

static int backdoor_pre_save(void *opaque)
{
    BackdoorState *s = opaque;
    g_autoptr(GError) err = NULL;
    void *state;
    uint64_t size;

    g_assert(s->callbacks && backdoor_callbacks_can_migrate(s->callbacks));
    if (!backdoor_callbacks_save(s->callbacks, &state, &size, &err)) {
        error_report("backdoor: %s", err->message);
        return -1;
    }
    if (size > UINT32_MAX) {
        error_report("backdoor: callbacks '%s' saved %" PRIu64 " bytes of "
                     "state, more than 4 GiB",
                     backdoor_callbacks_name(s->callbacks), size);
        free(state);
        return -1;
    }
    s->lib_state = state;
    s->lib_state_size = size;
    return 0;
}

static int backdoor_post_save(void *opaque)
{
    BackdoorState *s = opaque;

    free(s->lib_state);
    s->lib_state = NULL;
    s->lib_state_size = 0;
    return 0;
}

static int backdoor_post_load(void *opaque, int version_id)
{
    BackdoorState *s = opaque;
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *state = g_steal_pointer(&s->lib_state);
    uint32_t size = s->lib_state_size;

    s->lib_state_size = 0;
    if (!s->callbacks || !backdoor_callbacks_can_migrate(s->callbacks)) {
        /* The blocker keeps this from a savevm, not from an -incoming */
        error_report("backdoor: the incoming state has library state, but "
                     "callbacks '%s' have no load hook",
                     s->callbacks ? backdoor_callbacks_name(s->callbacks) :
                     "(none)");
        return -1;
    }
    if (!backdoor_callbacks_load_state(s->callbacks, state, size, &err)) {
        error_report("backdoor: %s", err->message);
        return -1;
    }
    return 0;
}

/* ---- hot reload ---- */

/*
 * Swap the library for @name while the guest runs (qom-set callbacks).
 * The new library is found, checked and opened first: any error there
 * leaves the old one untouched. Then, with every vCPU out of the device
 * (today calls run under the BQL, which the monitor holds too; pausing
 * the vCPUs keeps that true for calls that take no BQL), the old library's
 * exit runs and the new one's init. If that init fails, the old library
 * is started again (with fresh state, its exit has run) and the error
 * goes back to the monitor.
 */
static void backdoor_reload(BackdoorState *s, const char *name, Error **errp)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) restart_err = NULL;
    BackdoorCallbacks *old = s->callbacks;
    BackdoorCallbacks *new;
    qemu_backdoor_info info;
    bool was_running = runstate_is_running();
    Error *local_err = NULL;

    if (migration_is_running()) {
        error_setg(errp, "backdoor: a migration is running: swap the "
                   "callbacks after it");
        return;
    }
    new = backdoor_callbacks_open(name, &err);
    if (!new) {
        error_setg(errp, "backdoor: %s", err->message);
        return;
    }

    if (was_running) {
        pause_all_vcpus();
    }
    /* What the guest posted is the old library's: before its exit */
    if (old) {
        backdoor_drain_all(s, s->big_endian);
    }
    backdoor_callbacks_stop(old);
    if (backdoor_callbacks_start(new, backdoor_init_info(s, s->callbacks_args,
                                                         &info), &err)) {
        s->callbacks = new;
        if (backdoor_update_blocker(s, &local_err)) {
            backdoor_callbacks_close(old);
            g_free(s->callbacks_path);
            s->callbacks_path = g_strdup(name);
            g_free(s->loaded_args);
            s->loaded_args = g_strdup(s->callbacks_args);
            goto out;
        }
        /* -only-migratable and a library without hooks */
        backdoor_callbacks_stop(new);
        error_propagate(errp, local_err);
    } else {
        error_setg(errp, "backdoor: %s; kept callbacks '%s'", err->message,
                   old ? backdoor_callbacks_name(old) : "(none)");
    }
    backdoor_callbacks_close(new);
    s->callbacks = old;
    if (old && !backdoor_callbacks_start(old,
                                         backdoor_init_info(s, s->loaded_args,
                                                            &info),
                                         &restart_err)) {
        error_report("backdoor: %s: the device has no callbacks now",
                     restart_err->message);
        backdoor_callbacks_close(old);
        s->callbacks = NULL;
    }
    backdoor_update_blocker(s, NULL);
out:
    if (was_running) {
        resume_all_vcpus();
    }
}

/* Before realize: a plain string. After: a hot reload (see above). */
static void backdoor_set_callbacks(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    BackdoorState *s = BACKDOOR(obj);
    g_autofree char *str = NULL;

    if (!visit_type_str(v, name, &str, errp)) {
        return;
    }
    if (!DEVICE(obj)->realized) {
        g_free(s->callbacks_path);
        s->callbacks_path = g_steal_pointer(&str);
        return;
    }
    backdoor_reload(s, str, errp);
}

/* After realize: used by the next hot reload (set it before callbacks). */
static void backdoor_set_args(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    BackdoorState *s = BACKDOOR(obj);
    char *str;

    if (!visit_type_str(v, name, &str, errp)) {
        return;
    }
    g_free(s->callbacks_args);
    s->callbacks_args = str;
}

/*
 * qdev's string property, settable after realize: filled in from
 * qdev_prop_string by class_init, so that its get and release are qdev's.
 */
static PropertyInfo backdoor_prop_callbacks;
static PropertyInfo backdoor_prop_callbacks_args;

static void backdoor_exit_notify(Notifier *n, void *data)
{
    BackdoorState *s = container_of(n, BackdoorState, exit_notifier);

    backdoor_drain_all(s, s->big_endian);
    backdoor_unload(s);
}

/* A paused VM's events reach the library before anyone looks at them. */
static void backdoor_vm_change(void *opaque, bool running, RunState state)
{
    BackdoorState *s = opaque;

    if (!running && s->callbacks) {
        backdoor_drain_all(s, s->big_endian);
    }
}

/* The slots and their rings at the end of the data channel (ring.c) */
static bool backdoor_layout_slots(BackdoorState *s, Error **errp)
{
    g_autoptr(GError) err = NULL;

    if (!backdoor_ring_layout(&s->regs, "slots", "ring-entries", &err)) {
        error_setg(errp, "backdoor: %s", err->message);
        return false;
    }
    if (!s->regs.slots) {
        return true;
    }
    s->slot_used = bitmap_new(s->regs.slots);
    s->vm_slots = s->regs.slots;
    return true;
}

static void backdoor_realize(PCIDevice *pdev, Error **errp)
{
    BackdoorState *s = BACKDOOR(pdev);
    g_autoptr(GError) err = NULL;
    Error *local_err = NULL;
    qemu_backdoor_info info = { 0 };

    if (!s->callbacks_path || !*s->callbacks_path) {
        error_setg(errp, "backdoor: property 'callbacks' is required "
                   "(the path of a callback library)");
        return;
    }
    if (!backdoor_data_size_ok(s->regs.data_size)) {
        error_setg(errp, "backdoor: data-size %" PRIu64 " is not a power of "
                   "two from 4 KiB to 1 GiB", s->regs.data_size);
        return;
    }

    memory_region_init_io(&s->ctrl, OBJECT(s), &backdoor_ctrl_ops, s,
                          "backdoor-ctrl", BACKDOOR_CTRL_SIZE);
    memory_region_init_ram(&s->data, OBJECT(s), "backdoor-data",
                           s->regs.data_size, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        return;
    }
    s->regs.mode = QEMU_BACKDOOR_MODE_SYSTEM;
    s->regs.data = memory_region_get_ram_ptr(&s->data);
    s->regs.guest_read = backdoor_guest_read;
    s->regs.guest_write = backdoor_guest_write;
    s->regs.host = s;
    /* What every call hands the library but its cmd, byte order, vCPU */
    s->call = backdoor_regs_call(&s->regs, 0, false, -1);
    s->big_endian = target_words_bigendian();
    s->cpu_endian = first_cpu &&
                    CPU_GET_CLASS(first_cpu)->sysemu_ops->virtio_is_big_endian;
    s->call_offset = backdoor_regs_call_offset_reset(&s->regs);
    if (!backdoor_layout_slots(s, errp)) {
        return;
    }

    s->loaded_args = g_strdup(s->callbacks_args);
    s->callbacks = backdoor_callbacks_load(s->callbacks_path,
                                           backdoor_init_info(s,
                                                              s->loaded_args,
                                                              &info), &err);
    if (!s->callbacks) {
        error_setg(errp, "backdoor: %s", err->message);
        g_clear_pointer(&s->slot_used, g_free);
        g_clear_pointer(&s->loaded_args, g_free);
        return;
    }
    if (!backdoor_update_blocker(s, errp)) {
        backdoor_unload(s);
        g_clear_pointer(&s->slot_used, g_free);
        g_clear_pointer(&s->loaded_args, g_free);
        return;
    }

    s->exit_notifier.notify = backdoor_exit_notify;
    qemu_add_exit_notifier(&s->exit_notifier);
    s->vmstate_change = qemu_add_vm_change_state_handler(backdoor_vm_change,
                                                         s);

    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->ctrl);
    pci_register_bar(pdev, 2, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->data);
}

static void backdoor_exit(PCIDevice *pdev)
{
    BackdoorState *s = BACKDOOR(pdev);

    qemu_remove_exit_notifier(&s->exit_notifier);
    if (s->vmstate_change) {
        qemu_del_vm_change_state_handler(s->vmstate_change);
        s->vmstate_change = NULL;
    }
    migrate_del_blocker(&s->migration_blocker);
    backdoor_drain_all(s, s->big_endian);
    backdoor_unload(s);
    g_clear_pointer(&s->slot_used, g_free);
    g_clear_pointer(&s->loaded_args, g_free);
}

static void backdoor_reset(DeviceState *dev)
{
    BackdoorState *s = BACKDOOR(dev);

    s->result = 0;
    s->call_offset = backdoor_regs_call_offset_reset(&s->regs);
    if (s->slot_used) {
        /* Events posted before the reset still count; then all are free */
        if (s->callbacks) {
            backdoor_drain_all(s, s->big_endian);
        }
        bitmap_zero(s->slot_used, s->regs.slots);
    }
}

static void backdoor_instance_init(Object *obj)
{
    BackdoorState *s = BACKDOOR(obj);

    object_property_add_uint64_ptr(obj, "calls", &s->calls,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "guest-errors", &s->guest_errors,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events", &s->events,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "doorbells", &s->doorbells,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "ring-full", &s->ring_full,
                                   OBJ_PROP_FLAG_READ);
}

static const Property backdoor_properties[] = {
    DEFINE_PROP("callbacks", BackdoorState, callbacks_path,
                backdoor_prop_callbacks, char *),
    DEFINE_PROP("callbacks-args", BackdoorState, callbacks_args,
                backdoor_prop_callbacks_args, char *),
    DEFINE_PROP_SIZE("data-size", BackdoorState, regs.data_size,
                     BACKDOOR_DATA_SIZE_DEFAULT),
    /* call slots and event rings (register map 1.1) */
    DEFINE_PROP_UINT32("slots", BackdoorState, regs.slots,
                       BACKDOOR_RING_SLOTS_DEFAULT),
    DEFINE_PROP_UINT32("ring-entries", BackdoorState, regs.ring_entries,
                       BACKDOOR_RING_DEFAULT),
};

/*
 * The data channel (BAR2) is a RAM region: memory_region_init_ram()
 * registers it for migration. A library without save/load hooks blocks
 * migration instead (backdoor_update_blocker()).
 */
static const VMStateDescription backdoor_vmstate = {
    .name = TYPE_BACKDOOR,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = backdoor_pre_save,
    .post_save = backdoor_post_save,
    .post_load = backdoor_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, BackdoorState),
        VMSTATE_UINT64(result, BackdoorState),
        VMSTATE_UINT64(call_offset, BackdoorState),
        VMSTATE_UINT64(calls, BackdoorState),
        VMSTATE_UINT64(guest_errors, BackdoorState),
        VMSTATE_UINT32(lib_state_size, BackdoorState),
        VMSTATE_VBUFFER_ALLOC_UINT32(lib_state, BackdoorState, 0, NULL,
                                     lib_state_size),
        /*
         * Claimed slots: loadvm resets the device (which frees them)
         * before it loads the state the guest's threads still use
         */
        VMSTATE_BITMAP(slot_used, BackdoorState, 0, vm_slots),
        VMSTATE_UINT64(events, BackdoorState),
        VMSTATE_UINT64(doorbells, BackdoorState),
        VMSTATE_UINT64(ring_full, BackdoorState),
        VMSTATE_END_OF_LIST()
    },
};

static void backdoor_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(oc);

    k->realize = backdoor_realize;
    k->exit = backdoor_exit;
    k->vendor_id = BACKDOOR_PCI_VENDOR_ID;
    k->device_id = BACKDOOR_PCI_DEVICE_ID;
    k->revision = BACKDOOR_VERSION_MAJOR;
    k->class_id = PCI_CLASS_OTHERS << 8;
    dc->desc = "guest-to-host backdoor channel with host callbacks";
    device_class_set_legacy_reset(dc, backdoor_reset);
    dc->vmsd = &backdoor_vmstate;
    backdoor_prop_callbacks = qdev_prop_string;
    backdoor_prop_callbacks.description =
        "callback library (qom-set on a running device: hot reload)";
    backdoor_prop_callbacks.set = backdoor_set_callbacks;
    backdoor_prop_callbacks.realized_set_allowed = true;
    backdoor_prop_callbacks_args = qdev_prop_string;
    backdoor_prop_callbacks_args.description =
        "argument string for the library's init (the next hot reload's)";
    backdoor_prop_callbacks_args.set = backdoor_set_args;
    backdoor_prop_callbacks_args.realized_set_allowed = true;
    device_class_set_props(dc, backdoor_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo backdoor_info = {
    .name = TYPE_BACKDOOR,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(BackdoorState),
    .instance_init = backdoor_instance_init,
    .class_init = backdoor_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

void backdoor_register_types(void)
{
#ifdef BACKDOOR_LOADER
    /*
     * The loader build (preloaded or -plugin): only into the QEMU build it
     * was made for. (QEMU's module loader checks a module's stamp itself.)
     */
    if (!backdoor_loader_matches_qemu()) {
        return;
    }
#endif
    type_register_static(&backdoor_info);
}

type_init(backdoor_register_types)
/* QEMU's module table, when built in QEMU's tree (docs/in-tree.rst) */
module_obj(TYPE_BACKDOOR);
module_kconfig(BACKDOOR);
