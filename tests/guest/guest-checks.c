/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checks run inside the test VM (static, as root), against devices using
 * tests/callbacks/test-callbacks.c: result = cmd * 3 + data[0], ~cmd at
 * data[8], the device's call count at data[16]; CMD_VCPU returns the vCPU.
 *
 * Each check prints "@@ ok /guest/NAME" or "@@ not ok /guest/NAME: why";
 * "@@ info KEY VALUE" lines tell the host what to look for in the logs.
 *
 *   guest-checks lib                    library behaviour and errors
 *   guest-checks multi SPEC1 SPEC2      two channels at once
 *   guest-checks threads SPEC T N       T threads x N calls
 *   guest-checks stress SPEC N          N calls, every result checked
 *   guest-checks events SPEC OLD T N    T threads and a child process post
 *                                       N events each (register map 1.1);
 *                                       OLD is a device with slots=0
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMD_VCPU 0xf00d0001u
#define STRESS_BASE 0x100000000ull
#define THREAD_BASE 0x200000000ull
#define MULTI_CMD1 0x11
#define MULTI_CMD2 0x22
#define DATA_SIZE (1 << 20)
#define FIRST_DEVICE "0000:00:04.0"
#define TEST_DEVICE "0000:00:05.0"      /* test callbacks, init.sh's TEST */

static int failed;

static void report(int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(int ok, const char *name, const char *fmt, ...)
{
    va_list ap;

    printf("@@ %sok /guest/%s", ok ? "" : "not ", name);
    if (!ok && fmt) {
        printf(": ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    printf("\n");
    fflush(stdout);
    failed |= !ok;
}

static volatile uint64_t *words(qemu_backdoor_channel *ch)
{
    return qemu_backdoor_channel_data(ch);
}

static qemu_backdoor_channel *open_or_report(const char *spec,
                                             const char *name)
{
    qemu_backdoor_channel *ch = qemu_backdoor_open(spec);

    if (!ch) {
        report(0, name, "open %s: %s", spec, qemu_backdoor_error());
    }
    return ch;
}

/* Expect open(@spec) to fail with @err and a message containing @text. */
static void expect_open_error(const char *name, const char *spec, int err,
                              const char *text)
{
    qemu_backdoor_channel *ch = qemu_backdoor_open(spec);
    int e = errno;

    if (ch) {
        report(0, name, "open %s succeeded", spec);
        qemu_backdoor_close(ch);
        return;
    }
    report(e == err && strstr(qemu_backdoor_error(), text), name,
           "errno %d (want %d), message '%s' (want '%s')", e, err,
           qemu_backdoor_error(), text);
}

/* Run @fn in a child process; the check passes when it exits 0. */
static void in_child(const char *name, int (*fn)(void))
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        _exit(fn());
    }
    waitpid(pid, &status, 0);
    report(WIFEXITED(status) && WEXITSTATUS(status) == 0, name,
           "child status 0x%x", status);
}

static int call_before_init(void)
{
    errno = 0;
    if (qemu_backdoor(1) != UINT64_MAX || errno != ENODEV ||
        qemu_backdoor_data() != NULL) {
        printf("qemu_backdoor() before init: errno %d\n", errno);
        return 1;
    }
    return 0;
}

static int not_root(void)
{
    qemu_backdoor_channel *ch;

    if (setuid(65534) < 0) {
        return 2;
    }
    ch = qemu_backdoor_open(NULL);
    if (ch || errno != EACCES || !strstr(qemu_backdoor_error(), "root")) {
        printf("as nobody: %p errno %d: %s\n", (void *)ch, errno,
               qemu_backdoor_error());
        return 1;
    }
    return 0;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
        printf("cannot write %s\n", path);
        exit(1);
    }
}

/* The seed call: right results, and its slot ends where the library's. */
static int seed_ok(uint64_t cmd)
{
    volatile uint64_t *data = qemu_backdoor_data();

    data[0] = 1;
    return qemu_backdoor(cmd) == cmd * 3 + 1 && data[1] == ~cmd;
}

static int seed_in_child(void)
{
    /* The parent's slot is the parent's: the child claims its own */
    return !qemu_backdoor_seed_regs.call_reg && seed_ok(0x61) &&
           qemu_backdoor_seed_regs.call_reg ? 0 : 1;
}

/*
 * A child that replaces the inherited channel frees its own slots only
 * (no call after: a new claim would take the lowest free slot, which
 * would hide a parent's slot freed by mistake).
 */
