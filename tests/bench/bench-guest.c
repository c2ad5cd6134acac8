/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's guest program. It runs its whole list of measurements
 * REPS times, each time timing N operations of every path and baseline,
 * and prints each timing in nanoseconds per operation as
 *
 *   SAMPLE <name> <ns>
 *
 * all in this one process, so the benchmark driver can divide each path
 * by its baseline of the same repetition and take medians.
 *
 *   bench-guest system N REPS   in a VM: backdoor device, edu, vmport
 *   bench-guest user N REPS     under qemu-<arch> with either user-mode
 *                               backend
 *   bench-guest user-raw N REPS the SIGSEGV path only (a ptrace stop under
 *                               the supervisor)
 *   bench-guest user-isolated N REPS
 *                               the library call and getppid one at a time,
 *                               one per millisecond: their p50 and p90
 *   bench-guest threads T N     T threads x N calls: THREADS <T> <calls/s>
 *                               <lost> <wrong results>
 *   bench-guest events T N      T threads x N posted events: EVENTS <T>
 *                               <events/s> <lost> <reordered> <full>
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>
#include <qemu-backdoor-regs.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MiB (1u << 20)

static long n_ops;
static int reps;

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-guest: %s\n", what);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, long n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

/*
 * Time @n runs of @body, in CHUNKS consecutive chunks; print the median
 * chunk's ns per run. The machines the benchmark runs on are shared: a
 * chunk during which the vCPU thread lost its host CPU is an outlier that
 * the median drops, where a mean over all @n runs would keep it. Chunks
 * are long enough (1/16 of @n) to hold any periodic cost of the path,
 * such as a ring flush every 96 posts.
 */
#define CHUNKS 16
#define MEASURE(name, n, body)                                          \
    do {                                                                \
        long n_ = (n), k_ = n_ < CHUNKS ? n_ : CHUNKS, i = 0;           \
        double t_[CHUNKS];                                              \
        for (long c_ = 0; c_ < k_; c_++) {                              \
            long end_ = n_ * (c_ + 1) / k_, len_ = end_ - i;            \
            double t0_ = now_ns();                                      \
            for (; i < end_; i++) {                                     \
                body;                                                   \
            }                                                           \
            t_[c_] = (now_ns() - t0_) / len_;                           \
        }                                                               \
        printf("SAMPLE %s %.2f\n", name, median(t_, k_));               \
        fflush(stdout);                                                 \
    } while (0)

static volatile uint64_t sink[8];

__attribute__((noinline)) static void empty_function(long i)
{
    sink[3] = i;
}

static void common_baselines(void)
{
    MEASURE("plain-store", n_ops * 10, sink[i & 7] = i);
    MEASURE("getppid", n_ops, syscall(SYS_getppid));
}

static void call_bench(void)
{
    uint64_t bad = 0;

    MEASURE("backdoor-call", n_ops, bad |= qemu_backdoor(i) != (uint64_t)i + 1);
    if (bad) {
        die("a backdoor call returned a wrong result");
    }
}

static void init_channel(void)
{
    if (qemu_backdoor_init(NULL) != 0) {
        fprintf(stderr, "bench-guest: %s\n", qemu_backdoor_error());
        exit(1);
    }
}

/*
 * The pieces of a post: the inline post alone, into a ring in RAM and
 * into one in the data channel, that never flushes (a copy of the slot
 * whose limit is never reached). backdoor-post less these is what the
 * flushes cost.
 */
static void post_pieces(qemu_backdoor_slot *slot, void *data)
{
    static uint64_t ram_ring[6 + 4 * 1024];
    qemu_backdoor_slot fake = *slot;

    fake.limit = UINT64_MAX;
    fake.mask = slot->mask < 1024 ? slot->mask : 1023;
    fake.head = ram_ring;
    MEASURE("backdoor-post-ram-noflush", n_ops * 10,
            qemu_backdoor_slot_post(&fake, BENCH_EVENT, i, 0, 0));
    /* The program's part of the data channel: no slot is there */
    fake.head = data;
    *fake.head = 0;
    MEASURE("backdoor-post-noflush", n_ops * 10,
            qemu_backdoor_slot_post(&fake, BENCH_EVENT, i, 0, 0));
}

#if defined(__x86_64__)
#include <sys/io.h>

