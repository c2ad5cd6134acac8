/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The libc functions qemu-<arch> calls on guest mappings and guest
 * reads: mmap and friends keep the table of guest mappings of the control
 * file (mappings.h) and keep those mappings inaccessible; pread64 is the
 * fast path of a call. (The other interposers sit with what they serve:
 * descriptors.c, exits.c, sigsegv.c.)
 */
#define _GNU_SOURCE
/* Both the 32-bit-offset and the 64-bit names are defined here */
#undef _FILE_OFFSET_BITS
#include "channel.h"
#include "descriptors.h"
#include "libc.h"
#include "mappings.h"
#include "qemu-syms.h"

#include <stdarg.h>
#include <sys/mman.h>

#define EXPORT __attribute__((visibility("default")))

static bool is_ctrl_mapping(int flags, int fd)
{
    return !(flags & MAP_ANONYMOUS) && fd >= 0 &&
           backdoor_descriptors_on_ctrl_file(fd);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off64_t offset)
{
    const BackdoorLibc *libc = backdoor_libc();
    void *p;

    if (!backdoor_user_active) {
        return libc->mmap64(addr, len, prot, flags, fd, offset);
    }
    backdoor_mappings_lock();
    if (is_ctrl_mapping(flags, fd)) {
        /* Mapped inaccessible from the start: no window for the guest */
        p = libc->mmap64(addr, len, PROT_NONE, flags, fd, offset);
        if (p != MAP_FAILED) {
            backdoor_mappings_map((uintptr_t)p, (uintptr_t)p + len, offset,
                                  prot);
        }
    } else {
        p = libc->mmap64(addr, len, prot, flags, fd, offset);
        if (p != MAP_FAILED) {
            backdoor_mappings_unmap((uintptr_t)p, (uintptr_t)p + len);
        }
    }
    backdoor_mappings_unlock();
    return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t offset)
{
    return mmap64(addr, len, prot, flags, fd, offset);
}

EXPORT int munmap(void *addr, size_t len)
{
    int ret;

    if (!backdoor_user_active) {
        return backdoor_libc()->munmap(addr, len);
    }
    backdoor_mappings_lock();
    ret = backdoor_libc()->munmap(addr, len);
    if (ret == 0) {
        backdoor_mappings_unmap((uintptr_t)addr, (uintptr_t)addr + len);
    }
    backdoor_mappings_unlock();
    return ret;
}

/*
 * Change the protection outside control mappings only; inside, remember
 * what the guest asked for (it decides which accesses are emulated) and
 * keep the pages inaccessible.
 */
EXPORT int mprotect(void *addr, size_t len, int prot)
{
    int ret;

    if (!backdoor_user_active) {
        return backdoor_libc()->mprotect(addr, len, prot);
    }
    backdoor_mappings_lock();
    ret = backdoor_mappings_protect((uintptr_t)addr, (uintptr_t)addr + len,
                                    prot, backdoor_libc()->mprotect);
    backdoor_mappings_unlock();
    return ret;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags,
                    ...)
{
    void *new_addr = NULL, *p;
    va_list ap;

    if (flags & MREMAP_FIXED) {
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (!backdoor_user_active) {
        return backdoor_libc()->mremap(old, old_len, new_len, flags,
                                       new_addr);
    }
    backdoor_mappings_lock();
    p = backdoor_libc()->mremap(old, old_len, new_len, flags, new_addr);
    if (p != MAP_FAILED) {
        backdoor_mappings_remap((uintptr_t)old, old_len, (uintptr_t)p,
                                new_len);
    }
    backdoor_mappings_unlock();
    return p;
}

/*
 * The fast path: QEMU emulates a guest pread64 with a libc pread64 on the
 * guest's buffer in place, so the call costs no signal.
 */
EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t offset)
{
    if (backdoor_user_active && count == 8 &&
        offset == BACKDOOR_REG_CALL && buf &&
        backdoor_descriptors_on_ctrl_file_cached(fd)) {
        uint64_t cmd = qemu_backdoor_ld64(backdoor_user_big_endian, buf);

        qemu_backdoor_st64(backdoor_user_big_endian, buf,
                           backdoor_user_call(cmd));
        return 8;
    }
    return backdoor_libc()->pread64(fd, buf, count, offset);
}

EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    return pread64(fd, buf, count, offset);
}
