/* SPDX-License-Identifier: MIT */
/*
 * Static guest program for the user-mode tests, linked with the guest
 * library: the library's own call path (call slots under the supervisor,
 * the pread fast path under the helper) from several threads, with
 * signals arriving (with SA_RESTART or without). Results come
 * from tests/callbacks/test-callbacks.c: cmd * 3 + data[0], the vCPU index
 * for TEST_CMD_VCPU. Exits 0 when every check passed.
 *
 *   lib-guest threads T N [norestart]   T threads x N calls, SIGALRM on
 *                                       every thread meanwhile
 *   lib-guest concurrent                with tests/user/wait-callbacks.c:
 *                                       a call on a second channel while
 *                                       one on the first waits for it
 *   lib-guest events T N                T threads post N events each to
 *                                       their rings, with calls between;
 *                                       then one thread fills its ring
 *   lib-guest post-exit N               post N events and exit: the host
 *                                       delivers them at the exit
 *   lib-guest post-wait N               post N events, say "posted", wait
 *                                       for the end of stdin, exit
 *   lib-guest raw-exit K N              K threads one after the other post
 *                                       N events and leave with a raw exit
 *                                       system call (no release)
 *   lib-guest no-rings                  a channel without rings
 *   lib-guest kick                      with tests/user/wait-callbacks.c:
 *                                       post up to the ring's threshold,
 *                                       then store a flag its batch
 *                                       callback waits for (a kick lets
 *                                       the thread go on: "kick 1")
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define CMD_VCPU 0xf00d0001u
#define CMD_EVENTS 0xf00d0002u
#define CMD_EVSTATS 0xf00d0003u
#define CMD_EVRESET 0xf00d0004u
#define EVENT_SEQ 0xe5e00001u
#define KICK_PROBE 0x6b1c0001u
#define MAX_THREADS 16

typedef struct Worker {
    pthread_t thread;
    unsigned index;
    unsigned calls;
    uint64_t vcpu;
    unsigned bad;
} Worker;

static volatile unsigned alarms;

/* The library's lock is not async-signal-safe: the handler only counts */
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void *worker(void *opaque)
{
    Worker *w = opaque;

    w->vcpu = qemu_backdoor(CMD_VCPU);
    for (unsigned i = 0; i < w->calls; i++) {
        uint64_t cmd = ((uint64_t)(w->index + 1) << 40) | i;

        if (qemu_backdoor(cmd) != cmd * 3) {
            w->bad++;
        }
    }
    return NULL;
}

static qemu_backdoor_channel *first;
static uint64_t first_result;

static void *call_first(void *opaque)
{
    (void)opaque;
    first_result = qemu_backdoor_channel_call(first, 1);
    return NULL;
}

/* Two channels (each has its own lock): the calls run concurrently. */
static int concurrent(void)
{
    qemu_backdoor_channel *second;
    pthread_t t;
    uint64_t r;

    first = qemu_backdoor_open(NULL);
    second = qemu_backdoor_open(NULL);
    if (!first || !second) {
        fprintf(stderr, "open: %s\n", qemu_backdoor_error());
        return 2;
    }
    pthread_create(&t, NULL, call_first, NULL);
    usleep(100000);
    r = qemu_backdoor_channel_call(second, 2);
    pthread_join(t, NULL);
    printf("waiting call returned %" PRIu64 ", the other %" PRIu64 "\n",
           first_result, r);
    return first_result == 1 && r == 2 ? 0 : 1;
}


typedef struct Producer {
    pthread_t thread;
    unsigned index, events;
    int ring;
    uint64_t full, bad_calls, post_errors;
    bool fill;                  /* no flush before full, no calls */
} Producer;

static pthread_barrier_t barrier;

/*
 * Post @events of stream @index, a checked call now and then. The
 * producers hold their rings at the same time (they wait for each other
 * once they have one).
 */
static void *producer(void *opaque)
{
    Producer *p = opaque;
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());

    if (!p->fill) {
        pthread_barrier_wait(&barrier);
    }
    if (!slot || !slot->tail) {
        p->ring = -1;
        p->post_errors = p->events;
        return NULL;
    }
    p->ring = slot->index;
    if (p->fill) {
        slot->threshold = slot->entries;
    }
    for (unsigned i = 0; i < p->events; i++) {
        p->post_errors += qemu_backdoor_slot_post(slot, EVENT_SEQ, i,
                                                  p->index, i * 7) != 0;
        if (i % 97 == 0 && !p->fill) {
            uint64_t cmd = ((uint64_t)(p->index + 1) << 40) | i;

            p->bad_calls += qemu_backdoor_slot_call(slot, cmd) != cmd * 3;
        }
    }
    p->full = slot->full;
    return NULL;
}

