/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hot reload socket (reload.h): one request per connection, "PATH\n"
 * or "PATH\tARGS\n"; the answer is "ok\n" or "error: MESSAGE\n". A thread
 * of ours that takes no signal, so the guest's signals are untouched.
 */
#define _GNU_SOURCE
#include "reload.h"
#include "channel.h"
#include "user-env.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int reload_fd;

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
        int fd = accept4(reload_fd, NULL, NULL, SOCK_CLOEXEC);

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

char *backdoor_reload_start(const char *base)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char *path = g_strdup_printf("%s.reload", base);
    sigset_t all, old;
    pthread_t tid;
    int fd;

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
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        return g_strdup_printf("cannot make the hot reload socket %s: %s",
                               path, strerror(errno));
    }
    backdoor_user_made_file(path);
    if (chmod(path, 0600) < 0 || listen(fd, 4) < 0) {
        return g_strdup_printf("cannot make the hot reload socket %s: %s",
                               path, strerror(errno));
    }
    /* Far from the guest's own descriptors (it may dup2 onto low ones) */
    reload_fd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (reload_fd < 0) {
        reload_fd = fd;
    } else {
        close(fd);
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&tid, NULL, reload_thread, NULL) == 0) {
        pthread_detach(tid);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return NULL;
}
