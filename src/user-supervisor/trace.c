/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Raw register accesses under the supervisor: the seed's loads and stores
 * on a mapping of BASE.ctrl, served by tracing QEMU (see trace.h).
 *
 * QEMU is traced with PTRACE_SEIZE and runs under a seccomp filter that
 * stops its mmap (of a file), mprotect and mremap calls at the tracer.
 * When QEMU maps the register page of BASE.ctrl (recognized by the file,
 * not the descriptor's number), the tracer asks the kernel for PROT_NONE
 * and remembers the guest's protection; QEMU believes what it asked for.
 * A guest access there then faults in QEMU (in TCG code or its helpers):
 * the SIGSEGV stops at the tracer, which checks the address against the
 * real mapping, emulates the host instruction (raw-access.c) with the
 * thread's registers, runs the register access and suppresses the
 * signal. Every other signal goes on to QEMU unchanged, group-stops stay
 * stopped until SIGCONT (PTRACE_LISTEN), and forks, threads and execs are
 * followed. Costs: a stop per access and per file mmap, mprotect or
 * mremap of QEMU's; strace and gdb cannot attach to a traced QEMU.
 */
#define _GNU_SOURCE
#include "trace.h"
#include "procmaps.h"
#include "raw-access.h"
#include "user-env.h"
#include "qemu-backdoor-regs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096ull


/* Signals the serving process leaves to the proxy and to QEMU. */
static const int ignored[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH,
    SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE,
};

/* Sent to the serving process when the proxy dies (PR_SET_PDEATHSIG). */
#define PROXY_DIED (SIGRTMAX - 1)

/* A guest mapping of the register page, host protection PROT_NONE. */
typedef struct Region {
    uint64_t start, end;
    uint64_t offset;            /* file offset of start */
    int prot;                   /* what the guest asked for */
} Region;

typedef struct Proc {
    pid_t tgid;
    bool served;                /* runs the QEMU binary we started */
    int maps_fd;                /* /proc/TGID/maps, -1: not open */
    GArray *regions;
    uint64_t call_offset;       /* CALL_OFFSET: shared by the process */
} Proc;

enum { PEND_NONE, PEND_MMAP, PEND_MPROTECT, PEND_MREMAP };

typedef struct Thread {
    pid_t tid;
    Proc *proc;
    uint64_t result;            /* RESULT: per thread */
    int pending;                /* a system call to finish at its exit */
    uint64_t p_addr, p_len, p_new_len, p_offset;
    int p_prot;
} Thread;

static struct {
    bool active;                /* the serving process of a split */
    pid_t proxy;
    int msg_fd;                 /* to the proxy */
    int go[2];                  /* tracer to QEMU: traced or not */
    bool reported;
    pid_t qemu;
    TraceChannel ch;
    dev_t ctrl_dev;             /* BASE.ctrl as stat() sees it */
    ino_t ctrl_ino;
    uint32_t vma_major, vma_minor;  /* ... and as mappings show it */
    uint64_t vma_ino;
    dev_t exe_dev;              /* the QEMU binary */
    ino_t exe_ino;
    bool exe_known;
    bool text_maps;             /* no PROCMAP_QUERY: read maps' text */
    GHashTable *threads;        /* tid -> Thread */
    GHashTable *procs;          /* tgid -> Proc */
    unsigned notices;           /* said once each */
} tr = {
    .msg_fd = -1,
    .go = { -1, -1 },
};

#define NOTICE_SPAN     (1u << 0)
#define NOTICE_INSN     (1u << 1)
#define NOTICE_MPROTECT (1u << 2)

static void G_GNUC_PRINTF(2, 3) notice(unsigned what, const char *fmt, ...)
{
    va_list ap;

    if (tr.notices & what) {
        return;
    }
    tr.notices |= what;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool trace_wanted(void)
{
    const char *v = getenv("QEMU_BACKDOOR_RAW_ACCESS");
    bool on = true;

    if (v && *v) {
        if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no")) {
            on = false;
        } else if (strcmp(v, "on") && strcmp(v, "1") && strcmp(v, "yes")) {
            backdoor_user_die("QEMU_BACKDOOR_RAW_ACCESS '%s' is neither on "
                              "nor off", v);
        }
    }
    unsetenv("QEMU_BACKDOOR_RAW_ACCESS");
#if !defined(__x86_64__)
    on = false;                 /* the emulator decodes x86-64 */
#endif
    return on;
}

bool trace_active(void)
{
    return tr.active;
}

static void send_msg(char kind, int value)
{
    TraceMsg m = { .kind = kind, .value = value };

    if (tr.msg_fd >= 0 && write(tr.msg_fd, &m, sizeof(m)) != sizeof(m)) {
        /* The proxy is gone: nobody to tell */
    }
}

static void proxy_died(int sig)
{
    (void)sig;
    if (getppid() == tr.proxy || tr.reported) {
        return;
    }
    /* Take QEMU with it, as without tracing; its end cleans up */
    if (tr.qemu > 0) {
        kill(tr.qemu, SIGKILL);
    } else {
        _exit(1);               /* QEMU never started */
    }
}

/*
 * The mapping of BASE.ctrl as the kernel shows mappings (on overlayfs its
 * device differs from what stat() says): look at our own.
 */
static bool vma_of_self(const void *addr, uint32_t *major, uint32_t *minor,
                        uint64_t *ino);

void trace_split(const TraceChannel *ch)
{
    struct stat st;
    int msg[2];
    pid_t proxy = getpid(), child;

    tr.ch = *ch;
    if (stat(ch->ctrl_path, &st) == 0) {
        tr.ctrl_dev = st.st_dev;
        tr.ctrl_ino = st.st_ino;
    }
    if (!vma_of_self(ch->reg_page, &tr.vma_major, &tr.vma_minor,
                     &tr.vma_ino)) {
        tr.vma_major = major(tr.ctrl_dev);
        tr.vma_minor = minor(tr.ctrl_dev);
        tr.vma_ino = tr.ctrl_ino;
    }
    if (pipe2(msg, O_CLOEXEC)) {
        fprintf(stderr, PROG ": cannot make a pipe (%s): raw register "
                "accesses are not served\n", strerror(errno));
        return;
    }
    fflush(NULL);
    child = fork();
    if (child < 0) {
        fprintf(stderr, PROG ": cannot fork (%s): raw register accesses are "
                "not served\n", strerror(errno));
        close(msg[0]);
        close(msg[1]);
        return;
    }
    if (child > 0) {
        close(msg[1]);
        supervisor_proxy(msg[0], child);
    }
    close(msg[0]);
    tr.active = true;
    tr.proxy = proxy;
    tr.msg_fd = msg[1];
    signal(PROXY_DIED, proxy_died);
    prctl(PR_SET_PDEATHSIG, PROXY_DIED);
    if (getppid() != proxy) {
        _exit(1);               /* the proxy died before the prctl */
    }
}

void trace_ignore_signals(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(ignored); i++) {
        signal(ignored[i], SIG_IGN);
    }
}

