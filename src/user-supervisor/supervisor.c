/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-mode backdoor supervisor: runs a qemu-<arch> that nothing can be
 * preloaded into (a static build) as its child and serves the guest from
 * outside QEMU, through the call slots of BASE.ctrl
 * (docs/specs/backdoor.rst, "Call slots").
 *
 *   backdoor-supervisor QEMU [QEMU-ARGUMENTS...]
 *
 * Configured by the same QEMU_BACKDOOR_* variables as the in-process
 * helper. The guest posts a call in a slot of a shared file page and
 * wakes a server thread here with a futex on that page (QEMU turns a
 * guest futex on a shared file mapping into a host futex on the same
 * file page); both sides spin briefly before sleeping, so back-to-back
 * calls cost no system call and an idle guest costs no CPU here.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "regs.h"
#include "supervisor.h"
#include "trace.h"
#include "user-env.h"
#include "user-reload.h"
#include "user-ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/* How long the server polls for the next request before it sleeps. */
#define SERVER_SPIN_NS  50000

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#endif

/* The slot layout of qemu-backdoor-regs.h holds together */
G_STATIC_ASSERT(BACKDOOR_USER_SLOT(BACKDOOR_USER_SLOTS) ==
                BACKDOOR_USER_SLOTS_SIZE);
G_STATIC_ASSERT(BACKDOOR_SLOT_TID + 4 <= BACKDOOR_USER_SLOT_SIZE);
G_STATIC_ASSERT(BACKDOOR_SLOTS_NEXT + 4 <= BACKDOOR_USER_SLOT_SIZE);
G_STATIC_ASSERT(BACKDOOR_USER_SLOTS_OFFSET >= BACKDOOR_USER_REGS_SIZE);

/* Threads seen so far, for vcpu_index; a thread id maps to its index. */
#define TID_TABLE_SIZE  4096

static struct {
    BackdoorCallbacks *cb;
    bool big_endian;
    BackdoorRegs regs;          /* the data channel, what registers read */
    uint8_t *reg_page;          /* the register page of BASE.ctrl */
    uint8_t *slots;             /* the slot area of BASE.ctrl */
    int raw_reported;
    char *base;
    char *ctrl_path;
    char *data_path;
    char *args;                 /* QEMU_BACKDOOR_ARGS, kept for the library */
    int closed;                 /* a failed hot reload left no library */
    BackdoorUserLib reload;     /* what a hot reload swaps */
    pid_t qemu;
    int stop;
    struct {
        uint32_t tid;
        int index;
    } tids[TID_TABLE_SIZE];
    int next_index;
} sv;

bool sv_big_endian;

