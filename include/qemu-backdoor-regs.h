/* SPDX-License-Identifier: MIT */
/*
 * The backdoor register map, version 1.0: the guest ABI of
 * docs/specs/backdoor.rst, shared by the PCI device, the user-mode helper
 * and the guest library.
 */
#ifndef QEMU_BACKDOOR_REGS_H
#define QEMU_BACKDOOR_REGS_H

/* PCI identity of the system-mode device. */
#define BACKDOOR_PCI_VENDOR_ID      0x1234
#define BACKDOOR_PCI_DEVICE_ID      0xbd01

/* Control registers (offsets in BAR0 or in the user-mode control file). */
#define BACKDOOR_REG_ID             0x00    /* RO 4: 0x4244MMmm */
#define BACKDOOR_REG_FEATURES       0x04    /* RO 4 */
#define BACKDOOR_REG_DATA_SIZE      0x08    /* RO 4/8 */
#define BACKDOOR_REG_CMD            0x10    /* WO 4/8: run a call */
#define BACKDOOR_REG_RESULT         0x18    /* RO 4/8 */
#define BACKDOOR_REG_RESULT_HI      0x1c    /* RO 4: RESULT >> 32 */
#define BACKDOOR_REG_CALL_OFFSET    0x20    /* RW 4/8 */
#define BACKDOOR_REG_CALL           0x28    /* RO 4/8: run a call */
#define BACKDOOR_REG_END            0x30    /* reserved from here */

#define BACKDOOR_ID_MAGIC           0x4244u /* "BD" */
#define BACKDOOR_VERSION_MAJOR      1
#define BACKDOOR_VERSION_MINOR      0
#define BACKDOOR_ID                 ((BACKDOOR_ID_MAGIC << 16) |        \
                                     (BACKDOOR_VERSION_MAJOR << 8) |    \
                                     BACKDOOR_VERSION_MINOR)
#define BACKDOOR_ID_GET_MAGIC(id)   ((id) >> 16)
#define BACKDOOR_ID_GET_MAJOR(id)   (((id) >> 8) & 0xff)
#define BACKDOOR_ID_GET_MINOR(id)   ((id) & 0xff)

#define BACKDOOR_FEATURE_CALL       (1u << 0)
#define BACKDOOR_FEATURES           BACKDOOR_FEATURE_CALL   /* of 1.0 */
/*
 * User mode only: BASE.ctrl has a call slot area (below). Set by the
 * supervisor backend, which serves calls through it; the in-process helper
 * serves the pread() fast path and does not set it.
 */
#define BACKDOOR_FEATURE_USER_SLOTS (1u << 1)

/* Size of the call word at CALL_OFFSET in the data channel. */
#define BACKDOOR_CALL_WORD_SIZE     8

/*
 * User mode: BASE.ctrl is the register page (64 KiB, a whole page for every
 * guest page size) and, with BACKDOOR_FEATURE_USER_SLOTS, a 64 KiB call slot
 * area after it, mapped shared by the guest. All fields are in the guest's
 * byte order. The area starts with a header, then one 64-byte slot per call
 * in flight (docs/specs/backdoor.rst, "Call slots").
 */
#define BACKDOOR_USER_REGS_SIZE     0x10000
#define BACKDOOR_USER_SLOTS_OFFSET  0x10000
#define BACKDOOR_USER_SLOTS_SIZE    0x10000
#define BACKDOOR_USER_SLOT_SIZE     64
#define BACKDOOR_USER_SLOTS         (BACKDOOR_USER_SLOTS_SIZE /         \
                                     BACKDOOR_USER_SLOT_SIZE - 1)
/* Slot n is at BACKDOOR_USER_SLOT(n) in the area, n < BACKDOOR_USER_SLOTS */
#define BACKDOOR_USER_SLOT(n)       (((n) + 1) * BACKDOOR_USER_SLOT_SIZE)

/* Header, 32-bit fields */
#define BACKDOOR_SLOTS_DOORBELL     0x00    /* changed to wake the server */
#define BACKDOOR_SLOTS_SLEEPING     0x04    /* server sleeps on DOORBELL */
#define BACKDOOR_SLOTS_USED         0x08    /* slots 0..USED-1 may be busy */
#define BACKDOOR_SLOTS_NEXT         0x0c    /* spreads threads over slots */

/* Slot fields */
#define BACKDOOR_SLOT_OWNER         0x00    /* 4: 0 free, else owner tid */
#define BACKDOOR_SLOT_REQ           0x04    /* 4: request sequence */
#define BACKDOOR_SLOT_DONE          0x08    /* 4: answered sequence */
#define BACKDOOR_SLOT_WAITING       0x0c    /* 4: caller waits on DONE */
#define BACKDOOR_SLOT_CMD           0x10    /* 8: command */
#define BACKDOOR_SLOT_RESULT        0x18    /* 8: result */
#define BACKDOOR_SLOT_TID           0x20    /* 4: caller's thread id */

#endif /* QEMU_BACKDOOR_REGS_H */
