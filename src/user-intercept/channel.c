/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-mode backdoor helper: set-up in the preload constructor, the
 * channel files, the register map and the calls.
 */
#define _GNU_SOURCE
#include "backdoor-user.h"
#include "loader.h"
#include "regs.h"
#include "user-env.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#define PROG "qemu-backdoor"

/* A default base lives in TMPDIR/qemu-backdoor.XXXXXX, with these files */
#define TMPDIR_PREFIX "qemu-backdoor."
#define TMPDIR_BASE "backdoor"
#define TMPDIR_OWNER "owner"

bool backdoor_user_active;
bool backdoor_user_big_endian;

static struct {
    BackdoorCallbacks *cb;
    BackdoorRegs regs;          /* the data channel, what registers read */
    char *base;
    char *ctrl_path;
    char *data_path;
    const char *made[3];        /* the files made so far */
    int n_made;
    char *tmpdir;           /* made for a default base; removed at exit */
    char *owner_path;       /* TMPDIR_OWNER in tmpdir: the owner's pid */
    char *args;             /* QEMU_BACKDOOR_ARGS, kept for the library */
    char *reload_path;      /* BASE.reload, the hot reload socket */
    int reload_fd;
    pid_t owner;            /* the process that ran the library's init */
    dev_t ctrl_dev;
    ino_t ctrl_ino;
    uint64_t call_offset;
    uint64_t guest_errors;
    int cleaned;
    /* QEMU's own symbols, looked up so that no QEMU header is needed */
    void *(*qemu_get_cpu)(int index);
    intptr_t thread_cpu_offset;
    bool have_thread_cpu;
    uintptr_t *guest_base;
    unsigned long *reserved_va;
    int (*page_check_range)(uint64_t start, uint64_t len, int flags);
} bd;

/* QEMU's page flags (include/exec/cpu-all.h), stable since 2.x */
#define QEMU_PAGE_READ 0x0001
#define QEMU_PAGE_WRITE 0x0002

/* RESULT is per guest thread: each thread reads the result of its call. */
static __thread uint64_t thread_result;
static __thread int thread_vcpu = -2;
static int next_thread_index;

/*
 * QEMU's cpu_index of the calling thread's CPU: thread_cpu is a TLS
 * variable of the executable (static TLS: same offset from the thread
 * pointer in every thread), and qemu_get_cpu() maps an index back to a
 * CPUState, so no QEMU struct layout is needed.
 */
static int backdoor_user_vcpu_index(void)
{
    if (thread_vcpu != -2) {
        return thread_vcpu;
    }
    if (bd.have_thread_cpu && bd.qemu_get_cpu) {
        void *cpu = *(void **)((char *)__builtin_thread_pointer() +
                               bd.thread_cpu_offset);
        for (int i = 0; cpu && i < 65536; i++) {
            if (bd.qemu_get_cpu(i) == cpu) {
                thread_vcpu = i;
                return i;
            }
        }
    }
    /* Without QEMU's symbols: an index per thread, in order of first call */
    thread_vcpu = __atomic_fetch_add(&next_thread_index, 1, __ATOMIC_RELAXED);
    return thread_vcpu;
}

static uint64_t guest_error(void);

/*
 * Hot reload (BASE.reload): a swap waits until no guest thread is in a
 * call and keeps new calls out until it is done. Each calling thread has
 * its own in-call flag, so a call writes only its own cache line; the
 * swap sets "swapping" and then waits for every flag to clear.
 */
typedef struct CallSlot {
    int in_call;
    struct CallSlot *next, *prev;
} CallSlot;

static __thread CallSlot *thread_slot;
static CallSlot slots = { .next = &slots, .prev = &slots };
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t slot_key;
static int swapping;
static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t swap_done = PTHREAD_COND_INITIALIZER;

