/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loader of host callback libraries (see qemu-backdoor-callbacks.h),
 * modelled on QEMU's plugins/loader.c. A file is checked before dlopen(),
 * so that a wrong file gets a message saying what it is rather than the
 * dynamic linker's; the load and the library's init run under a guard
 * that names the library if they crash, exit or hang.
 */
#include "loader.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <gmodule.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BACKDOOR_CALLBACKS_DIR
#error "BACKDOOR_CALLBACKS_DIR must be defined by the build"
#endif

#define PROG "qemu-backdoor"
#define GUARD_WAIT_SECONDS 5
#define GUARD_STACK_SIZE (64 * 1024)

typedef void (*SeedInitFn)(uint64_t data_size);
typedef void (*SeedCallFn)(uint64_t cmd, void *data);
typedef int (*InitFn)(const qemu_backdoor_info *info,
                      qemu_backdoor_callbacks *cb);

struct BackdoorCallbacks {
    GModule *module;
    char *name;                 /* as the user gave it */
    char *path;                 /* as found */
    gpointer init;              /* InitFn or SeedInitFn */
    bool started;               /* init ran and succeeded, exit not yet */
    qemu_backdoor_callbacks cb;
    SeedCallFn seed_call;       /* non-NULL for a seed-API library */
    int *seed_big_endian;       /* its ldq_p() byte order, if it has one */
    int version;                /* the library's ABI version */
};

G_DEFINE_QUARK(backdoor-callbacks-error, backdoor_callbacks_error)

static void (*fatal_cleanup)(void);

void backdoor_callbacks_set_fatal_cleanup(void (*fn)(void))
{
    fatal_cleanup = fn;
}

const char *backdoor_callbacks_dir(void)
{
    const char *dir = getenv("QEMU_BACKDOOR_CALLBACKS_DIR");

    return dir && *dir ? dir : BACKDOOR_CALLBACKS_DIR;
}

static void load_error(GError **errp, const char *path, const char *fmt,
                       ...) G_GNUC_PRINTF(3, 4);

static void load_error(GError **errp, const char *path, const char *fmt, ...)
{
    g_autofree char *reason = NULL;
    va_list ap;

    va_start(ap, fmt);
    reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                "cannot load callbacks '%s': %s", path, reason);
}

/*
 * A name with a '/' is a path. A bare name is looked up in the current
 * directory first (where "libmy.so" is expected to be), then in the
 * packaged callbacks directory; dlopen()'s own search (LD_LIBRARY_PATH,
 * the system's library directories) is never used.
 */
static char *find_library(const char *name, GError **errp)
{
    g_autofree char *packaged = NULL;
    g_autofree char *cwd = NULL;

    if (strchr(name, '/')) {
        return g_strdup(name);
    }
    if (access(name, F_OK) == 0) {
        return g_strconcat("./", name, NULL);
    }
    packaged = g_build_filename(backdoor_callbacks_dir(), name, NULL);
    if (access(packaged, F_OK) == 0) {
        return g_steal_pointer(&packaged);
    }
    cwd = g_get_current_dir();
    load_error(errp, name, "not in the current directory (%s) nor in %s, "
               "where a name without '/' is looked up: give its path",
               cwd, backdoor_callbacks_dir());
    return NULL;
}

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__powerpc64__)
#define HOST_MACHINE EM_PPC64
#elif defined(__powerpc__)
#define HOST_MACHINE EM_PPC
#elif defined(__s390x__)
#define HOST_MACHINE EM_S390
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#elif defined(__mips__)
#define HOST_MACHINE EM_MIPS
#endif
#define HOST_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
#define HOST_DATA (G_BYTE_ORDER == G_BIG_ENDIAN ? ELFDATA2MSB : ELFDATA2LSB)

