/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-mode backdoor helper, preloaded into a stock, dynamically linked
 * qemu-<arch>: the start-up. The constructor checks that this is QEMU,
 * reads the environment, makes the channel files, loads the callback
 * library, and hands all to the channel (channel.h), which serves the
 * register map of docs/specs/backdoor.rst ("User mode") on a trapped
 * control page (fault.h) and a pread() fast path (interpose.c).
 */
#define _GNU_SOURCE
#include "channel.h"
#include "descriptors.h"
#include "environ.h"
#include "exec-hook.h"
#include "exits.h"
#include "fault.h"
#include "qemu-syms.h"
#include "reload.h"
#include "sigsegv.h"
#include "user-env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A default base lives in TMPDIR/qemu-backdoor.XXXXXX, with these files */
#define TMPDIR_PREFIX "qemu-backdoor."
#define TMPDIR_BASE "backdoor"
#define TMPDIR_OWNER "owner"

static struct {
    char *base;
    char *ctrl_path;
    char *data_path;
    char *tmpdir;           /* made for a default base */
    char *owner_path;       /* TMPDIR_OWNER in tmpdir: the owner's pid */
    BackdoorRegs regs;      /* the data channel, what registers read */
} st;

static const char *tmp_root(void)
{
    const char *tmp = getenv("TMPDIR");

    return tmp && *tmp ? tmp : "/tmp";
}

/*
 * The owner of a private directory holds a shared flock on it through a
 * close-on-exec descriptor, so the lock is held while the owner or a
 * forked child of it runs QEMU, and released when they exit, exec or are
 * killed (SIGKILL included). It also writes its pid in TMPDIR_OWNER.
 */
static void make_private_dir(void)
{
    char *templ = g_strdup_printf("%s/" TMPDIR_PREFIX "XXXXXX", tmp_root());
    char pid[24];
    int dfd, fd, len;

    if (!mkdtemp(templ)) {
        backdoor_user_die("cannot create a directory %s: %s", templ,
                          strerror(errno));
    }
    st.tmpdir = templ;
    backdoor_user_made_dir(templ);
    st.owner_path = g_strdup_printf("%s/" TMPDIR_OWNER, templ);
    dfd = open(templ, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || flock(dfd, LOCK_SH)) {
        backdoor_user_die("cannot lock %s: %s", templ, strerror(errno));
    }
    /*
     * It stays open to hold the lock, moved out of the low numbers a guest
     * expects its own open() to return.
     */
    fd = fcntl(dfd, F_DUPFD_CLOEXEC, 100);
    if (fd >= 0) {
        close(dfd);
    }
    fd = open(st.owner_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
              O_CLOEXEC, 0600);
    if (fd < 0) {
        backdoor_user_die("cannot create %s: %s", st.owner_path,
                          strerror(errno));
    }
    backdoor_user_made_file(st.owner_path);
    len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (write(fd, pid, len) != len) {
        backdoor_user_die("cannot write %s: %s", st.owner_path,
                          strerror(errno));
    }
    close(fd);
}

/* Does @pid map the file @st (the data channel of a live owner)? */
static bool maps_file(pid_t pid, const struct stat *st)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
    char line[4096];
    bool found = false;
    FILE *f = fopen(path, "re");

    if (!f) {
        /* Gone now, or not ours to read: only "gone" is a no */
        return errno != ENOENT && errno != ESRCH;
    }
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned int maj, min;
        unsigned long ino;

        found = sscanf(line, "%*s %*s %*s %x:%x %lu", &maj, &min, &ino) == 3
                && ino == st->st_ino && maj == major(st->st_dev) &&
                min == minor(st->st_dev);
    }
    fclose(f);
    return found;
}

/*
 * Remove the private directory @name in @root if its owner is gone (its
 * lock is free and its pid is dead or no longer maps the data file, as
 * after an exec): what a SIGKILL or an exec of the owner left behind.
 * Only directories of this user with an owner file are considered.
 */
static void reap_one(int root, const char *name)
{
    static const char *const files[] = {
        TMPDIR_BASE ".ctrl", TMPDIR_BASE ".data", TMPDIR_BASE ".reload",
        TMPDIR_OWNER,
    };
    char buf[24] = "";
    struct stat st, data;
    int dfd, fd;
    long pid;
    ssize_t n;

    dfd = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                 O_CLOEXEC);
    if (dfd < 0) {
        return;
    }
    if (fstat(dfd, &st) || st.st_uid != geteuid() || (st.st_mode & 077) ||
        flock(dfd, LOCK_EX | LOCK_NB)) {
        goto out;
    }
    fd = openat(dfd, TMPDIR_OWNER, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        goto out;       /* not made by this helper, or not set up yet */
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid <= 0) {
        goto out;
    }
    if ((kill(pid, 0) == 0 || errno == EPERM) &&
        (fstatat(dfd, TMPDIR_BASE ".data", &data, AT_SYMLINK_NOFOLLOW) ||
         maps_file(pid, &data))) {
        goto out;       /* alive and still using it */
    }
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        unlinkat(dfd, files[i], 0);
    }
    unlinkat(root, name, AT_REMOVEDIR);
