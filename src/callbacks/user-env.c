/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Environment and channel files shared by the user-mode helper and the
 * supervisor (user-env.h).
 */
#define _GNU_SOURCE
#include "user-env.h"
#include "regs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s) {
        return 0;
    }
    switch (*end) {
    case 'k': case 'K':
        v <<= 10, end++;
        break;
    case 'm': case 'M':
        v <<= 20, end++;
        break;
    case 'g': case 'G':
        v <<= 30, end++;
        break;
    }
    return *end ? 0 : v;
}

uint64_t backdoor_user_data_size(void)
{
    const char *s = getenv("QEMU_BACKDOOR_DATA_SIZE");
    uint64_t size;

    if (!s || !*s) {
        return BACKDOOR_DATA_SIZE_DEFAULT;
    }
    size = parse_size(s);
    return backdoor_data_size_ok(size) ? size : 0;
}

int backdoor_user_open_channel_file(const char *path)
{
    struct stat st;
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077)) {
        close(fd);
        return -2;
    }
    return fd;
}