static void slot_free(void *opaque)
{
    CallSlot *slot = opaque;

    pthread_mutex_lock(&slots_lock);
    slot->prev->next = slot->next;
    slot->next->prev = slot->prev;
    pthread_mutex_unlock(&slots_lock);
    g_free(slot);
}

static CallSlot *call_begin(void)
{
    CallSlot *slot = thread_slot;

    if (!slot) {
        slot = thread_slot = g_new0(CallSlot, 1);
        pthread_mutex_lock(&slots_lock);
        slot->next = slots.next;
        slot->prev = &slots;
        slots.next->prev = slot;
        slots.next = slot;
        pthread_mutex_unlock(&slots_lock);
        pthread_setspecific(slot_key, slot);
    }
    for (;;) {
        __atomic_store_n(&slot->in_call, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&swapping, __ATOMIC_SEQ_CST)) {
            return slot;
        }
        __atomic_store_n(&slot->in_call, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&swap_lock);
        while (__atomic_load_n(&swapping, __ATOMIC_SEQ_CST)) {
            pthread_cond_wait(&swap_done, &swap_lock);
        }
        pthread_mutex_unlock(&swap_lock);
    }
}

static void call_end(CallSlot *slot)
{
    __atomic_store_n(&slot->in_call, 0, __ATOMIC_RELEASE);
}

/*
 * Guest memory for callbacks (ABI 2): the calling process's guest virtual
 * addresses, checked against QEMU's own record of the guest's mappings
 * (page_check_range()), then reached at guest_base + address as QEMU's
 * g2h() does. A 32-bit guest (QEMU reserves its address space:
 * reserved_va) is bounded by that reservation, since page_check_range()
 * takes a 32-bit address there.
 */
static int user_guest_rw(uint64_t addr, void *buf, uint64_t len,
                         bool is_write)
{
    char *host;

    if (!bd.guest_base || !bd.page_check_range) {
        return -ENOSYS;
    }
    if (len == 0) {
        return 0;
    }
    if (addr + len < addr ||
        (bd.reserved_va && *bd.reserved_va &&
         addr + len > *bd.reserved_va)) {
        return -EFAULT;
    }
    if (bd.page_check_range(addr, len, is_write ? QEMU_PAGE_WRITE :
                                                  QEMU_PAGE_READ) != 0) {
        return -EFAULT;
    }
    host = (char *)(*bd.guest_base + (uintptr_t)addr);
    if (is_write) {
        memcpy(host, buf, len);
    } else {
        memcpy(buf, host, len);
    }
    return 0;
}

static int user_guest_read(const qemu_backdoor_call *call, uint64_t addr,
                           void *buf, uint64_t len)
{
    (void)call;
    return user_guest_rw(addr, buf, len, false);
}

static int user_guest_write(const qemu_backdoor_call *call, uint64_t addr,
                            const void *buf, uint64_t len)
{
    (void)call;
    return user_guest_rw(addr, (void *)buf, len, true);
}

uint64_t backdoor_user_call(uint64_t cmd)
{
    qemu_backdoor_call call = backdoor_regs_call(&bd.regs, cmd,
                                                 backdoor_user_big_endian,
                                                 backdoor_user_vcpu_index());
    CallSlot *slot = call_begin();

    /* After the owner's exit ran (an exec that then failed): no library */
    thread_result = __atomic_load_n(&bd.cleaned, __ATOMIC_ACQUIRE) ?
                    guest_error() : backdoor_callbacks_call(bd.cb, &call);
    call_end(slot);
    return thread_result;
}

static uint64_t guest_error(void)
{
    __atomic_add_fetch(&bd.guest_errors, 1, __ATOMIC_RELAXED);
    return UINT64_MAX;
}

