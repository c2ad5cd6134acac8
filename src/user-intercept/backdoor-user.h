/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-mode backdoor helper: preloaded into a stock, dynamically linked
 * qemu-<arch>, it provides the register map of docs/specs/backdoor.rst
 * ("User mode") on a trapped control page and a pread() fast path.
 */
#ifndef BACKDOOR_USER_H
#define BACKDOOR_USER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "qemu-backdoor-regs.h"

/* True once the helper is set up inside a qemu-<arch> process. */
extern bool backdoor_user_active;
extern bool backdoor_user_big_endian;

/* Register accesses; @size is the access width, values are guest values. */
uint64_t backdoor_user_reg_read(uint64_t offset, unsigned size);
void backdoor_user_reg_write(uint64_t offset, unsigned size, uint64_t value);

/* Run one call for the calling thread; the result is its RESULT. */
uint64_t backdoor_user_call(uint64_t cmd);

bool backdoor_user_is_ctrl_fd(int fd);
bool backdoor_user_is_ctrl_file(dev_t dev, ino_t ino);

/*
 * In the owner (the process that ran the library's init): run the
 * library's exit and remove the files, once. In a forked child: flush.
 */
void backdoor_user_cleanup(void);
bool backdoor_user_is_owner(void);

/* Have QEMU load the helper as a plugin that sees execve (exec-hook.c). */
void backdoor_user_request_exec_hook(void);

/* Guest mappings of the control file (interpose.c). */
bool backdoor_user_lookup(uintptr_t addr, uint64_t *offset, int *prot);

/* Put the helper's SIGSEGV handler in front of QEMU's (interpose.c). */
void backdoor_user_fault_init(void);

/* The out-of-line fallback's return fault (fault.c); false: not ours. */
bool backdoor_user_out_of_line_done(siginfo_t *info, void *uc);

/* mmap and mprotect without the helper's tracking. */
void *backdoor_real_mmap(void *addr, size_t len, int prot, int flags, int fd,
                         off_t offset);
int backdoor_real_mprotect(void *addr, size_t len, int prot);

/* Emulate the faulting access at control @offset; false: not ours. */
bool backdoor_user_emulate(siginfo_t *info, void *uc, uint64_t offset,
                           int prot);

#endif /* BACKDOOR_USER_H */
