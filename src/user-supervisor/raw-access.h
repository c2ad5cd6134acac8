/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One guest access to the register page of BASE.ctrl, emulated from the
 * supervisor's tracer (raw-access.c): what the faulting host instruction
 * does there, in terms of the user-mode register map.
 */
#ifndef BACKDOOR_RAW_ACCESS_H
#define BACKDOOR_RAW_ACCESS_H

#include "trace.h"

#include <stddef.h>

/* The guest thread that faulted, stopped at the tracer */
typedef struct RawThread {
    pid_t tid;
    uint64_t *result;           /* its RESULT */
    uint64_t *call_offset;      /* its process's CALL_OFFSET */
} RawThread;

typedef enum RawOutcome {
    RAW_DONE,                   /* emulated; the thread goes on after it */
    RAW_DENIED,                 /* the guest's mapping does not allow it */
    RAW_FAILED,                 /* an instruction the tracer cannot run */
} RawOutcome;

/* The channel the accesses see; false if no decoder can be had. */
bool raw_access_init(const TraceChannel *ch);

/*
 * Emulate the access of @t at host address @addr, @offset into the
 * control file, whose guest mapping has protection @prot: the thread's
 * registers are updated and it continues after the instruction
 * (RAW_DONE). @what receives a description of the instruction for a
 * message.
 */
RawOutcome raw_access(const RawThread *t, uint64_t addr, uint64_t offset,
                      int prot, char *what, size_t what_size);

#endif /* BACKDOOR_RAW_ACCESS_H */