static int seed_reinit_in_child(void)
{
    return seed_ok(0x62) && qemu_backdoor_init(NULL) == 0 ? 0 : 1;
}

static void *seed_thread(void *opaque)
{
    int *ok = opaque;

    *ok = !qemu_backdoor_seed_regs.call_reg && seed_ok(0x71) &&
          seed_ok(0x72) && qemu_backdoor_seed_regs.call_reg;
    return (void *)qemu_backdoor_seed_regs.call_reg;
}

/*
 * qemu_backdoor() is inline through the thread's slot after its first
 * call; a thread, a forked child and a replaced channel each take the
 * library's qemu_backdoor() first.
 */
static void check_seed(void)
{
    qemu_backdoor_seed *seed = &qemu_backdoor_seed_regs;
    volatile uint64_t *mine;
    uint64_t (*fn)(uint64_t) = &qemu_backdoor;
    pthread_t tid;
    void *theirs;
    int ok = 0;

    /* The seed API's channel is the first device: make it the test one */
    mkdir("/tmp/seed-sysfs", 0755);
    symlink("/sys/bus/pci/devices/" TEST_DEVICE,
            "/tmp/seed-sysfs/" TEST_DEVICE);
    setenv(QEMU_BACKDOOR_SYSFS_ENV, "/tmp/seed-sysfs", 1);
    if (qemu_backdoor_init(NULL) != 0) {
        report(0, "lib/seed-inline", "%s", qemu_backdoor_error());
        return;
    }
    report(!seed->call_reg && seed_ok(0x51) && seed_ok(0x52) &&
           seed->call_reg && seed->call_word, "lib/seed-inline",
           "call register %p", (void *)seed->call_reg);
    mine = seed->call_reg;
    report(fn(0x53) == 0x53 * 3 + 1 && (qemu_backdoor)(0x54) == 0x54 * 3 + 1,
           "lib/seed-out-of-line", NULL);
    pthread_create(&tid, NULL, seed_thread, &ok);
    pthread_join(tid, &theirs);
    report(ok && theirs != mine && seed->call_reg == mine,
           "lib/seed-thread", "thread ok %d, its register %p, mine %p", ok,
           theirs, (void *)mine);
    in_child("lib/seed-fork", seed_in_child);
    in_child("lib/seed-fork-reinit", seed_reinit_in_child);
    report(seed_ok(0x57) && seed->call_reg == mine,
           "lib/seed-fork-reinit-parent", "call register %p, mine %p",
           (void *)seed->call_reg, (void *)mine);
    /* A new channel: the old slot's registers are gone with the old one */
    if (qemu_backdoor_init(NULL) != 0) {
        report(0, "lib/seed-reinit", "%s", qemu_backdoor_error());
        return;
    }
    report(!seed->call_reg && seed_ok(0x55) && seed_ok(0x56) &&
           seed->call_reg, "lib/seed-reinit", "call register %p",
           (void *)seed->call_reg);
    unsetenv(QEMU_BACKDOOR_SYSFS_ENV);
}

