/* SPDX-License-Identifier: MIT */
/*
 * Callback library with state, for the snapshot, migration and hot reload
 * tests (callback ABI 2).
 *
 * callbacks-args: words separated by ':'
 *   tag=N      the library's tag, in every result (default 1)
 *   log=PATH   append one line per init, exit, save and load to PATH
 *   nohooks    set no save/load hooks (the device stays unmigratable)
 *   fail       make init fail
 *
 * Every call returns tag << 32 | n, n counting this library's calls from
 * 1; the count is its state, saved and loaded by the hooks. Except:
 *
 *   cmd 2  guest memory read: data[0] guest address, data[8] length;
 *          the bytes go to data offset 64; returns the helper's result;
 *          data[16]: milliseconds to wait first (the caller goes to sleep)
 *   cmd 3  guest memory write: data offset 64 to the guest, same args
 */
#include <qemu-backdoor-callbacks.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define STATE_MAGIC 0x5354415445763100ull    /* "STATEv1\0" */

typedef struct StateLib {
    FILE *log;
    uint64_t tag;
    uint64_t calls;
} StateLib;

QEMU_BACKDOOR_EXPORT int qemu_backdoor_callbacks_version =
    QEMU_BACKDOOR_CALLBACKS_VERSION;

static void state_log(StateLib *s, const char *fmt, uint64_t a)
{
    if (s->log) {
        fprintf(s->log, fmt, s->tag, a);
        fflush(s->log);
    }
}

static uint64_t state_call(const qemu_backdoor_call *call)
{
    StateLib *s = call->opaque;
    uint64_t n, addr, len;

    if (call->cmd == 2 || call->cmd == 3) {
        struct timespec delay = {
            .tv_nsec = qemu_backdoor_data_ld64(call, 16) % 1000 * 1000000,
        };

        nanosleep(&delay, NULL);
        addr = qemu_backdoor_data_ld64(call, 0);
        len = qemu_backdoor_data_ld64(call, 8);
        if (len > call->data_size - 64) {
            return (uint64_t)(int64_t)-E2BIG;
        }
        return (uint64_t)(int64_t)(call->cmd == 2 ?
            qemu_backdoor_guest_read(call, addr, (char *)call->data + 64,
                                     len) :
            qemu_backdoor_guest_write(call, addr, (char *)call->data + 64,
                                      len));
    }
    n = __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);

    return s->tag << 32 | n;
}

static int state_save(void *opaque, void **state, uint64_t *size)
{
    StateLib *s = opaque;
    uint64_t *buf = malloc(2 * sizeof(uint64_t));

    if (!buf) {
        return -1;
    }
    buf[0] = STATE_MAGIC;
    buf[1] = s->calls;
    *state = buf;
    *size = 2 * sizeof(uint64_t);
    state_log(s, "save tag=%" PRIu64 " calls=%" PRIu64 "\n", s->calls);
    return 0;
}

static int state_load(void *opaque, const void *state, uint64_t size)
{
    StateLib *s = opaque;
    const uint64_t *buf = state;

    if (size != 2 * sizeof(uint64_t) || buf[0] != STATE_MAGIC) {
        return -1;
    }
    s->calls = buf[1];
    state_log(s, "load tag=%" PRIu64 " calls=%" PRIu64 "\n", s->calls);
    return 0;
}

static void state_exit(void *opaque)
{
    StateLib *s = opaque;

    state_log(s, "exit tag=%" PRIu64 " calls=%" PRIu64 "\n", s->calls);
    if (s->log) {
        fclose(s->log);
    }
    free(s);
}

QEMU_BACKDOOR_EXPORT int
qemu_backdoor_callbacks_init(const qemu_backdoor_info *info,
                             qemu_backdoor_callbacks *cb)
{
    StateLib *s = calloc(1, sizeof(*s));
    char *args = strdup(info->args);
    char *save = NULL;
    int hooks = 1, fail = 0;

    s->tag = 1;
    for (char *w = strtok_r(args, ":", &save); w;
         w = strtok_r(NULL, ":", &save)) {
        if (!strncmp(w, "log=", 4)) {
            s->log = fopen(w + 4, "a");
        } else if (!strncmp(w, "tag=", 4)) {
            s->tag = strtoull(w + 4, NULL, 0);
        } else if (!strcmp(w, "nohooks")) {
            hooks = 0;
        } else if (!strcmp(w, "fail")) {
            fail = 1;
        }
    }
    free(args);
    state_log(s, "init tag=%" PRIu64 " version=%" PRIu64 "\n",
              info->version);
    if (fail) {
        cb->error = "the test asked init to fail";
        if (s->log) {
            fclose(s->log);
        }
        free(s);
        return -1;
    }
    cb->call = state_call;
    cb->exit = state_exit;
    cb->opaque = s;
    if (hooks) {
        cb->save = state_save;
        cb->load = state_load;
    }
    return 0;
}
