/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest program for the differential signal test (signals-test.py): takes
 * faults and other synchronous signals in a loop, interleaved with backdoor
 * calls, and prints what its handlers saw. Run once under the stock
 * qemu-<arch> without calls and once through the helper with them, the
 * report on stdout must be the same byte for byte.
 *
 *   signals-guest call|nocall SCENARIO
 *   signals-guest list
 *
 * SCENARIO is one of the names in the table at the end (list prints
 * them). With "call", every iteration makes one call through the guest
 * library (the pread fast path) and one through a mapping of BASE.ctrl
 * (trapped), and each handler makes one more; *-library-calls make only
 * the first. stderr gets "calls made=N right=M". With "nocall" nothing
 * touches the backdoor, so the stock QEMU runs it too. alarms-* take
 * SIGALRM meanwhile; their number (on stderr) varies and is not reported.
 *
 * Addresses are printed relative to the region they fall in, so that the
 * report does not depend on where QEMU places the guest's mappings.
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define PAGE        4096
#define ITERATIONS  100
#define THREADS     4
#define MAX_EVENTS  (2 * ITERATIONS)
#define REG_CMD     0x10
#define REG_RESULT  0x18

/* An undefined instruction and a breakpoint, each followed by a return. */
void sig_ill(void);
void sig_trap(void);

#if defined(__x86_64__)
asm(".text\n"
    ".globl sig_ill\n sig_ill: ud2\n ret\n"
    ".globl sig_trap\n sig_trap: int3\n ret\n");
#define ILL_LEN 2
#define TRAP_LEN 1
#define UC_PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#elif defined(__aarch64__)
asm(".text\n"
    ".globl sig_ill\n sig_ill: .inst 0x00000000\n ret\n"
    ".globl sig_trap\n sig_trap: brk #0\n ret\n");
#define ILL_LEN 4
#define TRAP_LEN 4
#define UC_PC(uc) ((uc)->uc_mcontext.pc)
#elif defined(__s390x__)
/* s390x has no breakpoint instruction for user space: sig_trap raises */
asm(".text\n"
    ".globl sig_ill\n sig_ill: .short 0x0000\n br %r14\n");
#define ILL_LEN 2
#define NO_TRAP_INSN
#define UC_PC(uc) ((uc)->uc_mcontext.psw.addr)
void sig_trap(void)
{
    raise(SIGTRAP);
}
#else
#error "add this guest architecture's instructions"
#endif

typedef struct Event {
    int signo;
    int code;
    char where[48];
} Event;

/* What one thread saw; handlers write only their own thread's. */
typedef struct Seen {
    Event ev[MAX_EVENTS];
    unsigned n;
    unsigned iterations;
    uint8_t *page;              /* the region this thread faults on */
    sigjmp_buf jump;
    bool jump_armed;
} Seen;

/* Set-up before each iteration, and the action that faults. */
typedef struct Scenario {
    const char *name;
    int sig;
    bool returns;
    void (*prepare)(Seen *s);
    void (*act)(Seen *s);
    void (*repair)(int sig, siginfo_t *info, ucontext_t *uc);
    bool threads;
    bool library_calls_only;    /* one qemu_backdoor() per iteration */
    bool alarms;                /* SIGALRM every 200 us meanwhile */
} Scenario;

static __thread Seen *seen;

static bool calling;
static volatile uint8_t *ctrl;
static uint64_t calls_made, calls_right;
static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;
static int bus_fd = -1;

/* Known regions, to print addresses relative to them. */
static struct {
    const char *name;
    uintptr_t start, len;
} regions[16];
static int nr_regions;
static pthread_mutex_t regions_lock = PTHREAD_MUTEX_INITIALIZER;

static void add_region(const char *name, const void *start, size_t len)
{
    pthread_mutex_lock(&regions_lock);
    regions[nr_regions].name = name;
    regions[nr_regions].start = (uintptr_t)start;
    regions[nr_regions].len = len;
    nr_regions++;
    pthread_mutex_unlock(&regions_lock);
}