/* sysfs directory of the first PCI device with this vendor and device. */
static char *find_pci(unsigned vendor, unsigned device)
{
    static char path[512];
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;

    while (d && (e = readdir(d))) {
        unsigned v = 0, dv = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor",
                 e->d_name);
        if ((f = fopen(path, "r"))) {
            fscanf(f, "%x", &v);
            fclose(f);
        }
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
                 e->d_name);
        if ((f = fopen(path, "r"))) {
            fscanf(f, "%x", &dv);
            fclose(f);
        }
        if (v == vendor && dv == device) {
            snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s",
                     e->d_name);
            closedir(d);
            return path;
        }
    }
    if (d) {
        closedir(d);
    }
    return NULL;
}

static volatile void *map_bar(const char *dev, int bar, size_t size)
{
    char path[600];
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/resource%d", dev, bar);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        die("cannot open a PCI resource (not root?)");
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        die("cannot map a PCI resource");
    }
    return p;
}

static uint32_t vmport_getversion(void)
{
    uint32_t eax = 0x564d5868, ebx = ~0u, ecx = 10, edx = 0x5658;

    __asm__ volatile("inl %%dx, %%eax"
                     : "+a"(eax), "+b"(ebx), "+c"(ecx), "+d"(edx));
    return ebx;
}

static void system_round(volatile uint32_t *edu_regs, volatile uint64_t *ctrl,
                         volatile uint64_t *word, void *data, char *ram,
                         char *src);

/*
 * Copied into the data channel and into RAM alike: the program's part of
 * the data channel (the call slots after it are the library's), at most
 * 1 MiB.
 */
static size_t copy_size;

static void system_bench(void)
{
    char *edu = find_pci(0x1234, 0x11e8);
    char *bd = find_pci(BACKDOOR_PCI_VENDOR_ID, BACKDOOR_PCI_DEVICE_ID);
    volatile uint32_t *edu_regs;
    volatile uint64_t *ctrl, *word;
    char *ram, *src;
    void *data;

    if (!edu || !(edu = strdup(edu)) || !bd) {
        die("the VM needs -device edu and -device backdoor");
    }
    init_channel();
    edu_regs = map_bar(edu, 0, 4096);
    ctrl = map_bar(bd, 0, 4096);
    if (iopl(3) != 0 || vmport_getversion() != 0x564d5868) {
        die("no vmport (-machine vmport=on) or no iopl");
    }
    data = qemu_backdoor_data();
    word = (volatile uint64_t *)((char *)data +
                                 ctrl[BACKDOOR_REG_DATA_SIZE / 8] -
                                 BACKDOOR_CALL_WORD_SIZE);
    ram = malloc(MiB);
    src = malloc(MiB);
    if (!ram || !src) {
        die("out of memory");
    }
    memset(src, 0x5a, MiB);
    memset(ram, 0, MiB);
    copy_size = qemu_backdoor_channel_data_size(qemu_backdoor_channel_default());
    if (copy_size > MiB) {
        copy_size = MiB;
    }
    /* Both destinations written once before timing: no first-touch cost. */
    memcpy(data, src, copy_size);

    for (int r = 0; r < reps; r++) {
        system_round(edu_regs, ctrl, word, data, ram, src);
    }
}

static void system_round(volatile uint32_t *edu_regs, volatile uint64_t *ctrl,
                         volatile uint64_t *word, void *data, char *ram,
                         char *src)
{
    uint32_t acc = 0;
    uint64_t bad = 0;
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());

    if (!slot || !slot->tail) {
        die("no call slot with a ring (register map 1.1)");
    }
    common_baselines();
    MEASURE("edu-read", n_ops, acc += edu_regs[0]);
    MEASURE("vmport-getversion", n_ops, acc += vmport_getversion());
    /* An exit to the backdoor device that runs no call: its dispatch */
    MEASURE("backdoor-id-read", n_ops,
            acc += ((volatile uint32_t *)ctrl)[BACKDOOR_REG_ID / 4]);
    call_bench();
    MEASURE("backdoor-channel-call", n_ops,
            bad |= qemu_backdoor_channel_call(qemu_backdoor_channel_default(),
                                              i) != (uint64_t)i + 1);
    /* Register map 1.1: the thread's slot, inline, no lock */
    MEASURE("backdoor-slot-call", n_ops,
            bad |= qemu_backdoor_slot_call(slot, i) != (uint64_t)i + 1);
    if (bad) {
        die("a slot call returned a wrong result");
    }
    {
        /* The same without the library: what the device costs */
        volatile uint64_t *w = slot->call_word, *reg = slot->call_reg;

        MEASURE("backdoor-slot-call-raw", n_ops,
                (*w = i, bad |= *reg != (uint64_t)i + 1));
    }
    MEASURE("backdoor-post", n_ops * 10,
            qemu_backdoor_slot_post(slot, BENCH_EVENT, i, 0, 0));
    qemu_backdoor_slot_flush(slot);
    post_pieces(slot, data);
    MEASURE("backdoor-cmd-write", n_ops,
            ctrl[BACKDOOR_REG_CMD / 8] = (uint64_t)i);
    /* An empty ring's flush: the DOORBELL exit alone */
    MEASURE("backdoor-doorbell", n_ops,
            ((volatile uint32_t *)ctrl)[BACKDOOR_REG_DOORBELL / 4] =
                slot->index);
    (void)acc;

    /* The one-exit call without the library (no lock): what the device
     * costs on its own. */
    MEASURE("backdoor-call-raw", n_ops,
            (*word = i, bad |= ctrl[BACKDOOR_REG_CALL / 8] != (uint64_t)i + 1));
    if (bad) {
        die("a raw backdoor call returned a wrong result");
    }
    /* What TCG charges for what the library adds to the raw call. */
    MEASURE("function-call", n_ops, empty_function(i));
    MEASURE("atomic-cas-xchg", n_ops,
            (__sync_bool_compare_and_swap(&sink[0], sink[0], i),
             __atomic_exchange_n(&sink[1], i, __ATOMIC_RELEASE)));
    MEASURE("memcpy-ram", 20, memcpy(ram, src, copy_size));
    MEASURE("memcpy-data", 20, memcpy(data, src, copy_size));
}
#else
static void system_bench(void)
{
    die("system mode is benchmarked with x86-64 guests");
}
#endif

