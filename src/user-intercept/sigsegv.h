/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper's SIGSEGV handler stands in the kernel in front of whatever
 * the process installs (QEMU's handler): sigaction() and signal() for
 * SIGSEGV are interposed and only change the handler behind it, which
 * gets every fault the front does not take.
 */
#ifndef BACKDOOR_SIGSEGV_H
#define BACKDOOR_SIGSEGV_H

#include <signal.h>

typedef enum BackdoorFault {
    BACKDOOR_FAULT_PASS,        /* not taken: the handler behind gets it */
    BACKDOOR_FAULT_DONE,        /* taken: the thread goes on */
    BACKDOOR_FAULT_MAPERR,      /* passed on as a fault on no mapping */
} BackdoorFault;

/*
 * Install the front, with @first looking at every fault (si_code > 0)
 * before the handler behind; @first runs in the signal handler with all
 * signals blocked.
 */
void backdoor_sigsegv_init(BackdoorFault (*first)(siginfo_t *info,
                                                  void *uc));

#endif /* BACKDOOR_SIGSEGV_H */
