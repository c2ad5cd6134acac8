/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef HW_MISC_BACKDOOR_H
#define HW_MISC_BACKDOOR_H

#define TYPE_BACKDOOR "backdoor"

void backdoor_register_types(void);

#endif