/* Shared (not private) futexes: the guest's are on the same file page. */
static long futex(void *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * vcpu_index: QEMU's CPU index is not visible from outside QEMU, so the
 * main guest thread (whose thread id is QEMU's pid) is 0 and every other
 * thread gets the next index at its first call.
 */
static int vcpu_index(uint32_t tid)
{
    unsigned h = (tid * 2654435761u) % TID_TABLE_SIZE;

    if (tid == (uint32_t)sv.qemu) {
        return 0;
    }
    for (unsigned i = 0; i < TID_TABLE_SIZE; i++, h = (h + 1) % TID_TABLE_SIZE) {
        if (sv.tids[h].tid == tid) {
            return sv.tids[h].index;
        }
        if (sv.tids[h].tid == 0) {
            sv.tids[h].tid = tid;
            sv.tids[h].index = ++sv.next_index;
            return sv.tids[h].index;
        }
    }
    return ++sv.next_index;     /* table full: a new index per call */
}

/*
 * Server threads. At most one polls the slots (the poller); SLEEPING tells
 * the guest that none does, so a guest that posts a call then rings
 * DOORBELL. The poller runs the calls it finds itself, so a call back to
 * back costs no more than with one thread. Calls must not wait for each
 * other though (the in-process helper runs them concurrently): a guest
 * whose call is not answered within its spin rings DOORBELL before it
 * sleeps, and a thread sleeping there takes the calls nobody runs. One
 * thread is kept asleep for that whenever the others are in calls.
 */
#define MAX_SERVERS 64

static struct {
    int polling;                /* a thread polls */
    int asleep;                 /* threads waiting on DOORBELL */
    int count;
    pthread_t threads[MAX_SERVERS];
    uint8_t serving[BACKDOOR_USER_SLOTS];   /* a thread runs this slot */
    GMutex lock;                /* threads[], count, the tid table */
} srv;

static void *server(void *opaque);

/* The vCPU index of guest thread @tid: its calls', its rings' batches */
static int thread_index(int tid)
{
    int index;

    g_mutex_lock(&srv.lock);
    index = vcpu_index(tid);
    g_mutex_unlock(&srv.lock);
    return index;
}

/* Another thread for calls to come. */
static void spawn_server(void)
{
    g_mutex_lock(&srv.lock);
    if (srv.count < MAX_SERVERS &&
        !pthread_create(&srv.threads[srv.count], NULL, server,
                        GUINT_TO_POINTER(srv.count))) {
        srv.count++;
        __atomic_add_fetch(&srv.asleep, 1, __ATOMIC_SEQ_CST);
    }
    g_mutex_unlock(&srv.lock);
}

static void ring(int n)
{
    __atomic_add_fetch((uint32_t *)(sv.slots + BACKDOOR_SLOTS_DOORBELL), 1,
                       __ATOMIC_SEQ_CST);
    futex(sv.slots + BACKDOOR_SLOTS_DOORBELL, FUTEX_WAKE, n);
}

static void set_sleeping(uint32_t v)
{
    __atomic_store_n((uint32_t *)(sv.slots + BACKDOOR_SLOTS_SLEEPING), v,
                     __ATOMIC_SEQ_CST);
}

static unsigned slots_used(void)
{
    unsigned used = ld32(sv.slots + BACKDOOR_SLOTS_USED);

    return used < BACKDOOR_USER_SLOTS ? used : BACKDOOR_USER_SLOTS;
}

/* Claim a posted request no thread runs yet: its slot index, or -1. */
static int claim_pending(void)
{
    unsigned used = slots_used();

    for (unsigned i = 0; i < used; i++) {
        uint8_t *slot = sv.slots + BACKDOOR_USER_SLOT(i);

        if (!__atomic_load_n(&srv.serving[i], __ATOMIC_ACQUIRE) &&
            ld32(slot + BACKDOOR_SLOT_REQ) != ld32(slot + BACKDOOR_SLOT_DONE) &&
            !__atomic_exchange_n(&srv.serving[i], 1, __ATOMIC_ACQ_REL)) {
            if (ld32(slot + BACKDOOR_SLOT_REQ) !=
                ld32(slot + BACKDOOR_SLOT_DONE)) {
                return i;
            }
            /* Answered meanwhile by the thread that just let it go */
            __atomic_store_n(&srv.serving[i], 0, __ATOMIC_RELEASE);
        }
    }
    return -1;
}

static bool any_pending(void)
{
    unsigned used = slots_used();

    for (unsigned i = 0; i < used; i++) {
        uint8_t *slot = sv.slots + BACKDOOR_USER_SLOT(i);

        if (!__atomic_load_n(&srv.serving[i], __ATOMIC_ACQUIRE) &&
            ld32(slot + BACKDOOR_SLOT_REQ) != ld32(slot + BACKDOOR_SLOT_DONE)) {
            return true;
        }
    }
    return false;
}

/* Run the call posted in slot @i; the result goes back in the slot. */
static void serve(unsigned i)
{
    static __thread uint32_t last_tid;
    static __thread int last_index;
    uint8_t *slot = sv.slots + BACKDOOR_USER_SLOT(i);
    uint32_t req = ld32(slot + BACKDOOR_SLOT_REQ);
    uint32_t tid = ld32(slot + BACKDOOR_SLOT_TID);
    uint32_t op = ld32(slot + BACKDOOR_SLOT_OP);
    qemu_backdoor_call call;

    if (tid != last_tid || !tid) {
        last_index = thread_index(tid);
        last_tid = tid;
    }
    call = backdoor_regs_call(&sv.regs, ld64(slot + BACKDOOR_SLOT_CMD),
                              sv.big_endian, last_index);
    if (!__atomic_load_n(&srv.asleep, __ATOMIC_RELAXED)) {
        spawn_server();         /* for calls that come meanwhile */
    }

    st64(slot + BACKDOOR_SLOT_RESULT,
         sv_request(&sv.cb, &sv.closed, slot, &call, tid));
    /* Publish DONE, then look for a sleeper: pairs with the guest's wait */
    st32(slot + BACKDOOR_SLOT_DONE, req);
    __atomic_store_n(&srv.serving[i], 0, __ATOMIC_RELEASE);
    if (op & BACKDOOR_SLOT_OP_MEM) {
        sv_wake_caller(slot);   /* it sleeps on WAITING */
    } else if (__atomic_load_n((uint32_t *)(slot + BACKDOOR_SLOT_WAITING),
                               __ATOMIC_SEQ_CST)) {
        futex(slot + BACKDOOR_SLOT_DONE, FUTEX_WAKE, INT_MAX);
    }
}

/*
 * A raw register access that reached the file was not served (tracing is
 * off or failed, or the mapping also covers the call slots): the store
 * only changed the file. Say so once, when the server is about to sleep
 * and at exit, rather than let the guest wait silently for a result that
 * never comes.
 */
static void check_raw_stores(void)
{
    for (unsigned off = BACKDOOR_REG_CMD; off < 4096; off += 8) {
        /* (the rings' layout registers are in the file) */
        if ((off < BACKDOOR_REG_SLOT_COUNT || off >= BACKDOOR_REG_SLOT_ALLOC) &&
            *(volatile uint64_t *)(sv.reg_page + off) &&
            !__atomic_exchange_n(&sv.raw_reported, 1, __ATOMIC_RELAXED)) {
            fprintf(stderr, PROG ": the guest stored to offset 0x%x of %s "
                    "and it made no call: raw register accesses are served "
                    "only while the supervisor traces QEMU (not with "
                    "--no-raw-access); use the guest library or the call "
                    "slots (docs/user-mode.md)\n", off, sv.ctrl_path);
            break;
        }
    }
}

/* A raw register access's call, from the tracer (trace.c) */
uint64_t supervisor_call(uint32_t tid, uint64_t cmd)
{
    qemu_backdoor_call call;

    if (!sv.cb) {
        return UINT64_MAX;      /* QEMU's main process ended */
    }
    call = backdoor_regs_call(&sv.regs, cmd, sv.big_endian,
                              thread_index(tid));
    /* As a slot's call: its thread's events first, no hot reload meanwhile */
    return sv_raw_call(&sv.cb, &sv.closed, &call, tid);
}

static void server_sleep(uint32_t bell)
{
    __atomic_add_fetch(&srv.asleep, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&sv.stop, __ATOMIC_SEQ_CST)) {
        futex(sv.slots + BACKDOOR_SLOTS_DOORBELL, FUTEX_WAIT, bell);
    }
    __atomic_sub_fetch(&srv.asleep, 1, __ATOMIC_SEQ_CST);
}

/*
 * Kicks (BACKDOOR_FEATURE_RING_KICK): a guest whose ring passed its
 * threshold adds 1 to KICKS and goes on posting. The poller then drains
 * the rings that hold events, and keeps draining them (chases them) while
 * events keep coming: every CHASE_LOOK_NS it drains the rings that hold a
 * quarter of their events, so that a guest that posts all the time
 * seldom finds its ring full, and HEAD, which the guest stores at every
 * post, is not read on every poll. Only the poller looks.
 */
#define CHASE_NS        20000
#define CHASE_LOOK_NS   300

static uint32_t kicks_seen;
static uint64_t chase_until, chase_next;

static bool kicked(void)
{
    return ld32(sv.slots + BACKDOOR_SLOTS_KICKS) != kicks_seen;
}

/* True when it delivered events */
static bool serve_rings(void)
{
    uint32_t min = MAX(sv.regs.ring_entries / 4, 1);
    uint32_t kicks = ld32(sv.slots + BACKDOOR_SLOTS_KICKS);
    uint64_t now;

    if (kicks != kicks_seen) {
        kicks_seen = kicks;
        min = 1;
    } else if (!chase_until) {
        return false;
    } else {
        now = now_ns();
        if (now < chase_next) {
            return false;
        }
        chase_next = now + CHASE_LOOK_NS;
        if (now > chase_until) {
            chase_until = 0;
        }
    }
    if (sv_rings_kicked(&sv.cb, &sv.closed, min, thread_index)) {
        chase_until = now_ns() + CHASE_NS;
        return true;
    }
    return false;
}

/* Poll for calls and kicks and serve them; return once idle a while. */
static void poll_slots(void)
{
    for (;;) {
        uint64_t until = now_ns() + SERVER_SPIN_NS;
        int i;

        /*
         * Poll a little: a guest calling in a loop is back in a moment.
         * Yield now and then: on a busy host the caller may be waiting
         * for this CPU.
         */
        for (unsigned n = 1; (i = claim_pending()) < 0; n++) {
            if (serve_rings()) {
                until = now_ns() + SERVER_SPIN_NS;
            }
            if (n % 256 == 0) {
                if (now_ns() > until ||
                    __atomic_load_n(&sv.stop, __ATOMIC_ACQUIRE)) {
                    return;
                }
                sched_yield();
            }
            cpu_relax();
        }
        serve(i);
    }
}

static void *server(void *opaque)
{
    uint32_t *doorbell = (uint32_t *)(sv.slots + BACKDOOR_SLOTS_DOORBELL);
    sigset_t all;
    int i, no = 0;

    sv_server_index = GPOINTER_TO_UINT(opaque);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    __atomic_sub_fetch(&srv.asleep, 1, __ATOMIC_SEQ_CST);   /* awake */
    while (!__atomic_load_n(&sv.stop, __ATOMIC_ACQUIRE)) {
        uint32_t bell = __atomic_load_n(doorbell, __ATOMIC_SEQ_CST);

        no = 0;
        if (__atomic_compare_exchange_n(&srv.polling, &no, 1, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
            set_sleeping(0);
            poll_slots();
            check_raw_stores();
            sv_rings_idle(&sv.cb, &sv.closed);
            /*
             * Stop polling. The guest publishes REQ, then reads SLEEPING
             * and, if set, rings DOORBELL; we set SLEEPING, then look at
             * every REQ: one of the two sees the other.
             */
            bell = __atomic_load_n(doorbell, __ATOMIC_SEQ_CST);
            set_sleeping(1);
            __atomic_store_n(&srv.polling, 0, __ATOMIC_SEQ_CST);
            if (any_pending() || kicked()) {
                continue;
            }
        } else {
            /* Woken by a caller that waits: run what nobody runs */
            while ((i = claim_pending()) >= 0) {
                serve(i);
            }
        }
        server_sleep(bell);
    }
    return NULL;
}

/*
 * The guest's byte order, from the name qemu-<arch>[-static]: a static
 * QEMU exports nothing to ask.
 */
static bool target_big_endian(const char *qemu)
{
    static const char *const big[] = {
        "aarch64_be", "armeb", "hppa", "m68k", "microblaze", "mips",
        "mips64", "mipsn32", "or1k", "ppc", "ppc64", "s390x", "sh4eb",
        "sparc", "sparc32plus", "sparc64", "xtensaeb", NULL,
    };
    const char *name = strrchr(qemu, '/') ? strrchr(qemu, '/') + 1 : qemu;
    g_autofree char *arch = NULL;
    size_t len;

    if (strncmp(name, "qemu-", 5)) {
        backdoor_user_die("'%s' is not a user-mode QEMU (qemu-<arch>): "
                          "cannot tell the guest's byte order", qemu);
    }
    arch = g_strdup(name + 5);
    len = strlen(arch);
    if (len > 7 && !strcmp(arch + len - 7, "-static")) {
        arch[len - 7] = '\0';
    }
    for (int i = 0; big[i]; i++) {
        if (!strcmp(arch, big[i])) {
            return true;
        }
    }
    return false;
}

static void *map_file(int fd, uint64_t size, off_t offset, const char *path)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   offset);

    if (p == MAP_FAILED) {
        backdoor_user_die("cannot map %s: %s", path, strerror(errno));
    }
    return p;
}