/*
 * The filter: stop at the tracer for mmap of a file, mprotect,
 * pkey_mprotect and mremap; everything else runs as before. Inherited by
 * every process and thread of QEMU's, also across exec.
 */
static int install_filter(void)
{
#define ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 7, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pkey_mprotect, 6, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mremap, 5, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 5),
        /* mmap: not of anonymous memory, and with a descriptor */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(3)),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_ANONYMOUS, 3, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(4)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = G_N_ELEMENTS(f), .filter = f };
    /*
     * The filter is no sandbox: do not let it switch on the speculative
     * store bypass mitigation for QEMU, which would slow its TCG code
     */
    unsigned long flags = SECCOMP_FILTER_FLAG_SPEC_ALLOW;
#undef ARG_LO

    for (int tries = 0; tries < 3; tries++) {
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) == 0) {
            return 0;
        }
        if (errno == EINVAL && flags) {
            flags = 0;          /* before Linux 4.17 */
        } else if (errno == EACCES) {
            /* Without CAP_SYS_ADMIN a filter needs no_new_privs */
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return -1;
}

void trace_child(void)
{
    char go = 'N';

    if (!tr.active || tr.go[0] < 0) {
        return;
    }
    close(tr.go[1]);
    while (read(tr.go[0], &go, 1) < 0 && errno == EINTR) {
    }
    close(tr.go[0]);
    /* What the serving process ignores, QEMU must not inherit */
    for (size_t i = 0; i < G_N_ELEMENTS(ignored); i++) {
        signal(ignored[i], SIG_DFL);
    }
    signal(PROXY_DIED, SIG_DFL);
    if (go == 'T' && install_filter()) {
        /* Traced without a filter: nothing is served, nothing breaks */
        int e = errno;
        static const char msg[] = PROG ": cannot install the seccomp "
            "filter (";
        const char *err = strerror(e);

        if (write(2, msg, sizeof(msg) - 1) < 0 ||
            write(2, err, strlen(err)) < 0 ||
            write(2, "): raw register accesses are not served\n", 40) < 0) {
            /* nowhere to say it */
        }
    }
}

