/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef HW_MISC_BACKDOOR_H
#define HW_MISC_BACKDOOR_H

#define TYPE_BACKDOOR "backdoor"

void backdoor_register_types(void);
#ifdef BACKDOOR_LOADER
/* The loader build (backdoor-plugin.c): is this QEMU the one it is for? */
bool backdoor_loader_matches_qemu(void);
#endif

#endif
