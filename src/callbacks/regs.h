/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The register model of docs/specs/backdoor.rst, once for the PCI device,
 * the user-mode helper and the supervisor: which registers there are, how
 * each may be accessed, what the fixed ones read, the DATA_SIZE and
 * CALL_OFFSET rules and the call that a command makes. Needs no QEMU; the
 * offsets are the public ones of qemu-backdoor-regs.h.
 */
#ifndef BACKDOOR_REGS_H
#define BACKDOOR_REGS_H

#include <stdbool.h>
#include <stdint.h>

#include "qemu-backdoor-callbacks.h"
#include "qemu-backdoor-regs.h"

/*
 * X(NAME, OFFSET, ACCESS, WIDTHS, MINOR): every control register, in
 * offset order. ACCESS is RO, WO or RW; WIDTHS the access sizes it takes
 * (W4, or W48: 4 or 8 bytes, where a 4-byte access reads or writes the
 * low half); MINOR the register map 1.MINOR that added it. Registers of
 * 1.1 are there only with call slots (FEATURES bit SLOTS), but for the
 * rings' layout (SLOT_COUNT to SLOT_STRIDE) in user mode with rings
 * (FEATURES bit RING). SLOT_CALL is the first of SLOT_COUNT registers 8
 * bytes apart: SLOT_CALL(n).
 */
#define BACKDOOR_REG_LIST(X)                                            \
    X(ID,           BACKDOOR_REG_ID,            RO, W4,  0)             \
    X(FEATURES,     BACKDOOR_REG_FEATURES,      RO, W4,  0)             \
    X(DATA_SIZE,    BACKDOOR_REG_DATA_SIZE,     RO, W48, 0)             \
    X(CMD,          BACKDOOR_REG_CMD,           WO, W48, 0)             \
    X(RESULT,       BACKDOOR_REG_RESULT,        RO, W48, 0)             \
    X(RESULT_HI,    BACKDOOR_REG_RESULT_HI,     RO, W4,  0)             \
    X(CALL_OFFSET,  BACKDOOR_REG_CALL_OFFSET,   RW, W48, 0)             \
    X(CALL,         BACKDOOR_REG_CALL,          RO, W48, 0)             \
    X(SLOT_COUNT,   BACKDOOR_REG_SLOT_COUNT,    RO, W4,  1)             \
    X(RING_ENTRIES, BACKDOOR_REG_RING_ENTRIES,  RO, W4,  1)             \
    X(SLOT_BASE,    BACKDOOR_REG_SLOT_BASE,     RO, W48, 1)             \
    X(SLOT_STRIDE,  BACKDOOR_REG_SLOT_STRIDE,   RO, W48, 1)             \
    X(SLOT_ALLOC,   BACKDOOR_REG_SLOT_ALLOC,    RO, W4,  1)             \
    X(SLOT_FREE,    BACKDOOR_REG_SLOT_FREE,     WO, W4,  1)             \
    X(DOORBELL,     BACKDOOR_REG_DOORBELL,      WO, W4,  1)             \
    X(SLOT_CALL,    BACKDOOR_REG_SLOT_CALL(0),  RO, W48, 1)

typedef enum BackdoorReg {
#define BACKDOOR_REG_ENUM(name, offset, access, widths, minor) \
    BACKDOOR_R_##name,
    BACKDOOR_REG_LIST(BACKDOOR_REG_ENUM)
#undef BACKDOOR_REG_ENUM
    BACKDOOR_R_COUNT,
} BackdoorReg;

/* Access sizes, as a mask: bit n set means an n-byte access is allowed. */
#define BACKDOOR_WIDTHS_W4          (1u << 4)
#define BACKDOOR_WIDTHS_W48         ((1u << 4) | (1u << 8))

typedef struct BackdoorRegInfo {
    const char *name;
    uint64_t offset;
    bool readable;
    bool writable;
    uint32_t widths;            /* BACKDOOR_WIDTHS_* */
    unsigned minor;             /* register map 1.minor added it */
} BackdoorRegInfo;

extern const BackdoorRegInfo backdoor_reg_info[BACKDOOR_R_COUNT];

/*
 * The data channel: a power of two from 4 KiB to 1 GiB, 1 MiB by default;
 * 16 MiB in user mode, whose default rings are larger (ring.h)
 */
#define BACKDOOR_DATA_SIZE_MIN      (4ull << 10)
#define BACKDOOR_DATA_SIZE_MAX      (1ull << 30)
#define BACKDOOR_DATA_SIZE_DEFAULT  (1ull << 20)
#define BACKDOOR_USER_DATA_SIZE_DEFAULT (16ull << 20)

bool backdoor_data_size_ok(uint64_t size);

/*
 * What one backend's register set is built on. The device fills it in
 * from its properties, a user-mode backend from its environment.
 */