/* Process and thread tables */

static Proc *proc_new(pid_t tgid)
{
    Proc *p = g_new0(Proc, 1);

    p->tgid = tgid;
    p->maps_fd = -1;
    p->regions = g_array_new(false, false, sizeof(Region));
    p->call_offset = backdoor_regs_call_offset_reset(tr.ch.regs);
    g_hash_table_insert(tr.procs, GINT_TO_POINTER(tgid), p);
    return p;
}

static void proc_free(gpointer data)
{
    Proc *p = data;

    if (p->maps_fd >= 0) {
        close(p->maps_fd);
    }
    g_array_free(p->regions, true);
    g_free(p);
}

/* A field (Tgid, PPid) of /proc/TID/status; @tid if it cannot be read */
static pid_t status_field(pid_t tid, const char *field)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", tid);
    g_autofree char *text = NULL;
    g_autofree char *key = g_strdup_printf("\n%s:", field);
    const char *t;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return tid;
    }
    t = strstr(text, key);
    return t ? (pid_t)atoi(t + strlen(key)) : tid;
}

static Thread *thread_add(pid_t tid, Proc *p)
{
    Thread *t = g_new0(Thread, 1);

    t->tid = tid;
    t->proc = p;
    g_hash_table_insert(tr.threads, GINT_TO_POINTER(tid), t);
    return t;
}

/*
 * A tracee seen for the first time (its own first stop or its parent's
 * event, whichever comes first): a thread of a known process, or a new
 * process, forked with its parent's mappings, protections and
 * CALL_OFFSET.
 */
static Thread *thread_get(pid_t tid)
{
    Thread *t = g_hash_table_lookup(tr.threads, GINT_TO_POINTER(tid));
    pid_t tgid;
    Proc *p, *parent;

    if (t) {
        return t;
    }
    tgid = status_field(tid, "Tgid");
    p = g_hash_table_lookup(tr.procs, GINT_TO_POINTER(tgid));
    if (!p) {
        p = proc_new(tgid);
        parent = g_hash_table_lookup(tr.procs, GINT_TO_POINTER(
                                     status_field(tgid, "PPid")));
        if (parent) {
            p->served = parent->served;
            p->call_offset = parent->call_offset;
            g_array_append_vals(p->regions, parent->regions->data,
                                parent->regions->len);
        }
    }
    return thread_add(tid, p);
}

static void thread_gone(pid_t tid)
{
    Thread *t = g_hash_table_lookup(tr.threads, GINT_TO_POINTER(tid));
    Proc *p = t ? t->proc : NULL;
    GHashTableIter it;
    gpointer v;

    g_hash_table_remove(tr.threads, GINT_TO_POINTER(tid));
    if (!p) {
        return;
    }
    g_hash_table_iter_init(&it, tr.threads);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        if (((Thread *)v)->proc == p) {
            return;
        }
    }
    g_hash_table_remove(tr.procs, GINT_TO_POINTER(p->tgid));
}

static void resume(pid_t tid, int sig)
{
    ptrace(PTRACE_CONT, tid, 0, (void *)(uintptr_t)sig);
}

/* Mappings: what the kernel has at an address */

