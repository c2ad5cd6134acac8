/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Raw register accesses under the supervisor (trace.c): QEMU runs traced
 * (ptrace), a seccomp filter stops its mmap, mprotect and mremap calls so
 * that mappings of the register page of BASE.ctrl stay inaccessible on the
 * host, and each guest load or store there, a host SIGSEGV in QEMU, is
 * emulated from the tracer and never reaches QEMU.
 *
 * With tracing the supervisor is two processes: the one the user started
 * (the proxy) forwards signals and ends like QEMU, and its child serves:
 * it loads the callbacks, runs the call slot servers and traces QEMU, its
 * own child. So a guest process that outlives QEMU's main process stays
 * traced after the proxy has ended, as it must (a stopped tracer would
 * fail its mmap calls).
 */
#ifndef BACKDOOR_TRACE_H
#define BACKDOOR_TRACE_H

#include "regs.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What the tracer needs of the channel (set up by the supervisor). */
typedef struct TraceChannel {
    const char *ctrl_path;
    const uint8_t *reg_page;    /* the register page as the file has it */
    const BackdoorRegs *regs;   /* the register model, the data channel */
    bool big_endian;
} TraceChannel;

/* Messages from the serving process to the proxy, on a pipe. */
typedef struct TraceMsg {
    char kind;                  /* TRACE_MSG_* */
    int value;
} TraceMsg;

#define TRACE_MSG_QEMU      'Q'     /* QEMU's pid: forward signals there */
#define TRACE_MSG_STATUS    'S'     /* QEMU's wait status, all cleaned up */
#define TRACE_MSG_LINGER    'L'     /* guest processes are left: traced on */

/*
 * Whether raw register accesses are to be served: QEMU_BACKDOOR_RAW_ACCESS
 * (on by default; "off" turns it off), which is taken out of the
 * environment. Dies with one line on another value.
 */
bool trace_wanted(void);

/*
 * Split the supervisor: returns in the child, which serves; the calling
 * process becomes the proxy and never returns (supervisor_proxy).
 */
void trace_split(const TraceChannel *ch);

/* Whether the calling process is the serving half of a split. */
bool trace_active(void);

/* In the serving process: ignore what the proxy forwards or handles. */
void trace_ignore_signals(void);

/* In the serving process, before forking QEMU. */
void trace_prepare_fork(void);

/* In QEMU's process, between fork and exec: wait to be traced, filter. */
void trace_child(void);

/*
 * In the serving process, with QEMU forked: trace it and serve raw
 * accesses until QEMU's main process ends; its wait status.
 */
int trace_run(pid_t qemu);

/*
 * Tell the proxy how QEMU ended (the channel is cleaned up by now), then
 * keep tracing the guest processes that are left until they end.
 */
void G_GNUC_NORETURN trace_finish(int status);

/* Provided by the supervisor (supervisor.c) */

/* Run a call for guest thread @tid; the result, all ones without library */
uint64_t supervisor_call(uint32_t tid, uint64_t cmd);

/*
 * The proxy: read the serving process's (@server) messages from @fd,
 * forward signals to QEMU, end the way QEMU ended.
 */
void G_GNUC_NORETURN supervisor_proxy(int fd, pid_t server);

#endif /* BACKDOOR_TRACE_H */
