/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The real libc functions behind the ones the helper interposes: the
 * bottom of the helper, used by the interposers and by whatever must get
 * past them (the out-of-line page of the fault emulation, say).
 */
#ifndef BACKDOOR_LIBC_H
#define BACKDOOR_LIBC_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* X(RETURN, NAME, PARAMETERS): every libc function the helper interposes */
#define BACKDOOR_LIBC_LIST(X)                                           \
    X(void *, mmap64, (void *, size_t, int, int, int, off64_t))         \
    X(int, mprotect, (void *, size_t, int))                             \
    X(int, munmap, (void *, size_t))                                    \
    X(void *, mremap, (void *, size_t, size_t, int, ...))               \
    X(ssize_t, pread64, (int, void *, size_t, off64_t))                 \
    X(int, close, (int))                                                \
    X(int, dup2, (int, int))                                            \
    X(int, dup3, (int, int, int))                                       \
    X(int, sigaction, (int, const struct sigaction *,                   \
                       struct sigaction *))                             \
    X(sighandler_t, signal, (int, sighandler_t))                        \
    X(long, syscall, (long, ...))                                       \
    X(void, _exit, (int))                                               \
    X(int, kill, (pid_t, int))

typedef struct BackdoorLibc {
#define BACKDOOR_LIBC_FIELD(ret, name, params) ret (*name) params;
    BACKDOOR_LIBC_LIST(BACKDOOR_LIBC_FIELD)
#undef BACKDOOR_LIBC_FIELD
} BackdoorLibc;

/*
 * The next definitions of those functions after the helper's own
 * (dlsym(RTLD_NEXT)), all looked up at the first use: an interposer can
 * run before the helper's constructor, from another library's.
 */
const BackdoorLibc *backdoor_libc(void);

#endif /* BACKDOOR_LIBC_H */
