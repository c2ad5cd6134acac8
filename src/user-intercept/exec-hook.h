/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The owner's exec: QEMU issues a guest execve past any libc interposer,
 * so the helper also loads itself as a QEMU plugin that sees the guest's
 * system calls, and cleans up before an exec of the owner.
 */
#ifndef BACKDOOR_EXEC_HOOK_H
#define BACKDOOR_EXEC_HOOK_H

/* Have QEMU load the helper as a plugin that sees execve. */
void backdoor_user_request_exec_hook(void);

#endif /* BACKDOOR_EXEC_HOOK_H */
