/* SPDX-License-Identifier: MIT */
/*
 * Callback library for the tests: logs what it is told and sees, and
 * answers each call with a value the test can predict.
 *
 * callbacks-args: words separated by ':'
 *   log=PATH   append one line per event to PATH
 *   fail       make init fail
 *
 * A call with command TEST_CMD_VCPU returns the vCPU index; any other
 * returns cmd * 3 + (the 64-bit guest-endian word at data offset 0), and
 * stores ~cmd at data offset 8 and the number of calls so far at offset 16.
 *
 * Events (ABI 2, the batch callback): each batch is logged as one line,
 * each event as another. Events with command TEST_EVENT_SEQ carry a
 * stream number (arg 1, < TEST_STREAMS) and a sequence number from 0
 * (arg 0): the library counts the lost (a gap) and the reordered (a
 * number below the next expected). TEST_CMD_EVENTS returns the events
 * received, TEST_CMD_EVSTATS lost << 32 | reordered, TEST_CMD_EVRESET
 * clears all three.
 * Built with -DTEST_ABI_V1 it is a version-1 library: no batch callback,
 * so events reach it as calls.
 */
#include <qemu-backdoor-callbacks.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define TEST_CMD_VCPU 0xf00d0001u
#define TEST_CMD_EVENTS 0xf00d0002u
#define TEST_CMD_EVSTATS 0xf00d0003u
#define TEST_CMD_EVRESET 0xf00d0004u
#define TEST_EVENT_SEQ 0xe5e00001u
#define TEST_STREAMS 64

typedef struct TestState {
    FILE *log;
    uint64_t calls;
    uint64_t events;
    uint64_t lost;
    uint64_t reordered;
    uint64_t next[TEST_STREAMS];
} TestState;

#ifdef TEST_ABI_V1
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version = 1;
#else
QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

/*
 * Batches of one device never run concurrently (they run under the BQL);
 * in user mode those of different producers may, as calls do: counters
 * are atomic, each stream has one producer.
 */
static void test_batch(const qemu_backdoor_batch *b)
{
    TestState *s = b->opaque;

    if (s->log) {
        fprintf(s->log, "batch producer=%d vcpu=%d count=%zu\n",
                b->producer, b->vcpu_index, b->count);
    }
    for (size_t i = 0; i < b->count; i++) {
        const qemu_backdoor_event *e = &b->events[i];

        if (s->log) {
            fprintf(s->log, "event cmd=0x%" PRIx64 " args=0x%" PRIx64
                    ",0x%" PRIx64 ",0x%" PRIx64 "\n", e->cmd, e->arg[0],
                    e->arg[1], e->arg[2]);
        }
        if (e->cmd == TEST_EVENT_SEQ && e->arg[1] < TEST_STREAMS) {
            uint64_t *next = &s->next[e->arg[1]];

            if (e->arg[0] < *next) {
                __atomic_add_fetch(&s->reordered, 1, __ATOMIC_RELAXED);
            } else {
                __atomic_add_fetch(&s->lost, e->arg[0] - *next,
                                   __ATOMIC_RELAXED);
                *next = e->arg[0] + 1;
            }
        }
    }
    __atomic_add_fetch(&s->events, b->count, __ATOMIC_SEQ_CST);
    if (s->log) {
        fflush(s->log);
    }
}
#endif

static uint64_t test_call(const qemu_backdoor_call *call)
{
    TestState *s = call->opaque;
    uint64_t arg = qemu_backdoor_data_ld64(call, 0);
    uint64_t calls = __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);

    if (s->log) {
        fprintf(s->log, "call n=%" PRIu64 " cmd=0x%" PRIx64 " vcpu=%d "
                "arg=0x%" PRIx64 " mode=%d be=%d\n", calls, call->cmd,
                call->vcpu_index, arg, call->mode, call->guest_big_endian);
        fflush(s->log);
    }
    switch (call->cmd) {
    case TEST_CMD_VCPU:
        return (uint64_t)(int64_t)call->vcpu_index;
    case TEST_CMD_EVENTS:
        return __atomic_load_n(&s->events, __ATOMIC_SEQ_CST);
    case TEST_CMD_EVSTATS:
        return __atomic_load_n(&s->lost, __ATOMIC_RELAXED) << 32 |
               __atomic_load_n(&s->reordered, __ATOMIC_RELAXED);
    case TEST_CMD_EVRESET:
        s->events = s->lost = s->reordered = 0;
        memset(s->next, 0, sizeof(s->next));
        return 0;
    }
    qemu_backdoor_data_st64(call, 8, ~call->cmd);
    qemu_backdoor_data_st64(call, 16, calls);
    return call->cmd * 3 + arg;
}

static void test_exit(void *opaque)
{
    TestState *s = opaque;

    if (s->log) {
        fprintf(s->log, "exit calls=%" PRIu64 "\n", s->calls);
        fclose(s->log);
    }
    free(s);
}

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    TestState *s = calloc(1, sizeof(*s));
    char *args = strdup(info->args);
    char *save = NULL;
    int fail = 0;

    for (char *w = strtok_r(args, ":", &save); w;
         w = strtok_r(NULL, ":", &save)) {
        if (!strncmp(w, "log=", 4)) {
            s->log = fopen(w + 4, "a");
        } else if (!strcmp(w, "fail")) {
            fail = 1;
        }
    }
    free(args);
    if (s->log) {
        fprintf(s->log, "init version=%u mode=%d size=%" PRIu64 " be=%d "
                "id=%s args=%s data=%s\n", info->version, info->mode,
                info->data_size, info->guest_big_endian, info->id, info->args,
                info->data ? "set" : "null");
        fflush(s->log);
    }
    if (fail) {
        cb->error = "the test asked init to fail";
        if (s->log) {
            fclose(s->log);
        }
        free(s);
        return -1;
    }
    cb->call = test_call;
#ifndef TEST_ABI_V1
    cb->batch = test_batch;
#endif
    cb->exit = test_exit;
    cb->opaque = s;
    return 0;
}
