/* SPDX-License-Identifier: MIT */
/*
 * qemu-backdoor guest library internals: a channel and its transports.
 */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include "qemu-backdoor.h"
#include "qemu-backdoor-regs.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct BackdoorTransport BackdoorTransport;

struct qemu_backdoor_channel {
    const BackdoorTransport *transport;
    pthread_mutex_t lock;       /* recursive */
    char *name;                 /* PCI address or base path */
    uint32_t id;
    void *data;
    uint64_t data_size;         /* the whole data channel, call word too */
    /* system mode */
    volatile void *ctrl;
    size_t ctrl_size;
    volatile uint64_t *call_word;
    /* user mode */
    int ctrl_fd;
};

/*
 * One per way of reaching the host. open fills @ch (name, id, data,
 * data_size and its own fields) or sets the error and returns -1, undoing
 * what it did; call runs under ch->lock.
 */
struct BackdoorTransport {
    qemu_backdoor_guest_mode mode;
    int (*open)(qemu_backdoor_channel *ch, const char *where);
    uint64_t (*call)(qemu_backdoor_channel *ch, uint64_t cmd);
    void (*close)(qemu_backdoor_channel *ch);
};

extern const BackdoorTransport backdoor_pci_transport;
extern const BackdoorTransport backdoor_user_transport;

/* Set errno to @err and the thread's message; returns -1. */
int backdoor_error(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Check an identification value; sets the error and returns -1 if bad. */
int backdoor_check_id(uint32_t id, const char *what);

#endif /* GUEST_LIB_H */
