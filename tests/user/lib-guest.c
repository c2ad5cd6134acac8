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
#include <sys/time.h>
#include <unistd.h>

#define CMD_VCPU 0xf00d0001u
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

int main(int argc, char **argv)
{
    struct itimerval it = { { 0, 500 }, { 0, 500 } };
    struct sigaction sa = { .sa_handler = on_alarm };
    Worker w[MAX_THREADS];
    int n, failures = 0;
    unsigned calls;

    if (argc == 2 && !strcmp(argv[1], "concurrent")) {
        return concurrent();
    }
    if (argc < 4 || strcmp(argv[1], "threads") ||
        (n = atoi(argv[2])) < 1 || n > MAX_THREADS) {
        fprintf(stderr, "usage: lib-guest threads T N [norestart] | "
                "concurrent\n");
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
