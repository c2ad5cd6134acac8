/* SPDX-License-Identifier: MIT */
/*
 * The backdoor register map, version 1.1: the guest ABI of
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
#define BACKDOOR_REG_END            0x30    /* reserved from here (1.0) */

#define BACKDOOR_ID_MAGIC           0x4244u /* "BD" */
#define BACKDOOR_VERSION_MAJOR      1
#define BACKDOOR_VERSION_MINOR      1
#define BACKDOOR_ID                 ((BACKDOOR_ID_MAGIC << 16) |        \
                                     (BACKDOOR_VERSION_MAJOR << 8) |    \
                                     BACKDOOR_VERSION_MINOR)
/*
 * User mode serves register map 1.1 without the call registers of 1.1
 * (its calls need no slot registers): event rings (BACKDOOR_FEATURE_RING
 * without BACKDOOR_FEATURE_SLOTS), see "User mode: event rings" below.
 */
#define BACKDOOR_USER_VERSION_MINOR 1
#define BACKDOOR_USER_ID            ((BACKDOOR_ID_MAGIC << 16) |        \
                                     (BACKDOOR_VERSION_MAJOR << 8) |    \
                                     BACKDOOR_USER_VERSION_MINOR)
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
/*
 * User mode only, with call slots: a caller that sets BACKDOOR_SLOT_OP_MEM
 * serves the supervisor's guest memory requests and sleeps on WAKE (which
 * the server changes after DONE and after a request), not on DONE.
 */
#define BACKDOOR_FEATURE_USER_MEM   (1u << 4)
/*
 * User mode only, with call slots and rings: a guest whose ring passed its
 * flush threshold may kick instead of a DOORBELL request: add 1 to KICKS
 * in the slot area's header, and wake the server as for a call if it
 * sleeps (SLEEPING). The server then drains the rings that hold events,
 * while the guest goes on posting; the guest waits (a DOORBELL request,
 * full) only when its ring is full.
 */
#define BACKDOOR_FEATURE_RING_KICK  (1u << 5)

/* Size of the call word at CALL_OFFSET in the data channel. */
#define BACKDOOR_CALL_WORD_SIZE     8

/*
 * Register map 1.1: per-thread call slots with an event ring each
 * (docs/specs/backdoor.rst, "Call slots and event rings"). A guest claims a
 * slot once per thread; the slot number travels in the address of the
 * calling MMIO read, so a thread that moves to another vCPU keeps its slot.
 */
#define BACKDOOR_FEATURE_SLOTS      (1u << 2)   /* the registers below */
#define BACKDOOR_FEATURE_RING       (1u << 3)   /* a ring in every slot */

#define BACKDOOR_REG_SLOT_COUNT     0x30    /* RO 4: number of slots */
#define BACKDOOR_REG_RING_ENTRIES   0x34    /* RO 4: events per ring */
#define BACKDOOR_REG_SLOT_BASE      0x38    /* RO 4/8: data offset, slot 0 */
#define BACKDOOR_REG_SLOT_STRIDE    0x40    /* RO 4/8: bytes per slot */
#define BACKDOOR_REG_SLOT_ALLOC     0x48    /* RO 4: claim a slot, ~0 none */
#define BACKDOOR_REG_SLOT_FREE      0x4c    /* WO 4: release slot n */
#define BACKDOOR_REG_DOORBELL       0x50    /* WO 4: drain slot n's ring */
#define BACKDOOR_REG_END_1_1        0x58    /* reserved from here */
#define BACKDOOR_REG_SLOT_CALL(n)   (0x100 + (n) * 8) /* RO 4/8: call */
#define BACKDOOR_SLOTS_MAX          256

/* DOORBELL value: the slot number, with this bit when the ring was full. */
#define BACKDOOR_DOORBELL_FULL      (1u << 31)

/*
 * A slot in the data channel, at SLOT_BASE + n * SLOT_STRIDE; 64-bit
 * fields in the guest's byte order. HEAD counts the events the guest
 * posted, TAIL those the host took; both only grow. Event i is at
 * RING + (i % RING_ENTRIES) * BACKDOOR_EVENT_SIZE.
 */
