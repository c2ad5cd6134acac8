/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The register model shared by the device and the user-mode backends
 * (regs.h).
 */
#include "regs.h"

#define BACKDOOR_ACCESS_RO          true, false
#define BACKDOOR_ACCESS_WO          false, true
#define BACKDOOR_ACCESS_RW          true, true

const BackdoorRegInfo backdoor_reg_info[BACKDOOR_R_COUNT] = {
#define BACKDOOR_REG_INFO(name, off, access, widths, since)             \
    [BACKDOOR_R_##name] = { #name, off, BACKDOOR_ACCESS_##access,       \
                            BACKDOOR_WIDTHS_##widths, since },
    BACKDOOR_REG_LIST(BACKDOOR_REG_INFO)
#undef BACKDOOR_REG_INFO
};

bool backdoor_data_size_ok(uint64_t size)
{
    return size >= BACKDOOR_DATA_SIZE_MIN && size <= BACKDOOR_DATA_SIZE_MAX &&
           !(size & (size - 1));
}

uint32_t backdoor_regs_id(const BackdoorRegs *r)
{
    return r->mode == QEMU_BACKDOOR_MODE_USER ? BACKDOOR_USER_ID : BACKDOOR_ID;
}

uint32_t backdoor_regs_features(const BackdoorRegs *r)
{
    uint32_t f = BACKDOOR_FEATURES;

    if (r->mode == QEMU_BACKDOOR_MODE_USER) {
        /* Rings without the slot calls of 1.1: calls go the user way */
        if (r->slots && r->ring_entries) {
            f |= BACKDOOR_FEATURE_RING;
        }
        if (!r->user_slots) {
            return f;
        }
        f |= BACKDOOR_FEATURE_USER_SLOTS | BACKDOOR_FEATURE_USER_MEM;
        return f & BACKDOOR_FEATURE_RING ? f | BACKDOOR_FEATURE_RING_KICK : f;
    }
    if (r->slots) {
        f |= BACKDOOR_FEATURE_SLOTS;
        if (r->ring_entries) {
            f |= BACKDOOR_FEATURE_RING;
        }
    }
    return f;
}

/*
 * User mode with rings (FEATURES bit RING, not SLOTS) has the rings'
 * layout registers of 1.1, not its slot operations and calls: those go
 * the backend's way (docs/specs/backdoor.rst, "User mode: event rings").
 */
static bool backdoor_regs_user_ring_layout(const BackdoorRegs *r,
                                           BackdoorReg reg)
{
    return r->mode == QEMU_BACKDOOR_MODE_USER &&
           (backdoor_regs_features(r) & BACKDOOR_FEATURE_RING) &&
           (reg == BACKDOOR_R_SLOT_COUNT || reg == BACKDOOR_R_RING_ENTRIES ||
            reg == BACKDOOR_R_SLOT_BASE || reg == BACKDOOR_R_SLOT_STRIDE);
}

/* The register at @offset, or BACKDOOR_R_COUNT for a reserved offset. */
static BackdoorReg backdoor_regs_at(const BackdoorRegs *r, uint64_t offset,
                                    unsigned *slot)
{
    unsigned minor = backdoor_regs_features(r) & BACKDOOR_FEATURE_SLOTS ?
                     1 : 0;
    BackdoorReg reg;

    switch (offset) {
#define BACKDOOR_REG_CASE(name, off, access, widths, since)     \
    case off:                                                   \
        reg = BACKDOOR_R_##name;                                \
        break;
    BACKDOOR_REG_LIST(BACKDOOR_REG_CASE)
#undef BACKDOOR_REG_CASE
    default:
        if (offset < BACKDOOR_REG_SLOT_CALL(0) || offset % 8) {
            return BACKDOOR_R_COUNT;
        }
        reg = BACKDOOR_R_SLOT_CALL;
    }
    if (backdoor_reg_info[reg].minor > minor &&
        !backdoor_regs_user_ring_layout(r, reg)) {
        return BACKDOOR_R_COUNT;
    }
    if (reg == BACKDOOR_R_SLOT_CALL) {
        uint64_t n = (offset - BACKDOOR_REG_SLOT_CALL(0)) / 8;

        if (n >= r->slots) {
            return BACKDOOR_R_COUNT;
        }
        if (slot) {
            *slot = n;
        }
    }
    return reg;
}

BackdoorAccess backdoor_regs_check(const BackdoorRegs *r, uint64_t offset,
                                   unsigned size, bool write,
                                   BackdoorReg *reg, unsigned *slot)
{
    BackdoorReg found = backdoor_regs_at(r, offset, slot);
    const BackdoorRegInfo *info;

    if (found == BACKDOOR_R_COUNT) {
        return BACKDOOR_ACCESS_RESERVED;
    }
    info = &backdoor_reg_info[found];
    if (!(write ? info->writable : info->readable)) {
        return BACKDOOR_ACCESS_DIRECTION;
    }
    if (size >= 32 || !(info->widths & (1u << size))) {
        return BACKDOOR_ACCESS_WIDTH;
    }
    *reg = found;
    return BACKDOOR_ACCESS_OK;
}

bool backdoor_regs_fixed(const BackdoorRegs *r, BackdoorReg reg,
                         uint64_t *value)
{
    switch (reg) {
    case BACKDOOR_R_ID:
        *value = backdoor_regs_id(r);
        return true;
    case BACKDOOR_R_FEATURES:
        *value = backdoor_regs_features(r);
        return true;
    case BACKDOOR_R_DATA_SIZE:
        *value = r->data_size;
        return true;
    case BACKDOOR_R_SLOT_COUNT:
        *value = r->slots;
        return true;
    case BACKDOOR_R_RING_ENTRIES:
        *value = r->ring_entries;
        return true;
    case BACKDOOR_R_SLOT_BASE:
        *value = r->slot_base;
        return true;
    case BACKDOOR_R_SLOT_STRIDE:
        *value = r->slot_stride;
        return true;
    default:
        return false;
    }
}

void backdoor_regs_store_fixed(const BackdoorRegs *r, BackdoorReg reg,
                               bool big_endian, void *page)
{
    const BackdoorRegInfo *info = &backdoor_reg_info[reg];
    uint8_t *p = (uint8_t *)page + info->offset;
    uint64_t v = 0;

    backdoor_regs_fixed(r, reg, &v);
    if (info->widths & (1u << 8)) {
        qemu_backdoor_st64(big_endian, p, v);
    } else {
        qemu_backdoor_st32(big_endian, p, v);
    }
}

uint64_t backdoor_regs_call_offset_reset(const BackdoorRegs *r)
{
    return r->data_size - BACKDOOR_CALL_WORD_SIZE;
}

bool backdoor_regs_call_offset_ok(const BackdoorRegs *r, uint64_t offset)
{
    return offset % 8 == 0 && offset <= r->data_size - BACKDOOR_CALL_WORD_SIZE;
}

qemu_backdoor_call backdoor_regs_call(const BackdoorRegs *r, uint64_t cmd,
                                      bool big_endian, int vcpu_index)
{
    return (qemu_backdoor_call) {
        .guest_read = r->guest_read,
        .guest_write = r->guest_write,
        .host = r->host,
        .cmd = cmd,
        .data = r->data,
        .data_size = r->data_size,
        .guest_big_endian = big_endian,
        .vcpu_index = vcpu_index,
        .mode = r->mode,
    };
}

qemu_backdoor_info backdoor_regs_info(const BackdoorRegs *r, const char *args,
                                      const char *id, bool big_endian)
{
    return (qemu_backdoor_info) {
        .mode = r->mode,
        .args = args,
        .id = id,
        .data = r->data,
        .data_size = r->data_size,
        .guest_big_endian = big_endian,
    };
}
