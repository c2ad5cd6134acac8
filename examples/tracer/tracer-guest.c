/* SPDX-License-Identifier: MIT */
/*
 * Tracer guest: emit trace events to the host from several threads, each
 * on its own CPU where there are several.
 *
 *   tracer-guest [-c CHANNEL] [-n EVENTS] [-t THREADS]
 *
 * Exits 0 when the host acknowledged every event, in order.
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include "tracer.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static qemu_backdoor_channel *ch;
static int events = 10;

/* Returns the host's sequence number of the event. */
static uint64_t trace(uint32_t event, const char *fmt, ...)
{
    char *data = qemu_backdoor_channel_data(ch);
    size_t size = qemu_backdoor_channel_data_size(ch);
    uint64_t seq;
    va_list ap;

    qemu_backdoor_channel_lock(ch);
    va_start(ap, fmt);
    vsnprintf(data, size, fmt, ap);
    va_end(ap);
    seq = qemu_backdoor_channel_call(ch, TRACER_CMD(event));
    qemu_backdoor_channel_unlock(ch);
    return seq;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
    qemu_backdoor_slot *slot;
    cpu_set_t set;

    if (ncpus > 1) {
        CPU_ZERO(&set);
        CPU_SET(id % ncpus, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    /* With event rings, no exit per event; else one call each */
    slot = qemu_backdoor_channel_slot(ch);
    for (int i = 0; i < events; i++) {
        if (slot && qemu_backdoor_slot_post(slot, TRACER_CMD(100 + id), id,
                                            i, sched_getcpu()) == 0) {
            continue;
        }
        if (trace(100 + id, "thread %ld step %d on cpu %d", id, i,
                  sched_getcpu()) == UINT64_MAX) {
            return (void *)1;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *spec = NULL;
    int threads = 2, opt, bad = 0;
    pthread_t tid[64];
    uint64_t first, last;

    while ((opt = getopt(argc, argv, "c:n:t:")) != -1) {
        switch (opt) {
        case 'c':
            spec = optarg;
            break;
        case 'n':
            events = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: tracer-guest [-c CHANNEL] [-n EVENTS] "
                    "[-t THREADS]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || events < 0) {
        fprintf(stderr, "tracer-guest: 1 to 64 threads, events >= 0\n");
        return 2;
    }
    ch = qemu_backdoor_open(spec);
    if (!ch) {
        fprintf(stderr, "tracer-guest: %s\n", qemu_backdoor_error());
        return 1;
    }
    first = trace(1, "start: %d threads x %d events", threads, events);
    for (long i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, worker, (void *)i);
    }
    for (int i = 0; i < threads; i++) {
        void *ret;

        pthread_join(tid[i], &ret);
        bad |= ret != NULL;
    }
    last = trace(2, "end");
    qemu_backdoor_close(ch);
    if (bad || last - first != (uint64_t)threads * events + 1) {
        fprintf(stderr, "tracer-guest: the host saw events %llu to %llu, "
                "expected %d in between\n", (unsigned long long)first,
                (unsigned long long)last, threads * events);
        return 1;
    }
    printf("tracer-guest: %llu events traced\n",
           (unsigned long long)(last - first + 1));
    return 0;
}
