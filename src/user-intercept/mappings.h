/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's mappings of the control file: which host addresses are
 * mapped from it, at which file offset, with the protection the guest
 * asked for (the pages themselves stay inaccessible, so that every guest
 * access faults and is emulated). A table, nothing else: the interposers
 * keep it up to date, the SIGSEGV handler looks addresses up in it.
 */
#ifndef BACKDOOR_MAPPINGS_H
#define BACKDOOR_MAPPINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Mappings the table holds at most; one more is left out (stays inert). */
#define BACKDOOR_MAPPINGS_MAX   64

/*
 * Writers hold the table's lock around the change to the address space
 * and the table's update, so that both agree; lookups take no lock.
 */
void backdoor_mappings_lock(void);
void backdoor_mappings_unlock(void);

/*
 * Is @addr in a mapping of the control file? Then its file offset and
 * the protection the guest asked for. Async-signal-safe, lock-free.
 */
bool backdoor_mappings_lookup(uintptr_t addr, uint64_t *offset, int *prot);

/* Does any mapping of the control file meet [@start, @end)? */
bool backdoor_mappings_overlap(uintptr_t start, uintptr_t end);

/* [@start, @end) now maps the control file from @offset, asked as @prot. */
void backdoor_mappings_map(uintptr_t start, uintptr_t end, uint64_t offset,
                           int prot);

/* [@start, @end) maps the control file no more, or something else now. */
void backdoor_mappings_unmap(uintptr_t start, uintptr_t end);

/*
 * The guest asks for @prot on [@start, @end): inside mappings of the
 * control file, remember it (splitting a mapping where the range covers
 * part of it); for each gap between them, call @outside (the real
 * mprotect), in address order, and stop at its first error. Returns 0 or
 * that error.
 */
int backdoor_mappings_protect(uintptr_t start, uintptr_t end, int prot,
                              int (*outside)(void *addr, size_t len,
                                             int prot));

/*
 * [@old, @old + @old_len) moved to [@new, @new + @new_len) (mremap), or
 * was resized in place: a mapping of the control file at @old moves
 * along, and what was at the new place is gone.
 */
void backdoor_mappings_remap(uintptr_t old, uintptr_t old_len, uintptr_t new,
                             uintptr_t new_len);

#endif /* BACKDOOR_MAPPINGS_H */
