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
 */
#include <qemu-backdoor-callbacks.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define TEST_CMD_VCPU 0xf00d0001u

typedef struct TestState {
    FILE *log;
    uint64_t calls;
} TestState;

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

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
    if (call->cmd == TEST_CMD_VCPU) {
        return (uint64_t)(int64_t)call->vcpu_index;
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
    cb->exit = test_exit;
    cb->opaque = s;
    return 0;
}
