/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The libc functions qemu-<arch> calls that the helper interposes: mmap
 * and friends to track guest mappings of the control file, pread64 for the
 * fast path, sigaction to stand in front of QEMU's SIGSEGV handler, and
 * the ways out of the process to remove the channel files.
 */
#define _GNU_SOURCE
/* Both the 32-bit-offset and the 64-bit names are defined here */
#undef _FILE_OFFSET_BITS
#include "backdoor-user.h"
#include "qemu-backdoor-callbacks.h"

#include <dlfcn.h>
#include <linux/close_range.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

#define REAL(name) \
    ({ if (!real_##name) { real_##name = dlsym(RTLD_NEXT, #name); } \
       real_##name; })

static void *(*real_mmap64)(void *, size_t, int, int, int, off64_t);
static int (*real_mprotect)(void *, size_t, int);
static int (*real_munmap)(void *, size_t);
static void *(*real_mremap)(void *, size_t, size_t, int, ...);
static ssize_t (*real_pread64)(int, void *, size_t, off64_t);
static int (*real_sigaction)(int, const struct sigaction *,
                             struct sigaction *);
static long (*real_syscall)(long, ...);
static void (*real__exit)(int);
static int (*real_kill)(pid_t, int);
static sighandler_t (*real_signal)(int, sighandler_t);
static int (*real_close)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);

/*
 * Guest mappings of the control file. Writers hold map_lock; the SIGSEGV
 * handler reads without it: a slot is live while end != 0, and end is
 * written last.
 */
#define MAX_REGIONS 64

typedef struct Region {
    uintptr_t start;
    uintptr_t end;
    uint64_t offset;        /* file offset of start */
    int prot;               /* what the guest asked for */
} Region;

static Region regions[MAX_REGIONS];
static int nr_regions;      /* slots in use are below this */
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

bool backdoor_user_lookup(uintptr_t addr, uint64_t *offset, int *prot)
{
    int n = __atomic_load_n(&nr_regions, __ATOMIC_ACQUIRE);

    for (int i = 0; i < n; i++) {
        Region *r = &regions[i];
        uintptr_t end = __atomic_load_n(&r->end, __ATOMIC_ACQUIRE);

        if (end && addr >= r->start && addr < end) {
            *offset = r->offset + (addr - r->start);
            *prot = r->prot;
            return true;
        }
    }
    return false;
}

static void region_add(uintptr_t start, uintptr_t end, uint64_t offset,
                       int prot)
{
    for (int i = 0; i < MAX_REGIONS; i++) {
        Region *r = &regions[i];

        if (!r->end) {
            r->start = start;
            r->offset = offset;
            r->prot = prot;
            __atomic_store_n(&r->end, end, __ATOMIC_RELEASE);
            if (i >= nr_regions) {
                __atomic_store_n(&nr_regions, i + 1, __ATOMIC_RELEASE);
            }
            return;
        }
    }
    /* Out of slots: the mapping stays an ordinary (inert) file mapping */
}

/* Forget [start, end) of every region, splitting where needed. */
static void region_remove(uintptr_t start, uintptr_t end)
{
    for (int i = 0; i < nr_regions; i++) {
        Region r = regions[i];

        if (!r.end || end <= r.start || start >= r.end) {
            continue;
        }
        __atomic_store_n(&regions[i].end, 0, __ATOMIC_RELEASE);
        if (r.start < start) {
            region_add(r.start, start, r.offset, r.prot);
        }
        if (end < r.end) {
            region_add(end, r.end, r.offset + (end - r.start), r.prot);
        }
    }
}

static bool region_overlaps(uintptr_t start, uintptr_t end)
{
    for (int i = 0; i < nr_regions; i++) {
        if (regions[i].end && start < regions[i].end &&
            end > regions[i].start) {
            return true;
        }
    }
    return false;
}

void *backdoor_real_mmap(void *addr, size_t len, int prot, int flags, int fd,
                         off_t offset)
{
    return REAL(mmap64)(addr, len, prot, flags, fd, offset);
}

int backdoor_real_mprotect(void *addr, size_t len, int prot)
{
    return REAL(mprotect)(addr, len, prot);
}

static bool is_ctrl_mapping(int flags, int fd)
{
    return backdoor_user_active && !(flags & MAP_ANONYMOUS) && fd >= 0 &&
           backdoor_user_is_ctrl_fd(fd);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off64_t offset)
{
    void *p;

    if (!backdoor_user_active) {
        return REAL(mmap64)(addr, len, prot, flags, fd, offset);
    }
    pthread_mutex_lock(&map_lock);
    if (is_ctrl_mapping(flags, fd)) {
        /* Mapped inaccessible from the start: no window for the guest */
        p = REAL(mmap64)(addr, len, PROT_NONE, flags, fd, offset);
        if (p != MAP_FAILED) {
            region_remove((uintptr_t)p, (uintptr_t)p + len);
            region_add((uintptr_t)p, (uintptr_t)p + len, offset, prot);
        }
    } else {
        p = REAL(mmap64)(addr, len, prot, flags, fd, offset);
        if (p != MAP_FAILED) {
            region_remove((uintptr_t)p, (uintptr_t)p + len);
        }
    }
    pthread_mutex_unlock(&map_lock);
    return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t offset)
{
    return mmap64(addr, len, prot, flags, fd, offset);
}

EXPORT int munmap(void *addr, size_t len)
{
    int ret;

    if (!backdoor_user_active) {
        return REAL(munmap)(addr, len);
    }
    pthread_mutex_lock(&map_lock);
    ret = REAL(munmap)(addr, len);
    if (ret == 0) {
        region_remove((uintptr_t)addr, (uintptr_t)addr + len);
    }
    pthread_mutex_unlock(&map_lock);
    return ret;
}

/*
 * Change the protection outside control mappings only; inside, remember
 * what the guest asked for (it decides which accesses are emulated) and
 * keep the pages inaccessible.
 */
EXPORT int mprotect(void *addr, size_t len, int prot)
{
    uintptr_t start = (uintptr_t)addr, end = start + len, pos;
    int ret = 0;

    if (!backdoor_user_active) {
        return REAL(mprotect)(addr, len, prot);
    }
    pthread_mutex_lock(&map_lock);
    if (!region_overlaps(start, end)) {
        ret = REAL(mprotect)(addr, len, prot);
        pthread_mutex_unlock(&map_lock);
        return ret;
    }
    pos = start;
    while (pos < end && ret == 0) {
        uintptr_t next = end;
        Region *in = NULL;

        for (int i = 0; i < nr_regions; i++) {
            Region *r = &regions[i];

            if (!r->end || r->end <= pos) {
                continue;
            }
            if (r->start <= pos) {
                in = r;
                next = r->end < end ? r->end : end;
                break;
            }
            if (r->start < next) {
                next = r->start;
            }
        }
        if (in) {
            if (in->start < pos || next < in->end) {
                /* Split so that each part has one guest protection */
                Region r = *in;

                region_remove(pos, next);
                region_add(pos, next, r.offset + (pos - r.start), prot);
            } else {
                in->prot = prot;
            }
        } else {
            ret = REAL(mprotect)((void *)pos, next - pos, prot);
        }
        pos = next;
    }
    pthread_mutex_unlock(&map_lock);
    return ret;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags,
                    ...)
{
    void *new_addr = NULL, *p;
    uintptr_t o = (uintptr_t)old;
    uint64_t offset;
    int prot;
    bool ctrl;
    va_list ap;

    if (flags & MREMAP_FIXED) {
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (!backdoor_user_active) {
        return REAL(mremap)(old, old_len, new_len, flags, new_addr);
    }
    pthread_mutex_lock(&map_lock);
    ctrl = backdoor_user_lookup(o, &offset, &prot);
    p = REAL(mremap)(old, old_len, new_len, flags, new_addr);
    if (p != MAP_FAILED) {
        if (p != old || new_len < old_len) {
            region_remove(o, o + old_len);
        }
        region_remove((uintptr_t)p, (uintptr_t)p + new_len);
        if (ctrl) {
            /* The moved mapping is still the (inaccessible) control file */
            region_add((uintptr_t)p, (uintptr_t)p + new_len, offset, prot);
        }
    }
    pthread_mutex_unlock(&map_lock);
    return p;
}

/*
 * Descriptors known to be on the control file, so that a fast-path call
 * needs no fstat(). QEMU closes and replaces guest descriptors with libc
 * close, dup2, dup3 and syscall(close_range), all seen here.
 */
#define FD_CACHE 4096

static unsigned long ctrl_fds[FD_CACHE / (8 * sizeof(long))];

#define FD_WORD(fd) (ctrl_fds[(fd) / (8 * sizeof(long))])
#define FD_BIT(fd) (1ul << ((fd) % (8 * sizeof(long))))

static bool is_ctrl_fd_cached(int fd)
{
    if (fd >= 0 && fd < FD_CACHE &&
        (__atomic_load_n(&FD_WORD(fd), __ATOMIC_RELAXED) & FD_BIT(fd))) {
        return true;
    }
    if (!backdoor_user_is_ctrl_fd(fd)) {
        return false;
    }
    if (fd >= 0 && fd < FD_CACHE) {
        __atomic_fetch_or(&FD_WORD(fd), FD_BIT(fd), __ATOMIC_RELAXED);
    }
    return true;
}

static void forget_fds(long first, long last)
{
    if (first < 0) {
        return;
    }
    for (long fd = first; fd <= last && fd < FD_CACHE; fd++) {
        __atomic_fetch_and(&FD_WORD(fd), ~FD_BIT(fd), __ATOMIC_RELAXED);
    }
}

EXPORT int close(int fd)
{
    forget_fds(fd, fd);
    return REAL(close)(fd);
}

EXPORT int dup2(int old, int new)
{
    forget_fds(new, new);
    return REAL(dup2)(old, new);
}

EXPORT int dup3(int old, int new, int flags)
{
    forget_fds(new, new);
    return REAL(dup3)(old, new, flags);
}

/*
 * The fast path: QEMU emulates a guest pread64 with a libc pread64 on the
 * guest's buffer in place, so the call costs no signal. The event rings'
 * operations take the same path at their registers' offsets.
 */
EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t offset)
{
    if (backdoor_user_active && count == 8 && buf &&
        (offset == BACKDOOR_REG_CALL || backdoor_user_ring_is_op(offset)) &&
        is_ctrl_fd_cached(fd)) {
        uint64_t v = qemu_backdoor_ld64(backdoor_user_big_endian, buf);

        v = offset == BACKDOOR_REG_CALL ? backdoor_user_call(v) :
            backdoor_user_ring_op(offset, v);
        qemu_backdoor_st64(backdoor_user_big_endian, buf, v);
        return 8;
    }
    return REAL(pread64)(fd, buf, count, offset);
}

EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    return pread64(fd, buf, count, offset);
}

/*
 * SIGSEGV: the helper's handler is installed in the kernel; what QEMU
 * (or anyone else) installs is kept here and gets every fault that is not
 * a guest access to a control page.
 */
static struct sigaction chained;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static bool fault_handler_installed;

static void backdoor_user_sigsegv(int sig, siginfo_t *info, void *uc)
{
    struct sigaction next = chained;
    siginfo_t maperr;
    uint64_t offset;
    int prot;

    if (info->si_code > 0 &&
        backdoor_user_lookup((uintptr_t)info->si_addr, &offset, &prot)) {
        if (backdoor_user_emulate(info, uc, offset, prot)) {
            return;
        }
        if (prot & PROT_WRITE) {
            /*
             * An access we cannot run to a page QEMU believes writable:
             * QEMU would take it for a write to a page of translated code
             * and retry forever. Make it an ordinary guest SIGSEGV.
             */
            maperr = *info;
            maperr.si_code = SEGV_MAPERR;
            info = &maperr;
        }
    } else if (info->si_code > 0 && backdoor_user_out_of_line_done(info, uc)) {
        return;
    }

    if (next.sa_flags & SA_SIGINFO) {
        if (next.sa_flags & SA_RESETHAND) {
            chained.sa_handler = SIG_DFL;
            chained.sa_flags &= ~SA_SIGINFO;
        }
        next.sa_sigaction(sig, info, uc);
    } else if (next.sa_handler == SIG_IGN && info->si_code <= 0) {
        return;
    } else if (next.sa_handler == SIG_DFL || next.sa_handler == SIG_IGN) {
        /*
         * As the kernel would: a fault with SIG_DFL or SIG_IGN kills.
         * Hand the signal over and let it happen again without us.
         */
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        REAL(sigaction)(sig, &dfl, NULL);
        if (info->si_code <= 0) {
            REAL(syscall)(SYS_rt_tgsigqueueinfo, getpid(),
                          REAL(syscall)(SYS_gettid), sig, info);
        }
    } else {
        if (next.sa_flags & SA_RESETHAND) {
            chained.sa_handler = SIG_DFL;
        }
        next.sa_handler(sig);
    }
}

static void install_fault_handler(const struct sigaction *like)
{
    struct sigaction act = *like;

    act.sa_sigaction = backdoor_user_sigsegv;
    act.sa_flags = (like->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    /* Block everything during a call; pending signals arrive after it */
    sigfillset(&act.sa_mask);
    REAL(sigaction)(SIGSEGV, &act, NULL);
}

void backdoor_user_fault_init(void)
{
    pthread_mutex_lock(&sig_lock);
    REAL(sigaction)(SIGSEGV, NULL, &chained);
    install_fault_handler(&chained);
    fault_handler_installed = true;
    pthread_mutex_unlock(&sig_lock);
}

EXPORT int sigaction(int sig, const struct sigaction *act,
                     struct sigaction *old)
{
    if (sig != SIGSEGV || !fault_handler_installed) {
        return REAL(sigaction)(sig, act, old);
    }
    pthread_mutex_lock(&sig_lock);
    if (old) {
        *old = chained;
    }
    if (act) {
        chained = *act;
        install_fault_handler(act);
    }
    pthread_mutex_unlock(&sig_lock);
    return 0;
}

EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction act = { .sa_handler = handler, .sa_flags = SA_RESTART };
    struct sigaction old;

    if (sig != SIGSEGV || !fault_handler_installed) {
        return REAL(signal)(sig, handler);
    }
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig);
    sigaction(sig, &act, &old);
    return old.sa_handler;
}

/*
 * The ways QEMU leaves: exit() runs our atexit handler, but a guest
 * exit_group() is syscall(__NR_exit_group), the last thread's exit is
 * _exit(), and a fatal guest signal is kill(getpid(), sig).
 */
EXPORT long syscall(long nr, ...)
{
    long a[6];
    va_list ap;

    va_start(ap, nr);
    for (int i = 0; i < 6; i++) {
        a[i] = va_arg(ap, long);
    }
    va_end(ap);
    if (nr == SYS_exit_group) {
        backdoor_user_cleanup();
    } else if (nr == SYS_close_range && !(a[2] & CLOSE_RANGE_CLOEXEC)) {
        forget_fds((unsigned int)a[0], (unsigned int)a[1]);
    }
    return REAL(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

EXPORT void _exit(int status)
{
    backdoor_user_cleanup();
    REAL(_exit)(status);
    __builtin_unreachable();
}

EXPORT int kill(pid_t pid, int sig)
{
    if (pid == getpid() && sig != 0 && sig != SIGSTOP) {
        backdoor_user_cleanup();
    }
    return REAL(kill)(pid, sig);
}
