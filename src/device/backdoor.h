/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef HW_MISC_BACKDOOR_H
#define HW_MISC_BACKDOOR_H

#define TYPE_BACKDOOR "backdoor"

#define BACKDOOR_PCI_VENDOR_ID  0x1234
#define BACKDOOR_PCI_DEVICE_ID  0xbd01

void backdoor_register_types(void);

#endif