static bool vma_query(int fd, uint64_t addr, Vma *v)
{
    return procmaps_query(fd, addr, v, &tr.text_maps);
}

static bool vma_of_self(const void *addr, uint32_t *maj, uint32_t *min,
                        uint64_t *ino)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    Vma v;
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = vma_query(fd, (uintptr_t)addr, &v);
    close(fd);
    if (ok) {
        *maj = v.major;
        *min = v.minor;
        *ino = v.ino;
    }
    return ok;
}

/* The register page of BASE.ctrl at @addr in @p: its file offset. */
static bool ctrl_at(Proc *p, uint64_t addr, uint64_t *offset)
{
    Vma v;

    if (p->maps_fd < 0) {
        g_autofree char *path = g_strdup_printf("/proc/%d/maps", p->tgid);

        p->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (p->maps_fd < 0) {
            return false;
        }
    }
    if (!vma_query(p->maps_fd, addr, &v) || v.ino != tr.vma_ino ||
        v.major != tr.vma_major || v.minor != tr.vma_minor) {
        return false;
    }
    *offset = v.offset + (addr - v.start);
    return *offset < BACKDOOR_USER_REGS_SIZE;
}

/* Whether descriptor @fd of thread @tid is BASE.ctrl. */
static bool is_ctrl_fd(pid_t tid, int fd)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fd/%d", tid, fd);
    struct stat st;

    return fd >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_dev == tr.ctrl_dev && st.st_ino == tr.ctrl_ino;
}

static Region *region_at(Proc *p, uint64_t addr)
{
    for (guint i = 0; i < p->regions->len; i++) {
        Region *r = &g_array_index(p->regions, Region, i);

        if (addr >= r->start && addr < r->end) {
            return r;
        }
    }
    return NULL;
}

/* Forget [start, end) of every region, splitting where needed. */
static void region_remove(Proc *p, uint64_t start, uint64_t end)
{
    for (guint i = 0; i < p->regions->len;) {
        Region r = g_array_index(p->regions, Region, i);

        if (end <= r.start || start >= r.end) {
            i++;
            continue;
        }
        g_array_remove_index_fast(p->regions, i);
        if (r.start < start) {
            Region a = { r.start, start, r.offset, r.prot };

            g_array_append_val(p->regions, a);
        }
        if (end < r.end) {
            Region b = { end, r.end, r.offset + (end - r.start), r.prot };

            g_array_append_val(p->regions, b);
        }
    }
}

static void region_add(Proc *p, uint64_t start, uint64_t end,
                       uint64_t offset, int prot)
{
    Region r = { start, end, offset, prot };

    region_remove(p, start, end);
    g_array_append_val(p->regions, r);
}

/* Drop the regions that are no longer the register page (unmapped, ...) */
static void regions_verify(Proc *p, uint64_t start, uint64_t end)
{
    for (guint i = 0; i < p->regions->len;) {
        Region *r = &g_array_index(p->regions, Region, i);
        uint64_t off;

        if (r->end > start && r->start < end &&
            (!ctrl_at(p, r->start, &off) || off != r->offset)) {
            g_array_remove_index_fast(p->regions, i);
            continue;
        }
        i++;
    }
}

/* System calls stopped by the filter (at entry) */

static void syscall_mmap(Thread *t, struct user_regs_struct *r)
{
    uint64_t len = (r->rsi + PAGE - 1) & ~(PAGE - 1);
    uint64_t off = r->r9;
    int fd = (int)r->r8;

    if (!t->proc->served || !is_ctrl_fd(t->tid, fd) ||
        off >= BACKDOOR_USER_REGS_SIZE || len == 0) {
        resume(t->tid, 0);
        return;
    }
    if (off + len > BACKDOOR_USER_REGS_SIZE) {
        notice(NOTICE_SPAN, "a mapping of %s covers both the register page "
               "and the call slots: its raw register accesses are not "
               "served (map the register page alone)", tr.ch.ctrl_path);
        resume(t->tid, 0);
        return;
    }
    t->pending = PEND_MMAP;
    t->p_addr = r->rdi;
    t->p_len = len;
    t->p_offset = off;
    t->p_prot = (int)r->rdx;
    if (r->r10 & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        /* Known now: a fault from another thread may come first */
        region_add(t->proc, r->rdi, r->rdi + len, off, t->p_prot);
    }
    r->rdx = PROT_NONE;
    ptrace(PTRACE_SETREGS, t->tid, 0, r);
    ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
}