/*
 * BASE.ctrl holds the registers a guest can read without help (ID,
 * FEATURES, DATA_SIZE, in its byte order) and the slot area.
 */
static void make_files(const char *base)
{
    static const BackdoorReg fixed[] = {
        BACKDOOR_R_ID, BACKDOOR_R_FEATURES, BACKDOOR_R_DATA_SIZE,
        BACKDOOR_R_SLOT_COUNT, BACKDOOR_R_RING_ENTRIES, BACKDOOR_R_SLOT_BASE,
        BACKDOOR_R_SLOT_STRIDE,
    };
    uint8_t regs[BACKDOOR_REG_SLOT_ALLOC] = { 0 };
    int fd;

    if (base && *base) {
        sv.base = g_strdup(base);
    } else {
        const char *tmp = getenv("TMPDIR");
        char *templ = g_strdup_printf("%s/qemu-backdoor.XXXXXX",
                                      tmp && *tmp ? tmp : "/tmp");

        if (!mkdtemp(templ)) {
            backdoor_user_die("cannot create a directory %s: %s", templ,
                              strerror(errno));
        }
        backdoor_user_made_dir(templ);
        sv.base = g_strdup_printf("%s/backdoor", templ);
    }
    sv.ctrl_path = g_strdup_printf("%s.ctrl", sv.base);
    sv.data_path = g_strdup_printf("%s.data", sv.base);

    fd = backdoor_user_make_channel_file(sv.ctrl_path);
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) {
        backdoor_regs_store_fixed(&sv.regs, fixed[i], sv.big_endian, regs);
    }
    if (pwrite(fd, regs, sizeof(regs), 0) != sizeof(regs) ||
        ftruncate(fd, BACKDOOR_USER_CTRL_FILE_SIZE)) {
        backdoor_user_die("cannot write %s: %s", sv.ctrl_path,
                          strerror(errno));
    }
    /* The registers, the slots and the server threads' stages */
    sv.reg_page = map_file(fd, BACKDOOR_USER_CTRL_FILE_SIZE, 0,
                           sv.ctrl_path);
    sv.slots = sv.reg_page + BACKDOOR_USER_SLOTS_OFFSET;
    close(fd);

    fd = backdoor_user_make_channel_file(sv.data_path);
    if (ftruncate(fd, sv.regs.data_size)) {
        backdoor_user_die("cannot create %s: %s", sv.data_path,
                          strerror(errno));
    }
    sv.regs.data = map_file(fd, sv.regs.data_size, 0, sv.data_path);
    close(fd);
}