uint64_t backdoor_user_reg_read(uint64_t offset, unsigned size)
{
    /* The out-of-line path reads up to 64 bytes: all ones beyond 8 */
    uint64_t v, mask = size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
    BackdoorReg reg;

    if (backdoor_regs_check(&bd.regs, offset, size, false, &reg, NULL) !=
        BACKDOOR_ACCESS_OK) {
        return guest_error() & mask;
    }
    switch (reg) {
    case BACKDOOR_R_RESULT:
        v = thread_result;
        break;
    case BACKDOOR_R_RESULT_HI:
        v = thread_result >> 32;
        break;
    case BACKDOOR_R_CALL_OFFSET:
        v = __atomic_load_n(&bd.call_offset, __ATOMIC_RELAXED);
        break;
    case BACKDOOR_R_CALL:
        v = backdoor_user_call(backdoor_regs_call_word(&bd.regs,
                __atomic_load_n(&bd.call_offset, __ATOMIC_RELAXED),
                backdoor_user_big_endian));
        break;
    default:
        /* ID, FEATURES, DATA_SIZE */
        if (!backdoor_regs_fixed(&bd.regs, reg, &v)) {
            v = guest_error();
        }
    }
    return v & mask;
}

void backdoor_user_reg_write(uint64_t offset, unsigned size, uint64_t value)
{
    BackdoorReg reg;

    if (backdoor_regs_check(&bd.regs, offset, size, true, &reg, NULL) !=
        BACKDOOR_ACCESS_OK) {
        guest_error();
        return;
    }
    if (size == 4) {
        value = (uint32_t)value;
    }
    switch (reg) {
    case BACKDOOR_R_CMD:
        backdoor_user_call(value);
        break;
    case BACKDOOR_R_CALL_OFFSET:
        if (!backdoor_regs_call_offset_ok(&bd.regs, value)) {
            guest_error();
            break;
        }
        __atomic_store_n(&bd.call_offset, value, __ATOMIC_RELAXED);
        break;
    default:
        guest_error();
    }
}

bool backdoor_user_is_ctrl_file(dev_t dev, ino_t ino)
{
    return bd.ctrl_path && dev == bd.ctrl_dev && ino == bd.ctrl_ino;
}

bool backdoor_user_is_ctrl_fd(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           backdoor_user_is_ctrl_file(st.st_dev, st.st_ino);
}

/*
 * Only the owner, the process that ran the library's init, runs its exit
 * and removes the files. A forked child (a guest fork is a fork of QEMU)
 * shares the channel and has a copy of the library, but leaves both to
 * its parent: a subshell must not close the channel of the shell.
 */
bool backdoor_user_is_owner(void)
{
    return backdoor_user_active && getpid() == bd.owner;
}

