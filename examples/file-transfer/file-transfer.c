/* SPDX-License-Identifier: MIT */
/*
 * File transfer guest program: copy files between the guest and the host
 * directory of the file-transfer callbacks (see file-transfer.h).
 *
 *   file-transfer [-c CHANNEL] put LOCAL [NAME]
 *   file-transfer [-c CHANNEL] get NAME [LOCAL]
 *
 * NAME defaults to the base name of LOCAL, LOCAL to NAME; "-" is
 * stdin/stdout.
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include "file-transfer.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static qemu_backdoor_channel *ch;

static void die(const char *fmt, const char *arg, int err)
{
    fprintf(stderr, "file-transfer: ");
    fprintf(stderr, fmt, arg);
    if (err) {
        fprintf(stderr, ": %s", strerror(err));
    }
    fputc('\n', stderr);
    exit(1);
}

/* A call; a negative result (an errno from the host) is fatal. */
static uint64_t call(uint64_t cmd, const char *what, const char *arg)
{
    uint64_t r = qemu_backdoor_channel_call(ch, cmd);

    if ((int64_t)r < 0) {
        die(what, arg, (int)-(int64_t)r);
    }
    return r;
}

static void set_name(const char *name)
{
    if (strlen(name) >= qemu_backdoor_channel_data_size(ch)) {
        die("name too long: %s", name, 0);
    }
    strcpy(qemu_backdoor_channel_data(ch), name);
}

static void put(const char *local, const char *name)
{
    FILE *in = strcmp(local, "-") ? fopen(local, "rb") : stdin;
    char *data = qemu_backdoor_channel_data(ch);
    uint64_t chunk = qemu_backdoor_channel_data_size(ch) - FT_HEADER;
    size_t n;

    if (!in) {
        die("cannot open %s", local, errno);
    }
    set_name(name);
    call(FT_PUT_OPEN, "host cannot create %s", name);
    while ((n = fread(data + FT_HEADER, 1, chunk, in)) > 0) {
        *(uint64_t *)data = n;
        call(FT_PUT_DATA, "host cannot write %s", name);
    }
    if (ferror(in)) {
        die("cannot read %s", local, errno);
    }
    call(FT_CLOSE, "host cannot write %s", name);
}

static void get(const char *name, const char *local)
{
    char *data = qemu_backdoor_channel_data(ch);
    uint64_t chunk = qemu_backdoor_channel_data_size(ch) - FT_HEADER;
    uint64_t size, n, total = 0;
    FILE *out;

    set_name(name);
    size = call(FT_GET_OPEN, "host cannot open %s", name);
    out = strcmp(local, "-") ? fopen(local, "wb") : stdout;
    if (!out) {
        die("cannot create %s", local, errno);
    }
    do {
        *(uint64_t *)data = chunk;
        n = call(FT_GET_DATA, "host cannot read %s", name);
        if (n > chunk || fwrite(data + FT_HEADER, 1, n, out) != n) {
            die("cannot write %s", local, errno);
        }
        total += n;
    } while (n > 0);
    call(FT_CLOSE, "host cannot close %s", name);
    if (total != size) {
        die("%s changed size on the host while it was read", name, 0);
    }
    if (fflush(out) || (out != stdout && fclose(out))) {
        die("cannot write %s", local, errno);
    }
}

int main(int argc, char **argv)
{
    const char *spec = NULL;
    char *copy;
    int opt;

    while ((opt = getopt(argc, argv, "+c:")) != -1) {
        if (opt != 'c') {
            goto usage;
        }
        spec = optarg;
    }
    argc -= optind;
    argv += optind;
    if (argc < 2 || argc > 3 ||
        (strcmp(argv[0], "put") && strcmp(argv[0], "get"))) {
        goto usage;
    }
    ch = qemu_backdoor_open(spec);
    if (!ch) {
        die("%s", qemu_backdoor_error(), 0);
    }
    /* One transfer at a time on the device: keep other threads out */
    qemu_backdoor_channel_lock(ch);
    copy = strdup(argv[1]);
    if (!strcmp(argv[0], "put")) {
        put(argv[1], argc == 3 ? argv[2] : basename(copy));
    } else {
        get(argv[1], argc == 3 ? argv[2] : argv[1]);
    }
    qemu_backdoor_channel_unlock(ch);
    qemu_backdoor_close(ch);
    free(copy);
    return 0;

usage:
    fprintf(stderr, "usage: file-transfer [-c CHANNEL] put LOCAL [NAME]\n"
            "       file-transfer [-c CHANNEL] get NAME [LOCAL]\n");
    return 2;
}
