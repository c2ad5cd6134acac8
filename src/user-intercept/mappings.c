/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's mappings of the control file (mappings.h). Writers hold
 * the lock; the SIGSEGV handler reads without it: a slot is live while
 * end != 0, and end is written last.
 */
#include "mappings.h"

#include <pthread.h>

typedef struct Mapping {
    uintptr_t start;
    uintptr_t end;
    uint64_t offset;        /* file offset of start */
    int prot;               /* what the guest asked for */
} Mapping;

static Mapping mappings[BACKDOOR_MAPPINGS_MAX];
static int nr_mappings;     /* slots in use are below this */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void backdoor_mappings_lock(void)
{
    pthread_mutex_lock(&lock);
}

void backdoor_mappings_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

bool backdoor_mappings_lookup(uintptr_t addr, uint64_t *offset, int *prot)
{
    int n = __atomic_load_n(&nr_mappings, __ATOMIC_ACQUIRE);

    for (int i = 0; i < n; i++) {
        Mapping *m = &mappings[i];
        uintptr_t end = __atomic_load_n(&m->end, __ATOMIC_ACQUIRE);

        if (end && addr >= m->start && addr < end) {
            *offset = m->offset + (addr - m->start);
            *prot = m->prot;
            return true;
        }
    }
    return false;
}

bool backdoor_mappings_overlap(uintptr_t start, uintptr_t end)
{
    for (int i = 0; i < nr_mappings; i++) {
        if (mappings[i].end && start < mappings[i].end &&
            end > mappings[i].start) {
            return true;
        }
    }
    return false;
}

static void add(uintptr_t start, uintptr_t end, uint64_t offset, int prot)
{
    for (int i = 0; i < BACKDOOR_MAPPINGS_MAX; i++) {
        Mapping *m = &mappings[i];

        if (!m->end) {
            m->start = start;
            m->offset = offset;
            m->prot = prot;
            __atomic_store_n(&m->end, end, __ATOMIC_RELEASE);
            if (i >= nr_mappings) {
                __atomic_store_n(&nr_mappings, i + 1, __ATOMIC_RELEASE);
            }
            return;
        }
    }
    /* Out of slots: the mapping stays an ordinary (inert) file mapping */
}

void backdoor_mappings_unmap(uintptr_t start, uintptr_t end)
{
    for (int i = 0; i < nr_mappings; i++) {
        Mapping m = mappings[i];

        if (!m.end || end <= m.start || start >= m.end) {
            continue;
        }
        __atomic_store_n(&mappings[i].end, 0, __ATOMIC_RELEASE);
        if (m.start < start) {
            add(m.start, start, m.offset, m.prot);
        }
        if (end < m.end) {
            add(end, m.end, m.offset + (end - m.start), m.prot);
        }
    }
}

void backdoor_mappings_map(uintptr_t start, uintptr_t end, uint64_t offset,
                           int prot)
{
    backdoor_mappings_unmap(start, end);
    add(start, end, offset, prot);
}

int backdoor_mappings_protect(uintptr_t start, uintptr_t end, int prot,
                              int (*outside)(void *addr, size_t len,
                                             int prot))
{
    uintptr_t pos = start;
    int ret = 0;

    while (pos < end && ret == 0) {
        uintptr_t next = end;
        Mapping *in = NULL;

        for (int i = 0; i < nr_mappings; i++) {
            Mapping *m = &mappings[i];

            if (!m->end || m->end <= pos) {
                continue;
            }
            if (m->start <= pos) {
                in = m;
                next = m->end < end ? m->end : end;
                break;
            }
            if (m->start < next) {
                next = m->start;
            }
        }
        if (in) {
            if (in->start < pos || next < in->end) {
                /* Split so that each part has one guest protection */
                Mapping m = *in;

                backdoor_mappings_map(pos, next, m.offset + (pos - m.start),
                                      prot);
            } else {
                in->prot = prot;
            }
        } else {
            ret = outside((void *)pos, next - pos, prot);
        }
        pos = next;
    }
    return ret;
}

void backdoor_mappings_remap(uintptr_t old, uintptr_t old_len, uintptr_t new,
                             uintptr_t new_len)
{
    uint64_t offset;
    int prot;
    bool ctrl = backdoor_mappings_lookup(old, &offset, &prot);

    backdoor_mappings_unmap(old, old + old_len);
    if (ctrl) {
        /* The moved mapping is still the (inaccessible) control file */
        backdoor_mappings_map(new, new + new_len, offset, prot);
    } else {
        backdoor_mappings_unmap(new, new + new_len);
    }
}