static char *describe_elf(unsigned machine, unsigned class, unsigned data)
{
    static const struct {
        unsigned machine;
        const char *name;
    } names[] = {
        { EM_X86_64, "x86_64" }, { EM_386, "i386" },
        { EM_AARCH64, "aarch64" }, { EM_ARM, "arm" },
        { EM_PPC64, "ppc64" }, { EM_PPC, "ppc" }, { EM_S390, "s390x" },
        { EM_RISCV, "riscv" }, { EM_MIPS, "mips" },
        { EM_SPARCV9, "sparc64" },
    };
    g_autofree char *unknown = NULL;
    const char *name = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (names[i].machine == machine) {
            name = names[i].name;
        }
    }
    if (!name) {
        name = unknown = g_strdup_printf("ELF machine %u", machine);
    }
    return g_strdup_printf("%s (%s, %s-endian)", name,
                           class == ELFCLASS64 ? "64-bit" : "32-bit",
                           data == ELFDATA2MSB ? "big" : "little");
}

/* What dlopen() would not say clearly: what kind of file this is. */
static gboolean check_file(const char *path, GError **errp)
{
    unsigned char h[EI_NIDENT + 4];     /* e_ident, e_type, e_machine */
    unsigned type, machine;
    struct stat st;
    ssize_t n;
    int fd;

    if (stat(path, &st) < 0) {
        load_error(errp, path, "%s", g_strerror(errno));
        return FALSE;
    }
    if (S_ISDIR(st.st_mode)) {
        load_error(errp, path, "it is a directory: give the path of the "
                   "library file (.so) in it");
        return FALSE;
    }
    if (!S_ISREG(st.st_mode)) {
        load_error(errp, path, "it is not a regular file: give the path "
                   "of a shared library (.so)");
        return FALSE;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EACCES) {
            load_error(errp, path, "cannot read it (%s): make it readable "
                       "for the user QEMU runs as (uid %u)",
                       g_strerror(errno), (unsigned)geteuid());
        } else {
            load_error(errp, path, "cannot open it: %s", g_strerror(errno));
        }
        return FALSE;
    }
    do {
        n = read(fd, h, sizeof(h));
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) {
        load_error(errp, path, "cannot read it: %s", g_strerror(errno));
        return FALSE;
    }
    if (n < (ssize_t)sizeof(h) || memcmp(h, ELFMAG, SELFMAG) != 0) {
        if (n >= 8 && memcmp(h, "!<arch>\n", 8) == 0) {
            load_error(errp, path, "it is a static archive (.a), not a "
                       "shared library: link it with 'cc -shared'");
        } else {
            load_error(errp, path, "it is not an ELF file (a text file, a "
                       "script?): give the shared library built with "
                       "'cc -shared -fPIC' (see docs/callbacks.rst)");
        }
        return FALSE;
    }
    if (h[EI_DATA] == ELFDATA2MSB) {
        type = h[16] << 8 | h[17];
        machine = h[18] << 8 | h[19];
    } else {
        type = h[17] << 8 | h[16];
        machine = h[19] << 8 | h[18];
    }
#ifdef HOST_MACHINE
    if (machine != HOST_MACHINE || h[EI_CLASS] != HOST_CLASS ||
        h[EI_DATA] != HOST_DATA) {
        g_autofree char *lib = describe_elf(machine, h[EI_CLASS],
                                            h[EI_DATA]);
        g_autofree char *host = describe_elf(HOST_MACHINE, HOST_CLASS,
                                             HOST_DATA);

        load_error(errp, path, "it is built for %s, but QEMU runs on %s: "
                   "build it with the host's compiler (callbacks run on "
                   "the host, whatever the guest)", lib, host);
        return FALSE;
    }
#endif
    switch (type) {
    case ET_DYN:
        return TRUE;
    case ET_REL:
        load_error(errp, path, "it is an object file, not a shared "
                   "library: link it with 'cc -shared'");
        return FALSE;
    case ET_EXEC:
        load_error(errp, path, "it is a program, not a shared library: "
                   "build it with 'cc -shared -fPIC'");
        return FALSE;
    default:
        load_error(errp, path, "it is an ELF file of type %u, not a shared "
                   "library", type);
        return FALSE;
    }
}

