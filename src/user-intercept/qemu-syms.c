/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the helper asks of qemu-<arch>, through its exported symbols
 * (qemu-syms.h).
 */
#define _GNU_SOURCE
#include "qemu-syms.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* QEMU's page flags (include/exec/cpu-all.h), stable since 2.x */
#define QEMU_PAGE_READ 0x0001
#define QEMU_PAGE_WRITE 0x0002

bool backdoor_user_big_endian;

static struct {
    void *(*qemu_get_cpu)(int index);
    intptr_t thread_cpu_offset;
    bool have_thread_cpu;
    uintptr_t *guest_base;
    unsigned long *reserved_va;
    int (*page_check_range)(uint64_t start, uint64_t len, int flags);
} qemu;

static __thread int thread_vcpu = -2;
static int next_thread_index;

bool backdoor_qemu_find(const char **exe_name)
{
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    bool (*bigendian)(void);
    const char *name;
    void *tc;

    if (n <= 0) {
        return false;
    }
    exe[n] = '\0';
    name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    *exe_name = name;
    bigendian = dlsym(RTLD_DEFAULT, "target_words_bigendian");
    if (strncmp(name, "qemu-", 5) || !strncmp(name, "qemu-system-", 12) ||
        !dlsym(RTLD_DEFAULT, "guest_base") || !bigendian) {
        return false;
    }

    backdoor_user_big_endian = bigendian();
    qemu.qemu_get_cpu = dlsym(RTLD_DEFAULT, "qemu_get_cpu");
    qemu.guest_base = dlsym(RTLD_DEFAULT, "guest_base");
    qemu.reserved_va = dlsym(RTLD_DEFAULT, "reserved_va");
    qemu.page_check_range = dlsym(RTLD_DEFAULT, "page_check_range");
    tc = dlsym(RTLD_DEFAULT, "thread_cpu");
    if (tc) {
        qemu.thread_cpu_offset = (char *)tc -
                                 (char *)__builtin_thread_pointer();
        qemu.have_thread_cpu = true;
    }
    return true;
}

/*
 * thread_cpu is a TLS variable of the executable (static TLS: same offset
 * from the thread pointer in every thread), and qemu_get_cpu() maps an
 * index back to a CPUState, so no QEMU struct layout is needed.
 */
int backdoor_qemu_vcpu_index(void)
{
    if (thread_vcpu != -2) {
        return thread_vcpu;
    }
    if (qemu.have_thread_cpu && qemu.qemu_get_cpu) {
        void *cpu = *(void **)((char *)__builtin_thread_pointer() +
                               qemu.thread_cpu_offset);
        for (int i = 0; cpu && i < 65536; i++) {
            if (qemu.qemu_get_cpu(i) == cpu) {
                thread_vcpu = i;
                return i;
            }
        }
    }
    thread_vcpu = __atomic_fetch_add(&next_thread_index, 1, __ATOMIC_RELAXED);
    return thread_vcpu;
}

/*
 * Checked with QEMU's page_check_range(), then reached at guest_base +
 * address as QEMU's g2h() does. A 32-bit guest (QEMU reserves its address
 * space: reserved_va) is bounded by that reservation, since
 * page_check_range() takes a 32-bit address there.
 */
int backdoor_qemu_guest_rw(uint64_t addr, void *buf, uint64_t len,
                           bool is_write)
{
    char *host;

    if (!qemu.guest_base || !qemu.page_check_range) {
        return -ENOSYS;
    }
    if (len == 0) {
        return 0;
    }
    if (addr + len < addr ||
        (qemu.reserved_va && *qemu.reserved_va &&
         addr + len > *qemu.reserved_va)) {
        return -EFAULT;
    }
    if (qemu.page_check_range(addr, len, is_write ? QEMU_PAGE_WRITE :
                                                    QEMU_PAGE_READ) != 0) {
        return -EFAULT;
    }
    host = (char *)(*qemu.guest_base + (uintptr_t)addr);
    if (is_write) {
        memcpy(host, buf, len);
    } else {
        memcpy(buf, host, len);
    }
    return 0;
}
