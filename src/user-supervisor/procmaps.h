/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mapping (VMA) a process has at an address, from a descriptor of its
 * /proc/PID/maps: Linux 6.11's PROCMAP_QUERY, or its text before that.
 */
#ifndef BACKDOOR_PROCMAPS_H
#define BACKDOOR_PROCMAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Vma {
    uint64_t start, end;
    uint64_t offset;            /* file offset of start, in bytes */
    uint64_t ino;
    uint32_t major, minor;      /* the device, as mappings show it */
} Vma;

/*
 * The VMA containing @addr in the maps of descriptor @fd; false if none.
 * @text_only: read the text even where PROCMAP_QUERY would answer; it is
 * set once the kernel turns the query down.
 */
bool procmaps_query(int fd, uint64_t addr, Vma *v, bool *text_only);

/* The same from the text of a maps file. */
bool procmaps_parse(FILE *f, uint64_t addr, Vma *v);

#endif /* BACKDOOR_PROCMAPS_H */