static volatile uint64_t *user_map_ctrl(void)
{
    char path[4096];
    volatile uint64_t *ctrl;
    int fd;

    init_channel();
    snprintf(path, sizeof(path), "%s.ctrl",
             qemu_backdoor_channel_name(qemu_backdoor_channel_default()));
    fd = open(path, O_RDWR);
    if (fd < 0) {
        die("cannot open the control file");
    }
    ctrl = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (ctrl == MAP_FAILED) {
        die("cannot map the control file");
    }
    return ctrl;
}

/* The SIGSEGV path: a raw store to CMD on the mapped control page. */
static void raw_store_bench(volatile uint64_t *ctrl)
{
    MEASURE("backdoor-raw-store", n_ops,
            ctrl[BACKDOOR_REG_CMD / 8] = (uint64_t)i);
}

static void user_bench(bool raw_only)
{
    volatile uint64_t *ctrl = user_map_ctrl();
    /*
     * Under the supervisor (it announces call slots) a raw access costs a
     * ptrace stop: timed only when asked for (user-raw)
     */
    bool raw = raw_only ||
               !(*(volatile uint32_t *)((volatile char *)ctrl +
                                        BACKDOOR_REG_FEATURES) &
                 BACKDOOR_FEATURE_USER_SLOTS);
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());

    for (int r = 0; r < reps; r++) {
        if (!raw_only) {
            common_baselines();
            call_bench();
            if (slot && slot->tail) {
                /* An event ring (FEATURES bit 3): flushes at 3/4 included */
                MEASURE("backdoor-post", n_ops * 10,
                        qemu_backdoor_slot_post(slot, BENCH_EVENT, i, 0, 0));
                qemu_backdoor_slot_flush(slot);
                post_pieces(slot, qemu_backdoor_data());
                /* An empty ring's flush: the doorbell's round trip alone */
                MEASURE("backdoor-doorbell", n_ops,
                        qemu_backdoor_slot_flush(slot));
            }
        }
        if (raw) {
            raw_store_bench(ctrl);
        }
    }
}

/*
 * One operation per millisecond, each timed alone: what a call costs when
 * the host side has gone to sleep meanwhile. @n runs; p50 and p90.
 */
#define ISOLATED(name, n, body)                                         \
    do {                                                                \
        double *t_ = malloc(sizeof(double) * (n));                      \
        struct timespec ms_ = { 0, 1000000 };                           \
        for (long i = 0; i < (n); i++) {                                \
            double t0_;                                                 \
            nanosleep(&ms_, NULL);                                      \
            t0_ = now_ns();                                             \
            body;                                                       \
            t_[i] = now_ns() - t0_;                                     \
        }                                                               \
        qsort(t_, (n), sizeof(double), cmp_double);                     \
        printf("SAMPLE %s-isolated-p50 %.2f\n", name, t_[(n) / 2]);     \
        printf("SAMPLE %s-isolated-p90 %.2f\n", name, t_[(n) * 9 / 10]); \
        fflush(stdout);                                                 \
        free(t_);                                                       \
    } while (0)