typedef struct BackdoorRegs {
    qemu_backdoor_mode mode;    /* user mode: 1.1 without slot calls */
    bool user_slots;            /* user mode: BASE.ctrl has call slots */
    void *data;                 /* the data channel */
    uint64_t data_size;
    uint32_t slots;             /* 1.1 call slots (user mode: rings) */
    uint32_t ring_entries;      /* events per slot ring; 0: no rings */
    uint64_t slot_base;
    uint64_t slot_stride;
    /* Guest memory for the callbacks (ABI 2); NULL where there is none */
    int (*guest_read)(const qemu_backdoor_call *call, uint64_t addr,
                      void *buf, uint64_t len);
    int (*guest_write)(const qemu_backdoor_call *call, uint64_t addr,
                       const void *buf, uint64_t len);
    void *host;                 /* qemu_backdoor_call.host */
} BackdoorRegs;

/* What ID and FEATURES read. */
uint32_t backdoor_regs_id(const BackdoorRegs *r);
uint32_t backdoor_regs_features(const BackdoorRegs *r);

typedef enum BackdoorAccess {
    BACKDOOR_ACCESS_OK,
    BACKDOOR_ACCESS_RESERVED,   /* no register at the offset */
    BACKDOOR_ACCESS_DIRECTION,  /* a read of WO, a write of RO register */
    BACKDOOR_ACCESS_WIDTH,      /* a size the register does not take */
} BackdoorAccess;

/*
 * Check an access of @size bytes at control offset @offset. Anything but
 * BACKDOOR_ACCESS_OK is a wrong access (checked in that order: reserved,
 * direction, width); with BACKDOOR_ACCESS_OK, *@reg is the register and,
 * for SLOT_CALL, *@slot the slot number (@slot may be NULL otherwise).
 */
BackdoorAccess backdoor_regs_check(const BackdoorRegs *r, uint64_t offset,
                                   unsigned size, bool write,
                                   BackdoorReg *reg, unsigned *slot);

/*
 * What @reg reads when its value is fixed for the backend's life (ID,
 * FEATURES, DATA_SIZE, SLOT_COUNT, RING_ENTRIES, SLOT_BASE, SLOT_STRIDE);
 * false for the others.
 */
bool backdoor_regs_fixed(const BackdoorRegs *r, BackdoorReg reg,
                         uint64_t *value);

/*
 * Store the fixed register @reg at its offset of the register page
 * @page, at its widest width, in the byte order @big_endian: what a guest
 * load from a file of the registers reads.
 */
void backdoor_regs_store_fixed(const BackdoorRegs *r, BackdoorReg reg,
                               bool big_endian, void *page);

/* CALL_OFFSET: its reset value, and whether a guest may write @offset. */
uint64_t backdoor_regs_call_offset_reset(const BackdoorRegs *r);
bool backdoor_regs_call_offset_ok(const BackdoorRegs *r, uint64_t offset);

/*
 * The calls, for a backend's hot path: true for an 8-byte read of CALL
 * (*@slot = -1) or of SLOT_CALL(n) of an existing slot (*@slot = n), the
 * accesses guests make all the time, answered as backdoor_regs_check()
 * would but inline and without its lookup (a call's exit is a few tens of
 * ns under TCG: the lookup was a noticeable part). False for any other
 * access, which backdoor_regs_check() then checks.
 */
static inline bool backdoor_regs_call_read(const BackdoorRegs *r,
                                           uint64_t offset, unsigned size,
                                           int *slot)
{
    if (size != 8) {
        return false;
    }
    if (offset == BACKDOOR_REG_CALL) {
        *slot = -1;
        return true;
    }
    /* SLOT_CALL(n): register map 1.1, system mode (FEATURES bit SLOTS) */
    if (r->mode == QEMU_BACKDOOR_MODE_SYSTEM &&
        offset >= BACKDOOR_REG_SLOT_CALL(0) &&
        offset < BACKDOOR_REG_SLOT_CALL((uint64_t)r->slots) &&
        offset % 8 == 0) {
        *slot = (offset - BACKDOOR_REG_SLOT_CALL(0)) / 8;
        return true;
    }
    return false;
}

/* The call word at @call_offset (a valid CALL_OFFSET), guest order. */
static inline uint64_t backdoor_regs_call_word(const BackdoorRegs *r,
                                               uint64_t call_offset,
                                               bool big_endian)
{
    return qemu_backdoor_ld64(big_endian, (uint8_t *)r->data + call_offset);
}

/* The call of @cmd, made from vCPU @vcpu_index in byte order @big_endian. */
qemu_backdoor_call backdoor_regs_call(const BackdoorRegs *r, uint64_t cmd,
                                      bool big_endian, int vcpu_index);

/* What the library's init is told; valid while @args and @id live. */
qemu_backdoor_info backdoor_regs_info(const BackdoorRegs *r, const char *args,
                                      const char *id, bool big_endian);

#endif /* BACKDOOR_REGS_H */