static void syscall_mprotect(Thread *t, struct user_regs_struct *r)
{
    Proc *p = t->proc;
    uint64_t start = r->rdi, end = start + ((r->rsi + PAGE - 1) & ~(PAGE - 1));
    uint64_t lo = end, hi = start, covered = 0;

    regions_verify(p, start, end);
    for (guint i = 0; i < p->regions->len; i++) {
        Region *g = &g_array_index(p->regions, Region, i);
        uint64_t s = MAX(g->start, start), e = MIN(g->end, end);

        if (s < e) {
            lo = MIN(lo, s);
            hi = MAX(hi, e);
            covered += e - s;
        }
    }
    if (!covered) {
        resume(t->tid, 0);
        return;
    }
    t->pending = PEND_MPROTECT;
    t->p_addr = start;
    t->p_len = end - start;
    t->p_prot = (int)r->rdx;
    if (covered == end - start) {
        /* Only the register page: it stays inaccessible */
        r->rdx = PROT_NONE;
    } else if (lo == start && hi - lo == covered) {
        r->rdi = hi;            /* the rest, after it */
        r->rsi = end - hi;
    } else if (hi == end && hi - lo == covered) {
        r->rsi = lo - start;    /* the rest, before it */
    } else {
        /* Other memory on both sides: one call cannot do it */
        notice(NOTICE_MPROTECT, "an mprotect() over a mapping of %s and "
               "memory on both sides of it: its raw register accesses are "
               "no longer served", tr.ch.ctrl_path);
        region_remove(p, start, end);
        t->pending = PEND_NONE;
        resume(t->tid, 0);
        return;
    }
    ptrace(PTRACE_SETREGS, t->tid, 0, r);
    ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
}

static void syscall_mremap(Thread *t, struct user_regs_struct *r)
{
    Proc *p = t->proc;
    uint64_t old = r->rdi, old_len = (r->rsi + PAGE - 1) & ~(PAGE - 1);

    regions_verify(p, old, old + old_len);
    if (!region_at(p, old)) {
        resume(t->tid, 0);
        return;
    }
    t->pending = PEND_MREMAP;
    t->p_addr = old;
    t->p_len = old_len;
    t->p_new_len = (r->rdx + PAGE - 1) & ~(PAGE - 1);
    ptrace(PTRACE_SYSCALL, t->tid, 0, 0);
}

static void on_seccomp(Thread *t)
{
    struct user_regs_struct r;

    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r)) {
        resume(t->tid, 0);
        return;
    }
    switch (r.orig_rax) {
    case __NR_mmap:
        syscall_mmap(t, &r);
        break;
    case __NR_mprotect:
    case __NR_pkey_mprotect:
        syscall_mprotect(t, &r);
        break;
    case __NR_mremap:
        syscall_mremap(t, &r);
        break;
    default:
        resume(t->tid, 0);
    }
}

