/* SPDX-License-Identifier: MIT */
/*
 * Tracer callbacks: write each guest event to a file, one line each:
 *
 *   <host time, s.ns> vcpu=<n> event=<id> seq=<n> <message>
 *
 * callbacks-args: file=PATH (default: QEMU's stderr).
 */
#include <qemu-backdoor-callbacks.h>

#include "tracer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Tracer {
    FILE *out;
    uint64_t seq;
    pthread_mutex_t lock;       /* two devices may share one library */
} Tracer;

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

static uint64_t tracer_call(const qemu_backdoor_call *call)
{
    Tracer *t = call->opaque;
    const char *msg = call->data;
    int len = strnlen(msg, call->data_size);
    struct timespec now;
    uint64_t seq;

    if (!TRACER_IS_CMD(call->cmd)) {
        return UINT64_MAX;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&t->lock);
    seq = ++t->seq;
    fprintf(t->out, "%lld.%09ld vcpu=%d event=%" PRIu32 " seq=%" PRIu64
            " %.*s\n", (long long)now.tv_sec, now.tv_nsec, call->vcpu_index,
            TRACER_EVENT(call->cmd), seq, len, msg);
    fflush(t->out);
    pthread_mutex_unlock(&t->lock);
    return seq;
}

/* Posted events: "vcpu" is the CPU the guest thread says it posted on. */
static void tracer_batch(const qemu_backdoor_batch *b)
{
    Tracer *t = b->opaque;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < b->count; i++) {
        const qemu_backdoor_event *e = &b->events[i];

        if (!TRACER_IS_CMD(e->cmd)) {
            continue;
        }
        fprintf(t->out, "%lld.%09ld vcpu=%d event=%" PRIu32 " seq=%" PRIu64
                " thread %" PRIu64 " step %" PRIu64 " on cpu %d\n",
                (long long)now.tv_sec, now.tv_nsec, (int)e->arg[2],
                TRACER_EVENT(e->cmd), ++t->seq, e->arg[0], e->arg[1],
                (int)e->arg[2]);
    }
    fflush(t->out);
    pthread_mutex_unlock(&t->lock);
}

static void tracer_exit(void *opaque)
{
    Tracer *t = opaque;

    if (t->out != stderr) {
        fclose(t->out);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    Tracer *t = calloc(1, sizeof(*t));

    if (!t) {
        cb->error = "tracer: out of memory";
        return -1;
    }
    t->out = stderr;
    if (!strncmp(info->args, "file=", 5)) {
        t->out = fopen(info->args + 5, "w");
        if (!t->out) {
            cb->error = "tracer: cannot create the file given by file=";
            free(t);
            return -1;
        }
    } else if (info->args[0]) {
        cb->error = "tracer: callbacks-args must be empty or file=PATH";
        free(t);
        return -1;
    }
    pthread_mutex_init(&t->lock, NULL);
    cb->call = tracer_call;
    cb->batch = tracer_batch;
    cb->exit = tracer_exit;
    cb->opaque = t;
    return 0;
}