/*
 * Signals sent to the supervisor go on to QEMU, which decides what they
 * do. One the terminal sent (SI_KERNEL: Ctrl-C, Ctrl-\) reached QEMU, in
 * the same process group, already.
 */
static const int forwarded[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH,
};

static void forward(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    if (info->si_code != SI_KERNEL && sv.qemu > 0) {
        kill(sv.qemu, sig);
    }
}

/*
 * No signal is forwarded before QEMU's pid is known: block them all (the
 * old mask in @old) and install the forwarding; with tracing, the serving
 * process ignores what the proxy forwards.
 */
static void prepare_forwarding(sigset_t *old)
{
    struct sigaction sa = { .sa_sigaction = forward,
                            .sa_flags = SA_SIGINFO | SA_RESTART };
    sigset_t all;

    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, old);
    if (trace_active()) {
        trace_ignore_signals();
        return;
    }
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < G_N_ELEMENTS(forwarded); i++) {
        sigaction(forwarded[i], &sa, NULL);
    }
}

/* The child: QEMU, which dies with us. */
static void G_GNUC_NORETURN run_qemu(char **argv, sigset_t *old,
                                     pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);             /* we died before the prctl */
    }
    trace_child();
    for (size_t i = 0; i < G_N_ELEMENTS(forwarded); i++) {
        signal(forwarded[i], SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, old, NULL);
    execv(argv[0], argv);
    fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* End the way QEMU ended: its exit status, or its fatal signal. */
static void G_GNUC_NORETURN exit_like(int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = { 0, 0 };
        sigset_t set;

        /* QEMU dumped core already if it was to */
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        _exit(128 + sig);
    }
    _exit(WEXITSTATUS(status));
}

