/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hot reload in user mode (user-reload.h).
 */
#define _GNU_SOURCE
#include "user-reload.h"
#include "user-env.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- the gate ---- */

struct BackdoorGate {
    int inside;
    struct BackdoorGate *next, *prev;
};

static __thread BackdoorGate *thread_gate;
static BackdoorGate gates = { .next = &gates, .prev = &gates };
static pthread_mutex_t gates_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static pthread_key_t gate_key;
static int swapping;
static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t swap_done = PTHREAD_COND_INITIALIZER;
/* Held by a swap from start to end; by the process's end for good */
static pthread_mutex_t swap_serial = PTHREAD_MUTEX_INITIALIZER;
static __thread bool thread_swaps;      /* this thread holds swap_serial */

static void gate_free(void *opaque)
{
    BackdoorGate *gate = opaque;

    thread_gate = NULL;
    pthread_mutex_lock(&gates_lock);
    gate->prev->next = gate->next;
    gate->next->prev = gate->prev;
    pthread_mutex_unlock(&gates_lock);
    g_free(gate);
}

static void gate_init(void)
{
    pthread_key_create(&gate_key, gate_free);
}

BackdoorGate *backdoor_gate_enter(void)
{
    BackdoorGate *gate = thread_gate;

    if (!gate) {
        pthread_once(&gate_once, gate_init);
        gate = thread_gate = g_new0(BackdoorGate, 1);
        pthread_mutex_lock(&gates_lock);
        gate->next = gates.next;
        gate->prev = &gates;
        gates.next->prev = gate;
        gates.next = gate;
        pthread_mutex_unlock(&gates_lock);
        pthread_setspecific(gate_key, gate);
    }
    if (gate->inside++) {
        return gate;            /* already inside (a drain within a call) */
    }
    for (;;) {
        __atomic_store_n(&gate->inside, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&swapping, __ATOMIC_SEQ_CST)) {
            return gate;
        }
        __atomic_store_n(&gate->inside, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&swap_lock);
        while (__atomic_load_n(&swapping, __ATOMIC_SEQ_CST)) {
            pthread_cond_wait(&swap_done, &swap_lock);
        }
        pthread_mutex_unlock(&swap_lock);
    }
}

void backdoor_gate_leave(BackdoorGate *gate)
{
    __atomic_store_n(&gate->inside, gate->inside - 1, __ATOMIC_RELEASE);
}

/* Keep new calls out and wait for those inside. */
static void gate_close(void)
{
    BackdoorGate *gate;

    __atomic_store_n(&swapping, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&gates_lock);
    for (gate = gates.next; gate != &gates; gate = gate->next) {
        while (__atomic_load_n(&gate->inside, __ATOMIC_SEQ_CST)) {
            sched_yield();
        }
    }
    pthread_mutex_unlock(&gates_lock);
}

static void gate_open(void)
{
    pthread_mutex_lock(&swap_lock);
    __atomic_store_n(&swapping, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&swap_done);
    pthread_mutex_unlock(&swap_lock);
}

/* ---- the swap ---- */

char *backdoor_user_lib_swap(BackdoorUserLib *lib, const char *name,
                             const char *args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) restart_err = NULL;
    BackdoorCallbacks *new = backdoor_callbacks_open(name, &err);
    BackdoorCallbacks *old;
    qemu_backdoor_info info = lib->info;
    char *error = NULL;

    if (!new) {
        return g_strdup(err->message);
    }
    pthread_mutex_lock(&swap_serial);
    thread_swaps = true;
    gate_close();
    old = *lib->cb;
    if (!__atomic_load_n(lib->closed, __ATOMIC_ACQUIRE)) {
        if (lib->before_stop) {
            lib->before_stop(old);
        }
        backdoor_callbacks_stop(old);
        info.args = args;
        if (backdoor_callbacks_start(new, &info, &err)) {
            backdoor_callbacks_close(old);
            *lib->cb = new;
            g_free(*lib->args);
            *lib->args = g_strdup(args);
            new = NULL;
        } else {
            error = g_strdup_printf("%s; kept callbacks '%s'", err->message,
                                    backdoor_callbacks_name(old));
            info = lib->info;
            info.args = *lib->args;
            if (!backdoor_callbacks_start(old, &info, &restart_err)) {
                /* Calls get guest errors from now on, as after an exec */
                fprintf(stderr, PROG ": %s: no callbacks now\n",
                        restart_err->message);
                __atomic_store_n(lib->closed, 1, __ATOMIC_RELEASE);
            }
        }
    } else {
        error = g_strdup("the channel is closed");
    }
    gate_open();
    thread_swaps = false;
    pthread_mutex_unlock(&swap_serial);
    backdoor_callbacks_close(new);
    return error;
}

void backdoor_user_reload_stop(void)
{
    static int stopped;

    /*
     * Never unlocked: no swap after this. Unless the process ends inside a
     * swap (a new library's init calls exit()), which holds it already.
     */
    if (!thread_swaps && !__atomic_exchange_n(&stopped, 1,
                                              __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&swap_serial);
    }
}

/* ---- the socket ---- */

typedef struct Listener {
    BackdoorUserLib *lib;
    int fd;
} Listener;

/* One request per connection; a thread that takes no signal. */
static void *reload_thread(void *opaque)
{
    Listener *l = opaque;

    for (;;) {
        g_autofree char *error = NULL;
        g_autofree char *reply = NULL;
        char req[PATH_MAX + 4096];
        size_t len = 0;
        char *args, *nl;
        ssize_t n;
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);

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
            error = backdoor_user_lib_swap(l->lib, req, args ? args : "");
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

char *backdoor_user_reload_listen(BackdoorUserLib *lib, const char *base,
                                  GError **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char *path = g_strdup_printf("%s.reload", base);
    Listener *l;
    sigset_t all, old;
    pthread_t tid;
    int fd, err;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        /* A long base: no hot reload, said once */
        fprintf(stderr, PROG ": %s is too long for a socket path: no hot "
                "reload\n", path);
        g_free(path);
        return NULL;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
        backdoor_user_made_file(path);      /* removed at the end */
    } else if (fd >= 0) {
        err = errno;
        close(fd);
        fd = -1;
        errno = err;
    }
    if (fd < 0 || chmod(path, 0600) < 0 || listen(fd, 4) < 0) {
        err = errno;
        g_set_error(errp, BACKDOOR_CALLBACKS_ERROR, 0, "cannot make the hot "
                    "reload socket %s: %s", path, g_strerror(err));
        if (fd >= 0) {
            close(fd);
        }
        g_free(path);
        return NULL;
    }
    l = g_new0(Listener, 1);
    l->lib = lib;
    /* Far from the guest's own descriptors (it may dup2 onto low ones) */
    l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (l->fd < 0) {
        l->fd = fd;
    } else {
        close(fd);
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&tid, NULL, reload_thread, l) == 0) {
        pthread_detach(tid);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return path;
}