/*
 * The guard around a library's load and init. The signal handler only
 * writes lines prepared beforehand; it hands the signal back to the
 * handler that was there before, so the process ends as it would have.
 */
static const int guard_signals[] = {
    SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,   /* a crash */
    SIGINT, SIGTERM, SIGHUP,                    /* a stop, e.g. of a hang */
};
static const char *const guard_signal_names[] = {
    "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT",
    "SIGINT", "SIGTERM", "SIGHUP",
};
#define GUARD_FIRST_STOP 5
#define GUARD_N G_N_ELEMENTS(guard_signals)

static struct {
    volatile sig_atomic_t active;
    char *path;
    char *line[GUARD_N];
    char *wait_line;
    struct sigaction old[GUARD_N];
    sigset_t old_mask;
    void *stack;
    GThread *watchdog;
    GMutex lock;
    GCond cond;
    bool done;
} guard;

static void guard_write(const char *line)
{
    size_t len = strlen(line);
    ssize_t n;

    while (len) {
        n = write(STDERR_FILENO, line, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        line += n;
        len -= n;
    }
}

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    size_t i = 0;

    (void)uc;
    while (i < GUARD_N - 1 && guard_signals[i] != sig) {
        i++;
    }
    guard_write(guard.line[i]);
    if (fatal_cleanup) {
        fatal_cleanup();
    }
    if (i >= GUARD_FIRST_STOP) {
        /* QEMU's own handler cannot stop it before its main loop runs */
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        sigaction(sig, &dfl, NULL);
    } else {
        sigaction(sig, &guard.old[i], NULL);
    }
    if (si->si_code <= 0) {
        /* Sent, not a fault: send it again; it arrives after we return */
        raise(sig);
    }
    /* A fault happens again when we return, and meets the old handler */
    errno = saved_errno;
}

static void guard_on_exit(int status, void *opaque)
{
    (void)opaque;
    if (!guard.active) {
        return;
    }
    guard.active = 0;
    fflush(stdout);
    fprintf(stderr, PROG ": callbacks '%s' called exit(%d) while loading or "
            "in their init: an init that fails must return non-zero and "
            "set cb->error instead\n", guard.path, status);
    fflush(stderr);
    if (fatal_cleanup) {
        fatal_cleanup();
    }
    if (status == 0) {
        /* QEMU did not start: it must not report success */
        fflush(NULL);
        _exit(1);
    }
}

static gpointer guard_watchdog(gpointer opaque)
{
    gint64 deadline = g_get_monotonic_time() +
                      GUARD_WAIT_SECONDS * G_TIME_SPAN_SECOND;

    (void)opaque;
    g_mutex_lock(&guard.lock);
    while (!guard.done &&
           g_cond_wait_until(&guard.cond, &guard.lock, deadline)) {
        /* woken early, spuriously or because init is done */
    }
    if (!guard.done) {
        guard_write(guard.wait_line);
    }
    g_mutex_unlock(&guard.lock);
    return NULL;
}