#define BACKDOOR_SLOTBLK_WORD       0x00    /* call word of SLOT_CALL(n) */
#define BACKDOOR_SLOTBLK_RESULT     0x08    /* result of the last call */
#define BACKDOOR_SLOTBLK_HEAD       0x10    /* written by the guest */
#define BACKDOOR_SLOTBLK_TAIL       0x18    /* written by the host */
#define BACKDOOR_SLOTBLK_RING       0x40    /* the ring's events */
#define BACKDOOR_EVENT_SIZE         32      /* command, three arguments */
#define BACKDOOR_EVENT_ARGS         3

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
#define BACKDOOR_SLOTS_KICKS        0x10    /* changed: drain rings (bit 5) */

/* Slot fields */
#define BACKDOOR_SLOT_OWNER         0x00    /* 4: 0 free, else owner tid */
#define BACKDOOR_SLOT_REQ           0x04    /* 4: request sequence */
#define BACKDOOR_SLOT_DONE          0x08    /* 4: answered sequence */
#define BACKDOOR_SLOT_WAITING       0x0c    /* 4: caller waits on DONE */
#define BACKDOOR_SLOT_CMD           0x10    /* 8: command */
#define BACKDOOR_SLOT_RESULT        0x18    /* 8: result */
#define BACKDOOR_SLOT_TID           0x20    /* 4: caller's thread id */
#define BACKDOOR_SLOT_OP            0x24    /* 4: what the request is */
/* Guest memory requests of the supervisor to the caller, during a call */
#define BACKDOOR_SLOT_MEM_ADDR      0x28    /* 8: guest address */
#define BACKDOOR_SLOT_MEM_LEN       0x30    /* 4: bytes */
#define BACKDOOR_SLOT_MEM_CTL       0x34    /* 4: request; 0 once done */
#define BACKDOOR_SLOT_WAKE          0x38    /* 4: changed to wake the caller */
#define BACKDOOR_SLOT_MEM_RESULT    0x3c    /* 4: 0 or -errno */

/*
 * OP: the low byte says what the request is (a request of a guest that
 * does not store OP is a call: the guest library stores 0 again before it
 * gives a slot up); BACKDOOR_SLOT_OP_MEM says that the caller serves guest
 * memory requests while it waits.
 */
#define BACKDOOR_SLOT_OP_CALL       0       /* run CMD */
#define BACKDOOR_SLOT_OP_ALLOC      1       /* claim a ring: RESULT its index */
#define BACKDOOR_SLOT_OP_FREE       2       /* deliver ring CMD, release it */
#define BACKDOOR_SLOT_OP_DOORBELL   3       /* deliver ring CMD, a DOORBELL */
#define BACKDOOR_SLOT_OP_MASK       0xff
#define BACKDOOR_SLOT_OP_MEM        (1u << 8)

/*
 * MEM_CTL requests: the caller copies with a system call of its own, so
 * that QEMU checks the guest range as for any system call (pwrite, pread
 * of its descriptor of BASE.ctrl at the stage that bits 8-15 name),
 * stores MEM_RESULT, then MEM_CTL = 0 and wakes MEM_CTL (a shared futex).
 */
#define BACKDOOR_MEM_READ           1   /* guest range -> stage (pwrite) */
#define BACKDOOR_MEM_WRITE          2   /* stage -> guest range (pread) */
#define BACKDOOR_MEM_CHECK_WRITE    4   /* writable? (pread past the end) */
#define BACKDOOR_MEM_OP(ctl)        ((ctl) & 0xff)
#define BACKDOOR_MEM_STAGE(ctl)     (((ctl) >> 8) & 0xff)

/* The stages of the supervisor's server threads, in BASE.ctrl */
#define BACKDOOR_USER_STAGE_OFFSET  0x20000
#define BACKDOOR_USER_STAGE_SIZE    0x10000
#define BACKDOOR_USER_STAGES        64
#define BACKDOOR_USER_CTRL_FILE_SIZE (BACKDOOR_USER_STAGE_OFFSET +      \
                                      BACKDOOR_USER_STAGES *            \
                                      BACKDOOR_USER_STAGE_SIZE)

/*
 * User mode: event rings. With BACKDOOR_FEATURE_RING (and no
 * BACKDOOR_FEATURE_SLOTS), SLOT_COUNT, RING_ENTRIES, SLOT_BASE and
 * SLOT_STRIDE read the layout of the rings in the data channel, in slot
 * blocks as above (their call word and result unused). A thread claims,
 * rings and releases its ring with the operations of SLOT_ALLOC, DOORBELL
 * and SLOT_FREE, the backend's way: the helper's pread(ctrl_fd, &word, 8,
 * offset) at the register's offset (word: the value written, in; the
 * value read, out), or a call slot request with OP.
 */

#endif /* QEMU_BACKDOOR_REGS_H */