void backdoor_user_cleanup(void)
{
    if (!backdoor_user_active ||
        __atomic_exchange_n(&bd.cleaned, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    if (getpid() != bd.owner) {
        /* What the child's calls printed; the parent's went before fork */
        fflush(NULL);
        return;
    }
    unlink(bd.ctrl_path);
    unlink(bd.data_path);
    if (bd.reload_path) {
        unlink(bd.reload_path);
    }
    if (bd.tmpdir) {
        unlink(bd.owner_path);
        rmdir(bd.tmpdir);
    }
    backdoor_callbacks_unload(bd.cb);
    /* QEMU leaves with exit_group(): flush what the callbacks printed */
    fflush(NULL);
}

/* Flush before a fork so that the child does not print it again. */
static void backdoor_user_prefork(void)
{
    if (backdoor_user_active) {
        fflush(NULL);
    }
}

/* Async-signal-safe: also run when a library's init crashes */
static void remove_made_files(void)
{
    while (bd.n_made) {
        unlink(bd.made[--bd.n_made]);   /* never a file we did not make */
    }
    if (bd.tmpdir) {
        rmdir(bd.tmpdir);
    }
}

static void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

static void die(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    remove_made_files();
    _exit(1);
}

/* Is this process a user-mode QEMU? Wrappers (env, timeout) are not. */
static bool in_qemu_user(const char **exe_name)
{
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    const char *name;

    if (n <= 0) {
        return false;
    }
    exe[n] = '\0';
    name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    *exe_name = name;
    return !strncmp(name, "qemu-", 5) && strncmp(name, "qemu-system-", 12) &&
           dlsym(RTLD_DEFAULT, "guest_base") &&
           dlsym(RTLD_DEFAULT, "target_words_bigendian");
}

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

/* The checks are shared (user-env.h); the files made are recorded here */
static int open_channel_file(const char *path)
{
    int fd = backdoor_user_open_channel_file(path);

    if (fd == -1) {
        die("cannot create %s: %s", path, strerror(errno));
    }
    if (fd < 0) {
        die("%s exists and is not a private file of this user: remove it "
            "or choose another QEMU_BACKDOOR_PATH", path);
    }
    bd.made[bd.n_made++] = path;
    if (ftruncate(fd, 0)) {
        die("cannot truncate %s: %s", path, strerror(errno));
    }
    return fd;
}

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
        die("cannot create a directory %s: %s", templ, strerror(errno));
    }
    bd.tmpdir = templ;
    bd.owner_path = g_strdup_printf("%s/" TMPDIR_OWNER, templ);
    dfd = open(templ, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || flock(dfd, LOCK_SH)) {
        die("cannot lock %s: %s", templ, strerror(errno));
    }
    /*
     * It stays open to hold the lock, moved out of the low numbers a guest
     * expects its own open() to return.
     */
    fd = fcntl(dfd, F_DUPFD_CLOEXEC, 100);
    if (fd >= 0) {
        close(dfd);
    }
    fd = open(bd.owner_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
              O_CLOEXEC, 0600);
    if (fd < 0) {
        die("cannot create %s: %s", bd.owner_path, strerror(errno));
    }
    bd.made[bd.n_made++] = bd.owner_path;
    len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (write(fd, pid, len) != len) {
        die("cannot write %s: %s", bd.owner_path, strerror(errno));
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
    struct stat st;
    int fd;

    if (base && *base) {
        bd.base = g_strdup(base);
    } else {
        make_private_dir();
        bd.base = g_strdup_printf("%s/" TMPDIR_BASE, bd.tmpdir);
    }
    bd.ctrl_path = g_strdup_printf("%s.ctrl", bd.base);
    bd.data_path = g_strdup_printf("%s.data", bd.base);

    /* ID only: the guest's loads from the page are emulated */
    fd = open_channel_file(bd.ctrl_path);
    backdoor_regs_store_fixed(&bd.regs, BACKDOOR_R_ID,
                              backdoor_user_big_endian, regs);
    if (pwrite(fd, regs, 4, BACKDOOR_REG_ID) != 4 ||
        ftruncate(fd, BACKDOOR_USER_REGS_SIZE) || fstat(fd, &st)) {
        die("cannot write %s: %s", bd.ctrl_path, strerror(errno));
    }
    bd.ctrl_dev = st.st_dev;
    bd.ctrl_ino = st.st_ino;
    close(fd);

    fd = open_channel_file(bd.data_path);
    if (ftruncate(fd, bd.regs.data_size)) {
        die("cannot create %s: %s", bd.data_path, strerror(errno));
    }
    bd.regs.data = mmap(NULL, bd.regs.data_size, PROT_READ | PROT_WRITE,
                        MAP_SHARED, fd, 0);
    if (bd.regs.data == MAP_FAILED) {
        die("cannot map %s: %s", bd.data_path, strerror(errno));
    }
    close(fd);
}

/*
 * Swap the library for @name with @args, as the device does on qom-set
 * (docs/callbacks.rst, "Hot reload"). Returns NULL or the error.
 */
static char *backdoor_user_reload(const char *name, const char *args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) restart_err = NULL;
    BackdoorCallbacks *new = backdoor_callbacks_open(name, &err);
    qemu_backdoor_info info;
    char *error = NULL;
    CallSlot *slot;

    if (!new) {
        return g_strdup(err->message);
    }
    __atomic_store_n(&swapping, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&slots_lock);
    for (slot = slots.next; slot != &slots; slot = slot->next) {
        while (__atomic_load_n(&slot->in_call, __ATOMIC_SEQ_CST)) {
            sched_yield();
        }
    }
    pthread_mutex_unlock(&slots_lock);

    if (!__atomic_load_n(&bd.cleaned, __ATOMIC_ACQUIRE)) {
        info = backdoor_regs_info(&bd.regs, args, bd.base,
                                  backdoor_user_big_endian);
        backdoor_callbacks_stop(bd.cb);
        if (backdoor_callbacks_start(new, &info, &err)) {
            backdoor_callbacks_close(bd.cb);
            bd.cb = new;
            g_free(bd.args);
            bd.args = g_strdup(args);
            new = NULL;
        } else {
            error = g_strdup_printf("%s; kept callbacks '%s'", err->message,
                                    backdoor_callbacks_name(bd.cb));
            info.args = bd.args;
            if (!backdoor_callbacks_start(bd.cb, &info, &restart_err)) {
                /* Calls get guest errors from now on, as after an exec */
                fprintf(stderr, PROG ": %s: no callbacks now\n",
                        restart_err->message);
                __atomic_store_n(&bd.cleaned, 1, __ATOMIC_RELEASE);
            }
        }
    } else {
        error = g_strdup("the channel is closed");
    }

    pthread_mutex_lock(&swap_lock);
    __atomic_store_n(&swapping, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&swap_done);
    pthread_mutex_unlock(&swap_lock);
    backdoor_callbacks_close(new);
    return error;
}