static void guard_begin(const char *path)
{
    static bool on_exit_registered;
    struct sigaction act = {
        .sa_sigaction = guard_handler,
        .sa_flags = SA_SIGINFO | SA_ONSTACK,
    };
    sigset_t unblock, all, mask;
    stack_t ss;

    guard.path = g_strdup(path);
    for (size_t i = 0; i < GUARD_N; i++) {
        if (i < GUARD_FIRST_STOP) {
            guard.line[i] = g_strdup_printf(
                PROG ": callbacks '%s' crashed (%s) while loading or in "
                "their init: fix them (run QEMU under gdb to see where)\n",
                path, guard_signal_names[i]);
        } else {
            guard.line[i] = g_strdup_printf(
                PROG ": stopped (%s) while callbacks '%s' were loading or "
                "in their init\n", guard_signal_names[i], path);
        }
    }
    guard.wait_line = g_strdup_printf(
        PROG ": still waiting for callbacks '%s' to initialize after %d s: "
        "their init has not returned (Ctrl-C stops QEMU)\n",
        path, GUARD_WAIT_SECONDS);

    /* A stack overflow in init gets its line too */
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_DISABLE)) {
        guard.stack = g_malloc(GUARD_STACK_SIZE);
        ss = (stack_t) { .ss_sp = guard.stack, .ss_size = GUARD_STACK_SIZE };
        if (sigaltstack(&ss, NULL) < 0) {
            g_clear_pointer(&guard.stack, g_free);
        }
    }

    if (!on_exit_registered) {
        on_exit(guard_on_exit, NULL);
        on_exit_registered = true;
    }
    guard.active = 1;

    /* The watchdog takes no signal: they go to the thread running init */
    guard.done = false;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &mask);
    guard.watchdog = g_thread_try_new("backdoor-init-watchdog",
                                      guard_watchdog, NULL, NULL);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);

    /* QEMU blocks SIGBUS in its main thread (it reads it from a signalfd) */
    sigemptyset(&act.sa_mask);
    sigemptyset(&unblock);
    for (size_t i = 0; i < GUARD_N; i++) {
        sigaction(guard_signals[i], &act, &guard.old[i]);
        sigaddset(&unblock, guard_signals[i]);
    }
    pthread_sigmask(SIG_UNBLOCK, &unblock, &guard.old_mask);
}

static void guard_end(void)
{
    struct sigaction cur;
    stack_t ss = { .ss_flags = SS_DISABLE };

    /* Put back what was there, unless init installed its own handler */
    for (size_t i = 0; i < GUARD_N; i++) {
        if (sigaction(guard_signals[i], NULL, &cur) == 0 &&
            (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == guard_handler) {
            sigaction(guard_signals[i], &guard.old[i], NULL);
        }
    }
    pthread_sigmask(SIG_SETMASK, &guard.old_mask, NULL);
    guard.active = 0;

    if (guard.watchdog) {
        g_mutex_lock(&guard.lock);
        guard.done = true;
        g_cond_signal(&guard.cond);
        g_mutex_unlock(&guard.lock);
        g_thread_join(guard.watchdog);
        guard.watchdog = NULL;
    }
    if (guard.stack) {
        sigaltstack(&ss, NULL);
        g_clear_pointer(&guard.stack, g_free);
    }
    for (size_t i = 0; i < GUARD_N; i++) {
        g_clear_pointer(&guard.line[i], g_free);
    }
    g_clear_pointer(&guard.wait_line, g_free);
    g_clear_pointer(&guard.path, g_free);
}

static gboolean lookup(GModule *module, const char *name, gpointer *sym)
{
    return g_module_symbol(module, name, sym) && *sym;
}

/* A seed-API library: qemu_backdoor_init() and qemu_backdoor() only. */
static gboolean open_seed(BackdoorCallbacks *bc, const char *path,
                          GError **errp)
{
    gpointer init, call, big_endian;

    if (!lookup(bc->module, "qemu_backdoor", &call) ||
        !lookup(bc->module, "qemu_backdoor_init", &init)) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' export neither "
                    "qemu_backdoor_callbacks_init nor the seed API "
                    "(qemu_backdoor_init and qemu_backdoor)", path);
        return FALSE;
    }
    if (lookup(bc->module, "qemu_backdoor_compat_guest_big_endian",
               &big_endian)) {
        bc->seed_big_endian = big_endian;
    }
    bc->seed_call = (SeedCallFn)call;
    bc->init = init;
    return TRUE;
}

static void start_seed(BackdoorCallbacks *bc, const qemu_backdoor_info *info)
{
    if (bc->seed_big_endian) {
        *bc->seed_big_endian = info->guest_big_endian;
    }
    ((SeedInitFn)bc->init)(info->data_size);
}

