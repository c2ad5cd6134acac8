/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hosts other than x86-64 Linux: no raw register accesses under the
 * supervisor (the tracer emulates x86-64 host instructions).
 */
#include "trace.h"

#include <stdlib.h>

bool trace_wanted(void)
{
    unsetenv("QEMU_BACKDOOR_RAW_ACCESS");
    return false;
}

bool trace_active(void)
{
    return false;
}

void trace_split(const TraceChannel *ch)
{
    (void)ch;
}

void trace_ignore_signals(void)
{
}

void trace_prepare_fork(void)
{
}

void trace_child(void)
{
}

int trace_run(pid_t qemu)
{
    (void)qemu;
    abort();
}

void trace_finish(int status)
{
    (void)status;
    abort();
}