static int check_lib(void)
{
    static char zeros[DATA_SIZE];
    uint32_t id = 0x42440100;
    qemu_backdoor_channel *ch;
    char version[32];

    /* Before anything opened a channel in this process */
    in_child("lib/call-before-init", call_before_init);

    snprintf(version, sizeof(version), "%d.%d.%d",
             QEMU_BACKDOOR_GUEST_VERSION_MAJOR,
             QEMU_BACKDOOR_GUEST_VERSION_MINOR,
             QEMU_BACKDOOR_GUEST_VERSION_MICRO);
    report(!strcmp(qemu_backdoor_version(), version), "lib/version",
           "library %s, header %s", qemu_backdoor_version(), version);

    ch = open_or_report(NULL, "lib/open-auto");
    if (ch) {
        report(qemu_backdoor_channel_mode(ch) == QEMU_BACKDOOR_GUEST_SYSTEM &&
               !strcmp(qemu_backdoor_channel_name(ch), FIRST_DEVICE) &&
               qemu_backdoor_channel_id(ch) == 0x42440101 &&
               /* below the 32 default slots of 64 + 128 * 32 bytes */
               qemu_backdoor_channel_data_size(ch) ==
               DATA_SIZE - 64 - 32 * 4160,
               "lib/open-auto", "mode %d name %s id 0x%x size %" PRIu64,
               qemu_backdoor_channel_mode(ch), qemu_backdoor_channel_name(ch),
               qemu_backdoor_channel_id(ch),
               qemu_backdoor_channel_data_size(ch));
        qemu_backdoor_close(ch);
    }

    expect_open_error("lib/error/bad-spec", "bogus", EINVAL,
                      "unknown channel 'bogus'");
    expect_open_error("lib/error/no-such-device", "pci:00:1e.0", ENODEV,
                      "no PCI device 0000:00:1e.0");
    expect_open_error("lib/error/not-backdoor", "pci:0000:00:1f.0", ENODEV,
                      "not the backdoor device");
    in_child("lib/error/not-root", not_root);

    /* Channel files without a helper behind them (this is no qemu-user) */
    write_file("/tmp/fake.ctrl", &id, sizeof(id));
    truncate("/tmp/fake.ctrl", 65536);
    write_file("/tmp/fake.data", zeros, sizeof(zeros));
    expect_open_error("lib/error/user-no-helper", "path:/tmp/fake", ENODEV,
                      "no user-mode helper serves /tmp/fake");
    expect_open_error("lib/error/user-missing", "/tmp/none", ENODEV,
                      "no user-mode channel at /tmp/none");

    /* The seed's init: /tmp/backdoor is no channel here, the device is */
    setenv(QEMU_BACKDOOR_PATH_ENV, "/tmp/fake", 1);
    report(qemu_backdoor_init("/tmp/backdoor") == 0 &&
           qemu_backdoor_channel_mode(qemu_backdoor_channel_default()) ==
           QEMU_BACKDOOR_GUEST_SYSTEM && qemu_backdoor_data(),
           "lib/init-fallback", "%s", qemu_backdoor_error());
    report(qemu_backdoor_init(NULL) == 0 &&
           !strcmp(qemu_backdoor_channel_name(qemu_backdoor_channel_default()),
                   FIRST_DEVICE),
           "lib/init-null-fallback", "%s", qemu_backdoor_error());
    unsetenv(QEMU_BACKDOOR_PATH_ENV);
    check_seed();
    return 0;
}

static int check_multi(const char *spec1, const char *spec2)
{
    qemu_backdoor_channel *a = open_or_report(spec1, "multi/open");
    qemu_backdoor_channel *b = a ? open_or_report(spec2, "multi/open") : NULL;
    uint64_t ra, rb;

    if (!b) {
        return 0;
    }
    report(1, "multi/open", NULL);
    words(a)[0] = 1000;
    words(b)[0] = 2000;
    ra = qemu_backdoor_channel_call(a, MULTI_CMD1);
    rb = qemu_backdoor_channel_call(b, MULTI_CMD2);
    report(ra == MULTI_CMD1 * 3 + 1000 && rb == MULTI_CMD2 * 3 + 2000,
           "multi/results", "0x%" PRIx64 " 0x%" PRIx64, ra, rb);
    report(words(a)[1] == ~(uint64_t)MULTI_CMD1 &&
           words(b)[1] == ~(uint64_t)MULTI_CMD2 &&
           words(a)[0] == 1000 && words(b)[0] == 2000,
           "multi/separate-data", "a: 0x%" PRIx64 ", b: 0x%" PRIx64,
           words(a)[1], words(b)[1]);
    qemu_backdoor_close(a);
    qemu_backdoor_close(b);
    return 0;
}

typedef struct Worker {
    qemu_backdoor_channel *ch;
    pthread_t tid;
    int index;
    int calls;
    int bad_locked, bad_unlocked, bad_vcpu;
    int cpu;
    uint64_t vcpu;
} Worker;

static pthread_barrier_t barrier;

static void *worker(void *opaque)
{
    Worker *w = opaque;
    volatile uint64_t *data = words(w->ch);
    long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(w->index % ncpus, &set);
    sched_setaffinity(0, sizeof(set), &set);

    /* Data exchanges under the channel lock */
    for (int i = 0; i < w->calls; i++) {
        uint64_t cmd = THREAD_BASE + w->index * 0x10000000ull + i;
        uint64_t arg = (uint64_t)w->index << 40 | i;
        uint64_t r;

        qemu_backdoor_channel_lock(w->ch);
        data[0] = arg;
        r = qemu_backdoor_channel_call(w->ch, cmd);
        if (r != cmd * 3 + arg || data[1] != ~cmd) {
            w->bad_locked++;
        }
        qemu_backdoor_channel_unlock(w->ch);
    }
    if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
        data[0] = 7;
    }
    pthread_barrier_wait(&barrier);
    /* Calls only, concurrently: data[0] stays 7 */
    for (int i = 0; i < w->calls; i++) {
        uint64_t cmd = THREAD_BASE + w->index * 0x10000000ull + i;

        if (qemu_backdoor_channel_call(w->ch, cmd) != cmd * 3 + 7) {
            w->bad_unlocked++;
        }
    }
    w->cpu = sched_getcpu();
    w->vcpu = qemu_backdoor_channel_call(w->ch, CMD_VCPU);
    return NULL;
}