/* ... and their results */
static void on_syscall_exit(Thread *t)
{
    struct user_regs_struct r;
    Proc *p = t->proc;
    int64_t ret;

    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r)) {
        t->pending = PEND_NONE;
        resume(t->tid, 0);
        return;
    }
    ret = (int64_t)r.rax;
    switch (t->pending) {
    case PEND_MMAP:
        if (ret < 0 && ret > -4096) {
            region_remove(p, t->p_addr, t->p_addr + t->p_len);
        } else {
            region_add(p, ret, ret + t->p_len, t->p_offset, t->p_prot);
        }
        break;
    case PEND_MPROTECT:
        if (ret == 0) {
            uint64_t start = t->p_addr, end = start + t->p_len;

            for (guint i = 0; i < p->regions->len; i++) {
                Region g = g_array_index(p->regions, Region, i);
                uint64_t s = MAX(g.start, start), e = MIN(g.end, end);

                if (s < e && g.prot != t->p_prot) {
                    region_add(p, s, e, g.offset + (s - g.start),
                               t->p_prot);
                    i = -1;     /* the array changed: start over */
                }
            }
        }
        break;
    case PEND_MREMAP:
        if (!(ret < 0 && ret > -4096)) {
            Region *g = region_at(p, t->p_addr);
            Region moved = g ? *g : (Region){ 0 };

            region_remove(p, t->p_addr, t->p_addr + t->p_len);
            if (g) {
                /* The part that maps the register page stays served */
                moved.offset += t->p_addr - moved.start;
                region_add(p, ret, ret + MIN(t->p_new_len,
                               BACKDOOR_USER_REGS_SIZE - moved.offset),
                           moved.offset, moved.prot);
            }
        }
        break;
    }
    t->pending = PEND_NONE;
    resume(t->tid, 0);
}

/* Faults */

/* A SIGSEGV of @t: emulated and suppressed (true), or QEMU's (false). */
static bool on_segv(Thread *t, siginfo_t *si)
{
    Proc *p = t->proc;
    uint64_t addr = (uintptr_t)si->si_addr, offset;
    RawThread rt = { t->tid, &t->result, &p->call_offset };
    char what[96];
    Region *g;

    if (si->si_code <= 0 || !(g = region_at(p, addr))) {
        return false;
    }
    if (!ctrl_at(p, addr, &offset)) {
        regions_verify(p, g->start, g->end);  /* not the file any more */
        return false;
    }
    switch (raw_access(&rt, addr, offset, g->prot, what, sizeof(what))) {
    case RAW_DONE:
        return true;
    case RAW_DENIED:
        return false;           /* faults as it would without us */
    case RAW_FAILED:
        break;
    }
    notice(NOTICE_INSN, "cannot emulate %s that accessed offset 0x%" PRIx64
           " of %s: the guest gets SIGSEGV", what, offset, tr.ch.ctrl_path);
    if (g->prot & PROT_WRITE) {
        /*
         * QEMU would take a fault on a page it believes writable for a
         * write to translated code, and retry forever: a guest SIGSEGV.
         */
        si->si_code = SEGV_MAPERR;
        ptrace(PTRACE_SETSIGINFO, t->tid, 0, si);
    }
    return false;
}

/* Stops */

static bool is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
           sig == SIGTTOU;
}

/* A new thread or process, announced by its parent's event. */
static void on_new(Thread *parent, pid_t tid)
{
    bool known = g_hash_table_contains(tr.threads, GINT_TO_POINTER(tid));
    Thread *t = thread_get(tid);

    /* A forked child's thread starts with the forking one's RESULT */
    if (!known && t->proc != parent->proc) {
        t->result = parent->result;
    }
}

static void on_exec(Thread *t)
{
    Proc *p = t->proc;
    g_autofree char *exe = g_strdup_printf("/proc/%d/exe", t->tid);
    struct stat st;
    GHashTableIter it;
    gpointer k, v;

    /* The other threads are gone; the program is new */
    g_hash_table_iter_init(&it, tr.threads);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (((Thread *)v)->proc == p && v != t) {
            g_hash_table_iter_remove(&it);
        }
    }
    if (p->maps_fd >= 0) {
        close(p->maps_fd);
        p->maps_fd = -1;
    }
    g_array_set_size(p->regions, 0);
    p->call_offset = backdoor_regs_call_offset_reset(tr.ch.regs);
    t->result = 0;
    t->pending = PEND_NONE;
    /* Only the QEMU we started is served: the byte order is its guest's */
    p->served = false;
    if (stat(exe, &st) == 0) {
        if (!tr.exe_known) {
            tr.exe_known = true;
            tr.exe_dev = st.st_dev;
            tr.exe_ino = st.st_ino;
        }
        p->served = st.st_dev == tr.exe_dev && st.st_ino == tr.exe_ino;
    }
}

