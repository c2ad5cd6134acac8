/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which descriptors are on the control file: the file's identity, and a
 * cache of the descriptors found on it so that a fast-path call needs no
 * fstat(). QEMU closes and replaces guest descriptors with libc close,
 * dup2, dup3 and syscall(close_range): the first three are interposed
 * here, close_range with the other system calls (exits.c).
 */
#ifndef BACKDOOR_DESCRIPTORS_H
#define BACKDOOR_DESCRIPTORS_H

#include <stdbool.h>
#include <sys/types.h>

/* The control file is the one of @dev and @ino from now on. */
void backdoor_descriptors_set_ctrl_file(dev_t dev, ino_t ino);

/* Is @fd open on the control file? False until it is set. */
bool backdoor_descriptors_on_ctrl_file(int fd);

/* The same, from the cache when @fd was found there before (fast path). */
bool backdoor_descriptors_on_ctrl_file_cached(int fd);

/* Descriptors @first to @last were closed or replaced. */
void backdoor_descriptors_forget(long first, long last);

#endif /* BACKDOOR_DESCRIPTORS_H */
