/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest access to a mapping of the control file faults (the pages stay
 * inaccessible): the faulting host instruction is emulated as a register
 * access of the channel.
 */
#ifndef BACKDOOR_FAULT_H
#define BACKDOOR_FAULT_H

#include "sigsegv.h"

/* The SIGSEGV front's first look (backdoor_sigsegv_init()). */
BackdoorFault backdoor_fault(siginfo_t *info, void *uc);

#endif /* BACKDOOR_FAULT_H */
