/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mapping a process has at an address (procmaps.h).
 */
#define _GNU_SOURCE
#include "procmaps.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Linux 6.11 (uapi linux/fs.h), absent from older headers */
#ifndef PROCMAP_QUERY
struct procmap_query {
    uint64_t size;
    uint64_t query_flags;
    uint64_t query_addr;
    uint64_t vma_start;
    uint64_t vma_end;
    uint64_t vma_flags;
    uint64_t vma_page_size;
    uint64_t vma_offset;
    uint64_t inode;
    uint32_t dev_major;
    uint32_t dev_minor;
    uint32_t vma_name_size;
    uint32_t build_id_size;
    uint64_t vma_name_addr;
    uint64_t build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#endif

bool procmaps_parse(FILE *f, uint64_t addr, Vma *v)
{
    char *line = NULL;
    size_t size = 0;
    bool found = false;

    while (!found && getline(&line, &size, f) > 0) {
        unsigned long long s, e, off, ino;
        unsigned maj, min;

        if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &s, &e, &off,
                   &maj, &min, &ino) == 6 && addr >= s && addr < e) {
            *v = (Vma){ s, e, off, ino, maj, min };
            found = true;
        }
    }
    free(line);
    return found;
}

bool procmaps_query(int fd, uint64_t addr, Vma *v, bool *text_only)
{
    struct procmap_query q = {
        .size = sizeof(q),
        .query_addr = addr,
    };
    int copy;
    FILE *f;
    bool found;

    if (!*text_only) {
        if (ioctl(fd, PROCMAP_QUERY, &q) == 0) {
            *v = (Vma){ q.vma_start, q.vma_end, q.vma_offset, q.inode,
                        q.dev_major, q.dev_minor };
            return true;
        }
        if (errno != ENOTTY && errno != EINVAL) {
            return false;       /* ENOENT: nothing mapped there */
        }
        *text_only = true;      /* before Linux 6.11 */
    }
    /* A descriptor of our own, read from the start */
    copy = dup(fd);
    if (copy < 0) {
        return false;
    }
    f = fdopen(copy, "r");
    if (!f) {
        close(copy);
        return false;
    }
    rewind(f);
    found = procmaps_parse(f, addr, v);
    fclose(f);
    return found;
}
