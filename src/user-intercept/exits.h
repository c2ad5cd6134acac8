/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every way out of the process. exit() runs atexit() handlers, but a
 * guest exit_group() is syscall(SYS_exit_group), the last thread's exit
 * is _exit(), and a fatal guest signal is kill(getpid(), sig): those are
 * interposed here. (The owner's exec is seen by exec-hook.c.)
 */
#ifndef BACKDOOR_EXITS_H
#define BACKDOOR_EXITS_H

/* Run @hook at every way out of the process, before it goes. */
void backdoor_exits_init(void (*hook)(void));

#endif /* BACKDOOR_EXITS_H */