static int events(int n, unsigned count)
{
    Producer p[MAX_THREADS + 1];
    qemu_backdoor_slot *slot;
    uint64_t got, stats, total = 0;

    *(volatile uint64_t *)qemu_backdoor_data() = 0;
    qemu_backdoor(CMD_EVRESET);
    slot = qemu_backdoor_channel_slot(qemu_backdoor_channel_default());
    CHECK(slot && slot->tail && slot->index >= 0, "no ring: %s",
          qemu_backdoor_error());
    if (!slot || !slot->tail) {
        return 1;
    }
    /* A call first takes what its thread posted: no flush needed */
    slot->threshold = slot->entries;
    for (unsigned i = 0; i < 5; i++) {
        qemu_backdoor_slot_post(slot, EVENT_SEQ, i, MAX_THREADS, 0);
    }
    got = qemu_backdoor(CMD_EVENTS);
    CHECK(got == 5, "the call saw %" PRIu64 " of the 5 events its thread "
          "posted before it", got);
    total += 5;

    pthread_barrier_init(&barrier, NULL, n);
    for (int i = 0; i < n; i++) {
        p[i] = (Producer){ .index = i, .events = count };
        pthread_create(&p[i].thread, NULL, producer, &p[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(p[i].thread, NULL);
        total += count;
        CHECK(!p[i].bad_calls && !p[i].post_errors, "producer %d: %" PRIu64
              " wrong calls, %" PRIu64 " failed posts", i, p[i].bad_calls,
              p[i].post_errors);
        for (int j = 0; j < i; j++) {
            CHECK(p[i].ring != p[j].ring, "producers %d and %d share ring "
                  "%d", i, j, p[i].ring);
        }
    }
    /*
     * Alone, without calls or early flushes: the ring fills up. A moment
     * first, for a supervisor that kept draining the rings after the
     * others' kicks to stop: this thread never kicks, its ring must fill.
     */
    nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
    p[n] = (Producer){ .index = n, .events = 3 * slot->entries + 5,
                       .fill = true };
    pthread_create(&p[n].thread, NULL, producer, &p[n]);
    pthread_join(p[n].thread, NULL);
    total += p[n].events;
    CHECK(!p[n].post_errors, "%" PRIu64 " failed posts", p[n].post_errors);
    CHECK(p[n].full >= 3, "the ring of %u entries was found full %" PRIu64
          " times in %u posts", slot->entries, p[n].full, p[n].events);
    got = qemu_backdoor(CMD_EVENTS);
    stats = qemu_backdoor(CMD_EVSTATS);
    CHECK(got == total, "the host got %" PRIu64 " events of %" PRIu64, got,
          total);
    CHECK(stats == 0, "lost %" PRIu64 ", reordered %" PRIu64, stats >> 32,
          stats & 0xffffffff);
    printf("events %" PRIu64 " of %" PRIu64 " lost %" PRIu64 " reordered %"
           PRIu64 " full %" PRIu64 "\n", got, total, stats >> 32,
           stats & 0xffffffff, p[n].full);
    return failures ? 1 : 0;
}

/* Post @count events (fewer than a ring holds) and exit without a call */
static int post_exit(unsigned count)
{
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());

    if (!slot || !slot->tail || count >= slot->entries) {
        fprintf(stderr, "no ring, or %u events do not fit in it\n", count);
        return 1;
    }
    slot->threshold = slot->entries;
    for (unsigned i = 0; i < count; i++) {
        qemu_backdoor_slot_post(slot, EVENT_SEQ, i, 0, 0);
    }
    printf("posted %u\n", count);
    return 0;
}

/* The same, but the test swaps the library (hot reload) meanwhile */
static int post_wait(unsigned count)
{
    char c;
    int r = post_exit(count);

    fflush(stdout);
    while (read(0, &c, 1) > 0) {
    }
    return r;
}

static void *raw_exit_thread(void *opaque)
{
    Producer *p = opaque;
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());

    p->ring = slot && slot->tail ? slot->index : -1;
    if (p->ring < 0) {
        return NULL;
    }
    slot->threshold = slot->entries;
    for (unsigned i = 0; i < p->events; i++) {
        qemu_backdoor_slot_post(slot, EVENT_SEQ, i, p->index, 0);
    }
    /* Gone without the library's release: the host must notice */
    syscall(SYS_exit, 0);
    return NULL;
}

/*
 * More threads than rings, one after the other. A thread's end is seen by
 * the host a moment after pthread_join() returns (QEMU wakes the joiner
 * before its thread is gone): a thread that finds no ring free yet is
 * tried again in a new thread, for up to 10 s.
 */
static int raw_exit(int k, unsigned count)
{
    struct timespec ms = { 0, 1000000 };
    int tries = 0;
    Producer p;

    for (int i = 0; i < k && i < MAX_THREADS; i++) {
        do {
            p = (Producer){ .index = i, .events = count };
            pthread_create(&p.thread, NULL, raw_exit_thread, &p);
            pthread_join(p.thread, NULL);
        } while (p.ring < 0 && ++tries < 10000 && !nanosleep(&ms, NULL));
        CHECK(p.ring >= 0, "thread %d got no ring: %s", i,
              qemu_backdoor_error());
    }
    printf("threads %d, ring claims that found none free %d\n", k, tries);
    return failures ? 1 : 0;
}