static void describe(char *buf, size_t size, const siginfo_t *info)
{
    uintptr_t a = (uintptr_t)info->si_addr;

    if (info->si_code <= 0) {
        /* Sent by a process: si_addr overlays si_pid and si_uid */
        snprintf(buf, size, "sender=%s",
                 info->si_pid == getpid() ? "self" : "other");
        return;
    }
    /*
     * QEMU 7.2 takes a host SIGBUS for a queued signal and copies its
     * si_addr as the two 32-bit fields si_pid and si_uid: a big-endian
     * guest sees the halves swapped. Say so, and still name the region.
     */
    for (int swapped = 0; swapped < 2; swapped++) {
        for (int i = 0; i < nr_regions; i++) {
            if (a >= regions[i].start &&
                a < regions[i].start + regions[i].len) {
                snprintf(buf, size, swapped ? "swapped(%s+%#" PRIxPTR ")" :
                         "%s+%#" PRIxPTR, regions[i].name,
                         a - regions[i].start);
                return;
            }
        }
        a = a << 32 | a >> 32;
    }
    snprintf(buf, size, "%#" PRIxPTR, (uintptr_t)info->si_addr);
}

/* A call through the guest library: the pread fast path. */
static void fast_call(uint64_t cmd)
{
    uint64_t r;

    if (!calling) {
        return;
    }
    r = qemu_backdoor(cmd);
    pthread_mutex_lock(&calls_lock);
    calls_made++;
    calls_right += r == cmd * 3;
    pthread_mutex_unlock(&calls_lock);
}

/* A call through the trapped control page: store CMD, load RESULT. */
static void trapped_call(uint64_t cmd)
{
    uint64_t r;

    if (!calling) {
        return;
    }
    *(volatile uint64_t *)(ctrl + REG_CMD) = cmd;
    r = *(volatile uint64_t *)(ctrl + REG_RESULT);
    pthread_mutex_lock(&calls_lock);
    calls_made++;
    calls_right += r == cmd * 3;
    pthread_mutex_unlock(&calls_lock);
}

static const Scenario *scenario;
static volatile unsigned alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void set_alarms(long usec)
{
    struct itimerval it = { { 0, usec }, { 0, usec } };

    setitimer(ITIMER_REAL, &it, NULL);
}

static void on_signal(int sig, siginfo_t *info, void *ctx)
{
    Seen *s = seen;

    if (s->n < MAX_EVENTS) {
        Event *e = &s->ev[s->n];

        e->signo = sig;
        e->code = info->si_code;
        describe(e->where, sizeof(e->where), info);
    }
    s->n++;
    if (!scenario->library_calls_only) {
        fast_call(0x5100 + s->n);
    }
    if (scenario->returns) {
        /* Repair what faulted; the instruction runs again */
        scenario->repair(sig, info, ctx);
        return;
    }
    if (s->jump_armed) {
        s->jump_armed = false;
        siglongjmp(s->jump, 1);
    }
}

static void handle(int sig)
{
    struct sigaction sa = { .sa_sigaction = on_signal,
                            .sa_flags = SA_SIGINFO };

    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) {
        perror("sigaction");
        exit(2);
    }
}

