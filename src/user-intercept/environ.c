/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hiding the helper from the guest's environment (environ.h).
 */
#define _GNU_SOURCE
#include "environ.h"

#include <dlfcn.h>
#include <glib.h>
#include <linux/prctl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Drop our own entry from LD_PRELOAD so the guest does not see it. */
static void hide_preload(void)
{
    const char *pre = getenv("LD_PRELOAD");
    Dl_info info;
    GString *keep;
    char **parts;

    if (!pre || !dladdr((void *)hide_preload, &info) || !info.dli_fname) {
        return;
    }
    keep = g_string_new(NULL);
    parts = g_strsplit_set(pre, ": ", -1);
    for (char **p = parts; *p; p++) {
        char *real = realpath(*p, NULL);
        char *self = realpath(info.dli_fname, NULL);
        bool ours = **p == '\0' ||
                    (real && self && !strcmp(real, self));

        free(real);
        free(self);
        if (!ours) {
            g_string_append_printf(keep, "%s%s", keep->len ? ":" : "", *p);
        }
    }
    if (keep->len) {
        setenv("LD_PRELOAD", keep->str, 1);
    } else {
        unsetenv("LD_PRELOAD");
    }
    g_strfreev(parts);
    g_string_free(keep, TRUE);
}

/*
 * /proc/self/environ shows the environment block QEMU started with, which
 * neither unsetenv() nor QEMU's copy for the guest changes (QEMU 7.2 does
 * not emulate that file): rewrite the block in place without the hidden
 * variables. environ is moved to the heap first, as its strings point into
 * the block. Every rewritten entry is no longer than the original, so the
 * kept entries move down; the freed tail is zeroed and cut off with
 * PR_SET_MM_MAP (a kernel without CONFIG_CHECKPOINT_RESTORE refuses it:
 * there the tail reads as empty entries).
 */
static bool hidden_variable(const char *entry)
{
    static const char *const hide[] = {
        "QEMU_BACKDOOR_LIB=", "QEMU_BACKDOOR_ARGS=",
        "QEMU_BACKDOOR_DATA_SIZE=", "QEMU_BACKDOOR_CALLBACKS_DIR=",
        "LD_PRELOAD=",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(hide); i++) {
        if (g_str_has_prefix(entry, hide[i])) {
            return true;
        }
    }
    return false;
}

/* Set the end of the environment block that /proc/self/environ shows. */
static void set_env_end(const unsigned long *f, unsigned long env_end)
{
    /* /proc/self/stat fields 26-28 and 45-51, as the kernel has them */
    struct prctl_mm_map map = {
        .start_code = f[26], .end_code = f[27], .start_stack = f[28],
        .start_data = f[45], .end_data = f[46], .start_brk = f[47],
        .brk = syscall(SYS_brk, 0), .arg_start = f[48], .arg_end = f[49],
        .env_start = f[50], .env_end = env_end, .exe_fd = -1,
    };

    /* PR_SET_MM_MAP needs no privilege (PR_SET_MM_ENV_END does) */
    prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&map, sizeof(map), 0);
}

static void hide_environ_block(void)
{
    g_autofree char *stat = NULL;
    unsigned long f[52] = { 0 };
    const char *preload;
    char *p, *in, *out, **copy;
    size_t n = 0;

    for (char **e = environ; *e; e++) {
        n++;
    }
    copy = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++) {
        copy[i] = g_strdup(environ[i]);
    }
    environ = copy;
    preload = getenv("LD_PRELOAD");

    /* The numeric fields of /proc/self/stat from 3, after "(comm)" */
    if (!g_file_get_contents("/proc/self/stat", &stat, NULL, NULL) ||
        !(p = strrchr(stat, ')'))) {
        return;
    }
    p += 2;
    for (int i = 3; i < 52 && *p; i++) {
        if (i == 3) {
            p++;        /* the state letter */
        } else {
            f[i] = strtoul(p, &p, 10);
        }
    }
    if (f[51] <= f[50]) {
        return;
    }
    in = out = (char *)f[50];
    while (in < (char *)f[51]) {
        size_t len = strnlen(in, (char *)f[51] - in);
        char *next = in + len + 1;

        if (g_str_has_prefix(in, "LD_PRELOAD=") && preload &&
            strlen(preload) < len - strlen("LD_PRELOAD=") + 1) {
            /* What is left of LD_PRELOAD once the helper's entry is gone */
            out += sprintf(out, "LD_PRELOAD=%s", preload) + 1;
        } else if (len && !hidden_variable(in)) {
            memmove(out, in, len + 1);
            out += len + 1;
        }
        in = next;
    }
    if (out < (char *)f[51]) {
        memset(out, 0, (char *)f[51] - out);
        set_env_end(f, (unsigned long)out);
    }
}


void backdoor_environ_hide(void)
{
    hide_preload();
    unsetenv("QEMU_BACKDOOR_LIB");
    unsetenv("QEMU_BACKDOOR_ARGS");
    unsetenv("QEMU_BACKDOOR_DATA_SIZE");
    unsetenv("QEMU_BACKDOOR_CALLBACKS_DIR");
    hide_environ_block();
}