static gboolean open_current(BackdoorCallbacks *bc, const char *path,
                             gpointer init, GError **errp)
{
    gpointer sym;
    int version;

    if (!lookup(bc->module, "qemu_backdoor_callbacks_version", &sym)) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' do not declare their ABI version "
                    "(qemu_backdoor_callbacks_version): define it as "
                    "docs/callbacks.rst shows", path);
        return FALSE;
    }
    version = *(int *)sym;
    bc->version = version;
    if (version < QEMU_BACKDOOR_CALLBACKS_MIN_VERSION ||
        version > QEMU_BACKDOOR_CALLBACKS_VERSION) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' need ABI version %d, but this backdoor "
                    "supports versions %d to %d: %s", path, version,
                    QEMU_BACKDOOR_CALLBACKS_MIN_VERSION,
                    QEMU_BACKDOOR_CALLBACKS_VERSION,
                    version > QEMU_BACKDOOR_CALLBACKS_VERSION ?
                    "update qemu-backdoor, or rebuild them with this "
                    "qemu-backdoor's qemu-backdoor-callbacks.h" :
                    "rebuild them with this qemu-backdoor's "
                    "qemu-backdoor-callbacks.h");
        return FALSE;
    }
    bc->init = init;
    return TRUE;
}

static gboolean start_current(BackdoorCallbacks *bc,
                              const qemu_backdoor_info *info, GError **errp)
{
    memset(&bc->cb, 0, sizeof(bc->cb));
    if (((InitFn)bc->init)(info, &bc->cb) != 0) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' failed to initialize: %s", bc->path,
                    bc->cb.error ? bc->cb.error : "no reason given");
        return FALSE;
    }
    if (!bc->cb.call) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' set no call function in their init",
                    bc->path);
        if (bc->cb.exit) {
            bc->cb.exit(bc->cb.opaque);
        }
        return FALSE;
    }
    return TRUE;
}

/* Open the checked file @path and find its entry points; under the guard. */
static gboolean open_module(BackdoorCallbacks *bc, const char *path,
                            GError **errp)
{
    gpointer init;
    gboolean ok;

    bc->module = g_module_open(path, G_MODULE_BIND_LOCAL);
    if (!bc->module) {
        const char *why = g_module_error();

        if (strstr(why, "cannot open shared object file")) {
            /* The file itself was found and checked: one it needs was not */
            load_error(errp, path, "%s; a library it needs is missing "
                       "(see 'ldd %s')", why, path);
        } else {
            load_error(errp, path, "%s", why);
        }
        return FALSE;
    }
    if (lookup(bc->module, "qemu_backdoor_callbacks_init", &init)) {
        ok = open_current(bc, path, init, errp);
    } else {
        ok = open_seed(bc, path, errp);
    }
    if (!ok) {
        g_module_close(bc->module);
        bc->module = NULL;
    }
    return ok;
}

BackdoorCallbacks *backdoor_callbacks_open(const char *name, GError **errp)
{
    g_autofree char *path = NULL;
    BackdoorCallbacks *bc;
    gboolean ok;

    if (!name || !*name) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "no callback library given");
        return NULL;
    }
    path = find_library(name, errp);
    if (!path || !check_file(path, errp)) {
        return NULL;
    }

    bc = g_new0(BackdoorCallbacks, 1);
    guard_begin(path);
    ok = open_module(bc, path, errp);
    guard_end();
    if (!ok) {
        g_free(bc);
        return NULL;
    }
    bc->name = g_strdup(name);
    bc->path = g_steal_pointer(&path);
    return bc;
}

gboolean backdoor_callbacks_start(BackdoorCallbacks *bc,
                                  qemu_backdoor_info *info, GError **errp)
{
    gboolean ok = TRUE;

    g_assert(!bc->started);
    info->version = QEMU_BACKDOOR_CALLBACKS_VERSION;
    if (!info->args) {
        info->args = "";
    }
    if (!info->id) {
        info->id = "";
    }
    info->path = bc->name;

    guard_begin(bc->path);
    if (bc->seed_call) {
        start_seed(bc, info);
    } else {
        ok = start_current(bc, info, errp);
    }
    guard_end();
    bc->started = ok;
    return ok;
}