static void isolated_bench(void)
{
    long n = n_ops < 200 ? n_ops : 200;
    uint64_t bad = 0;

    init_channel();
    for (int r = 0; r < reps; r++) {
        ISOLATED("getppid", n, syscall(SYS_getppid));
        ISOLATED("backdoor-call", n,
                 bad |= qemu_backdoor(i) != (uint64_t)i + 1);
    }
    if (bad) {
        die("a backdoor call returned a wrong result");
    }
}

typedef struct ThreadArg {
    pthread_t tid;
    uint64_t id;
    uint64_t wrong;
    uint64_t full;
} ThreadArg;

static void *thread_calls(void *opaque)
{
    ThreadArg *a = opaque;

    for (long i = 0; i < n_ops; i++) {
        uint64_t cmd = (a->id << 40) | (uint64_t)i;

        a->wrong += qemu_backdoor(cmd) != cmd + 1;
    }
    return NULL;
}

static void threads_bench(int nthreads)
{
    ThreadArg a[64];
    uint64_t wrong = 0, counted;
    double t0, t;

    if (nthreads < 1 || nthreads > 64) {
        die("1 to 64 threads");
    }
    init_channel();
    qemu_backdoor(BENCH_CMD_RESET);
    t0 = now_ns();
    for (int i = 0; i < nthreads; i++) {
        a[i] = (ThreadArg){ .id = i + 1 };
        if (pthread_create(&a[i].tid, NULL, thread_calls, &a[i])) {
            die("pthread_create failed");
        }
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(a[i].tid, NULL);
        wrong += a[i].wrong;
    }
    t = now_ns() - t0;
    counted = qemu_backdoor(BENCH_CMD_COUNT);
    printf("THREADS %d %.0f %lld %llu\n", nthreads,
           nthreads * n_ops / (t / 1e9),
           (long long)(nthreads * n_ops) - (long long)counted,
           (unsigned long long)wrong);
}

static void *thread_events(void *opaque)
{
    ThreadArg *a = opaque;
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());

    for (long i = 0; i < n_ops; i++) {
        a->wrong += qemu_backdoor_slot_post(slot, BENCH_EVENT, i, a->id,
                                            0) != 0;
    }
    qemu_backdoor_slot_flush(slot);
    a->full = slot->full;
    return NULL;
}

static void events_bench(int nthreads)
{
    ThreadArg a[BENCH_PRODUCERS];
    uint64_t wrong = 0, full = 0, events, bad;
    double t0, t;

    if (nthreads < 1 || nthreads > BENCH_PRODUCERS) {
        die("1 to 64 threads");
    }
    init_channel();
    qemu_backdoor(BENCH_CMD_RESET);
    t0 = now_ns();
    for (int i = 0; i < nthreads; i++) {
        a[i] = (ThreadArg){ .id = i };
        if (pthread_create(&a[i].tid, NULL, thread_events, &a[i])) {
            die("pthread_create failed");
        }
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(a[i].tid, NULL);
        wrong += a[i].wrong;
        full += a[i].full;
    }
    t = now_ns() - t0;
    events = qemu_backdoor(BENCH_CMD_EVENTS);
    bad = qemu_backdoor(BENCH_CMD_EVBAD);
    printf("EVENTS %d %.0f %lld %llu %llu\n", nthreads,
           nthreads * n_ops / (t / 1e9),
           (long long)(nthreads * n_ops) - (long long)events +
           (long long)(bad >> 32) + (long long)wrong,
           (unsigned long long)(bad & 0xffffffff),
           (unsigned long long)full);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench-guest system|user|user-raw|"
                "user-isolated N REPS\n"
                "       bench-guest threads T N\n");
        return 2;
    }
    if (!strcmp(argv[1], "threads")) {
        n_ops = atol(argv[3]);
        threads_bench(atoi(argv[2]));
        return 0;
    }
    if (!strcmp(argv[1], "events")) {
        n_ops = atol(argv[3]);
        events_bench(atoi(argv[2]));
        return 0;
    }
    n_ops = atol(argv[2]);
    reps = atoi(argv[3]);
    if (n_ops < 1 || reps < 1 || reps > 64) {
        die("N >= 1 and 1 <= REPS <= 64");
    }
    if (!strcmp(argv[1], "system")) {
        system_bench();
    } else if (!strcmp(argv[1], "user")) {
        user_bench(false);
    } else if (!strcmp(argv[1], "user-raw")) {
        user_bench(true);
    } else if (!strcmp(argv[1], "user-isolated")) {
        isolated_bench();
    } else {
        die("mode is system, user or threads");
    }
    return 0;
}
