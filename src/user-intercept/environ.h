/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest must not see the helper in its environment: QEMU copies the
 * environment for the guest after the helper's constructor, and
 * /proc/self/environ shows the block the process started with.
 */
#ifndef BACKDOOR_ENVIRON_H
#define BACKDOOR_ENVIRON_H

/*
 * Take the helper's entry out of LD_PRELOAD and the QEMU_BACKDOOR_*
 * settings (all but QEMU_BACKDOOR_PATH) out of the environment and out of
 * the block /proc/self/environ shows.
 */
void backdoor_environ_hide(void);

#endif /* BACKDOOR_ENVIRON_H */