static int check_threads(const char *spec, int nthreads, int calls)
{
    qemu_backdoor_channel *ch = open_or_report(spec, "threads/open");
    Worker w[16];
    int bad_locked = 0, bad_unlocked = 0, vcpu_ok = 1;
    char cpus[128] = "";

    if (!ch || nthreads > 16) {
        return 0;
    }
    pthread_barrier_init(&barrier, NULL, nthreads);
    for (int i = 0; i < nthreads; i++) {
        w[i] = (Worker){ .ch = ch, .index = i, .calls = calls };
        pthread_create(&w[i].tid, NULL, worker, &w[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].tid, NULL);
    }
    for (int i = 0; i < nthreads; i++) {
        size_t len = strlen(cpus);

        bad_locked += w[i].bad_locked;
        bad_unlocked += w[i].bad_unlocked;
        vcpu_ok &= w[i].vcpu == (uint64_t)w[i].cpu;
        snprintf(cpus + len, sizeof(cpus) - len, " %d:%" PRId64, w[i].cpu,
                 (int64_t)w[i].vcpu);
    }
    report(bad_locked == 0, "threads/locked-exchanges",
           "%d of %d wrong", bad_locked, nthreads * calls);
    report(bad_unlocked == 0, "threads/concurrent-calls",
           "%d of %d wrong", bad_unlocked, nthreads * calls);
    report(vcpu_ok, "threads/vcpu-index", "cpu:vcpu%s", cpus);
    printf("@@ info threads-cpus%s\n", cpus);
    qemu_backdoor_close(ch);
    return 0;
}

static int check_stress(const char *spec, uint64_t n)
{
    qemu_backdoor_channel *ch = open_or_report(spec, "stress/open");
    volatile uint64_t *data;
    uint64_t bad = 0, first_bad = 0, count0 = 0;
    uint64_t r = 0, want = 0;

    if (!ch) {
        return 0;
    }
    data = words(ch);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t cmd = STRESS_BASE + i;
        uint64_t arg = i * 0x9e3779b97f4a7c15ull;

        data[0] = arg;
        r = qemu_backdoor_channel_call(ch, cmd);
        want = cmd * 3 + arg;
        if (i == 0) {
            count0 = data[2];
        }
        /* the device's call count goes up by one per call */
        if (r != want || data[1] != ~cmd || (i && data[2] != count0 + i)) {
            if (!bad++) {
                first_bad = i;
            }
        }
    }
    report(n >= 100000 && bad == 0, "stress/results",
           "%" PRIu64 " of %" PRIu64 " wrong, first at %" PRIu64, bad, n,
           first_bad);
    printf("@@ info stress-calls %" PRIu64 "\n", n);
    qemu_backdoor_close(ch);
    return 0;
}

#define CMD_EVENTS 0xf00d0002u
#define CMD_EVSTATS 0xf00d0003u
#define CMD_EVRESET 0xf00d0004u
#define EVENT_SEQ 0xe5e00001u

typedef struct Producer {
    pthread_t tid;
    qemu_backdoor_channel *ch;
    int index, n, only_when_full, barrier_count;
    uint64_t bad_calls, full, post_errors;
    int slot;
} Producer;

/* Post n events of stream @index, with a checked call now and then. */
static void *producer(void *opaque)
{
    Producer *p = opaque;
    qemu_backdoor_slot *slot = qemu_backdoor_channel_slot(p->ch);
    long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(p->index % ncpus, &set);
    sched_setaffinity(0, sizeof(set), &set);
    if (!slot) {
        p->post_errors = p->n;
        return NULL;
    }
    p->slot = slot->index;
    if (p->only_when_full) {
        slot->threshold = slot->entries;    /* fill it up: the full path */
    } else if (p->index < p->barrier_count) {
        /* All threads hold their slots at once (own-slots) */
        pthread_barrier_wait(&barrier);
    }
    for (int i = 0; i < p->n; i++) {
        p->post_errors += qemu_backdoor_slot_post(slot, EVENT_SEQ, i,
                                                  p->index, 0) != 0;
        if (i % 97 == 0 && !p->only_when_full) {
            uint64_t cmd = THREAD_BASE + p->index * 0x10000000ull + i;

            /* data[0] is 0 here: nobody writes it during this check */
            p->bad_calls += qemu_backdoor_slot_call(slot, cmd) != cmd * 3;
        }
    }
    p->full = slot->full;
    return NULL;
}