void backdoor_callbacks_stop(BackdoorCallbacks *bc)
{
    if (bc && bc->started) {
        if (bc->cb.exit) {
            bc->cb.exit(bc->cb.opaque);
        }
        bc->started = false;
    }
}

void backdoor_callbacks_close(BackdoorCallbacks *bc)
{
    if (!bc) {
        return;
    }
    backdoor_callbacks_stop(bc);
    g_module_close(bc->module);
    g_free(bc->name);
    g_free(bc->path);
    g_free(bc);
}

BackdoorCallbacks *backdoor_callbacks_load(const char *name,
                                           qemu_backdoor_info *info,
                                           GError **errp)
{
    BackdoorCallbacks *bc = backdoor_callbacks_open(name, errp);

    if (bc && !backdoor_callbacks_start(bc, info, errp)) {
        backdoor_callbacks_close(bc);
        return NULL;
    }
    return bc;
}

uint64_t backdoor_callbacks_call(BackdoorCallbacks *bc,
                                 qemu_backdoor_call *call)
{
    if (bc->seed_call) {
        /* A ppc64 or arm guest can change its byte order after init */
        if (bc->seed_big_endian) {
            *bc->seed_big_endian = call->guest_big_endian;
        }
        bc->seed_call(call->cmd, call->data);
        return 0;
    }
    call->version = QEMU_BACKDOOR_CALLBACKS_VERSION;
    call->opaque = bc->cb.opaque;
    return bc->cb.call(call);
}

void backdoor_callbacks_batch(BackdoorCallbacks *bc,
                              qemu_backdoor_batch *batch)
{
    if (!bc->seed_call && bc->version >= 2 && bc->cb.batch) {
        batch->version = QEMU_BACKDOOR_CALLBACKS_VERSION;
        batch->opaque = bc->cb.opaque;
        bc->cb.batch(batch);
        return;
    }
    /* Older libraries: each event is a call of its command */
    for (size_t i = 0; i < batch->count; i++) {
        qemu_backdoor_call call = {
            .cmd = batch->events[i].cmd,
            .data = batch->data,
            .data_size = batch->data_size,
            .guest_big_endian = batch->guest_big_endian,
            .vcpu_index = batch->vcpu_index,
            .mode = batch->mode,
        };

        backdoor_callbacks_call(bc, &call);
    }
}

void backdoor_callbacks_unload(BackdoorCallbacks *bc)
{
    backdoor_callbacks_close(bc);
}

const char *backdoor_callbacks_name(const BackdoorCallbacks *bc)
{
    return bc->name;
}

/* Snapshots and migration (callback ABI 2) */

bool backdoor_callbacks_can_migrate(const BackdoorCallbacks *bc)
{
    return !bc->seed_call && bc->cb.save && bc->cb.load;
}

gboolean backdoor_callbacks_save(BackdoorCallbacks *bc, void **state,
                                 uint64_t *size, GError **errp)
{
    *state = NULL;
    *size = 0;
    if (bc->cb.save(bc->cb.opaque, state, size) != 0) {
        free(*state);
        *state = NULL;
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' failed to save their state", bc->name);
        return FALSE;
    }
    if (!*state) {
        *size = 0;
    }
    return TRUE;
}

gboolean backdoor_callbacks_load_state(BackdoorCallbacks *bc,
                                       const void *state, uint64_t size,
                                       GError **errp)
{
    if (bc->cb.load(bc->cb.opaque, state, size) != 0) {
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0,
                    "callbacks '%s' refused the saved state (%" PRIu64
                    " bytes): was it saved by another library?",
                    bc->name, size);
        return FALSE;
    }
    return TRUE;
}
