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

/* Size of the call word at CALL_OFFSET in the data channel. */
#define BACKDOOR_CALL_WORD_SIZE     8

#endif /* QEMU_BACKDOOR_REGS_H */
