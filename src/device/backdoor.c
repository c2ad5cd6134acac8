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
#include "qemu/units.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "hw/core/cpu.h"
#include "hw/core/sysemu-cpu-ops.h"
#include "migration/vmstate.h"
#include "qemu/notify.h"
#include "qom/object.h"

#include "backdoor.h"
#include "compat.h"
#include "loader.h"
#include "qemu-backdoor-regs.h"

OBJECT_DECLARE_SIMPLE_TYPE(BackdoorState, BACKDOOR)

#define BACKDOOR_CTRL_SIZE          0x1000
#define BACKDOOR_DATA_SIZE_MIN      (4 * KiB)
#define BACKDOOR_DATA_SIZE_MAX      (1 * GiB)
#define BACKDOOR_DATA_SIZE_DEFAULT  (1 * MiB)

struct BackdoorState {
    PCIDevice parent_obj;

    MemoryRegion ctrl;
    MemoryRegion data;
    void *data_ptr;
    bool big_endian;            /* the target's default byte order */
    bool cpu_endian;            /* CPUs can switch: ask the calling one */
    BackdoorCallbacks *callbacks;
    Notifier exit_notifier;     /* QEMU does not unrealize devices at exit */

    /* properties */
    char *callbacks_path;
    char *callbacks_args;
    uint64_t data_size;

    /* registers */
    uint64_t result;
    uint64_t call_offset;

    /* counters, read-only QOM properties */
    uint64_t calls;
    uint64_t guest_errors;
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

static uint64_t backdoor_call(BackdoorState *s, uint64_t cmd, bool be)
{
    qemu_backdoor_call call = {
        .cmd = cmd,
        .data = s->data_ptr,
        .data_size = s->data_size,
        .guest_big_endian = be,
        .vcpu_index = current_cpu ? current_cpu->cpu_index : -1,
        .mode = QEMU_BACKDOOR_MODE_SYSTEM,
    };

    s->calls++;
    s->result = backdoor_callbacks_call(s->callbacks, &call);
    return s->result;
}

/* The command word of a CALL read, in the guest's byte order @be. */
static uint64_t backdoor_call_word(BackdoorState *s, bool be)
{
    const void *p = (const uint8_t *)s->data_ptr + s->call_offset;

    return be ? ldq_be_p(p) : ldq_le_p(p);
}

static bool backdoor_is_reg(hwaddr addr)
{
    return addr <= BACKDOOR_REG_CALL &&
           (addr == BACKDOOR_REG_FEATURES ||
            addr == BACKDOOR_REG_RESULT_HI || addr % 8 == 0);
}

static bool backdoor_reg_is_64(hwaddr addr)
{
    return addr == BACKDOOR_REG_DATA_SIZE || addr == BACKDOOR_REG_CMD ||
           addr == BACKDOOR_REG_RESULT || addr == BACKDOOR_REG_CALL_OFFSET ||
           addr == BACKDOOR_REG_CALL;
}

/*
 * Widths are checked here rather than through MemoryRegionOps.valid so that
 * every wrong access is counted in guest-errors, not just dropped by the
 * memory core.
 */
static bool backdoor_width_ok(BackdoorState *s, hwaddr addr, unsigned size,
                              const char *dir)
{
    if (size == 4 || (size == 8 && backdoor_reg_is_64(addr))) {
        return true;
    }
    backdoor_guest_error(s, "%u-byte %s at control offset 0x%" HWADDR_PRIx
                         " (see docs/specs/backdoor.rst)", size, dir, addr);
    return false;
}

static uint64_t backdoor_ctrl_read(void *opaque, hwaddr addr, unsigned size)
{
    BackdoorState *s = opaque;
    uint64_t val;
    bool be;

    switch (addr) {
    case BACKDOOR_REG_ID:
        val = BACKDOOR_ID;
        break;
    case BACKDOOR_REG_FEATURES:
        val = BACKDOOR_FEATURES;
        break;
    case BACKDOOR_REG_DATA_SIZE:
        val = s->data_size;
        break;
    case BACKDOOR_REG_RESULT:
        val = s->result;
        break;
    case BACKDOOR_REG_RESULT_HI:
        val = s->result >> 32;
        break;
    case BACKDOOR_REG_CALL_OFFSET:
        val = s->call_offset;
        break;
    case BACKDOOR_REG_CALL:
        if (!backdoor_width_ok(s, addr, size, "read")) {
            return ~0ULL;
        }
        be = backdoor_guest_big_endian(s);
        return backdoor_call(s, backdoor_call_word(s, be), be);
    default:
        backdoor_guest_error(s, "read of %s control offset 0x%" HWADDR_PRIx,
                             backdoor_is_reg(addr) ? "write-only" : "reserved",
                             addr);
        return ~0ULL;
    }
    if (!backdoor_width_ok(s, addr, size, "read")) {
        return ~0ULL;
    }
    return val;
}

static void backdoor_ctrl_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    BackdoorState *s = opaque;