out:
    close(dfd);
}

static void reap_stale_dirs(void)
{
    DIR *dir = opendir(tmp_root());
    struct dirent *d;

    if (!dir) {
        return;
    }
    while ((d = readdir(dir))) {
        if (d->d_type == DT_DIR || d->d_type == DT_UNKNOWN) {
            if (g_str_has_prefix(d->d_name, TMPDIR_PREFIX) &&
                strlen(d->d_name) == strlen(TMPDIR_PREFIX) + 6) {
                reap_one(dirfd(dir), d->d_name);
            }
        }
    }
    closedir(dir);
}

static void make_files(const char *base)
{
    uint8_t regs[8];
    struct stat sb;
    int fd;

    if (base && *base) {
        st.base = g_strdup(base);
    } else {
        make_private_dir();
        st.base = g_strdup_printf("%s/" TMPDIR_BASE, st.tmpdir);
    }
    st.ctrl_path = g_strdup_printf("%s.ctrl", st.base);
    st.data_path = g_strdup_printf("%s.data", st.base);

    /* ID only: the guest's loads from the page are emulated */
    fd = backdoor_user_make_channel_file(st.ctrl_path);
    backdoor_regs_store_fixed(&st.regs, BACKDOOR_R_ID,
                              backdoor_user_big_endian, regs);
    if (pwrite(fd, regs, 4, BACKDOOR_REG_ID) != 4 ||
        ftruncate(fd, BACKDOOR_USER_REGS_SIZE) || fstat(fd, &sb)) {
        backdoor_user_die("cannot write %s: %s", st.ctrl_path,
                          strerror(errno));
    }
    backdoor_descriptors_set_ctrl_file(sb.st_dev, sb.st_ino);
    close(fd);

    fd = backdoor_user_make_channel_file(st.data_path);
    if (ftruncate(fd, st.regs.data_size)) {
        backdoor_user_die("cannot create %s: %s", st.data_path,
                          strerror(errno));
    }
    st.regs.data = mmap(NULL, st.regs.data_size, PROT_READ | PROT_WRITE,
                        MAP_SHARED, fd, 0);
    if (st.regs.data == MAP_FAILED) {
        backdoor_user_die("cannot map %s: %s", st.data_path,
                          strerror(errno));
    }
    close(fd);
}

/* Flush before a fork so that the child does not print it again. */
static void backdoor_user_prefork(void)
{
    if (backdoor_user_active) {
        fflush(NULL);
    }
}

__attribute__((constructor))
static void backdoor_user_init(void)
{
    const char *exe, *lib;
    qemu_backdoor_info info;
    g_autoptr(GError) err = NULL;
    BackdoorCallbacks *cb;
    char *args, *error;

    if (!backdoor_qemu_find(&exe)) {
        return;
    }
    backdoor_sigsegv_init(backdoor_fault);

    if (getenv("QEMU_BACKDOOR_CHECK")) {
        /* The launcher's sanity check: we are loaded and can work here */
        printf(PROG ": user-mode helper ok in %s (%s-endian guest)\n", exe,
               backdoor_user_big_endian ? "big" : "little");
        fflush(stdout);
        _exit(0);
    }

    lib = backdoor_user_lib_or_die();
    st.regs = (BackdoorRegs) {
        .mode = QEMU_BACKDOOR_MODE_USER,
        .data_size = backdoor_user_data_size_or_die(),
    };
    reap_stale_dirs();
    make_files(getenv("QEMU_BACKDOOR_PATH"));

    /* A copy: the library may keep it, and the environment is rewritten */
    args = g_strdup(getenv("QEMU_BACKDOOR_ARGS"));
    info = backdoor_regs_info(&st.regs, args, st.base,
                              backdoor_user_big_endian);
    backdoor_callbacks_set_fatal_cleanup(backdoor_user_remove_made);
    cb = backdoor_callbacks_load(lib, &info, &err);
    if (!cb) {
        backdoor_user_die("%s", err->message);
    }
    backdoor_user_serve(cb, &st.regs, st.base, args);
    error = backdoor_reload_start(st.base);
    if (error) {
        backdoor_user_die("%s", error);
    }
    backdoor_exits_init(backdoor_user_cleanup);
    pthread_atfork(backdoor_user_prefork, NULL, NULL);

    backdoor_environ_hide();
    setenv("QEMU_BACKDOOR_PATH", st.base, 1);
    backdoor_user_request_exec_hook();
}
