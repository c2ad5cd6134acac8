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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
    const char *files[8];
    int n_files;
    const char *dir;
} made;

const char *const backdoor_user_env_vars[] = {
    "QEMU_BACKDOOR_LIB", "QEMU_BACKDOOR_ARGS", "QEMU_BACKDOOR_DATA_SIZE",
    "QEMU_BACKDOOR_CALLBACKS_DIR", "QEMU_BACKDOOR_RINGS",
    "QEMU_BACKDOOR_RING_ENTRIES", NULL,
};

void backdoor_user_env_hide(void)
{
    for (const char *const *v = backdoor_user_env_vars; *v; v++) {
        unsetenv(*v);
    }
}

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
        return BACKDOOR_USER_DATA_SIZE_DEFAULT;
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

void backdoor_user_made_file(const char *path)
{
    if (made.n_files < (int)G_N_ELEMENTS(made.files)) {
        made.files[made.n_files++] = path;
    }
}

void backdoor_user_made_dir(const char *path)
{
    made.dir = path;
}

void backdoor_user_remove_made(void)
{
    while (made.n_files) {
        unlink(made.files[--made.n_files]);  /* never a file we did not make */
    }
    if (made.dir) {
        rmdir(made.dir);
        made.dir = NULL;
    }
}

void backdoor_user_die(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    backdoor_user_remove_made();
    fflush(NULL);
    _exit(1);
}

uint64_t backdoor_user_data_size_or_die(void)
{
    uint64_t size = backdoor_user_data_size();

    if (!size) {
        backdoor_user_die("QEMU_BACKDOOR_DATA_SIZE '%s' is not a power of two "
                          "from 4K to 1G", getenv("QEMU_BACKDOOR_DATA_SIZE"));
    }
    return size;
}

const char *backdoor_user_lib_or_die(void)
{
    const char *lib = getenv("QEMU_BACKDOOR_LIB");

    if (!lib || !*lib) {
        backdoor_user_die("QEMU_BACKDOOR_LIB is not set: give the path of a "
                          "callback library (see docs/user-mode.md)");
    }
    return lib;
}

int backdoor_user_make_channel_file(const char *path)
{
    int fd = backdoor_user_open_channel_file(path);

    if (fd == -1) {
        backdoor_user_die("cannot create %s: %s", path, strerror(errno));
    }
    if (fd < 0) {
        backdoor_user_die("%s exists and is not a private file of this user: "
                          "remove it or choose another QEMU_BACKDOOR_PATH",
                          path);
    }
    backdoor_user_made_file(path);
    if (ftruncate(fd, 0)) {
        backdoor_user_die("cannot truncate %s: %s", path, strerror(errno));
    }
    return fd;
}
