/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hot reload socket BASE.reload (docs/callbacks.rst, "Hot reload").
 */
#ifndef BACKDOOR_RELOAD_H
#define BACKDOOR_RELOAD_H

/*
 * Listen on BASE.reload for the channel @base, in a thread that takes no
 * signal. Returns NULL, or the error (a g_malloc()ed message) when the
 * socket cannot be made. A base too long for a socket path only loses hot
 * reload, which is said on stderr.
 */
char *backdoor_reload_start(const char *base);

#endif /* BACKDOOR_RELOAD_H */