/*
 * With tracing, the process the user started: it forwards signals to QEMU
 * and ends like QEMU, whose status the serving process sends once the
 * channel is cleaned up. If that process dies first, QEMU died with it.
 */
void supervisor_proxy(int fd, pid_t server)
{
    sigset_t old;
    TraceMsg m;
    int status;

    prepare_forwarding(&old);
    for (;;) {
        ssize_t n = read(fd, &m, sizeof(m));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != sizeof(m)) {
            break;
        }
        if (m.kind == TRACE_MSG_QEMU) {
            sv.qemu = m.value;
            sigprocmask(SIG_SETMASK, &old, NULL);
        } else if (m.kind == TRACE_MSG_STATUS) {
            /* It ends now, unless guest processes outlive QEMU's main one */
            int qemu_status = m.value;

            while ((n = read(fd, &m, sizeof(m))) < 0 && errno == EINTR) {
            }
            if (n != sizeof(m) || m.kind != TRACE_MSG_LINGER) {
                while (waitpid(server, &status, 0) < 0 && errno == EINTR) {
                }
            }
            exit_like(qemu_status);
        }
    }
    while (waitpid(server, &status, 0) < 0) {
        if (errno != EINTR) {
            status = W_EXITCODE(127, 0);
            break;
        }
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, PROG ": the supervisor's serving process died of "
                "signal %d (%s); QEMU was killed with it\n",
                WTERMSIG(status), strsignal(WTERMSIG(status)));
        backdoor_user_remove_made();
    }
    exit_like(status);
}