    switch (addr) {
    case BACKDOOR_REG_CMD:
        if (backdoor_width_ok(s, addr, size, "write")) {
            backdoor_call(s, val, backdoor_guest_big_endian(s));
        }
        break;
    case BACKDOOR_REG_CALL_OFFSET:
        if (!backdoor_width_ok(s, addr, size, "write")) {
            break;
        }
        if (val % 8 || val > s->data_size - 8) {
            backdoor_guest_error(s, "CALL_OFFSET 0x%" PRIx64 " is not an "
                                 "8-aligned offset inside the data BAR", val);
            break;
        }
        s->call_offset = val;
        break;
    default:
        backdoor_guest_error(s, "write of %s control offset 0x%" HWADDR_PRIx,
                             backdoor_is_reg(addr) ? "read-only" : "reserved",
                             addr);
        break;
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

static void backdoor_exit_notify(Notifier *n, void *data)
{
    backdoor_unload(container_of(n, BackdoorState, exit_notifier));
}

static void backdoor_realize(PCIDevice *pdev, Error **errp)
{
    BackdoorState *s = BACKDOOR(pdev);
    DeviceState *dev = DEVICE(pdev);
    g_autoptr(GError) err = NULL;
    Error *local_err = NULL;
    qemu_backdoor_info info = { 0 };

    if (!s->callbacks_path || !*s->callbacks_path) {
        error_setg(errp, "backdoor: property 'callbacks' is required "
                   "(the path of a callback library)");
        return;
    }
    if (s->data_size < BACKDOOR_DATA_SIZE_MIN ||
        s->data_size > BACKDOOR_DATA_SIZE_MAX ||
        !is_power_of_2(s->data_size)) {
        error_setg(errp, "backdoor: data-size %" PRIu64 " is not a power of "
                   "two from 4 KiB to 1 GiB", s->data_size);
        return;
    }

    memory_region_init_io(&s->ctrl, OBJECT(s), &backdoor_ctrl_ops, s,
                          "backdoor-ctrl", BACKDOOR_CTRL_SIZE);
    memory_region_init_ram(&s->data, OBJECT(s), "backdoor-data",
                           s->data_size, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        return;
    }
    s->data_ptr = memory_region_get_ram_ptr(&s->data);
    s->big_endian = target_words_bigendian();
    s->cpu_endian = first_cpu &&
                    CPU_GET_CLASS(first_cpu)->sysemu_ops->virtio_is_big_endian;
    s->call_offset = s->data_size - 8;

    info.mode = QEMU_BACKDOOR_MODE_SYSTEM;
    info.args = s->callbacks_args;
    info.id = dev->id;
    info.data = s->data_ptr;
    info.data_size = s->data_size;
    info.guest_big_endian = s->big_endian;
    s->callbacks = backdoor_callbacks_load(s->callbacks_path, &info, &err);
    if (!s->callbacks) {
        error_setg(errp, "backdoor: %s", err->message);
        return;
    }

    s->exit_notifier.notify = backdoor_exit_notify;
    qemu_add_exit_notifier(&s->exit_notifier);

    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->ctrl);
    pci_register_bar(pdev, 2, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->data);
}

static void backdoor_exit(PCIDevice *pdev)
{
    BackdoorState *s = BACKDOOR(pdev);

    qemu_remove_exit_notifier(&s->exit_notifier);
    backdoor_unload(s);
}

static void backdoor_reset(DeviceState *dev)
{
    BackdoorState *s = BACKDOOR(dev);

    s->result = 0;
    s->call_offset = s->data_size - 8;
}

static void backdoor_instance_init(Object *obj)
{
    BackdoorState *s = BACKDOOR(obj);

    object_property_add_uint64_ptr(obj, "calls", &s->calls,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "guest-errors", &s->guest_errors,
                                   OBJ_PROP_FLAG_READ);
}

static const Property backdoor_properties[] = {
    DEFINE_PROP_STRING("callbacks", BackdoorState, callbacks_path),
    DEFINE_PROP_STRING("callbacks-args", BackdoorState, callbacks_args),
    DEFINE_PROP_SIZE("data-size", BackdoorState, data_size,
                     BACKDOOR_DATA_SIZE_DEFAULT),
};

/* Callback libraries keep state the VM cannot carry to another host. */
static const VMStateDescription backdoor_vmstate = {
    .name = TYPE_BACKDOOR,
    .unmigratable = 1,
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
    type_register_static(&backdoor_info);
}

type_init(backdoor_register_types)