static int check_events(const char *spec, const char *old, int nthreads,
                        int n)
{
    qemu_backdoor_channel *ch = open_or_report(spec, "events/open");
    qemu_backdoor_channel *och;
    Producer p[17];
    uint64_t bad = 0, full = 0, perr = 0, got, stats;
    int status = -1, slots_ok = 1;
    pid_t child;

    if (!ch || nthreads > 16) {
        return 0;
    }
    words(ch)[0] = 0;
    qemu_backdoor_channel_call(ch, CMD_EVRESET);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        /* Another process: its own slot, not the parent's */
        Producer c = { .ch = ch, .index = nthreads, .n = n };

        producer(&c);
        _exit(c.bad_calls || c.post_errors || c.slot < 0 ? 1 : 0);
    }
    pthread_barrier_init(&barrier, NULL, nthreads);
    for (int i = 0; i < nthreads; i++) {
        p[i] = (Producer){ .ch = ch, .index = i, .n = n,
                           .barrier_count = nthreads };
        pthread_create(&p[i].tid, NULL, producer, &p[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(p[i].tid, NULL);
        bad += p[i].bad_calls;
        perr += p[i].post_errors;
        for (int j = 0; j < i; j++) {
            slots_ok &= p[i].slot >= 0 && p[i].slot != p[j].slot;
        }
    }
    waitpid(child, &status, 0);
    /* Alone, without early flushes or calls: the ring fills up */
    p[nthreads] = (Producer){ .ch = ch, .index = nthreads + 1, .n = n,
                              .only_when_full = 1 };
    producer(&p[nthreads]);
    full = p[nthreads].full;
    perr += p[nthreads].post_errors;
    got = qemu_backdoor_channel_call(ch, CMD_EVENTS);
    stats = qemu_backdoor_channel_call(ch, CMD_EVSTATS);
    report(slots_ok, "events/own-slots", "threads share a slot");
    report(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "events/child-process", "child status 0x%x", status);
    report(bad == 0 && perr == 0, "events/calls-between",
           "%" PRIu64 " wrong calls, %" PRIu64 " failed posts", bad, perr);
    report(got == (uint64_t)(nthreads + 2) * n, "events/all-delivered",
           "host got %" PRIu64 " of %d", got, (nthreads + 2) * n);
    report(stats == 0, "events/order", "lost %" PRIu64 ", reordered %"
           PRIu64, stats >> 32, stats & 0xffffffff);
    /* Every 128th post finds the ring full, none is dropped */
    report(full >= (uint64_t)n / 128 - 1, "events/full-ring-flush",
           "the producer without early flush found its ring full %" PRIu64
           " times in %d posts", full, n);
    printf("@@ info events-full %" PRIu64 "\n", full);

    /* A 1.0 device (slots=0): locked calls, posting refused */
    och = open_or_report(old, "events/old-open");
    if (och) {
        qemu_backdoor_slot *slot = qemu_backdoor_channel_slot(och);

        words(och)[0] = 0;
        report(slot && slot->index == -1 &&
               qemu_backdoor_slot_call(slot, 5) == 15 &&
               qemu_backdoor_channel_call(och, 6) == 18 &&
               qemu_backdoor_slot_post(slot, 1, 2, 3, 4) == -1 &&
               errno == ENOTSUP, "events/map-1.0-device",
               "slot %d", slot ? slot->index : -2);
        qemu_backdoor_close(och);
    }
    qemu_backdoor_close(ch);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "lib")) {
        check_lib();
    } else if (argc == 4 && !strcmp(argv[1], "multi")) {
        check_multi(argv[2], argv[3]);
    } else if (argc == 5 && !strcmp(argv[1], "threads")) {
        check_threads(argv[2], atoi(argv[3]), atoi(argv[4]));
    } else if (argc == 6 && !strcmp(argv[1], "events")) {
        check_events(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    } else if (argc == 4 && !strcmp(argv[1], "stress")) {
        check_stress(argv[2], strtoull(argv[3], NULL, 0));
    } else {
        fprintf(stderr, "usage: see the comment at the top of %s\n",
                __FILE__);
        return 2;
    }
    return failed;
}