/*
 * Post until the ring passes its threshold (the last post kicks or rings
 * the doorbell), then store the flag the batch waits for, then ask what
 * the batch saw (the call takes the ring once the batch has returned).
 */
static int kick(void)
{
    volatile uint64_t *flag = (volatile uint64_t *)qemu_backdoor_data() + 1;
    qemu_backdoor_slot *slot =
        qemu_backdoor_channel_slot(qemu_backdoor_channel_default());
    uint64_t seen;

    if (!slot || !slot->tail) {
        fprintf(stderr, "no ring: %s\n", qemu_backdoor_error());
        return 1;
    }
    *flag = 0;
    /* The post that finds the threshold reached flushes: one more */
    for (unsigned i = 0; i <= slot->threshold; i++) {
        qemu_backdoor_slot_post(slot, KICK_PROBE, i, 0, 0);
    }
    *flag = 1;
    seen = qemu_backdoor(3);
    printf("kick %" PRIu64 " full %" PRIu64 "\n", seen, slot->full);
    return 0;
}

/* QEMU_BACKDOOR_RING_ENTRIES=0: posting is refused, calls work */
static int no_rings(void)
{
    qemu_backdoor_channel *ch = qemu_backdoor_channel_default();
    qemu_backdoor_slot *slot = qemu_backdoor_channel_slot(ch);

    *(volatile uint64_t *)qemu_backdoor_data() = 0;
    CHECK(slot && slot->index == -1, "a slot without rings");
    CHECK(qemu_backdoor_post(1, 2, 3, 4) == -1 && errno == ENOTSUP,
          "post: errno %d", errno);
    CHECK(qemu_backdoor(5) == 15, "call");
    CHECK(qemu_backdoor_channel_data_size(ch) == (16 << 20) - 8,
          "the whole data channel but the call word: %" PRIu64,
          qemu_backdoor_channel_data_size(ch));
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct itimerval it = { { 0, 500 }, { 0, 500 } };
    struct sigaction sa = { .sa_handler = on_alarm };
    Worker w[MAX_THREADS];
    unsigned calls;
    int n;

    if (argc == 2 && !strcmp(argv[1], "concurrent")) {
        return concurrent();
    }
    if (argc >= 2 && strcmp(argv[1], "threads")) {
        if (qemu_backdoor_init(NULL) != 0) {
            fprintf(stderr, "init: %s\n", qemu_backdoor_error());
            return 2;
        }
        if (argc == 4 && !strcmp(argv[1], "events")) {
            return events(atoi(argv[2]) < MAX_THREADS ? atoi(argv[2]) : 1,
                          atoi(argv[3]));
        } else if (argc == 3 && !strcmp(argv[1], "post-exit")) {
            return post_exit(atoi(argv[2]));
        } else if (argc == 3 && !strcmp(argv[1], "post-wait")) {
            return post_wait(atoi(argv[2]));
        } else if (argc == 4 && !strcmp(argv[1], "raw-exit")) {
            return raw_exit(atoi(argv[2]), atoi(argv[3]));
        } else if (argc == 2 && !strcmp(argv[1], "no-rings")) {
            return no_rings();
        } else if (argc == 2 && !strcmp(argv[1], "kick")) {
            return kick();
        }
    }
    if (argc < 4 || strcmp(argv[1], "threads") ||
        (n = atoi(argv[2])) < 1 || n > MAX_THREADS) {
        fprintf(stderr, "usage: see the comment at the top of %s\n",
                __FILE__);
        return 2;
    }
    calls = atoi(argv[3]);
    if (qemu_backdoor_init(NULL) != 0) {
        fprintf(stderr, "init: %s\n", qemu_backdoor_error());
        return 2;
    }
    *(volatile uint64_t *)qemu_backdoor_data() = 0;
    if (qemu_backdoor(CMD_VCPU) != 0) {
        fprintf(stderr, "main thread is not vcpu 0\n");
        failures++;
    }
    sa.sa_flags = argc > 4 && !strcmp(argv[4], "norestart") ? 0 : SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    for (int i = 0; i < n; i++) {
        w[i] = (Worker){ .index = i, .calls = calls };
        pthread_create(&w[i].thread, NULL, worker, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].thread, NULL);
        if (w[i].bad) {
            fprintf(stderr, "thread %d: %u wrong results\n", i, w[i].bad);
            failures++;
        }
        if (w[i].vcpu == 0) {
            fprintf(stderr, "thread %d has the main vcpu\n", i);
            failures++;
        }
        for (int j = 0; j < i; j++) {
            if (w[i].vcpu == w[j].vcpu) {
                fprintf(stderr, "threads %d and %d share vcpu %" PRIu64 "\n",
                        i, j, w[i].vcpu);
                failures++;
            }
        }
        printf("thread %d vcpu %" PRIu64 " prefix %d\n", i, w[i].vcpu,
               i + 1);
    }
    it = (struct itimerval){ 0 };
    setitimer(ITIMER_REAL, &it, NULL);
    printf("alarms %u\n", alarms);
    return failures ? 1 : 0;
}