/*
 * The hot reload socket: one request per connection, "PATH\n" or
 * "PATH\tARGS\n"; the answer is "ok\n" or "error: MESSAGE\n". A thread
 * of ours that takes no signal, so the guest's signals are untouched.
 */
static void *reload_thread(void *opaque)
{
    (void)opaque;
    for (;;) {
        g_autofree char *error = NULL;
        g_autofree char *reply = NULL;
        char req[PATH_MAX + 4096];
        size_t len = 0;
        char *args, *nl;
        ssize_t n;
        int fd = accept4(bd.reload_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            return NULL;
        }
        while (len < sizeof(req) - 1 &&
               (n = read(fd, req + len, sizeof(req) - 1 - len)) > 0) {
            len += n;
            if (memchr(req, '\n', len)) {
                break;
            }
        }
        req[len] = 0;
        nl = strchr(req, '\n');
        if (nl) {
            *nl = 0;
        }
        args = strchr(req, '\t');
        if (args) {
            *args++ = 0;
        }
        if (!nl || !*req) {
            error = g_strdup("send one line: the library path, optionally "
                             "a tab and its arguments");
        } else {
            error = backdoor_user_reload(req, args ? args : "");
        }
        if (error) {
            fprintf(stderr, PROG ": hot reload: %s\n", error);
        }
        reply = error ? g_strdup_printf("error: %s\n", error) :
                        g_strdup("ok\n");
        if (write(fd, reply, strlen(reply)) < 0) {
            /* the client went away: it has the message on stderr */
        }
        close(fd);
    }
}

