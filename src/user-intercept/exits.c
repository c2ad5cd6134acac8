/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every way out of the process (exits.h). syscall() is interposed here
 * for exit_group; it also tells the descriptor cache of close_range.
 */
#define _GNU_SOURCE
#include "exits.h"
#include "descriptors.h"
#include "libc.h"

#include <linux/close_range.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static void (*exit_hook)(void);

void backdoor_exits_init(void (*hook)(void))
{
    exit_hook = hook;
    atexit(hook);
}

static void run_hook(void)
{
    if (exit_hook) {
        exit_hook();
    }
}

EXPORT long syscall(long nr, ...)
{
    long a[6];
    va_list ap;

    va_start(ap, nr);
    for (int i = 0; i < 6; i++) {
        a[i] = va_arg(ap, long);
    }
    va_end(ap);
    if (nr == SYS_exit_group) {
        run_hook();
    } else if (nr == SYS_close_range && !(a[2] & CLOSE_RANGE_CLOEXEC)) {
        backdoor_descriptors_forget((unsigned int)a[0], (unsigned int)a[1]);
    }
    return backdoor_libc()->syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

EXPORT void _exit(int status)
{
    run_hook();
    backdoor_libc()->_exit(status);
    __builtin_unreachable();
}

EXPORT int kill(pid_t pid, int sig)
{
    if (pid == getpid() && sig != 0 && sig != SIGSTOP) {
        run_hook();
    }
    return backdoor_libc()->kill(pid, sig);
}