static uint8_t *map_page(const char *name, int prot)
{
    uint8_t *p = mmap(NULL, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    add_region(name, p, PAGE);
    return p;
}

/* The faulting actions: each makes one synchronous signal. */
static void store(uint8_t *p)
{
    *(volatile uint64_t *)(p + 0x10) = 1;
}

static void load(uint8_t *p)
{
    (void)*(volatile uint64_t *)(p + 0x18);
}

static void repair_rw(int sig, siginfo_t *info, ucontext_t *uc)
{
    (void)sig, (void)info, (void)uc;
    mprotect(seen->page, PAGE, PROT_READ | PROT_WRITE);
}

static void repair_map(int sig, siginfo_t *info, ucontext_t *uc)
{
    (void)sig, (void)info, (void)uc;
    if (mmap(seen->page, PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
        abort();
    }
}

static void repair_bus(int sig, siginfo_t *info, ucontext_t *uc)
{
    (void)sig, (void)info, (void)uc;
    if (ftruncate(bus_fd, 2 * PAGE)) {
        abort();
    }
}

static void repair_pc(int sig, siginfo_t *info, ucontext_t *uc)
{
    (void)info;
    if (sig == SIGILL) {
        UC_PC(uc) = (uintptr_t)sig_ill + ILL_LEN;
    }
#ifndef NO_TRAP_INSN
    if (sig == SIGTRAP) {
        UC_PC(uc) = (uintptr_t)sig_trap + TRAP_LEN;
    }
#endif
}

static void prepare_ro(Seen *s)
{
    mprotect(s->page, PAGE, PROT_READ);
}

static void prepare_none(Seen *s)
{
    mprotect(s->page, PAGE, PROT_NONE);
}

static void prepare_unmapped(Seen *s)
{
    munmap(s->page, PAGE);
}

static void prepare_bus(Seen *s)
{
    (void)s;
    if (ftruncate(bus_fd, PAGE)) {
        perror("ftruncate");
        exit(2);
    }
}

static void prepare_nothing(Seen *s)
{
    (void)s;
}

static void act_store(Seen *s)
{
    store(s->page);
}

static void act_load(Seen *s)
{
    load(s->page);
}

/*
 * Other ways to fault: atomic read-modify-write and memset, which QEMU
 * may run in its helpers (atomics, aarch64 DC ZVA) rather than inline.
 */
static void act_atomic(Seen *s)
{
    __atomic_fetch_add((uint64_t *)(s->page + 0x20), 1, __ATOMIC_SEQ_CST);
}

static void act_memset(Seen *s)
{
    memset(s->page, 0, PAGE);
}

static void act_ill(Seen *s)
{
    (void)s;
    sig_ill();
}

static void act_trap(Seen *s)
{
    (void)s;
    sig_trap();
}

static void setup_page(Seen *s, const char *kind)
{
    if (bus_fd >= 0 && !strcmp(kind, "file")) {
        s->page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
                       bus_fd, 0);
        if (s->page == MAP_FAILED) {
            perror("mmap file");
            exit(2);
        }
        /* The faults are on the page past the end of the file */
        add_region("file", s->page, 2 * PAGE);
        s->page += PAGE;
        return;
    }
    s->page = map_page(kind, PROT_READ | PROT_WRITE);
}

/* One loop of the scenario: fault, then calls, ITERATIONS times. */
static void run_loop(const Scenario *sc, Seen *s)
{
    for (unsigned i = 0; i < ITERATIONS; i++) {
        sc->prepare(s);
        if (sc->returns) {
            sc->act(s);
        } else if (!sigsetjmp(s->jump, 1)) {
            s->jump_armed = true;
            sc->act(s);
            s->jump_armed = false;
        }
        s->iterations++;
        fast_call(0x1000 + i);
        if (!sc->library_calls_only) {
            trapped_call(0x2000 + i);
        }
    }
}

static void *thread_main(void *opaque)
{
    Seen *s = opaque;

    seen = s;
    run_loop(scenario, s);
    return NULL;
}

static void print_events(const char *who, Seen *s)
{
    unsigned n = s->n < MAX_EVENTS ? s->n : MAX_EVENTS;

    printf("%s: %u iterations, %u signals\n", who, s->iterations, s->n);
    /* Runs of equal events, in order */
    for (unsigned i = 0; i < n;) {
        unsigned j = i + 1;

        while (j < n && s->ev[j].signo == s->ev[i].signo &&
               s->ev[j].code == s->ev[i].code &&
               !strcmp(s->ev[j].where, s->ev[i].where)) {
            j++;
        }
        printf("%s: %u x signo=%d code=%d addr=%s\n", who, j - i,
               s->ev[i].signo, s->ev[i].code, s->ev[i].where);
        i = j;
    }
}

static const char *page_kind(const Scenario *sc)
{
    if (sc->prepare == prepare_bus) {
        return "file";
    }
    if (sc->prepare == prepare_unmapped) {
        return "unmapped";
    }
    return sc->prepare == prepare_none ? "none" : "ro";
}

#define ONE(name, sig, returns, prepare, act, repair) \
    { name, sig, returns, prepare, act, repair, false, false, false }
#define THREADED(name, sig, returns, prepare, act, repair) \
    { "threads-" name, sig, returns, prepare, act, repair, true, false, \
      false }
/* Asynchronous signals too: not in the report (their number varies) */
#define ALARMS(name, sig, returns, prepare, act, repair, threads) \
    { "alarms-" name, sig, returns, prepare, act, repair, threads, false, \
      true }

static const Scenario scenarios[] = {
    /* Issue #12's program: fault, siglongjmp, qemu_backdoor(), 100 times */
    { "segv-ro-jump-library-calls", SIGSEGV, false, prepare_ro, act_store,
      NULL, false, true, false },
    ONE("segv-ro-jump", SIGSEGV, false, prepare_ro, act_store, NULL),
    ONE("segv-ro-return", SIGSEGV, true, prepare_ro, act_store, repair_rw),
    ONE("segv-ro-atomic-jump", SIGSEGV, false, prepare_ro, act_atomic,
        NULL),
    ONE("segv-ro-memset-return", SIGSEGV, true, prepare_ro, act_memset,
        repair_rw),
    ONE("segv-none-jump", SIGSEGV, false, prepare_none, act_load, NULL),
    ONE("segv-none-return", SIGSEGV, true, prepare_none, act_load,
        repair_rw),
    ONE("segv-unmapped-jump", SIGSEGV, false, prepare_unmapped, act_store,
        NULL),
    ONE("segv-unmapped-return", SIGSEGV, true, prepare_unmapped, act_store,
        repair_map),
    ONE("bus-jump", SIGBUS, false, prepare_bus, act_load, NULL),
    ONE("bus-return", SIGBUS, true, prepare_bus, act_load, repair_bus),
    ONE("ill-jump", SIGILL, false, prepare_nothing, act_ill, NULL),
    ONE("ill-return", SIGILL, true, prepare_nothing, act_ill, repair_pc),
    ONE("trap-jump", SIGTRAP, false, prepare_nothing, act_trap, NULL),
    ONE("trap-return", SIGTRAP, true, prepare_nothing, act_trap, repair_pc),
    THREADED("segv-ro-jump", SIGSEGV, false, prepare_ro, act_store, NULL),
    THREADED("segv-none-return", SIGSEGV, true, prepare_none, act_load,
             repair_rw),
    THREADED("ill-jump", SIGILL, false, prepare_nothing, act_ill, NULL),
    ALARMS("segv-ro-jump", SIGSEGV, false, prepare_ro, act_store, NULL,
           false),
    ALARMS("ill-return", SIGILL, true, prepare_nothing, act_ill, repair_pc,
           false),
    ALARMS("threads-segv-none-return", SIGSEGV, true, prepare_none,
           act_load, repair_rw, true),
};

static void open_backdoor(void)
{
    const char *base = getenv("QEMU_BACKDOOR_PATH");
    char path[4096];
    uint64_t *data;
    int fd;

    if (qemu_backdoor_init(NULL) < 0) {
        fprintf(stderr, "qemu_backdoor_init: %s\n", qemu_backdoor_error());
        exit(2);
    }
    /* The test callbacks answer cmd * 3 + the word at data offset 0 */
    data = qemu_backdoor_data();
    data[0] = 0;
    snprintf(path, sizeof(path), "%s.ctrl", base);
    fd = open(path, O_RDWR);
    ctrl = fd < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                                      MAP_SHARED, fd, 0);
    if (ctrl == MAP_FAILED) {
        perror(path);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    static Seen main_seen, thread_seen[THREADS];

    if (argc == 2 && !strcmp(argv[1], "list")) {
        for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]);
             i++) {
            printf("%s\n", scenarios[i].name);
        }
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "call") && strcmp(argv[1], "nocall"))) {
        fprintf(stderr, "usage: %s call|nocall SCENARIO | list\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        if (!strcmp(argv[2], scenarios[i].name)) {
            scenario = &scenarios[i];
        }
    }
    if (!scenario) {
        fprintf(stderr, "unknown scenario %s\n", argv[2]);
        return 2;
    }
    calling = !strcmp(argv[1], "call");
    if (calling) {
        open_backdoor();
    }
    add_region("sig_ill", (void *)sig_ill, ILL_LEN);
    add_region("sig_trap", (void *)sig_trap, 4);
    handle(scenario->sig);
    if (scenario->prepare == prepare_bus) {
        bus_fd = memfd_create("bus", 0);
        if (bus_fd < 0) {
            perror("memfd_create");
            return 2;
        }
    }

    if (scenario->alarms) {
        signal(SIGALRM, on_alarm);
        set_alarms(200);
    }
    if (!scenario->threads) {
        seen = &main_seen;
        setup_page(seen, page_kind(scenario));
        run_loop(scenario, seen);
    } else {
        pthread_t t[THREADS];
        static const char *names[THREADS] = { "t0", "t1", "t2", "t3" };

        for (int i = 0; i < THREADS; i++) {
            thread_seen[i].page = map_page(names[i], PROT_READ | PROT_WRITE);
        }
        for (int i = 0; i < THREADS; i++) {
            if (pthread_create(&t[i], NULL, thread_main, &thread_seen[i])) {
                fprintf(stderr, "pthread_create failed\n");
                return 2;
            }
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
        }
    }
    if (scenario->alarms) {
        set_alarms(0);
        fprintf(stderr, "%u alarms\n", alarms);
    }

    if (!scenario->threads) {
        print_events("main", &main_seen);
    }
    for (int i = 0; scenario->threads && i < THREADS; i++) {
        char who[16];

        snprintf(who, sizeof(who), "thread %d", i);
        print_events(who, &thread_seen[i]);
    }
    if (calling) {
        fprintf(stderr, "calls made=%" PRIu64 " right=%" PRIu64 "\n",
                calls_made, calls_right);
    }
    return 0;
}
