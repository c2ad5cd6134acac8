/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the helper asks of the qemu-<arch> it runs in, through QEMU's own
 * exported symbols looked up at run time, so that no QEMU header or
 * struct layout is needed.
 */
#ifndef BACKDOOR_QEMU_SYMS_H
#define BACKDOOR_QEMU_SYMS_H

#include <stdbool.h>
#include <stdint.h>

/* The guest's byte order; set by backdoor_qemu_find(). */
extern bool backdoor_user_big_endian;

/*
 * Is this process a user-mode QEMU? Wrappers on the way to it (env,
 * timeout) are not. If so, look up what the helper uses of it and set
 * *@exe_name to its file name.
 */
bool backdoor_qemu_find(const char **exe_name);

/*
 * QEMU's cpu_index of the calling thread's CPU; without QEMU's symbols,
 * an index per thread in the order of their first call.
 */
int backdoor_qemu_vcpu_index(void);

/*
 * Copy between @buf and the guest's virtual memory at @addr, checked
 * against QEMU's record of the guest's mappings: 0, -EFAULT, or -ENOSYS
 * without QEMU's symbols.
 */
int backdoor_qemu_guest_rw(uint64_t addr, void *buf, uint64_t len,
                           bool is_write);

#endif /* BACKDOOR_QEMU_SYMS_H */
