/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The SIGSEGV front (sigsegv.h): the helper's handler is installed in the
 * kernel; what QEMU (or anyone else) installs is kept here and gets every
 * fault the front does not take.
 */
#define _GNU_SOURCE
#include "sigsegv.h"
#include "libc.h"

#include <pthread.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static BackdoorFault (*first_look)(siginfo_t *info, void *uc);
static struct sigaction chained;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;

static void backdoor_sigsegv(int sig, siginfo_t *info, void *uc)
{
    struct sigaction next = chained;
    siginfo_t maperr;

    if (info->si_code > 0) {
        switch (first_look(info, uc)) {
        case BACKDOOR_FAULT_DONE:
            return;
        case BACKDOOR_FAULT_MAPERR:
            maperr = *info;
            maperr.si_code = SEGV_MAPERR;
            info = &maperr;
            break;
        case BACKDOOR_FAULT_PASS:
            break;
        }
    }

    if (next.sa_flags & SA_SIGINFO) {
        if (next.sa_flags & SA_RESETHAND) {
            chained.sa_handler = SIG_DFL;
            chained.sa_flags &= ~SA_SIGINFO;
        }
        next.sa_sigaction(sig, info, uc);
    } else if (next.sa_handler == SIG_IGN && info->si_code <= 0) {
        return;
    } else if (next.sa_handler == SIG_DFL || next.sa_handler == SIG_IGN) {
        /*
         * As the kernel would: a fault with SIG_DFL or SIG_IGN kills.
         * Hand the signal over and let it happen again without us.
         */
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        backdoor_libc()->sigaction(sig, &dfl, NULL);
        if (info->si_code <= 0) {
            backdoor_libc()->syscall(SYS_rt_tgsigqueueinfo, getpid(),
                                     backdoor_libc()->syscall(SYS_gettid),
                                     sig, info);
        }
    } else {
        if (next.sa_flags & SA_RESETHAND) {
            chained.sa_handler = SIG_DFL;
        }
        next.sa_handler(sig);
    }
}

static void install(const struct sigaction *like)
{
    struct sigaction act = *like;

    act.sa_sigaction = backdoor_sigsegv;
    act.sa_flags = (like->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    /* Block everything during a call; pending signals arrive after it */
    sigfillset(&act.sa_mask);
    backdoor_libc()->sigaction(SIGSEGV, &act, NULL);
}

void backdoor_sigsegv_init(BackdoorFault (*first)(siginfo_t *info,
                                                  void *uc))
{
    pthread_mutex_lock(&sig_lock);
    first_look = first;
    backdoor_libc()->sigaction(SIGSEGV, NULL, &chained);
    install(&chained);
    installed = true;
    pthread_mutex_unlock(&sig_lock);
}

EXPORT int sigaction(int sig, const struct sigaction *act,
                     struct sigaction *old)
{
    if (sig != SIGSEGV || !installed) {
        return backdoor_libc()->sigaction(sig, act, old);
    }
    pthread_mutex_lock(&sig_lock);
    if (old) {
        *old = chained;
    }
    if (act) {
        chained = *act;
        install(act);
    }
    pthread_mutex_unlock(&sig_lock);
    return 0;
}

EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction act = { .sa_handler = handler, .sa_flags = SA_RESTART };
    struct sigaction old;

    if (sig != SIGSEGV || !installed) {
        return backdoor_libc()->signal(sig, handler);
    }
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig);
    sigaction(sig, &act, &old);
    return old.sa_handler;
}
