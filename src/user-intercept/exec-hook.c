/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The owner's exec. QEMU issues a guest execve as a raw system call
 * (safe_syscall), past any libc interposer, and the new image no longer
 * has the callback library. So the helper also loads itself as a QEMU
 * plugin (QEMU_PLUGIN, set at start-up and hidden from the guest with
 * QEMU_UNSET_ENV) and watches the guest's system calls: before an exec of
 * the owner that will work, it runs the library's exit and removes the
 * files. Only QEMU's public plugin API is used, looked up at run time.
 */
#define _GNU_SOURCE
#include "exec-hook.h"
#include "channel.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* The start of QEMU's qemu_info_t (include/qemu/qemu-plugin.h) */
typedef struct PluginInfo {
    const char *target_name;
} PluginInfo;

typedef void (*SyscallCb)(uint64_t id, unsigned int vcpu_index, int64_t num,
                          uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                          uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);

/* API version 1 (QEMU 7.2) has what the hook needs */
EXPORT int qemu_plugin_version = 1;

/* Guest system call numbers (the targets' syscall tables in QEMU) */
static const struct {
    const char *target;     /* QEMU's TARGET_NAME, a prefix */
    int bits;               /* guest address width */
    int64_t execve, execveat;
} exec_nrs[] = {
    { "x86_64", 64, 59, 322 },
    { "i386", 32, 11, 358 },
    { "aarch64", 64, 221, 281 },
    { "arm", 32, 11, 387 },
    { "riscv64", 64, 221, 281 },
    { "riscv32", 32, 221, 281 },
    { "loongarch64", 64, 221, 281 },
    { "s390x", 64, 11, 354 },
    { "ppc64", 64, 11, 362 },
    { "ppc", 32, 11, 362 },
    { "m68k", 32, 11, 355 },
    { "sh4", 32, 11, 376 },
    { "hppa", 32, 11, 342 },
    { "alpha", 64, 59, 513 },
};

static int64_t nr_execve = -1, nr_execveat = -1;
static uint64_t guest_addr_mask;
static uintptr_t *guest_base;

static const char *g2h(uint64_t addr)
{
    return (const char *)(*guest_base + (uintptr_t)(addr & guest_addr_mask));
}

/*
 * A guest PATH search tries execve in one directory after another: only
 * an exec that will work (a regular file it may execute) closes the
 * channel. The kernel reads the guest's string here, so a bad pointer is
 * EFAULT, not a fault.
 */
static void exec_hook(G_GNUC_UNUSED uint64_t id,
                      G_GNUC_UNUSED unsigned int vcpu_index, int64_t num,
                      uint64_t a1, uint64_t a2, G_GNUC_UNUSED uint64_t a3,
                      G_GNUC_UNUSED uint64_t a4, uint64_t a5,
                      G_GNUC_UNUSED uint64_t a6, G_GNUC_UNUSED uint64_t a7,
                      G_GNUC_UNUSED uint64_t a8)
{
    int dirfd = AT_FDCWD, flags = 0;
    const char *path;
    struct stat st;

    if ((num != nr_execve && num != nr_execveat) ||
        !backdoor_user_is_owner()) {
        return;
    }
    if (num == nr_execve) {
        path = g2h(a1);
    } else {
        dirfd = (int)a1;
        path = g2h(a2);
        flags = (int)a5 & (AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    }
    if (fstatat(dirfd, path, &st, flags) || !S_ISREG(st.st_mode) ||
        faccessat(dirfd, path, X_OK, AT_EACCESS | (flags & AT_EMPTY_PATH))) {
        return;
    }
    backdoor_user_cleanup();
}

EXPORT int qemu_plugin_install(uint64_t id, const PluginInfo *info,
                               G_GNUC_UNUSED int argc,
                               G_GNUC_UNUSED char **argv)
{
    void (*reg)(uint64_t, SyscallCb) =
        dlsym(RTLD_DEFAULT, "qemu_plugin_register_vcpu_syscall_cb");

    guest_base = dlsym(RTLD_DEFAULT, "guest_base");
    if (!backdoor_user_active || !reg || !guest_base || !info ||
        !info->target_name) {
        return 0;       /* no hook: a later start reaps what exec leaves */
    }
    for (size_t i = 0; i < G_N_ELEMENTS(exec_nrs); i++) {
        if (g_str_has_prefix(info->target_name, exec_nrs[i].target)) {
            nr_execve = exec_nrs[i].execve;
            nr_execveat = exec_nrs[i].execveat;
            guest_addr_mask = exec_nrs[i].bits == 64 ? UINT64_MAX :
                              UINT32_MAX;
            reg(id, exec_hook);
            break;
        }
    }
    return 0;
}

/*
 * Ask QEMU to load the helper as a plugin, unless the user gives a plugin
 * through QEMU_PLUGIN already (it takes one) or QEMU has no plugins.
 * QEMU copies the environment for the guest before it reads QEMU_PLUGIN:
 * QEMU_UNSET_ENV takes both out of the guest's copy again.
 */
void backdoor_user_request_exec_hook(void)
{
    const char *unset = getenv("QEMU_UNSET_ENV");
    g_autofree char *self = NULL;
    g_autofree char *opt = NULL;
    g_autofree char *unset_list = NULL;
    Dl_info dl;

    if (getenv("QEMU_PLUGIN") ||
        !dlsym(RTLD_DEFAULT, "qemu_plugin_register_vcpu_syscall_cb") ||
        !dladdr((void *)backdoor_user_request_exec_hook, &dl) ||
        !dl.dli_fname || !(self = realpath(dl.dli_fname, NULL)) ||
        strchr(self, ',')) {
        return;
    }
    opt = g_strdup_printf("file=%s", self);
    unset_list = unset && *unset ?
                 g_strdup_printf("%s,QEMU_PLUGIN", unset) :
                 g_strdup("QEMU_PLUGIN,QEMU_UNSET_ENV");
    setenv("QEMU_PLUGIN", opt, 1);
    setenv("QEMU_UNSET_ENV", unset_list, 1);
}