static void on_stop(pid_t tid, int status)
{
    int sig = WSTOPSIG(status), event = status >> 16;
    Thread *t = thread_get(tid);
    unsigned long msg = 0;
    siginfo_t si;

    if (sig == (SIGTRAP | 0x80)) {
        on_syscall_exit(t);
        return;
    }
    switch (event) {
    case PTRACE_EVENT_SECCOMP:
        on_seccomp(t);
        return;
    case PTRACE_EVENT_CLONE:
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) == 0) {
            on_new(t, (pid_t)msg);
        }
        resume(tid, 0);
        return;
    case PTRACE_EVENT_EXEC:
        on_exec(t);
        resume(tid, 0);
        return;
    case PTRACE_EVENT_STOP:
        if (is_stop_signal(sig)) {
            /* Group-stop: stay stopped until SIGCONT, as untraced */
            if (ptrace(PTRACE_LISTEN, tid, 0, 0) && errno != ESRCH) {
                resume(tid, 0);     /* not a group-stop after all */
            }
        } else {
            resume(tid, 0);
        }
        return;
    case 0:
        break;
    default:
        resume(tid, 0);
        return;
    }
    /* Signal-delivery-stop */
    if (sig == SIGSEGV && ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0 &&
        on_segv(t, &si)) {
        resume(tid, 0);
        return;
    }
    resume(tid, sig);
}

/* Serve until no traced process is left, or until QEMU's main one ends */
static int serve(bool until_qemu, int *qemu_status)
{
    for (;;) {
        int status;
        pid_t tid = waitpid(-1, &status, __WALL);

        if (tid < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (WIFSTOPPED(status)) {
            on_stop(tid, status);
            continue;
        }
        thread_gone(tid);
        if (tid == tr.qemu) {
            *qemu_status = status;
            if (until_qemu) {
                return 0;
            }
        }
    }
}

int trace_run(pid_t qemu)
{
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
                PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP |
                PTRACE_O_EXITKILL;
    char go = 'T';
    int status = W_EXITCODE(127, 0);

    tr.qemu = qemu;
    send_msg(TRACE_MSG_QEMU, qemu);
    close(tr.go[0]);
    tr.threads = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    tr.procs = g_hash_table_new_full(NULL, NULL, NULL, proc_free);
    if (!raw_access_init(&tr.ch)) {
        fprintf(stderr, PROG ": cannot start the x86-64 decoder: raw "
                "register accesses are not served\n");
        go = 'N';
    } else if (ptrace(PTRACE_SEIZE, qemu, 0, (void *)opts)) {
        fprintf(stderr, PROG ": cannot trace QEMU (ptrace: %s%s): raw "
                "register accesses are not served\n", strerror(errno),
                errno == EPERM ? "; traced already, by strace or gdb? else "
                "see /proc/sys/kernel/yama/ptrace_scope or the container's "
                "seccomp profile" : "");
        go = 'N';
    } else {
        thread_add(qemu, proc_new(qemu));
    }
    if (write(tr.go[1], &go, 1) != 1) {
        /* QEMU's process is gone already: its status says why */
    }
    close(tr.go[1]);
    tr.go[1] = -1;
    if (go != 'T') {
        while (waitpid(qemu, &status, 0) < 0 && errno == EINTR) {
        }
        return status;
    }
    serve(true, &status);
    return status;
}

void trace_prepare_fork(void)
{
    if (tr.active && pipe2(tr.go, O_CLOEXEC)) {
        tr.go[0] = tr.go[1] = -1;
    }
}

void trace_finish(int status)
{
    int devnull, qemu_status = status;

    fflush(NULL);
    send_msg(TRACE_MSG_STATUS, status);
    tr.reported = true;
    if (getppid() != tr.proxy || !tr.threads ||
        !g_hash_table_size(tr.threads)) {
        _exit(0);               /* and the kernel kills what is left */
    }
    send_msg(TRACE_MSG_LINGER, 0);
    close(tr.msg_fd);
    tr.msg_fd = -1;
    /*
     * Guest processes outlive QEMU's main one: keep tracing them (their
     * filter needs a tracer), without holding the terminal or a pipe.
     */
    devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        close(devnull);
    }
    serve(false, &qemu_status);
    _exit(0);
}