int main(int argc, char **argv)
{
    qemu_backdoor_info info;
    g_autoptr(GError) err = NULL;
    const char *lib;
    char *qemu;
    sigset_t old;
    pid_t parent;
    int status, n_servers;
    bool raw;

    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: backdoor-supervisor QEMU [ARGUMENTS...] "
                "(run by qemu-backdoor; see docs/user-mode.md)\n");
        return 2;
    }
    qemu = g_find_program_in_path(argv[1]);
    if (!qemu) {
        backdoor_user_die("'%s' not found", argv[1]);
    }
    argv[1] = qemu;
    sv.big_endian = target_big_endian(qemu);
    sv_big_endian = sv.big_endian;

    lib = backdoor_user_lib_or_die();
    sv.regs = (BackdoorRegs) {
        .mode = QEMU_BACKDOOR_MODE_USER,
        .user_slots = true,
        .data_size = backdoor_user_data_size_or_die(),
    };
    if (!backdoor_user_rings_layout(&sv.regs, &err)) {
        backdoor_user_die("%s", err->message);
    }
    raw = trace_wanted();
    make_files(getenv("QEMU_BACKDOOR_PATH"));
    if (!sv_rings_init(&sv.regs, &err)) {
        backdoor_user_die("%s", err->message);
    }
    sv_guest_memory_init(sv.reg_page, &sv.stop);
    if (raw) {
        TraceChannel ch = {
            .ctrl_path = sv.ctrl_path,
            .reg_page = sv.reg_page,
            .regs = &sv.regs,
            .big_endian = sv.big_endian,
        };

        /* The proxy stays in there; this process goes on and serves */
        trace_split(&ch);
    }

    sv.args = g_strdup(getenv("QEMU_BACKDOOR_ARGS"));
    info = backdoor_regs_info(&sv.regs, sv.args, sv.base, sv.big_endian);
    sv.cb = backdoor_callbacks_load(lib, &info, &err);
    if (!sv.cb) {
        backdoor_user_die("%s", err->message);
    }
    sv.reload = (BackdoorUserLib) {
        .cb = &sv.cb,
        .args = &sv.args,
        .closed = &sv.closed,
        .info = info,
        .before_stop = sv_rings_before_swap,
    };
    backdoor_user_reload_listen(&sv.reload, sv.base, &err);
    if (err) {
        backdoor_callbacks_unload(sv.cb);
        backdoor_user_die("%s", err->message);
    }

    /* What the guest sees: the base, none of our own settings */
    backdoor_user_env_hide();
    setenv("QEMU_BACKDOOR_PATH", sv.base, 1);
    fflush(NULL);

    prepare_forwarding(&old);
    /* One server and one for calls while it runs one; more on demand */
    spawn_server();
    spawn_server();
    if (!srv.count) {
        backdoor_callbacks_unload(sv.cb);
        backdoor_user_die("cannot start the server thread");
    }
    trace_prepare_fork();
    parent = getpid();          /* with tracing, the serving process */
    sv.qemu = fork();
    if (sv.qemu == 0) {
        run_qemu(argv + 1, &old, parent);
    }
    if (sv.qemu < 0) {
        int e = errno;

        __atomic_store_n(&sv.stop, 1, __ATOMIC_RELEASE);
        backdoor_callbacks_unload(sv.cb);
        backdoor_user_die("cannot fork: %s", strerror(e));
    }
    sigprocmask(SIG_SETMASK, &old, NULL);

    if (trace_active()) {
        status = trace_run(sv.qemu);
    } else {
        while (waitpid(sv.qemu, &status, 0) < 0) {
            if (errno != EINTR) {
                status = W_EXITCODE(127, 0);
                break;
            }
        }
    }

    /* Let the servers finish the calls in progress, then stop them */
    __atomic_store_n(&sv.stop, 1, __ATOMIC_SEQ_CST);
    ring(INT_MAX);
    /* A server may start another before it sees the stop: count again */
    for (int i = 0; ; i++) {
        pthread_t t;

        g_mutex_lock(&srv.lock);
        n_servers = srv.count;
        t = srv.threads[i < n_servers ? i : 0];
        g_mutex_unlock(&srv.lock);
        if (i >= n_servers) {
            break;
        }
        pthread_join(t, NULL);
    }
    check_raw_stores();
    backdoor_user_reload_stop();    /* a swap in progress ends first */
    if (!sv.closed) {
        /* Posted before QEMU ended: the data channel still holds them */
        sv_rings_exit(sv.cb);
    }
    backdoor_callbacks_unload(sv.cb);
    sv.cb = NULL;
    fflush(NULL);
    backdoor_user_remove_made();
    if (trace_active()) {
        trace_finish(status);
    }
    exit_like(status);
}