static void start_reload_socket(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    sigset_t all, old;
    pthread_t tid;
    int fd;

    pthread_key_create(&slot_key, slot_free);
    bd.reload_path = g_strdup_printf("%s.reload", bd.base);
    if (strlen(bd.reload_path) >= sizeof(addr.sun_path)) {
        /* A long base: no hot reload, said once */
        fprintf(stderr, PROG ": %s is too long for a socket path: no hot "
                "reload\n", bd.reload_path);
        g_clear_pointer(&bd.reload_path, g_free);
        return;
    }
    strcpy(addr.sun_path, bd.reload_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(bd.reload_path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        chmod(bd.reload_path, 0600) < 0 || listen(fd, 4) < 0) {
        die("cannot make the hot reload socket %s: %s", bd.reload_path,
            strerror(errno));
    }
    /* Far from the guest's own descriptors (it may dup2 onto low ones) */
    bd.reload_fd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (bd.reload_fd < 0) {
        bd.reload_fd = fd;
    } else {
        close(fd);
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&tid, NULL, reload_thread, NULL) == 0) {
        pthread_detach(tid);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void backdoor_user_atexit(void)
{
    backdoor_user_cleanup();
}

static void resolve_qemu_symbols(void)
{
    bool (*bigendian)(void) = dlsym(RTLD_DEFAULT, "target_words_bigendian");
    void *tc = dlsym(RTLD_DEFAULT, "thread_cpu");

    backdoor_user_big_endian = bigendian();
    bd.qemu_get_cpu = dlsym(RTLD_DEFAULT, "qemu_get_cpu");
    bd.guest_base = dlsym(RTLD_DEFAULT, "guest_base");
    bd.reserved_va = dlsym(RTLD_DEFAULT, "reserved_va");
    bd.page_check_range = dlsym(RTLD_DEFAULT, "page_check_range");
    if (tc) {
        bd.thread_cpu_offset = (char *)tc -
                               (char *)__builtin_thread_pointer();
        bd.have_thread_cpu = true;
    }
}

__attribute__((constructor))
static void backdoor_user_init(void)
{
    const char *exe, *lib;
    qemu_backdoor_info info;
    g_autoptr(GError) err = NULL;

    if (!in_qemu_user(&exe)) {
        return;
    }
    resolve_qemu_symbols();
    backdoor_user_fault_init();

    if (getenv("QEMU_BACKDOOR_CHECK")) {
        /* The launcher's sanity check: we are loaded and can work here */
        printf(PROG ": user-mode helper ok in %s (%s-endian guest)\n", exe,
               backdoor_user_big_endian ? "big" : "little");
        fflush(stdout);
        _exit(0);
    }

    lib = getenv("QEMU_BACKDOOR_LIB");
    if (!lib || !*lib) {
        die("QEMU_BACKDOOR_LIB is not set: give the path of a callback "
            "library (see docs/user-mode.md)");
    }
    bd.regs = (BackdoorRegs) {
        .mode = QEMU_BACKDOOR_MODE_USER,
        .data_size = backdoor_user_data_size(),
        .guest_read = user_guest_read,
        .guest_write = user_guest_write,
    };
    if (!bd.regs.data_size) {
        die("QEMU_BACKDOOR_DATA_SIZE '%s' is not a power of two from "
            "4K to 1G", getenv("QEMU_BACKDOOR_DATA_SIZE"));
    }
    bd.call_offset = backdoor_regs_call_offset_reset(&bd.regs);
    bd.owner = getpid();
    reap_stale_dirs();
    make_files(getenv("QEMU_BACKDOOR_PATH"));

    /* A copy: the library may keep it, and the environment is rewritten */
    bd.args = g_strdup(getenv("QEMU_BACKDOOR_ARGS"));
    info = backdoor_regs_info(&bd.regs, bd.args, bd.base,
                              backdoor_user_big_endian);
    backdoor_callbacks_set_fatal_cleanup(remove_made_files);
    bd.cb = backdoor_callbacks_load(lib, &info, &err);
    if (!bd.cb) {
        die("%s", err->message);
    }
    backdoor_user_active = true;
    start_reload_socket();
    atexit(backdoor_user_atexit);
    pthread_atfork(backdoor_user_prefork, NULL, NULL);

    hide_preload();
    unsetenv("QEMU_BACKDOOR_LIB");
    unsetenv("QEMU_BACKDOOR_ARGS");
    unsetenv("QEMU_BACKDOOR_DATA_SIZE");
    unsetenv("QEMU_BACKDOOR_CALLBACKS_DIR");
    hide_environ_block();
    setenv("QEMU_BACKDOOR_PATH", bd.base, 1);
    backdoor_user_request_exec_hook();
}
